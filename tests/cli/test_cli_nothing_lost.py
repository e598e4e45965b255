"""Nothing lost, round 2 (issue 18), through the command line: inputs that used to crash, hang, allocate
gigabytes or destroy a file now get one error line and exit status 1 before any work is done."""

from __future__ import annotations

import base64
import os
import random
import threading
import time
import zipfile
from pathlib import Path

import pytest
import torch

from clitools import TINY, Cli, Tiny, write_lines
from s2scli import checkpoint
from s2scli.data import PreparedWriter
from s2scli.vocab import MODEL_MARKER, SPECIALS


def prepared_with_vocabs(path: Path, src: dict, tgt: dict) -> Path:
    """A prepared file of a few pairs whose header carries these vocabulary dicts."""
    with open(path, "wb") as f:
        writer = PreparedWriter(f, {"src_vocab": src, "tgt_vocab": tgt, "max_len": 100})
        for _ in range(20):
            writer.add([4, 5], [4])
        writer.close()
    return path


def words(tokenizer: str = "none", **extra: object) -> dict:
    return {"tokens": [*SPECIALS, "a", "b"], "tokenizer": tokenizer, "lang": "en", **extra}


# ------------------------------------------------------------------------ train's data and output


@pytest.mark.parametrize("src,tgt,says", [
    (words("klingon"), words(), "source vocabulary cannot tokenize text: unknown tokenizer 'klingon'"),
    (words(), words("sentencepiece", tokenizer_model=base64.b64encode(b"\x01\x02garbage").decode()),
     "target vocabulary cannot tokenize text: damaged sentencepiece model"),
])
def test_train_refuses_data_whose_vocabulary_cannot_tokenize(cli: Cli, tmp_path: Path, src: dict, tgt: dict,
                                                             says: str) -> None:
    data = prepared_with_vocabs(tmp_path / "bad.s2s", src, tgt)
    cli.fails("train", data, "-o", tmp_path / "m.pt", *TINY, watch=tmp_path, contains=[says])


def test_a_token_that_is_a_number_in_a_prepared_header_or_a_model(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    data = prepared_with_vocabs(tmp_path / "int.s2s", {**words(), "tokens": [*SPECIALS, 7, "b"]}, words())
    cli.fails("train", data, "-o", tmp_path / "m.pt", *TINY, watch=tmp_path,
              contains=["int.s2s: damaged prepared-file header"])
    raw = torch.load(tiny.model, weights_only=True)
    raw["tgt_vocab"]["tokens"][5] = 12
    torch.save(raw, tmp_path / "int.pt")
    cli.fails("translate", "-m", tmp_path / "int.pt", input="le chat\n",
              contains=["int.pt: damaged s2s model file", "tokens must be text"])


def test_a_sentencepiece_piece_that_is_not_utf8(cli: Cli, tmp_path: Path) -> None:
    rng = random.Random(1)
    names = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "theta", "kappa"]
    text = write_lines(tmp_path / "t.en", [" ".join(rng.choice(names) for _ in range(6)) for _ in range(300)])
    cli("vocab", "--subword", "bpe", "--size", "300", text, "-o", tmp_path / "v.en")
    lines = (tmp_path / "v.en").read_text(encoding="utf-8").split("\n")
    at = lines.index(MODEL_MARKER)
    proto = base64.b64decode("".join(lines[at + 1:]))
    i = proto.find(b"eta")
    model = base64.b64encode(proto[:i] + b"\xff" + proto[i + 1:]).decode()
    write_lines(tmp_path / "bad.en", lines[:at + 1] + [model[k:k + 76] for k in range(0, len(model), 76)])
    cli.fails("prepare", "--src-vocab", tmp_path / "bad.en", "--tgt-vocab", tmp_path / "v.en", text, text,
              "-o", tmp_path / "out.s2s", contains=["bad.en:", "not valid UTF-8"])


