"""The model file: one self-contained file holding everything needed to translate or resume training.

Contents (a dict saved with ``torch.save``; only tensors, numbers, strings, lists and dicts, so it loads
with ``torch.load(weights_only=True)`` and a model file from a stranger can never run code)::

    format        "s2s-model"
    version       1
    model_config  ModelConfig as a dict
    train_config  TrainConfig as a dict
    src_vocab     {"tokens": [...], "tokenizer": "moses", "lang": "en"}
    tgt_vocab     the same for the target side
    weights       the model's state_dict
    train_state   TrainState as a dict (below), or absent

``TrainState`` is where a training run stands, all ``--resume`` needs to continue it exactly: ``step``
(the schedule and the data position follow from it and the seed), ``epoch`` and ``batch_in_epoch`` (the
batches of the epoch consumed, all ranks together), ``world_size`` (the processes that trained), ``elapsed``
(seconds of training, resumes included), ``rng`` (torch's CPU generator), ``optimizer`` (its state_dict),
``data`` (what identifies the training file), ``history`` (the validation records), ``best_valid_ppl`` and
``since_best`` (early stopping). Files written before some of these existed lack them; ``from_dict``
fills in what they meant then (one process, no validation yet). ``Checkpoint.train_state`` keeps the entry
as stored, so a model with a damaged training state still translates; ``--resume`` reads it with
``TrainState.from_dict``.

Files are written atomically: to a temporary file in the same directory, flushed to disk, then renamed
over the target, so an interrupted or failed save leaves the previous file intact.

A model file from elsewhere is checked before anything it declares is allocated: it must be a regular
file; every record of the archive must be stored uncompressed and fit inside the file (so loading never
allocates more than the file's size: no zip bomb); every weight must be a dense tensor whose storage
holds all its elements (no stride-0 view standing for gigabytes); and the model its configuration
describes must not need more memory than its weights in the file occupy (with MODEL_SLACK bytes to spare).
"""

from __future__ import annotations

import errno
import math
import os
import pickle
import shutil
import struct
import zipfile
from dataclasses import dataclass, field
from typing import Any

import torch

from .config import ModelConfig, TrainConfig, from_dict, to_dict
from .errors import S2SError
from .model import Seq2Seq, weight_shapes
from .streams import atomic_binary, check_regular_input
from .vocab import Vocab, different_sides

FORMAT = "s2s-model"
VERSION = 1
# A model may need at most this many bytes more than its file's size (the file holds every weight).
MODEL_SLACK = 1 << 20


@dataclass(frozen=True)
class TrainState:
    """Where a training run stands: what the model file's ``train_state`` holds (see the module docstring)."""

    step: int
    epoch: int | None  # None: a file from before it was saved (the same number of processes resumes it)
    batch_in_epoch: int | None
    world_size: int
    elapsed: float
    rng: torch.Tensor
    optimizer: dict[str, Any]
    data: dict[str, Any] | None
    history: list[dict[str, Any]] = field(default_factory=list)
    best_valid_ppl: float = math.inf
    since_best: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The model file's ``train_state`` entry (plain data for a ``weights_only`` load)."""
        return {"step": self.step, "epoch": self.epoch, "batch_in_epoch": self.batch_in_epoch,
                "world_size": self.world_size, "elapsed": self.elapsed, "rng": self.rng,
                "optimizer": self.optimizer, "data": self.data, "history": self.history,
                "best_valid_ppl": self.best_valid_ppl, "since_best": self.since_best}

    @classmethod
    def from_dict(cls, entry: Any) -> TrainState:
        """Read a ``train_state`` entry; a damaged one raises KeyError, TypeError or ValueError."""
        if not isinstance(entry, dict):
            raise TypeError(f"the training state is a {type(entry).__name__}, not a dict")
        optional = {k: int(entry[k]) if entry[k] is not None else None
                    for k in ("epoch", "batch_in_epoch") if k in entry}
        return cls(step=int(entry["step"]), epoch=optional.get("epoch"),
                   batch_in_epoch=optional.get("batch_in_epoch"), world_size=int(entry.get("world_size", 1)),
                   elapsed=float(entry["elapsed"]), rng=entry["rng"], optimizer=entry["optimizer"],
                   data=entry.get("data"), history=list(entry.get("history", [])),
                   best_valid_ppl=float(entry.get("best_valid_ppl", math.inf)),
                   since_best=int(entry.get("since_best", 0)))


