"""distributed.py and the multi-process arithmetic of train.py, without starting any process: torchrun's
environment read and checked, a GPU per local rank, the single process untouched, steps per epoch,
resume positions across world sizes, validation shards.

The real two-process runs (torchrun, gloo) are in tests/distributed/."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest
import torch
import torch.distributed as dist

from s2scli import distributed
from s2scli.checkpoint import TrainState
from s2scli.config import ModelConfig, TrainConfig
from s2scli.data import PreparedData
from s2scli.distributed import SINGLE, Group
from s2scli.errors import S2SError
from s2scli.model import Seq2Seq
from s2scli.train import evaluate, resume_step, steps_per_epoch, train

TORCHRUN_ENV = {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2",
                "MASTER_ADDR": "10.0.0.1", "MASTER_PORT": "29500"}

# ------------------------------------------------------------------------------------ environment


def test_without_torchrun_there_is_one_process() -> None:
    assert distributed.from_env({}) == SINGLE
    assert distributed.from_env({"WORLD_SIZE": "1", "RANK": "0", "LOCAL_RANK": "0"}) == SINGLE
    assert distributed.from_env({"RANK": "5"}) == SINGLE  # no WORLD_SIZE: not launched by torchrun
    assert SINGLE.is_main and not SINGLE.active and SINGLE.world_size == 1


def test_torchrun_environment_is_read() -> None:
    group = distributed.from_env(TORCHRUN_ENV)
    assert (group.rank, group.world_size, group.local_rank) == (3, 4, 1)
    assert not group.is_main and not group.active  # not started yet
    assert distributed.from_env(dict(TORCHRUN_ENV, RANK="0")).is_main


@pytest.mark.parametrize("changes, message", [
    ({"RANK": "x"}, r"RANK='x' is not a whole number"),
    ({"WORLD_SIZE": "two"}, r"WORLD_SIZE='two' is not a whole number"),
    ({"RANK": "4"}, r"RANK=4, WORLD_SIZE=4, LOCAL_RANK=1 do not describe"),
    ({"RANK": "-1"}, r"do not describe"),
    ({"MASTER_ADDR": ""}, r"WORLD_SIZE is 4 but MASTER_ADDR is not set"),
])
def test_broken_torchrun_environment_is_refused(changes: dict[str, str], message: str) -> None:
    with pytest.raises(S2SError, match=message):
        distributed.from_env(dict(TORCHRUN_ENV, **changes))
    env = dict(TORCHRUN_ENV)
    del env["MASTER_PORT"], env["MASTER_ADDR"]
    with pytest.raises(S2SError, match="MASTER_ADDR and MASTER_PORT are not set"):
        distributed.from_env(env)


# ----------------------------------------------------------------------------------------- devices


def test_each_rank_gets_the_gpu_of_its_local_rank() -> None:
    group = distributed.from_env(TORCHRUN_ENV)  # local rank 1; no GPU is needed to name one
    assert distributed.rank_device(torch.device("cuda"), group) == torch.device("cuda", 1)
    assert distributed.rank_device(torch.device("cuda:1"), group) == torch.device("cuda", 1)
    assert distributed.rank_device(torch.device("cpu"), group) == torch.device("cpu")
    with pytest.raises(S2SError, match=r"--device cuda:0: .*this one: cuda:1.*--device cuda or auto"):
        distributed.rank_device(torch.device("cuda:0"), group)
    # One process keeps what it was given (--device cuda:1 without torchrun).
    assert distributed.rank_device(torch.device("cuda:1"), SINGLE) == torch.device("cuda", 1)


def test_backend_follows_the_device() -> None:
    assert distributed.backend_for(torch.device("cuda", 0)) == "nccl"
    assert distributed.backend_for(torch.device("cpu")) == "gloo"


# ------------------------------------------------------------------------------ one process: no-ops


def test_one_process_starts_no_group_and_collectives_are_identities() -> None:
    with distributed.started(SINGLE, torch.device("cpu")) as group:
        assert group == SINGLE
        assert not dist.is_initialized()
        assert distributed.sum_over_ranks(group, [1.5, 7]) == [1.5, 7]
        assert isinstance(distributed.sum_over_ranks(group, [1.5, 7])[1], int)
        assert distributed.any_rank(group, [True, False]) == [True, False]
        distributed.check_same(group, [1, 2], "anything")
        distributed.barrier(group)
        model = torch.nn.Linear(2, 2)
        assert distributed.wrap(model, group) is model


# ----------------------------------------------------------------------------- steps and positions


def test_steps_per_epoch_skip_the_remainder() -> None:
    assert steps_per_epoch(10, 1) == 10
    assert steps_per_epoch(10, 2) == 5
    assert steps_per_epoch(10, 3) == 3  # one batch left over, skipped that epoch
    assert steps_per_epoch(3, 4) == 0


def state(step: int, per_epoch: int, world: int | None) -> TrainState:
    """A checkpoint's train_state as train() writes it (world None: written before world_size existed)."""
    s: dict[str, Any] = {"step": step, "epoch": step // per_epoch, "batch_in_epoch": step % per_epoch * (world or 1),
                         "elapsed": 0.0, "rng": torch.get_rng_state(), "optimizer": {}}
    if world is not None:
        s["world_size"] = world
    return TrainState.from_dict(s)


