"""Frozen configuration dataclasses, one per concern, with the paper's defaults; the presets; the policy.

Section numbers in brackets refer to Sutskever, Vinyals & Le (2014), arXiv:1409.3215. Each field is one
command-line option of the command that uses it, except the vocabulary sizes (from the data) and
``pad_id`` (always 0); the model and training configs are stored in the model file, so a model always
carries the settings it was trained with, its preset among them.

A preset (``PRESETS``) is a named recipe: values for fields of these configs, for every command it
concerns. A config is resolved in three layers, each overriding the one before: the dataclass defaults
(the paper's), the preset's values, the options given explicitly (``resolve``). Defaults that depend on
other fields (the learning rate on the optimizer, the decay points on the schedule) are filled in by the
config itself, so the library behaves the same from Python as from the shell.

The policy is here too: which choices and ranges a training run accepts (``check_train_config``, called
by ``train.train``), the configs of a new run (``train_configs``) and of a resumed one (``RUN_CONTROL``,
``resume_configs``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Mapping, TypeVar

from .errors import S2SError

T = TypeVar("T")


@dataclass(frozen=True)
class VocabConfig:
    """``s2s vocab``: how tokens are counted and which are kept."""

    tokenizer: str = "moses"  # Moses tokenizer (sacremoses); "none" splits on whitespace
    lang: str = "en"  # language code given to the tokenizer
    size: int = 0  # most frequent words kept, 0 = all; [3.1] 160,000 source / 80,000 target
    min_count: int = 1  # words seen fewer times become <unk>
    subword: str | None = None  # beyond the paper: "bpe" or "unigram" sentencepiece pieces, `size` in all


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
# More epochs than this are refused: a run that long is meant to stop on --max-time or --patience.
MAX_EPOCHS = 1e6
SCHEDULES = ("epochs", "time")
TRAIN_PRECISIONS = ("fp32", "bf16", "auto")  # auto: bf16 where the device runs it fast (s2scli.machine)
DECODE_PRECISIONS = ("fp32", "bf16", "int8")
# --schedule time without --decay-start/--decay-every: the paper's schedule as fractions of the run [3.4]
TIME_DECAY_START = 5.0 / 7.5  # decay from two thirds of the way ...
TIME_DECAY_EVERY = 0.5 / 7.5  # ... halving every fifteenth
ADAM_LR = 0.001  # the learning rate of --optimizer adam when --lr is not given (Kingma & Ba's default)
# Sizes beyond this are refused (an overflow or an allocation of terabytes otherwise): the paper's are 1000.
MAX_SIZE = 1 << 20
# --lr and --init-scale beyond this overflow float32 sooner or later (the paper's are 0.7 and 0.08).
MAX_RATE = 1e6
# The attention scores ModelConfig.attention names (model.py builds them).
ATTENTIONS = ("none", "dot", "general", "concat")


@dataclass(frozen=True)
class TrainConfig:
    """The training recipe [3.4]."""

    batch_size: int = 128  # [3.4] batches of 128 sequences of similar length
    # [3.4] SGD without momentum, learning rate 0.7; None: 0.7 with sgd, ADAM_LR with adam
    lr: float | None = None
    # [3.4] after 5 epochs the learning rate is halved every half epoch; None: 5 and 0.5 with
    # schedule "epochs", the same proportions of the run (TIME_DECAY_START, TIME_DECAY_EVERY) with "time"
    decay_start: float | None = None
    decay_every: float | None = None
    decay_factor: float = 0.5  # [3.4] halved
    epochs: float = 7.5  # [3.4] 7.5 epochs in total
    clip_norm: float = 5.0  # [3.4] batch-mean gradient rescaled to norm 5 when larger
    seed: int = 1  # initialisation and batch order
    valid_every: int = 0  # steps between validations (and checkpoints); 0 = every half epoch
    max_time: float = 0.0  # seconds of training before stopping cleanly; 0 = no limit
    # fp32, or bf16 autocast for the forward pass; auto: bf16 where the device runs it fast (a CPU with
    # AVX-512 BF16 or AMX, a GPU of compute capability 8 or later), else fp32. Model files record the choice.
    precision: str = "fp32"
    patience: int = 0  # stop after this many validations without a better perplexity; 0 = never
    keep_last: int = 0  # also keep the last N checkpoints as MODEL-stem.stepNNNNNNNN.suffix; 0 = none
    label_smoothing: float = 0.0  # beyond the paper: the training loss's targets smoothed by this much
    optimizer: str = "sgd"  # [3.4] plain SGD; beyond the paper: adam (Kingma & Ba 2015)
    # [3.4] decay_start and decay_every count epochs; "time": they are fractions of max_time, which is
    # then the model's whole training-time budget (resumes included)
    schedule: str = "epochs"
    # Beyond the paper: at each validation, BLEU and chrF of greedy translations of this many validation
    # sentences (spread over the file; 0 = off), and this many of them printed as examples
    valid_bleu: int = 0
    valid_examples: int = 3
    preset: str = ""  # the preset the run was given ("" = none: the paper's defaults)

    def __post_init__(self) -> None:
        """Fill in the defaults that depend on other fields (a frozen dataclass sets them this way)."""
        time_schedule = self.schedule == "time"
        if self.lr is None:
            object.__setattr__(self, "lr", ADAM_LR if self.optimizer == "adam" else 0.7)
        if self.decay_start is None:
            object.__setattr__(self, "decay_start", TIME_DECAY_START if time_schedule else 5.0)
        if self.decay_every is None:
            object.__setattr__(self, "decay_every", TIME_DECAY_EVERY if time_schedule else 0.5)


# Options that only steer a run; on --resume they may differ from the checkpoint's.
RUN_CONTROL = ("epochs", "max_time", "valid_every", "precision", "patience", "keep_last", "valid_bleu",
               "valid_examples")


@dataclass(frozen=True)
class DecodeConfig:
    """Beam search [3.2]."""

    beam: int = 12  # [3.2, Table 1] beams of 1, 2 and 12; 1 is greedy
    nbest: int = 0  # hypotheses printed per sentence in Moses n-best format; 0 = plain text
    max_len_a: float = 2.0  # hypotheses stop at max_len_a * source length + max_len_b tokens
    max_len_b: int = 10
    batch_size: int = 64  # sentences decoded together
    maxi_batch: int = 16  # batches read at once, sorted by source length into batches of similar length (Marian)
    allow_unk: bool = True  # [3.1] the paper's output may contain UNK; False never outputs <unk>
    precision: str = "fp32"  # fp32; bf16 (weights in bfloat16); int8 (dynamic quantization, CPU)
    # Beyond the paper (off by default):
    length_penalty: float = 0.0  # rank complete hypotheses by score / ((5 + length) / 6) ** a (GNMT); 0 = the paper
    align: bool = False  # print source-target token alignments (attention models)
    replace_unk: bool = False  # replace each <unk> output by the source token it attends to most


@dataclass(frozen=True)
class Preset:
    """A named recipe: values for the fields of each command's configs. Fields it does not name keep
    their defaults (the paper's); options given explicitly override both."""

    name: str
    about: str  # one line for --help and the man pages
    vocab: Mapping[str, Any] = field(default_factory=dict)  # VocabConfig fields
    model: Mapping[str, Any] = field(default_factory=dict)  # ModelConfig fields
    train: Mapping[str, Any] = field(default_factory=dict)  # TrainConfig fields
    decode: Mapping[str, Any] = field(default_factory=dict)  # DecodeConfig fields

    def settings(self) -> list[str]:
        """What the preset sets, as options: ['--subword bpe', '--size 8000', ...]."""
        out = []
        for values in (self.vocab, self.model, self.train, self.decode):
            for key, value in values.items():
                flag = "--" + key.replace("_", "-")
                if key == "max_time":
                    value = f"{value / 60:g}m"
                elif isinstance(value, float) and value.is_integer():
                    value = int(value)
                out.append(switch_text(flag, value))
        return out


PRESETS: dict[str, Preset] = {p.name: p for p in (
    Preset("paper", "the paper's model and recipe exactly (the defaults) [3.1-3.4]: words, 4x1000 LSTMs, "
           "SGD 0.7 for 7.5 epochs, beam 12; days on a CPU, hours an epoch even for small corpora"),
    Preset("small", "beyond the paper, for a CPU: 8k BPE subwords, 2x256 LSTMs with general attention "
           "without input feeding, Adam 0.002, batch 64, bf16 where fast, the paper's halving schedule spread "
           "over 30 minutes, beam 5 with length penalty 1.0 (31.8 BLEU on docs.dev after 30 minutes on 2 "
           "cores; copying the source: 5.5)",
           vocab={"subword": "bpe", "size": 8000},
           model={"layers": 2, "hidden": 256, "embedding": 256, "attention": "general", "input_feeding": False},
           train={"batch_size": 64, "optimizer": "adam", "lr": 0.002, "precision": "auto", "schedule": "time",
                  "max_time": 1800.0, "decay_start": 0.6, "decay_every": 0.1, "epochs": MAX_EPOCHS,
                  "valid_bleu": 200},
           decode={"beam": 5, "length_penalty": 1.0}),
    Preset("paper-small", "the paper's model (words, no attention, source reversed) at CPU size: 16k words, "
           "2x256 LSTMs, batch 64, bf16 where fast, the paper's decay spread over 30 minutes, beam 5 "
           "(8.0 BLEU on docs.dev in 30 minutes on 2 cores)",
           vocab={"size": 16000},
           model={"layers": 2, "hidden": 256, "embedding": 256},
           train={"batch_size": 64, "precision": "auto", "schedule": "time", "max_time": 1800.0,
                  "decay_start": 0.6, "decay_every": 0.1, "epochs": MAX_EPOCHS, "valid_bleu": 200},
           decode={"beam": 5}),
)}


def get_preset(name: str | None) -> Preset | None:
    """The preset called ``name`` (None or "": none); an unknown name is refused with the known ones."""
    if not name:
        return None
    if name not in PRESETS:
        raise S2SError(f"--preset: unknown preset {name!r} (known: {', '.join(PRESETS)})")
    return PRESETS[name]


def resolve(cls: type[T], preset: Mapping[str, Any], given: Mapping[str, Any], **fixed: Any) -> T:
    """``cls`` built from its defaults, overridden by ``preset``'s values, overridden by ``given`` (the
    options typed on the command line); ``fixed`` are fields that come from elsewhere (vocabulary sizes).
    Keys that are not fields of ``cls`` are ignored, so one mapping can serve several configs."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    values = {k: v for k, v in preset.items() if k in names}
    values.update({k: v for k, v in given.items() if k in names})
    values.update(fixed)
    return cls(**values)


def switch_text(flag: str, value: Any) -> str:
    """An option as it is typed: '--no-reverse', '--layers 2'."""
    if isinstance(value, bool):
        return flag if value else f"--no-{flag[2:]}"
    return f"{flag} {value}"


def resume_configs(old: tuple[ModelConfig, TrainConfig], new: tuple[ModelConfig, TrainConfig],
                   given: set[str]) -> tuple[ModelConfig, TrainConfig]:
    """The configs of a resumed run: the checkpoint's (``old``), except the run-control fields
    (RUN_CONTROL) given anew. Any other field in ``given`` (the options typed) must agree with the
    checkpoint's. ``max_time`` limits one run, so it is reset unless given, except with the time
    schedule, where it is the budget of the model's whole training and is kept."""
    for cfg_new, cfg_old in zip(new, old):
        for key, value in asdict(cfg_new).items():
            before = asdict(cfg_old)[key]
            if key in given and key not in RUN_CONTROL and before != value:
                flag = "--" + key.replace("_", "-")
                raise S2SError(f"{switch_text(flag, value)} differs from the checkpoint's "
                               f"{switch_text(flag, before) if isinstance(value, bool) else 'none' if before == '' else before}; "
                               "a resumed run keeps its settings (only --epochs, --max-time, --valid-every, "
                               "--precision, --patience, --keep-last, --valid-bleu and --valid-examples change)")
    train_old, train_new = old[1], new[1]
    keep_budget = train_old.schedule == "time"
    overrides = {k: getattr(train_new, k) for k in RUN_CONTROL
                 if k in given or (k == "max_time" and not keep_budget)}
    return old[0], replace(train_old, **overrides)


def train_configs(recipe: Preset | None, given: Mapping[str, Any], src_vocab_size: int,
                  tgt_vocab_size: int) -> tuple[ModelConfig, TrainConfig]:
    """The configs of a new training run: the paper's defaults, then the preset's values (``recipe``,
    from ``get_preset``), then the options ``given`` (``resolve``); the preset's name is recorded in the
    TrainConfig."""
    train = resolve(TrainConfig, {**(recipe.train if recipe else {}), "preset": recipe.name if recipe else ""},
                    given)
    model = resolve(ModelConfig, recipe.model if recipe else {}, given,
                    src_vocab_size=src_vocab_size, tgt_vocab_size=tgt_vocab_size)
    return model, train


def check_train_config(model: ModelConfig, cfg: TrainConfig) -> None:
    """Refuse the settings of a training run out of range or not among the choices, with the option's name."""
    checks = [
        (model.layers >= 1, f"--layers must be at least 1, got {model.layers}"),
        (model.hidden >= 1, f"--hidden must be at least 1, got {model.hidden}"),
        (model.embedding >= 1, f"--embedding must be at least 1, got {model.embedding}"),
        (0 <= model.init_scale < math.inf, f"--init-scale must be finite and not negative, got {model.init_scale}"),
        (cfg.batch_size >= 1, f"--batch-size must be at least 1, got {cfg.batch_size}"),
        (cfg.lr > 0 and math.isfinite(cfg.lr), f"--lr must be positive, got {cfg.lr}"),
        (0 < cfg.epochs <= MAX_EPOCHS, f"--epochs must be positive and at most {MAX_EPOCHS:g}, got {cfg.epochs}"),
        (0 < cfg.decay_every < math.inf, f"--decay-every must be positive and finite, got {cfg.decay_every}"),
        (0 < cfg.decay_factor <= 1, f"--decay-factor must be in (0, 1], got {cfg.decay_factor}"),
        (0 <= cfg.decay_start < math.inf, f"--decay-start must be finite and not negative, got {cfg.decay_start}"),
        (0 <= cfg.clip_norm < math.inf, f"--clip-norm must be finite and not negative (0 = off), got {cfg.clip_norm}"),
        (cfg.valid_every >= 0, f"--valid-every must not be negative, got {cfg.valid_every}"),
        (cfg.max_time >= 0, f"--max-time must not be negative, got {cfg.max_time}"),
        (cfg.patience >= 0, f"--patience must not be negative, got {cfg.patience}"),
        (cfg.keep_last >= 0, f"--keep-last must not be negative, got {cfg.keep_last}"),
        (cfg.precision in TRAIN_PRECISIONS,
         f"--precision must be one of {', '.join(TRAIN_PRECISIONS)}, got {cfg.precision!r}"),
        (cfg.valid_bleu >= 0, f"--valid-bleu must not be negative, got {cfg.valid_bleu}"),
        (cfg.valid_examples >= 0, f"--valid-examples must not be negative, got {cfg.valid_examples}"),
        (model.attention in ATTENTIONS, f"--attention must be one of {', '.join(ATTENTIONS)}, got {model.attention!r}"),
        (0 <= model.dropout < 1, f"--dropout must be in [0, 1), got {model.dropout}"),
        (cfg.optimizer in OPTIMIZERS, f"--optimizer must be one of {', '.join(OPTIMIZERS)}, got {cfg.optimizer!r}"),
        (0 <= cfg.label_smoothing < 1, f"--label-smoothing must be in [0, 1), got {cfg.label_smoothing}"),
        (cfg.schedule in SCHEDULES, f"--schedule must be one of {', '.join(SCHEDULES)}, got {cfg.schedule!r}"),
        (cfg.schedule != "time" or cfg.max_time > 0, "--schedule time needs --max-time (the training-time "
         "budget the schedule is spread over)"),
        (cfg.schedule != "time" or cfg.decay_start <= 1, "--schedule time reads --decay-start as a fraction of "
         f"--max-time, in [0, 1]; got {cfg.decay_start}"),
    ]
    checks += [(size <= MAX_SIZE, f"{option} must be at most {MAX_SIZE}, got {size}") for option, size in (
        ("--layers", model.layers), ("--hidden", model.hidden), ("--embedding", model.embedding),
        ("--batch-size", cfg.batch_size))]
    checks += [(model.init_scale <= MAX_RATE, f"--init-scale must be at most {MAX_RATE:g}, got {model.init_scale}"),
               (cfg.lr <= MAX_RATE, f"--lr must be at most {MAX_RATE:g}, got {cfg.lr}"),
               (-(2**63) <= cfg.seed < 2**63, f"--seed must fit in 64 bits, got {cfg.seed}")]
    for ok, message in checks:
        if not ok:
            raise S2SError(message)


def to_dict(config: Any) -> dict[str, Any]:
    """A config as a plain dict (safe to store in a ``weights_only`` checkpoint)."""
    return asdict(config)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a config, ignoring unknown keys (from newer minor versions) and keeping defaults."""
    names = {f.name for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{k: v for k, v in data.items() if k in names})