@dataclass
class Checkpoint:
    model_config: ModelConfig
    train_config: TrainConfig
    src_vocab: Vocab
    tgt_vocab: Vocab
    weights: dict[str, torch.Tensor]
    train_state: dict[str, Any] | None = None  # the file's entry as stored; TrainState.from_dict reads it

    def build_model(self, device: torch.device | str = "cpu") -> Seq2Seq:
        """The network with these weights, in eval mode."""
        model = Seq2Seq(self.model_config)
        model.load_state_dict(self.weights)
        return model.to(device).eval()


def save(ckpt: Checkpoint, path: str | os.PathLike[str]) -> None:
    """Write ``ckpt`` to ``path`` atomically (temporary file + fsync + rename)."""
    data = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": to_dict(ckpt.model_config),
        "train_config": to_dict(ckpt.train_config),
        "src_vocab": ckpt.src_vocab.to_dict(),
        "tgt_vocab": ckpt.tgt_vocab.to_dict(),
        "weights": ckpt.weights,
    }
    if ckpt.train_state is not None:
        data["train_state"] = ckpt.train_state
    with atomic_binary(str(path)) as f:
        try:
            torch.save(data, f)
        except RuntimeError as exc:  # torch's zip writer turns a failed write into "[enforce fail at ...]"
            failed = write_failure(exc, str(path))
            if failed is None:
                raise
            raise failed from None


def write_failure(exc: RuntimeError, path: str) -> OSError | None:
    """The OSError behind a failed ``torch.save`` (atomic_binary reports it in one line), or None when
    the failure was not the writing (then it is a bug, and stays one)."""
    cause = exc.__cause__ or exc.__context__
    if isinstance(cause, OSError):
        return cause
    try:
        full = shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free < (1 << 20)
    except OSError:
        full = False
    if full:
        return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    if "inline_container" in str(exc) or "write" in str(exc).lower():
        return OSError(errno.EIO, f"write failed ({first_line(exc)[:100]})")
    return None