def test_resume_with_the_same_world_size_is_the_saved_step() -> None:
    assert resume_step(state(13, 5, 2), 5, 2) == 13
    assert resume_step(state(13, 10, None), 10, 1) == 13  # files from before multi-process training


def test_resume_with_another_world_size_keeps_the_data_position() -> None:
    # 10 batches an epoch. Two ranks at step 8 = epoch 1 after 3 steps = 6 batches of epoch 1 consumed.
    saved = state(8, 5, 2)
    assert (saved.epoch, saved.batch_in_epoch) == (1, 6)
    assert resume_step(saved, 10, 1) == 16  # one process: epoch 1, batch 6
    assert resume_step(saved, 3, 3) == 3 + 2  # three ranks: 6 batches = 2 steps of 3
    # One process after 3 batches, resumed on two ranks: batch 3 cannot start a step, so the next step
    # takes batches 4 and 5 (batch 3 is skipped, none is taken twice).
    assert resume_step(state(3, 10, 1), 5, 2) == 2
    # One process after 9 of 10 batches, resumed on four ranks (2 steps an epoch): the next epoch's start.
    assert resume_step(state(9, 10, 1), 2, 4) == 2


# --------------------------------------------------------------------------------------- training


def test_validation_shards_add_up_to_the_whole(tiny_prepared: Callable[..., PreparedData],
                                               tiny_model_config: ModelConfig) -> None:
    data = tiny_prepared(23, seed=3)
    torch.manual_seed(0)
    model = Seq2Seq(tiny_model_config)
    whole_nll, whole_tokens = evaluate(model, data, 4, torch.device("cpu"))
    for world in (2, 3, 7):
        shares = [evaluate(model, data, 4, torch.device("cpu"), rank, world) for rank in range(world)]
        assert sum(t for _, t in shares) == whole_tokens
        assert sum(n for n, _ in shares) == pytest.approx(whole_nll, rel=1e-6)
    assert evaluate(model, data, 4, torch.device("cpu"), 6, 7) == (0.0, 0)  # 6 batches: rank 6 has none


def test_train_needs_a_started_group_and_a_batch_for_every_rank(
        tiny_prepared: Callable[..., PreparedData], tiny_model_config: ModelConfig, tmp_path: Path) -> None:
    data = tiny_prepared(8)  # 2 batches of 4
    with pytest.raises(ValueError, match="start the process group first"):
        train(data, None, tiny_model_config, TrainConfig(batch_size=4), tmp_path / "m.pt", group=Group(0, 2))
    three = Group(0, 3, backend="gloo", device=torch.device("cpu"))  # refused before any collective
    with pytest.raises(S2SError, match=r"its 2 batches of 4 cannot give each of 3 processes one"):
        train(data, None, tiny_model_config, TrainConfig(batch_size=4), tmp_path / "m.pt", group=three)
    assert not (tmp_path / "m.pt").exists()