@pytest.mark.parametrize("command", ["train", "vocab", "translate"])
def test_an_output_name_too_long_for_its_temporary_name_is_refused_at_the_start(
        cli: Cli, tiny: Tiny, tmp_path: Path, command: str) -> None:
    name = tmp_path / ("m" * 247 + ".pt")  # legal (250 bytes), but its temporary name would not be
    args = {"train": ["train", tiny.train_s2s, "-o", name, *TINY],
            "vocab": ["vocab", "--tokenizer", "none", tiny.train_en, "-o", name],
            "translate": ["translate", "-m", tiny.model, tiny.dev_en, "-o", name]}[command]
    cli.fails(*args, watch=tmp_path, contains=["file name too long (250 bytes; at most 241"])


def test_train_refuses_a_name_too_long_for_keep_last_step_files(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    name = tmp_path / ("m" * 236 + ".pt")  # fits, but its step files (+13 bytes) do not
    cli.fails("train", tiny.train_s2s, "-o", name, "--keep-last", "2", *TINY, watch=tmp_path,
              contains=["step00000000.pt: file name too long"])


def test_keep_last_after_a_force_restart_keeps_this_runs_checkpoints(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    model = tmp_path / "m.pt"
    cli("train", tiny.train_s2s, "-o", model, "--keep-last", "2", *TINY, "--epochs", "3", "--valid-every", "2")
    old = sorted(p.name for p in tmp_path.glob("m.step*.pt"))
    assert len(old) == 2
    # The previous run went further: pretend so by renaming its step files to higher step numbers.
    for p in tmp_path.glob("m.step*.pt"):
        p.rename(p.with_name(p.name.replace("m.step0000", "m.step9999")))
    time.sleep(0.05)
    cli("train", tiny.train_s2s, "-o", model, "--force", "--keep-last", "2", *TINY, "--epochs", "2",
        "--valid-every", "3")
    kept = sorted(p.name for p in tmp_path.glob("m.step*.pt"))
    assert len(kept) == 2 and all(not name.startswith("m.step9999") for name in kept), kept


def test_stale_temporary_files_of_a_killed_save_are_removed_by_the_next_run(cli: Cli, tiny: Tiny,
                                                                           tmp_path: Path) -> None:
    model = tmp_path / "m.pt"
    stale = [tmp_path / ".m.pt.a1b2c3d4.tmp", tmp_path / ".m.step00000007.pt.tmp", tmp_path / ".m.best.pt.x_y9Zk0q.tmp"]
    others = [tmp_path / ".other.pt.a1b2c3d4.tmp", tmp_path / ".m.pt.notes"]
    for p in stale + others:
        p.write_bytes(b"half a checkpoint")
    cli("train", tiny.train_s2s, "-o", model, *TINY)
    assert not any(p.exists() for p in stale)
    assert all(p.exists() for p in others)  # only what a killed writer of m.pt leaves
    assert not (tmp_path / ".m.pt.lock").exists()


def test_resume_refuses_a_hostile_training_state(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    model = tmp_path / "m.pt"
    cli("train", tiny.train_s2s, "-o", model, *TINY)
    raw = torch.load(model, weights_only=True)
    for step in (-5, "many", 10**30):
        raw["train_state"]["step"] = step
        torch.save(raw, model)
        cli.fails("train", tiny.train_s2s, "-o", model, "--resume", *TINY,
                  contains=["m.pt: damaged training state", "cannot resume"])


def test_resume_refuses_an_optimizer_state_that_does_not_fit(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    model = tmp_path / "m.pt"
    cli("train", tiny.train_s2s, "-o", model, *TINY, "--optimizer", "adam")
    raw = torch.load(model, weights_only=True)
    state = raw["train_state"]["optimizer"]["state"]
    state[0]["exp_avg"] = torch.zeros(3)  # the wrong shape for the first parameter
    torch.save(raw, model)
    cli.fails("train", tiny.train_s2s, "-o", model, "--resume", *TINY, "--optimizer", "adam",
              contains=["m.pt: damaged training state", "optimizer state does not fit"])
    # A stride-0 view standing for a big moment is refused when the file is read, before training.
    state[0]["exp_avg"] = torch.zeros(1).expand(4000, 4000)
    torch.save(raw, model)
    cli.fails("train", tiny.train_s2s, "-o", model, "--resume", *TINY, "--optimizer", "adam",
              contains=["m.pt: damaged model file", "not stored whole"])


@pytest.mark.parametrize("option,value,says", [
    ("--hidden", 2**63 - 1, "--hidden must be at most"), ("--embedding", 2**40, "--embedding must be at most"),
    ("--layers", 10**20, "--layers must be at most"), ("--batch-size", 10**20, "--batch-size must be at most"),
    ("--seed", 10**20, "--seed must fit in 64 bits"), ("--lr", 1e308, "--lr must be at most"),
    ("--init-scale", 1e308, "--init-scale must be at most")])
def test_train_refuses_absurd_numbers(cli: Cli, tiny: Tiny, tmp_path: Path, option: str, value: object,
                                      says: str) -> None:
    cli.fails("train", tiny.train_s2s, "-o", tmp_path / "m.pt", *TINY, option, value, watch=tmp_path,
              contains=[says])


# ---------------------------------------------------------------------------------------- average


def test_average_refuses_an_output_that_is_one_of_its_inputs(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    a.write_bytes(tiny.model.read_bytes())
    b.write_bytes(tiny.model.read_bytes())
    before = a.read_bytes()
    cli.fails("average", a, b, "-o", a, "--force", contains=["a.pt: this command also uses this file"])
    assert a.read_bytes() == before


# ----------------------------------------------------------------------------------- model files


def unblock_after(fifo: Path, seconds: float) -> threading.Thread:
    """If s2s opens the FIFO (the bug), open its other end after a while so the test fails, not hangs."""
    def run() -> None:
        time.sleep(seconds)
        try:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        except OSError:
            pass
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


@pytest.mark.parametrize("command", ["translate", "average"])
def test_a_fifo_as_model_file_is_refused_not_waited_on(cli: Cli, tiny: Tiny, tmp_path: Path, command: str) -> None:
    fifo = tmp_path / "model.fifo"
    os.mkfifo(fifo)
    unblock_after(fifo, 20)
    args = ["translate", "-m", fifo] if command == "translate" else ["average", fifo, tiny.model, "-o",
                                                                     tmp_path / "avg.pt"]
    start = time.monotonic()
    cli.fails(*args, input="le chat\n", contains=["model.fifo: not a regular file"])
    assert time.monotonic() - start < 15, "s2s waited on the FIFO"


def test_a_fifo_as_prepared_data_is_refused_not_waited_on(cli: Cli, tmp_path: Path) -> None:
    fifo = tmp_path / "data.fifo"
    os.mkfifo(fifo)
    unblock_after(fifo, 20)
    start = time.monotonic()
    cli.fails("train", fifo, "-o", tmp_path / "m.pt", *TINY, contains=["data.fifo: not a regular file"])
    assert time.monotonic() - start < 15, "s2s waited on the FIFO"


def test_dev_zero_as_model_file_is_refused(cli: Cli) -> None:
    cli.fails("translate", "-m", "/dev/zero", input="x\n", contains=["/dev/zero: not a regular file"])


def hostile_model(tiny: Tiny, path: Path, hidden: int) -> Path:
    """The tiny model's file, its configuration claiming ``hidden`` cells, each weight a stride-0 view of
    one number expanded to the shape that configuration needs (a few KB on disk, gigabytes in memory)."""
    from s2scli.config import ModelConfig, from_dict
    from s2scli.model import Seq2Seq

    raw = torch.load(tiny.model, weights_only=True)
    raw["model_config"]["hidden"] = hidden
    config = from_dict(ModelConfig, raw["model_config"])
    with torch.device("meta"):
        shapes = {k: v.shape for k, v in Seq2Seq(config).state_dict().items()}
    raw["weights"] = {k: torch.zeros(1).expand(*shape) for k, shape in shapes.items()}
    torch.save(raw, path)
    return path


def test_a_model_of_stride_zero_views_is_refused_before_allocating(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    bomb = hostile_model(tiny, tmp_path / "bomb.pt", 12000)
    assert bomb.stat().st_size < 1_000_000
    cli.fails("translate", "-m", bomb, input="le chat\n", contains=["bomb.pt: damaged model file", "not stored whole"])


def test_a_compressed_record_zip_bomb_is_refused(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    bomb = tmp_path / "zipbomb.pt"
    with zipfile.ZipFile(tiny.model) as src, zipfile.ZipFile(bomb, "w") as dst:
        for info in src.infolist():
            data = src.read(info)
            if info.filename.endswith("data/0"):
                data = data + bytes(50_000_000)  # 50 MB of zeros: a few KB once deflated
            dst.writestr(info.filename, data, compress_type=zipfile.ZIP_DEFLATED)
    assert bomb.stat().st_size < 1_000_000
    cli.fails("translate", "-m", bomb, input="le chat\n", contains=["zipbomb.pt: damaged model file",
                                                                    "compressed"])


# ---------------------------------------------------------------------------- translate's options


@pytest.mark.parametrize("option,value,says", [
    ("--length-penalty", "400", "--length-penalty must be 0 (off) or positive, at most 10"),
    ("--beam", str(10**20), "--beam must be between 1 and 10000"),
    ("--batch-size", str(10**20), "--batch-size must be between 1 and 100000"),
    ("--device", "meta", "--device meta: s2s runs on cpu or cuda"),
    ("--device", "xpu", "--device xpu: s2s runs on cpu or cuda"),
])
def test_translate_refuses_absurd_options(cli: Cli, tiny: Tiny, option: str, value: str, says: str) -> None:
    beam = ["--beam", "2"] if option == "--length-penalty" else []  # the case reported: beam 2
    cli.fails("translate", "-m", tiny.model, option, value, *beam, input="the cat\n", contains=[says])


def test_translate_with_a_huge_max_len_b_works(cli: Cli, tiny: Tiny) -> None:
    result = cli("translate", "-m", tiny.model, "--max-len-b", str(10**20), input="the cat\n")
    assert len(result.stdout.splitlines()) == 1


def test_a_beam_wider_than_the_target_vocabulary_is_capped(cli: Cli, tiny: Tiny) -> None:
    width = len(tiny.vocab_fr.read_text().splitlines()) - 1
    result = cli("translate", "-m", tiny.model, "--beam", "5000", input="the cat\na dog\n")
    assert len(result.stdout.splitlines()) == 2
    assert f"beam {width}," in result.stderr, result.stderr


# --------------------------------------------------------------------------------- vocab and plots


@pytest.mark.parametrize("lang", ["e\tn", "en\nfr", "e n", "lang=x", ""])
def test_vocab_refuses_a_language_code_it_could_not_read_back(cli: Cli, tiny: Tiny, tmp_path: Path,
                                                              lang: str) -> None:
    cli.fails("vocab", "--tokenizer", "none", "--lang", lang, tiny.train_en, "-o", tmp_path / "v", watch=tmp_path,
              contains=["--lang: a language code must be one word"])


def test_vocab_refuses_an_absurd_subword_size(cli: Cli, tiny: Tiny, tmp_path: Path) -> None:
    cli.fails("vocab", "--subword", "bpe", "--size", str(10**20), tiny.train_en, "-o", tmp_path / "v",
              watch=tmp_path, contains=["at most 1000000 subword pieces"])


def test_plot_curves_refuses_deeply_nested_json(cli: Cli, tmp_path: Path) -> None:
    log = tmp_path / "log.jsonl"
    log.write_text("[" * 100_000 + "]" * 100_000 + "\n")
    cli.fails("plot", "curves", log, "-o", tmp_path / "c.png", watch=tmp_path, contains=["nested too deeply"])


def test_plot_pca_refuses_numbers_too_large_to_project(cli: Cli, tmp_path: Path) -> None:
    vectors = write_lines(tmp_path / "v.txt", ["1e308 1", "-1e308 2", "0 3"])
    cli.fails("plot", "pca", vectors, "-o", tmp_path / "p.png", watch=tmp_path, contains=["v.txt:1:", "too large"])