def load(path: str | os.PathLike[str]) -> Checkpoint:
    """Read a model file safely (``weights_only=True``), with a clear error for anything else."""
    name = str(path)
    check_regular_input(name, "model file")  # a FIFO would block forever, /dev/zero never end
    if not zipfile.is_zipfile(path):
        raise S2SError(f"{name}: not a model file (not a torch archive; truncated or another kind of file)")
    extra = bytes_after_archive(path)
    if extra:
        raise S2SError(f"{name}: damaged model file ({extra} bytes after the end of the archive)")
    check_records(path, name)
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise S2SError(f"{name}: refused to load: the file holds objects that are not plain data, "
                       f"so it may run code ({first_line(exc)})") from None
    except Exception as exc:  # torch raises many kinds on damaged archives
        raise S2SError(f"{name}: not a model file, or damaged ({first_line(exc)})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise S2SError(f"{name}: not an s2s model file (made by another program?)")
    version = data.get("version")
    if not isinstance(version, int):
        raise S2SError(f"{name}: damaged s2s model file (no format version)")
    if version > VERSION:
        raise S2SError(f"{name}: model format version {version} is newer than this s2s reads ({VERSION}); "
                       "upgrade s2s")
    try:
        model_config = from_dict(ModelConfig, data["model_config"])
        ckpt = Checkpoint(
            model_config=model_config,
            train_config=from_dict(TrainConfig, data["train_config"]),
            src_vocab=Vocab.from_dict(data["src_vocab"]),
            tgt_vocab=Vocab.from_dict(data["tgt_vocab"]),
            weights=data["weights"],
            train_state=data.get("train_state"),
        )
    except (KeyError, TypeError, AttributeError, ValueError, S2SError) as exc:
        raise S2SError(f"{name}: damaged s2s model file (bad or missing entry: {exc})") from None
    check_shapes(ckpt, name, os.path.getsize(path))
    return ckpt


def average(ckpts: list[Checkpoint], names: list[str]) -> Checkpoint:
    """The element-wise mean of the weights of checkpoints of one model (same configuration and
    vocabularies), accumulated in float64; the result has no training state."""
    if not ckpts:
        raise S2SError("average: no model files given")
    first = ckpts[0]
    for ckpt, name in zip(ckpts[1:], names[1:]):
        if ckpt.model_config != first.model_config:
            raise S2SError(f"{name} and {names[0]} have different model configurations; only checkpoints "
                           "of one model can be averaged")
        if different_sides((ckpt.src_vocab, ckpt.tgt_vocab), (first.src_vocab, first.tgt_vocab)):
            raise S2SError(f"{name} and {names[0]} have different vocabularies")
    weights = {}
    for key, tensor in first.weights.items():
        total = sum(c.weights[key].double() for c in ckpts)
        weights[key] = (total / len(ckpts)).to(tensor.dtype)
    return Checkpoint(first.model_config, first.train_config, first.src_vocab, first.tgt_vocab, weights)


def bytes_after_archive(path: str | os.PathLike[str]) -> int:
    """How many bytes follow the zip archive's end record (0 for a file written by ``save``)."""
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        f.seek(max(0, size - (1 << 16) - 22))
        tail = f.read()
    end = tail.rfind(b"PK\x05\x06")  # the end-of-central-directory record
    if end < 0 or end + 22 > len(tail):
        return 0  # zipfile accepted it; leave the judgement to torch
    (comment,) = struct.unpack("<H", tail[end + 20 : end + 22])
    return len(tail) - (end + 22 + comment)


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (or its type), cut to 120 characters."""
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:120]


def check_records(path: str | os.PathLike[str], name: str) -> None:
    """Refuse an archive whose records would expand beyond the file (compressed, or sizes that lie)."""
    size = os.path.getsize(path)
    try:
        with zipfile.ZipFile(path) as archive:
            infos = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise S2SError(f"{name}: not a model file, or damaged ({first_line(exc)})") from None
    total = 0
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
            raise S2SError(f"{name}: damaged model file (record {info.filename[:60]} is compressed; "
                           "s2s writes every record stored as is)")
        total += info.file_size
        if total > size:
            raise S2SError(f"{name}: damaged model file (its records claim more bytes than the file has)")


def check_dense(ckpt: Checkpoint, name: str, file_size: int) -> None:
    """Refuse weights that are views claiming more elements than their storage holds (stride 0, or
    storage smaller than the shape), and a model that would need more memory than its file holds."""
    needed = 0
    state = [(f"train_state tensor {i}", t) for i, t in enumerate(tensors_in(ckpt.train_state))]
    for key, tensor in [*ckpt.weights.items(), *state]:
        if not isinstance(tensor, torch.Tensor):
            raise S2SError(f"{name}: damaged model file (weight {key} is not a tensor)")
        nbytes = tensor.numel() * tensor.element_size()
        if tensor.numel() and (not tensor.is_contiguous() or 0 in tensor.stride()
                               or tensor.untyped_storage().nbytes() - tensor.storage_offset()
                               * tensor.element_size() < nbytes):
            raise S2SError(f"{name}: damaged model file (weight {key} is not stored whole: a view of "
                           f"{tensor.untyped_storage().nbytes()} bytes standing for {nbytes})")
        needed += nbytes
    if needed > file_size + MODEL_SLACK:
        raise S2SError(f"{name}: damaged model file (its weights need {needed} bytes, more than the file's "
                       f"{file_size})")


def tensors_in(value: Any, depth: int = 0) -> list[torch.Tensor]:
    """The tensors inside nested dicts and lists (the training state: optimizer moments, RNG state)."""
    if isinstance(value, torch.Tensor):
        return [value]
    if depth > 20:
        return []
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (list, tuple)) else ()
    return [t for item in items for t in tensors_in(item, depth + 1)]


def check_shapes(ckpt: Checkpoint, name: str, file_size: int | None = None) -> None:
    """Refuse weights that do not fit the stored configuration, before torch meets them."""
    cfg = ckpt.model_config
    if len(ckpt.src_vocab) != cfg.src_vocab_size or len(ckpt.tgt_vocab) != cfg.tgt_vocab_size:
        raise S2SError(f"{name}: damaged model file (vocabulary sizes do not match the model)")
    try:
        expected = weight_shapes(cfg)
    except (ValueError, TypeError, OverflowError) as exc:
        raise S2SError(f"{name}: damaged model file (bad model configuration: {first_line(exc)})") from None
    got = ckpt.weights
    if not isinstance(got, dict) or set(got) != set(expected):
        raise S2SError(f"{name}: damaged model file (weights do not match the stored configuration)")
    if file_size is not None:
        check_dense(ckpt, name, file_size)
    for key, tensor in got.items():
        if not isinstance(tensor, torch.Tensor) or tuple(tensor.shape) != expected[key]:
            raise S2SError(f"{name}: damaged model file (weight {key} has the wrong shape)")
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            # s2s never saves such weights (training stops at a NaN with the last good checkpoint).
            raise S2SError(f"{name}: damaged model file (weight {key} holds NaN or infinite values)")
