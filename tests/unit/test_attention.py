"""Attention (Luong et al. 2015, global, with and without input feeding): the encoder's outputs and their positions,
the decoder with attention against step-by-step decoding and by-hand arithmetic, search and ensembles
over attention models (mixed with plain ones), alignments, and model files of attention models."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path
from typing import Callable

import pytest
import torch
import torch.nn.functional as F

from s2scli import checkpoint
from s2scli.checkpoint import Checkpoint
from s2scli.config import ModelConfig, TrainConfig
from s2scli.model import ATTENTIONS, Seq2Seq, count_parameters
from s2scli.search import beam_search, first_attention, greedy
from s2scli.vocab import BOS, EOS, PAD

SCORED = [a for a in ATTENTIONS if a != "none"]
FEEDING = [True, False]  # input feeding on (Luong's default) and off
SOURCES = [[4, 5, 6, 7, 8], [9], [10, 11, 4], [5, 6, 7, 8, 9], [6, 6], [11, 10, 9]]
TARGETS = [[4, 5, 6], [7], [8, 9, 4, 5], [6], [4, 4, 4, 4, 4], [9, 8]]


def pad_rows(rows: list[list[int]], fill: int = PAD) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    out = torch.full((len(rows), width), fill, dtype=torch.long)
    for i, r in enumerate(rows):
        out[i, : len(r)] = torch.tensor(r)
    return out, torch.tensor([len(r) for r in rows])


def targets(rows: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    return pad_rows([[BOS] + r for r in rows])[0], pad_rows([r + [EOS] for r in rows])[0]


def random_batch(n: int, vocab_size: int, seed: int = 0, max_len: int = 7) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    lengths = torch.randint(1, max_len + 1, (n,), generator=gen)
    src = torch.full((n, int(lengths.max())), PAD, dtype=torch.long)
    for i, length in enumerate(lengths.tolist()):
        src[i, :length] = torch.randint(4, vocab_size, (length,), generator=gen)
    return src, lengths


@torch.no_grad()
def model_score(models: list[Seq2Seq], src: torch.Tensor, length: int, ids: list[int]) -> float:
    s, n = src[:length].unsqueeze(0), torch.tensor([length])
    tgt_in, tgt_out = torch.tensor([[BOS] + ids]), torch.tensor([ids + [EOS]])
    return sum(float(m.score(s, n, tgt_in, tgt_out)) for m in models) / len(models)


# ------------------------------------------------------------------------------------------ the model


def test_attention_none_is_the_papers_model(tiny_model_config: ModelConfig) -> None:
    assert tiny_model_config.attention == "none" and tiny_model_config.dropout == 0.0
    torch.manual_seed(0)
    model = Seq2Seq(tiny_model_config)
    names = {n for n, _ in model.named_parameters()}
    assert not any(n.startswith("attn") for n in names)
    assert model.decoder.input_size == tiny_model_config.embedding
    state = model.encode(*pad_rows(SOURCES))
    assert state.memory is None and state.mask is None and state.feed is None


@pytest.mark.parametrize("attention", SCORED)
def test_parameters_of_attention_models(tiny_model_config: ModelConfig, attention: str) -> None:
    cfg = replace(tiny_model_config, attention=attention)
    plain, model = Seq2Seq(tiny_model_config), Seq2Seq(cfg)
    h, e = cfg.hidden, cfg.embedding
    assert model.decoder.input_size == e + h  # input feeding: [embedding; h~]
    extra = {"dot": 0, "general": h * h, "concat": 2 * h * h + h}[attention]
    # Input feeding adds h * 4h weights to the decoder's first layer; W_c is h x 2h.
    assert count_parameters(model) - count_parameters(plain) == 4 * h * h + 2 * h * h + extra
    unfed = Seq2Seq(replace(cfg, input_feeding=False))
    assert unfed.decoder.input_size == e  # the decoder reads the embeddings alone
    assert count_parameters(model) - count_parameters(unfed) == 4 * h * h
    assert unfed.encode(*pad_rows(SOURCES)).feed is None


def test_unknown_attention_is_refused(tiny_model_config: ModelConfig) -> None:
    with pytest.raises(ValueError, match="attention"):
        Seq2Seq(replace(tiny_model_config, attention="bahdanau"))


@pytest.mark.parametrize("reverse", [True, False])
def test_memory_holds_each_tokens_output_at_its_original_position(make_tiny_model: Callable[..., Seq2Seq],
                                                                  reverse: bool) -> None:
    model = make_tiny_model(1, reverse=reverse, attention="dot")
    src, lengths = pad_rows(SOURCES)
    state = model.encode(src, lengths)
    assert state.memory.shape == (len(SOURCES), max(map(len, SOURCES)), model.config.hidden)
    assert state.mask.tolist() == [[j < len(r) for j in range(src.size(1))] for r in SOURCES]
    assert torch.equal(state.feed, torch.zeros(len(SOURCES), model.config.hidden))
    for b, row in enumerate(SOURCES):
        # The encoder run by hand over the row in its reading order: output t after reading token t.
        order = list(reversed(row)) if reverse else row
        out, _ = model.encoder(model.src_embed(torch.tensor(order)).unsqueeze(1))  # [L, 1, H]
        for t, position in enumerate(reversed(range(len(row))) if reverse else range(len(row))):
            torch.testing.assert_close(state.memory[b, position], out[t, 0], rtol=0, atol=1e-6)
        assert (state.memory[b, len(row):] == 0).all()
        # A sentence alone gets the same state as in the mixed batch.
        alone = model.encode(torch.tensor([row]), torch.tensor([len(row)]))
        torch.testing.assert_close(alone.memory[0], state.memory[b, : len(row)], rtol=0, atol=1e-6)
        torch.testing.assert_close(alone.h[:, 0], state.h[:, b], rtol=0, atol=1e-6)


def test_state_select_reorders_every_tensor(make_tiny_model: Callable[..., Seq2Seq]) -> None:
    model = make_tiny_model(2, attention="concat")
    src, lengths = pad_rows(SOURCES)
    state = model.step(torch.full((len(SOURCES),), BOS), model.encode(src, lengths))[1]
    assert all(t is not None for t in state)
    rows = torch.tensor([3, 0, 0, 5])
    picked = state.select(rows)
    torch.testing.assert_close(picked.h, state.h[:, rows])
    torch.testing.assert_close(picked.c, state.c[:, rows])
    for name in ("memory", "keys", "mask", "feed", "attn"):
        assert torch.equal(getattr(picked, name), getattr(state, name)[rows]), name


def test_state_keeps_the_encoders_tensors_once_a_sentence(make_tiny_model: Callable[..., Seq2Seq]) -> None:
    model = make_tiny_model(2, attention="general")
    src, lengths = pad_rows(SOURCES)
    state = model.encode(src, lengths)
    hyps = state.select_decoder(torch.arange(len(SOURCES)).repeat_interleave(3))  # 3 rows a sentence
    assert hyps.h.size(1) == 3 * len(SOURCES) and hyps.memory is state.memory and hyps.mask is state.mask
    kept = hyps.select(torch.tensor([7, 6, 6, 15, 17, 16]), torch.tensor([2, 5]))  # sentences 2 and 5 stay
    torch.testing.assert_close(kept.h, hyps.h[:, [7, 6, 6, 15, 17, 16]])
    for name in ("memory", "keys", "mask"):
        assert torch.equal(getattr(kept, name), getattr(state, name)[[2, 5]]), name


@pytest.mark.parametrize("feeding", FEEDING)
@pytest.mark.parametrize("attention", SCORED)
def test_rows_sharing_a_sentences_memory_step_as_rows_with_copies(
        make_tiny_model: Callable[..., Seq2Seq], attention: str, feeding: bool) -> None:
    """k hypotheses a sentence attending to one copy of its memory = each row with a copy of its own."""
    model = make_tiny_model(4, attention=attention, input_feeding=feeding, init_scale=0.5)
    src, lengths = pad_rows(SOURCES)
    state = model.encode(src, lengths)
    rows = torch.arange(len(SOURCES)).repeat_interleave(3)  # [18]
    shared, copied = state.select_decoder(rows), state.select(rows)
    assert shared.memory.size(0) == len(SOURCES) and copied.memory.size(0) == 3 * len(SOURCES)
    tokens = torch.tensor([BOS, 4, 5] * len(SOURCES))
    for _ in range(3):
        (a, shared), (b, copied) = model.step(tokens, shared), model.step(tokens, copied)
        torch.testing.assert_close(a, b, rtol=0, atol=1e-5)
        torch.testing.assert_close(shared.attn, copied.attn, rtol=0, atol=1e-6)
        tokens = a.argmax(dim=1)


def by_hand_attention(model: Seq2Seq, query: torch.Tensor, memory: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Luong's equations for one sentence: query [H], memory [S, H] -> (h~ [H], weights [S])."""
    kind = model.config.attention
    if kind == "dot":
        scores = memory @ query
    elif kind == "general":
        scores = torch.stack([query @ (model.attn_key.weight @ m) for m in memory])
    else:  # v . tanh(W_a [h_t; hbar_s]) with W_a = [W_query W_key]
        w_a = torch.cat([model.attn_query.weight, model.attn_key.weight], dim=1)
        scores = torch.stack([model.attn_v.weight[0] @ torch.tanh(w_a @ torch.cat([query, m])) for m in memory])
    weights = F.softmax(scores, dim=0)
    context = weights @ memory
    return torch.tanh(model.attn_out.weight @ torch.cat([context, query])), weights


