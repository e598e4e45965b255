"""Frozen configuration dataclasses, one per concern, with the paper's defaults.

Section numbers in brackets refer to Sutskever, Vinyals & Le (2014), arXiv:1409.3215. Each field is one
command-line option of the command that uses it; the model and training configs are stored in the model
file, so a model always carries the settings it was trained with.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class VocabConfig:
    """``s2s vocab``: how tokens are counted and which are kept."""

    tokenizer: str = "moses"  # Moses tokenizer (sacremoses); "none" splits on whitespace
    lang: str = "en"  # language code given to the tokenizer
    size: int = 0  # most frequent words kept, 0 = all; [3.1] 160,000 source / 80,000 target
    min_count: int = 1  # words seen fewer times become <unk>


@dataclass(frozen=True)
class PrepareConfig:
    """``s2s prepare``: which sentence pairs are kept."""

    max_len: int = 100  # pairs with more tokens than this on either side are dropped (0 = no limit)


@dataclass(frozen=True)
class ModelConfig:
    """The network's shape [2, 3.4]. Vocabulary sizes include the four special tokens."""

    src_vocab_size: int
    tgt_vocab_size: int
    layers: int = 4  # [3.4] "deep LSTMs with 4 layers"
    hidden: int = 1000  # [3.4] 1000 cells at each layer
    embedding: int = 1000  # [3.4] 1000 dimensional word embeddings
    reverse: bool = True  # [3.3] the source sentence is read in reverse order
    init_scale: float = 0.08  # [3.4] parameters uniform in [-0.08, 0.08]
    pad_id: int = 0  # the padding id of the target side, ignored by the loss
    # Beyond the paper (off by default):
    attention: str = "none"  # none (the paper), or Luong et al. (2015) global attention: dot, general, concat
    input_feeding: bool = True  # Luong et al. (2015) [3.3]: h~ of step t enters the decoder at t+1 (attention only)
    dropout: float = 0.0  # Zaremba et al. (2014): between LSTM layers and before the output layer, training only


OPTIMIZERS = ("sgd", "adam")
SCHEDULES = ("epochs", "time")
# --schedule time without --decay-start/--decay-every: the paper's schedule as fractions of the run [3.4]
TIME_DECAY_START = 5.0 / 7.5  # decay from two thirds of the way ...
TIME_DECAY_EVERY = 0.5 / 7.5  # ... halving every fifteenth
ADAM_LR = 0.001  # the learning rate of --optimizer adam when --lr is not given (Kingma & Ba's default)


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe [3.4]."""

    batch_size: int = 128  # [3.4] batches of 128 sequences of similar length
    lr: float = 0.7  # [3.4] SGD without momentum, learning rate 0.7 (ADAM_LR when optimizer is adam)
    decay_start: float = 5.0  # [3.4] after 5 epochs the learning rate is halved ...
    decay_every: float = 0.5  # [3.4] ... every half epoch
    decay_factor: float = 0.5  # [3.4] halved
    epochs: float = 7.5  # [3.4] 7.5 epochs in total
    clip_norm: float = 5.0  # [3.4] batch-mean gradient rescaled to norm 5 when larger
    seed: int = 1  # initialisation and batch order
    valid_every: int = 0  # steps between validations (and checkpoints); 0 = every half epoch
    max_time: float = 0.0  # seconds of training before stopping cleanly; 0 = no limit
    precision: str = "fp32"  # fp32, or bf16 autocast for the forward pass (CPU with AVX-512 BF16, GPU)
    patience: int = 0  # stop after this many validations without a better perplexity; 0 = never
    keep_last: int = 0  # also keep the last N checkpoints as MODEL-stem.stepNNNNNNNN.suffix; 0 = none
    label_smoothing: float = 0.0  # beyond the paper: the training loss's targets smoothed by this much
    optimizer: str = "sgd"  # [3.4] plain SGD; beyond the paper: adam (Kingma & Ba 2015)
    # [3.4] decay_start and decay_every count epochs; "time": they are fractions of max_time, which is
    # then the model's whole training-time budget (resumes included)
    schedule: str = "epochs"


@dataclass(frozen=True)
class DecodeConfig:
    """Beam search [3.2]."""

    beam: int = 12  # [3.2, Table 1] beams of 1, 2 and 12; 1 is greedy
    nbest: int = 0  # hypotheses printed per sentence in Moses n-best format; 0 = plain text
    max_len_a: float = 2.0  # hypotheses stop at max_len_a * source length + max_len_b tokens
    max_len_b: int = 10
    batch_size: int = 64  # sentences decoded together
    allow_unk: bool = True  # [3.1] the paper's output may contain UNK; False never outputs <unk>
    precision: str = "fp32"  # fp32; bf16 (weights in bfloat16); int8 (dynamic quantization, CPU)
    # Beyond the paper (off by default):
    length_penalty: float = 0.0  # rank complete hypotheses by score / ((5 + length) / 6) ** a (GNMT); 0 = the paper
    align: bool = False  # print source-target token alignments (attention models)
    replace_unk: bool = False  # replace each <unk> output by the source token it attends to most


def to_dict(config: Any) -> dict[str, Any]:
    """A config as a plain dict (safe to store in a ``weights_only`` checkpoint)."""
    return asdict(config)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a config, ignoring unknown keys (from newer minor versions) and keeping defaults."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})
