"""Run by tests/distributed/test_ddp.py under ``torchrun --nproc-per-node 2``: trouble on rank 1 alone.

Usage: ``torchrun ... ddp_worker.py DATA OUTDIR``. Each rank joins the gloo group and trains twice with
the library, then writes ``OUTDIR/rank<r>.json``:

- ``stop``: only rank 1's stop event is set (as its signal handler would), after step 3: every rank
  must return "interrupted" at step 3, and rank 0 must have saved ``OUTDIR/stop.pt`` at step 3.
- ``nan``: only rank 1's loss becomes NaN, at step 2: every rank must raise the same error naming step 2.
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from threading import Event
from typing import Any

import torch

from s2scli import distributed
from s2scli.config import ModelConfig, TrainConfig
from s2scli.data import PreparedData
from s2scli.errors import S2SError
from s2scli.model import Seq2Seq
from s2scli.train import NullReporter, train


class StopAfter(NullReporter):
    """Sets ``stop`` once step ``n`` has been reported, like a SIGINT arriving on this rank then."""

    def __init__(self, stop: Event, n: int) -> None:
        self.stop, self.n = stop, n

    def update(self, step: int, stats: dict[str, float]) -> None:
        if step == self.n:
            self.stop.set()


def main(data_path: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    out = Path(out_dir)
    results: dict[str, Any] = {}
    with open(data_path, "rb") as f, distributed.started(distributed.from_env(), torch.device("cpu")) as group:
        data = PreparedData(f, data_path)
        model_cfg = ModelConfig(len(data.src_vocab), len(data.tgt_vocab), layers=1, hidden=8, embedding=8)
        cfg = TrainConfig(batch_size=4, epochs=3, seed=2, valid_every=1)

        stop = Event()
        reporter = StopAfter(stop, 3) if group.rank == 1 else None
        result = train(data, None, model_cfg, cfg, out / "stop.pt", stop=stop, reporter=reporter, group=group)
        results["stop"] = {"status": result.status, "step": result.step, "stop_set_here": stop.is_set()}

        original = Seq2Seq.forward
        calls = {"n": 0}

        def poisoned(self: Seq2Seq, *args: Any) -> torch.Tensor:
            loss = original(self, *args)
            if self.training and group.rank == 1:
                calls["n"] += 1
                if calls["n"] == 2:
                    return loss * float("nan")
            return loss

        Seq2Seq.forward = poisoned  # type: ignore[method-assign]
        try:
            result = train(data, None, model_cfg, replace(cfg, seed=3), out / "nan.pt", group=group)
            results["nan"] = f"no error: {result.status} at step {result.step}"
        except S2SError as exc:
            results["nan"] = str(exc)
        finally:
            Seq2Seq.forward = original  # type: ignore[method-assign]
    (out / f"rank{group.rank}.json").write_text(json.dumps(results))


if __name__ == "__main__":
    main(*sys.argv[1:])