@pytest.mark.parametrize("feeding", FEEDING)
@pytest.mark.parametrize("attention", SCORED)
def test_step_follows_luongs_equations(make_tiny_model: Callable[..., Seq2Seq], attention: str, feeding: bool) -> None:
    model = make_tiny_model(3, init_scale=0.3, attention=attention, input_feeding=feeding)
    src, lengths = pad_rows(SOURCES)
    state = model.encode(src, lengths)
    tokens = torch.tensor([BOS] * len(SOURCES))
    feed = torch.zeros(len(SOURCES), model.config.hidden)
    h, c = state.h, state.c
    with torch.no_grad():
        for t, word in enumerate([4, 7, 5]):
            logp, state = model.step(tokens, state)
            # The decoder LSTM reads [embedding; previous h~], or the embedding alone without feeding.
            x = (torch.cat([model.tgt_embed(tokens), feed], dim=1) if feeding else model.tgt_embed(tokens)).unsqueeze(0)
            out, (h, c) = model.decoder(x, (h, c))
            for b, row in enumerate(SOURCES):
                memory = state.memory[b, : len(row)]
                h_tilde, weights = by_hand_attention(model, out[0, b], memory)
                torch.testing.assert_close(state.attn[b, : len(row)], weights, rtol=0, atol=1e-5)
                assert (state.attn[b, len(row):] == 0).all()  # padding gets no attention
                if feeding:
                    torch.testing.assert_close(state.feed[b], h_tilde, rtol=0, atol=1e-5)
                else:
                    assert state.feed is None
                expected = F.log_softmax(model.output(h_tilde), dim=-1)
                torch.testing.assert_close(logp[b], expected, rtol=0, atol=1e-5)
            feed = state.feed
            tokens = torch.full((len(SOURCES),), word)


