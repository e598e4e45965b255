"""Training on several processes and machines: ``torch.distributed`` as launched by ``torchrun``.

This module owns the process group: reading the rank and world size from the variables ``torchrun``
sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``), choosing the backend
(NCCL for CUDA, gloo for the CPU) and each process's device (GPU ``LOCAL_RANK``), starting and ending the
group, wrapping the model in ``DistributedDataParallel``, and the few small collectives the training loop
needs so that every rank takes the same decisions at the same step (sums of the loss and token counts,
"any rank wants to stop", "every rank agrees on this").

Without ``torchrun`` (``WORLD_SIZE`` unset or 1) there is no process group: ``from_env`` gives the
single-process ``Group``, every collective returns its input unchanged and ``wrap`` returns the model
itself, so one process trains exactly as it did before this module existed.

Which batches each rank reads is the training loop's business (``train.py``); see there.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Iterator, Mapping, Sequence

import torch
from torch import nn

from .errors import S2SError

# How long a rank waits in a collective for the others (e.g. while rank 0 writes a large checkpoint)
# before the group gives up with an error.
TIMEOUT = timedelta(minutes=30)


@dataclass(frozen=True)
class Group:
    """This process's place among the training processes.

    ``backend`` is None until ``started`` has joined the process group ("gloo" or "nccl" after), and
    always None for a single process; ``device`` is where the collectives' tensors live.
    """

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None
    device: torch.device | None = None

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes the model file and the log and reports progress."""
        return self.rank == 0

    @property
    def active(self) -> bool:
        """Whether a process group is running (several processes, started)."""
        return self.backend is not None


SINGLE = Group()


def from_env(env: Mapping[str, str] | None = None) -> Group:
    """The rank, world size and local rank that ``torchrun`` put in the environment (not started yet).

    Without ``WORLD_SIZE``, or with ``WORLD_SIZE=1``, this is the single process, whatever else is set.
    """
    env = os.environ if env is None else env
    if env.get("WORLD_SIZE", "").strip() in ("", "1"):
        return SINGLE
    values = {}
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        text = env.get(name, "0" if name == "LOCAL_RANK" else "")
        try:
            values[name] = int(text)
        except ValueError:
            raise S2SError(f"environment variable {name}={text!r} is not a whole number "
                           "(start several processes with torchrun)") from None
    world, rank, local = values["WORLD_SIZE"], values["RANK"], values["LOCAL_RANK"]
    if world < 1 or not 0 <= rank < world or local < 0:
        raise S2SError(f"environment variables RANK={rank}, WORLD_SIZE={world}, LOCAL_RANK={local} "
                       "do not describe a process of a group")
    missing = [name for name in ("MASTER_ADDR", "MASTER_PORT") if not env.get(name)]
    if missing:
        raise S2SError(f"WORLD_SIZE is {world} but {' and '.join(missing)} "
                       f"{'is' if len(missing) == 1 else 'are'} not set (start several processes with torchrun)")
    return Group(rank, world, local)


def rank_device(requested: torch.device, group: Group) -> torch.device:
    """The device of this rank: with several processes a CUDA request means GPU ``LOCAL_RANK``.

    A single process keeps what was asked for. ``cuda:N`` with several processes is refused unless N is
    the local rank, since two ranks must never share a GPU.
    """
    if group.world_size == 1 or requested.type != "cuda":
        return requested
    if requested.index is not None and requested.index != group.local_rank:
        raise S2SError(f"--device {requested}: with torchrun each process uses the GPU of its local rank "
                       f"(this one: cuda:{group.local_rank}); give --device cuda or auto")
    return torch.device("cuda", group.local_rank)


def backend_for(device: torch.device) -> str:
    """NCCL between GPUs, gloo between CPU processes."""
    return "nccl" if device.type == "cuda" else "gloo"


@contextmanager
def started(group: Group, device: torch.device) -> Iterator[Group]:
    """Join the process group for the duration of the block (nothing to do for a single process).

    Every rank blocks here until all ``WORLD_SIZE`` ranks have arrived (``MASTER_ADDR:MASTER_PORT`` is
    where they meet; torchrun sets both).
    """
    if group.world_size == 1:
        yield group
        return
    import torch.distributed as dist

    backend = backend_for(device)
    if backend == "nccl":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, init_method="env://", rank=group.rank, world_size=group.world_size,
                            timeout=TIMEOUT)
    try:
        yield replace(group, backend=backend, device=device)
    finally:
        dist.destroy_process_group()


def wrap(model: nn.Module, group: Group) -> nn.Module:
    """The model for the training forward pass: ``DistributedDataParallel`` around it when a group runs.

    DDP makes every rank start from rank 0's parameters and, during ``backward``, replaces each gradient
    with its mean over the ranks (an all-reduce), so the optimizer step is the same on every rank.
    """
    if not group.active:
        return model
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [group.device.index] if group.device is not None and group.device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=device_ids)


def _reduce(group: Group, values: Sequence[float], op: str) -> list[float]:
    import torch.distributed as dist

    tensor = torch.tensor([float(v) for v in values], dtype=torch.float64, device=group.device)  # [len(values)]
    dist.all_reduce(tensor, op=getattr(dist.ReduceOp, op))
    return tensor.tolist()


def sum_over_ranks(group: Group, values: Sequence[float]) -> list[float]:
    """Each value summed over the ranks (float64; a NaN on any rank makes the sum NaN everywhere).

    A single process gets its values back unchanged (ints stay ints).
    """
    if not group.active:
        return list(values)
    return _reduce(group, values, "SUM")


def any_rank(group: Group, flags: Sequence[bool]) -> list[bool]:
    """For each flag: whether it is set on at least one rank. Every rank gets the same answer."""
    if not group.active:
        return [bool(f) for f in flags]
    return [v > 0 for v in _reduce(group, [1.0 if f else 0.0 for f in flags], "MAX")]


def check_same(group: Group, values: Sequence[int], what: str) -> None:
    """Refuse to go on unless every rank holds the same ``values`` (``what`` names them in the error)."""
    if not group.active:
        return
    reduced = _reduce(group, [*values, *(-v for v in values)], "MAX")  # maxima, then minus the minima
    n = len(values)
    if any(hi != -lo for hi, lo in zip(reduced[:n], reduced[n:])):
        raise S2SError(f"the {group.world_size} processes do not agree on {what} (rank {group.rank} has "
                       f"{list(values)}); every machine needs the same files")


def barrier(group: Group) -> None:
    """Wait until every rank gets here (e.g. until rank 0 has written the model file)."""
    if group.active:
        _reduce(group, [0.0], "SUM")
