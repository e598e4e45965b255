"""Nothing lost, round 2 (issue 18), in the library: prepared data rewritten under its reader, the output
lock, stale temporary files, --keep-last after a restart, a failed torch.save, resume's device order,
and batches that do not wait for a paused pipe."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest
import torch

from s2scli import pacing
from s2scli import train as train_module
from s2scli.checkpoint import Checkpoint, load, save
from s2scli.config import ModelConfig, TrainConfig
from s2scli.data import DataChanged, PreparedData
from s2scli.errors import S2SError
from s2scli.streams import output_lock, remove_stale_temporaries
from s2scli.train import keep_last_checkpoints, train


def test_rewriting_prepared_data_in_place_is_noticed(tiny_prepared: Callable[..., PreparedData],
                                                     tmp_path: Path) -> None:
    data = tiny_prepared(20)
    data.batch([0, 1])
    other = tiny_prepared(3, seed=5, name="other.s2s")
    shutil.copyfile(other.name, data.name)  # truncated and rewritten: the same inode
    with pytest.raises(DataChanged, match="train.s2s: the file was rewritten while training read it"):
        data.batch([0, 1])


def test_prepared_data_replaced_by_rename_keeps_reading_what_was_opened(
        tiny_prepared: Callable[..., PreparedData], tmp_path: Path) -> None:
    data = tiny_prepared(20)
    before = [x.tolist() for x in data.pair(3)]
    other = tiny_prepared(3, seed=5, name="other.s2s")
    os.replace(other.name, data.name)  # what 's2s prepare -o' does
    assert [x.tolist() for x in data.pair(3)] == before


def test_training_stops_with_a_checkpoint_of_the_last_step_when_its_data_changes(
        tiny_prepared: Callable[..., PreparedData], tiny_model_config: ModelConfig, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    data = tiny_prepared(40)
    real = PreparedData.batch
    calls = []

    def batch(self: PreparedData, indices: Any) -> Any:
        calls.append(1)
        if len(calls) == 4:  # steps 1-3 done, then the file changes
            raise DataChanged(f"{self.name}: the file was rewritten while training read it")
        return real(self, indices)

    monkeypatch.setattr(PreparedData, "batch", batch)
    out = tmp_path / "m.pt"
    with pytest.raises(DataChanged, match=r"training stopped, resumable checkpoint of step 3 saved to"):
        train(data, None, tiny_model_config, TrainConfig(batch_size=4, epochs=5, valid_every=100), out)
    assert load(out).train_state["step"] == 3


def test_resume_moves_the_model_to_its_device_before_loading_the_optimizer(
        tiny_prepared: Callable[..., PreparedData], tiny_model_config: ModelConfig, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """On a GPU the optimizer's state must land beside the weights: model.to(device) comes first."""
    data = tiny_prepared(16)
    cfg = TrainConfig(batch_size=4, epochs=1, optimizer="adam", lr=0.01)
    out = tmp_path / "m.pt"
    train(data, None, tiny_model_config, cfg, out)
    events: list[str] = []
    real_to, real_load = torch.nn.Module.to, torch.optim.Optimizer.load_state_dict

    def to(self: torch.nn.Module, *args: Any, **kwargs: Any) -> Any:
        if isinstance(self, train_module.Seq2Seq):
            events.append("model.to")
        return real_to(self, *args, **kwargs)

    def load_state(self: torch.optim.Optimizer, state: Any) -> None:
        events.append("optimizer.load_state_dict")
        real_load(self, state)

    monkeypatch.setattr(torch.nn.Module, "to", to)
    monkeypatch.setattr(torch.optim.Optimizer, "load_state_dict", load_state)
    train(data, None, tiny_model_config, TrainConfig(batch_size=4, epochs=2, optimizer="adam", lr=0.01), out,
          resume=load(out))
    assert "model.to" in events and events.index("model.to") < events.index("optimizer.load_state_dict"), events