@pytest.mark.parametrize("feeding", FEEDING)
@pytest.mark.parametrize("attention", SCORED)
def test_step_matches_decode_position_by_position(make_tiny_model: Callable[..., Seq2Seq], attention: str, feeding: bool) -> None:
    model = make_tiny_model(7, init_scale=0.3, attention=attention, input_feeding=feeding)
    src, lengths = pad_rows(SOURCES)
    tgt = torch.tensor([[BOS, 4, 5, 6, 7]] * len(SOURCES))
    state = model.encode(src, lengths)
    hidden, final = model.decode(tgt, state)
    full = F.log_softmax(model.output(hidden), dim=-1)  # [B, T, V]
    step_state = state
    for t in range(tgt.size(1)):
        logp, step_state = model.step(tgt[:, t], step_state)
        torch.testing.assert_close(logp, full[:, t], rtol=0, atol=1e-5)
    torch.testing.assert_close(step_state, final, rtol=0, atol=1e-6)


@pytest.mark.parametrize("feeding", FEEDING)
@pytest.mark.parametrize("attention", SCORED)
def test_forward_and_score_agree_per_sentence(make_tiny_model: Callable[..., Seq2Seq], attention: str, feeding: bool) -> None:
    model = make_tiny_model(8, init_scale=0.3, attention=attention, input_feeding=feeding)
    src, lengths = pad_rows(SOURCES)
    tgt_in, tgt_out = targets(TARGETS)
    scores = model.score(src, lengths, tgt_in, tgt_out)
    for i, (s, t) in enumerate(zip(SOURCES, TARGETS)):
        one_in, one_out = targets([t])
        alone = model(torch.tensor([s]), torch.tensor([len(s)]), one_in, one_out)
        torch.testing.assert_close(scores[i], -alone, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(scores.sum(), -model(src, lengths, tgt_in, tgt_out), rtol=1e-5, atol=1e-4)
    # Padding values in the source change nothing.
    garbage, _ = pad_rows(SOURCES, fill=7)
    torch.testing.assert_close(model.score(garbage, lengths, tgt_in, tgt_out), scores, rtol=0, atol=1e-5)


@pytest.mark.parametrize("feeding", FEEDING)
@pytest.mark.parametrize("attention", SCORED)
def test_every_parameter_gets_a_gradient(make_tiny_model: Callable[..., Seq2Seq], attention: str, feeding: bool) -> None:
    model = make_tiny_model(6, attention=attention, input_feeding=feeding).train()
    src, lengths = pad_rows(SOURCES)
    model(src, lengths, *targets(TARGETS)).backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize("feeding", FEEDING)
@pytest.mark.parametrize("attention", SCORED)
def test_attention_model_in_bfloat16_and_double(tiny_model_config: ModelConfig, attention: str, feeding: bool) -> None:
    torch.manual_seed(0)
    model = Seq2Seq(replace(tiny_model_config, attention=attention, init_scale=0.3, input_feeding=feeding)).eval()
    src, lengths = pad_rows(SOURCES)
    tgt_in, tgt_out = targets(TARGETS)
    reference = model.score(src, lengths, tgt_in, tgt_out)
    double = copy.deepcopy(model).double()
    torch.testing.assert_close(double.score(src, lengths, tgt_in, tgt_out).float(), reference, rtol=1e-4, atol=1e-4)
    low = copy.deepcopy(model).to(torch.bfloat16)
    torch.testing.assert_close(low.score(src, lengths, tgt_in, tgt_out), reference, rtol=0.05, atol=0.5)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.isfinite(model(src, lengths, tgt_in, tgt_out))


# ---------------------------------------------------------------------------------------- search


@pytest.fixture(params=[(a, f) for a in SCORED for f in FEEDING], ids=lambda p: f"{p[0]}-{'fed' if p[1] else 'unfed'}")
def attention_model(request, make_tiny_model: Callable[..., Seq2Seq]) -> Seq2Seq:
    attention, feeding = request.param
    return make_tiny_model(2, init_scale=2.0, attention=attention, input_feeding=feeding)  # peaky: varied hypotheses


@pytest.fixture
def batch(attention_model: Seq2Seq) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    src, lengths = random_batch(12, attention_model.config.src_vocab_size, seed=1)
    return src, lengths, lengths * 2 + 3


def same(a, b, atol: float = 1e-5) -> None:
    assert [[h.ids for h in x] for x in a] == [[h.ids for h in x] for x in b]
    assert [[h.alignment for h in x] for x in a] == [[h.alignment for h in x] for x in b]
    for x, y in zip(a, b):
        assert [h.score for h in x] == pytest.approx([h.score for h in y], abs=atol)


def test_beam_one_equals_greedy(attention_model: Seq2Seq, batch: tuple) -> None:
    src, lengths, max_lens = batch
    g = greedy([attention_model], src, lengths, max_lens, BOS, EOS)
    assert len({tuple(h[0].ids) for h in g}) > 1
    same(g, beam_search([attention_model], src, lengths, max_lens, BOS, EOS, beam=1, nbest=2))


@pytest.mark.parametrize("beam", [1, 4])
def test_scores_equal_model_score(attention_model: Seq2Seq, batch: tuple, beam: int) -> None:
    src, lengths, max_lens = batch
    found = beam_search([attention_model], src, lengths, max_lens, BOS, EOS, beam=beam, nbest=beam)
    for i, hyps in enumerate(found):
        for h in hyps:
            # float32 sums of the same log-probabilities through different kernels (a batch of beam rows
            # against one sentence): on CPUs whose oneDNN uses AMX they differ by ~1e-5 relative
            assert h.score == pytest.approx(model_score([attention_model], src[i], int(lengths[i]), h.ids),
                                            rel=2e-5, abs=1e-4)


@pytest.mark.parametrize("beam", [1, 4])
def test_alignments_are_the_argmax_of_attention(attention_model: Seq2Seq, batch: tuple, beam: int) -> None:
    """Each hypothesis's alignment, replayed word by word: word j's link is where the step that chose it
    attended most, a position inside its source sentence."""
    src, lengths, max_lens = batch
    found = beam_search([attention_model], src, lengths, max_lens, BOS, EOS, beam=beam, nbest=beam)
    for i, hyps in enumerate(found):
        for h in hyps:
            assert h.alignment is not None and len(h.alignment) == len(h.ids)
            state = attention_model.encode(src[i : i + 1, : int(lengths[i])], lengths[i : i + 1])
            token = torch.tensor([BOS])
            for j, word in enumerate(h.ids):
                _, state = attention_model.step(token, state)
                assert h.alignment[j] == int(state.attn[0].argmax()) < int(lengths[i])
                token = torch.tensor([word])


@pytest.mark.parametrize("beam", [1, 4])
def test_batch_results_equal_sentence_by_sentence(attention_model: Seq2Seq, batch: tuple, beam: int) -> None:
    src, lengths, max_lens = batch
    together = beam_search([attention_model], src, lengths, max_lens, BOS, EOS, beam=beam, nbest=beam)
    for i in range(src.size(0)):
        alone = beam_search([attention_model], src[i : i + 1, : int(lengths[i])], lengths[i : i + 1],
                            max_lens[i : i + 1], BOS, EOS, beam=beam, nbest=beam)
        same([together[i]], alone, atol=1e-3)  # scores of -12 differ by 1.5e-4 (padded vs dense shapes)


@pytest.mark.parametrize("beam", [1, 4])
def test_ensemble_of_copies_equals_the_model(attention_model: Seq2Seq, batch: tuple, beam: int) -> None:
    src, lengths, max_lens = batch
    single = beam_search([attention_model], src, lengths, max_lens, BOS, EOS, beam=beam, nbest=beam)
    twin = copy.deepcopy(attention_model)
    same(single, beam_search([attention_model, twin], src, lengths, max_lens, BOS, EOS, beam=beam, nbest=beam))


@pytest.mark.parametrize("beam", [1, 3])
def test_mixed_ensemble_scores_and_alignments(make_tiny_model: Callable[..., Seq2Seq], beam: int) -> None:
    """A plain model and two attention models decode together: scores are the mean of the three models'
    log-probabilities, and alignments come from the first attention model."""
    plain = make_tiny_model(21, init_scale=0.5)
    first = make_tiny_model(22, init_scale=0.5, attention="general", reverse=False, layers=1)
    second = make_tiny_model(23, init_scale=0.5, attention="dot", hidden=8)
    models = [plain, first, second]
    assert first_attention(models) == 1 and first_attention([plain]) is None
    src, lengths = random_batch(6, plain.config.src_vocab_size, seed=5)
    max_lens = lengths + 3
    found = beam_search(models, src, lengths, max_lens, BOS, EOS, beam=beam, nbest=beam)
    for i, hyps in enumerate(found):
        for h in hyps:
            assert h.score == pytest.approx(model_score(models, src[i], int(lengths[i]), h.ids), rel=2e-5, abs=1e-4)
            state = first.encode(src[i : i + 1, : int(lengths[i])], lengths[i : i + 1])
            token = torch.tensor([BOS])
            for j, word in enumerate(h.ids):
                _, state = first.step(token, state)
                assert h.alignment[j] == int(state.attn[0].argmax())
                token = torch.tensor([word])
    without = beam_search([plain], src, lengths, max_lens, BOS, EOS, beam=beam, nbest=beam)
    assert all(h.alignment is None for hyps in without for h in hyps)


# ------------------------------------------------------------------------------------ model files


@pytest.mark.parametrize("attention", SCORED)
def test_attention_model_file_round_trip(make_tiny_model: Callable[..., Seq2Seq], tiny_src_vocab, tiny_tgt_vocab,
                                          tmp_path: Path, attention: str) -> None:
    model = make_tiny_model(4, attention=attention, dropout=0.2)
    weights = {k: v.detach().clone() for k, v in model.state_dict().items()}
    path = tmp_path / "att.pt"
    checkpoint.save(Checkpoint(model.config, TrainConfig(label_smoothing=0.1), tiny_src_vocab, tiny_tgt_vocab,
                               weights), path)
    loaded = checkpoint.load(path)
    assert loaded.model_config == model.config and loaded.model_config.attention == attention
    assert loaded.train_config.label_smoothing == 0.1
    rebuilt = loaded.build_model()
    assert not rebuilt.training
    src, lengths = pad_rows(SOURCES)
    tgt_in, tgt_out = targets(TARGETS)
    torch.testing.assert_close(rebuilt.score(src, lengths, tgt_in, tgt_out), model.score(src, lengths, tgt_in, tgt_out))
    # The shape check knows the attention weights: one missing or of the wrong size is refused.
    for key in [k for k in weights if k.startswith("attn_")] + ["decoder.weight_ih_l0"]:
        broken = dict(weights)
        broken[key] = torch.zeros(3, 3)
        checkpoint.save(Checkpoint(model.config, TrainConfig(), tiny_src_vocab, tiny_tgt_vocab, broken), path)
        with pytest.raises(Exception, match="wrong shape"):
            checkpoint.load(path)
    # Weights of an attention model under a plain model's configuration are refused too.
    plain_cfg = replace(model.config, attention="none")
    checkpoint.save(Checkpoint(plain_cfg, TrainConfig(), tiny_src_vocab, tiny_tgt_vocab, weights), path)
    with pytest.raises(Exception, match="do not match|wrong shape"):
        checkpoint.load(path)


def test_model_file_without_the_new_fields_loads_as_the_papers_model(tiny_checkpoint: Checkpoint,
                                                                     tmp_path: Path) -> None:
    """A model file written before attention existed has no 'attention' or 'dropout' entries."""
    path = tmp_path / "old.pt"
    checkpoint.save(tiny_checkpoint, path)
    data = torch.load(path, weights_only=True)
    for key in ("attention", "dropout"):
        del data["model_config"][key]
    del data["train_config"]["label_smoothing"]
    torch.save(data, path)
    loaded = checkpoint.load(path)
    assert (loaded.model_config.attention, loaded.model_config.dropout) == ("none", 0.0)
    assert loaded.train_config.label_smoothing == 0.0