def test_a_second_lock_on_one_output_is_refused_and_the_lock_file_goes(tmp_path: Path) -> None:
    out = tmp_path / "m.pt"
    with output_lock(str(out)):
        assert (tmp_path / ".m.pt.lock").exists()
        with pytest.raises(S2SError, match="another s2s process is writing this file"):
            with output_lock(str(out)):
                pass
    assert not (tmp_path / ".m.pt.lock").exists()
    with output_lock(str(out)):  # free again
        pass


def test_stale_temporaries_are_only_those_of_the_output(tmp_path: Path) -> None:
    names = [".m.pt.abcd1234.tmp", ".m.step00000012.pt.tmp", ".m.best.pt.ABCD_xyz.tmp", ".m.pt.tmp",
             ".mm.pt.abcd1234.tmp", "m.pt.abcd1234.tmp", ".m.pt.lock"]
    for name in names:
        (tmp_path / name).write_bytes(b"x")
    removed = sorted(p.name for p in remove_stale_temporaries(tmp_path / "m.pt"))
    assert removed == sorted([".m.pt.abcd1234.tmp", ".m.step00000012.pt.tmp", ".m.best.pt.ABCD_xyz.tmp"])


def test_keep_last_keeps_the_newest_files_not_the_highest_step_numbers(tmp_path: Path) -> None:
    out = tmp_path / "m.pt"
    for step in (900, 1000):  # a previous run's, older
        (tmp_path / f"m.step{step:08d}.pt").write_bytes(b"old")
        os.utime(tmp_path / f"m.step{step:08d}.pt", ns=(10**18, 10**18))
    for step in (5, 10):  # this run's, after a --force restart
        out.write_bytes(f"new {step}".encode())
        keep_last_checkpoints(out, step, 2)
    assert sorted(p.name for p in tmp_path.glob("m.step*")) == ["m.step00000005.pt", "m.step00000010.pt"]


def test_a_failed_write_inside_torch_save_is_one_error_and_leaves_no_file(
        tiny_checkpoint: Checkpoint, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def full_disk(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        f.write(b"partial")
        raise RuntimeError("[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed writing file "
                           "data/3: file write failed")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(S2SError, match=r"m\.pt: could not write \(write failed .*inline_container"):
        save(tiny_checkpoint, tmp_path / "m.pt")
    assert list(tmp_path.iterdir()) == []


class SlowPipe:
    """A pipe written by a thread: two lines at once, a pause, then one more line."""

    def __init__(self) -> None:
        read, self.write = os.pipe()
        self.reader, self.ready = pacing.paced(os.fdopen(read, "rb"))

    def feed(self, pause: float) -> None:
        def run() -> None:
            os.write(self.write, b"one\ntwo\n")
            time.sleep(pause)
            os.write(self.write, b"three\n")
            os.close(self.write)
        threading.Thread(target=run, daemon=True).start()


def test_batches_end_early_when_a_pipe_pauses() -> None:
    pipe = SlowPipe()
    assert pipe.ready is not None
    pipe.feed(pause=1.0)  # far longer than PAUSE_S
    lines = iter(line.decode().strip() for line in iter(lambda: pipe.reader.readline(-1), b""))
    assert list(pacing.batches(lines, 64, pipe.ready)) == [["one", "two"], ["three"]]


def test_batches_of_a_file_are_full(tmp_path: Path) -> None:
    path = tmp_path / "f.txt"
    path.write_text("a\nb\nc\n")
    with open(path, "rb") as f:
        stream, ready = pacing.paced(f)
        assert stream is f and ready is None
    assert list(pacing.batches(iter("abcde"), 2)) == [["a", "b"], ["c", "d"], ["e"]]


def test_pipe_reader_reads_lines_like_readline() -> None:
    read, write = os.pipe()
    os.write(write, b"abc\n" + b"x" * 10 + b"\nlast")
    os.close(write)
    reader = pacing.PipeInput(read)
    assert reader.readline(100) == b"abc\n"
    assert reader.readline(5) == b"xxxxx"
    assert reader.readline(100) == b"xxxxx\n"
    assert reader.readline(100) == b"last"
    assert reader.readline(100) == b""
    os.close(read)
