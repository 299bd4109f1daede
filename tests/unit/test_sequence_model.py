"""The sequence VAE (issue 8): the token likelihood, with its GRU or its causal Transformer decoder,
scores what it decodes and never looks ahead, beam and top-k decoding agree with greedy where they
must, the encoder ignores padding, and the seq-vae preset (either decoder) trains on sentences, uses
its latent space, and saves and loads as a run folder; the GRU keeps its weight names."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import vaekit
from vaekit.applications.generate import sample_sequences
from vaekit.config import ModelConfig, resolve_config
from vaekit.data.spec import DataSpec
from vaekit.data.tokens import BOS, EOS, PAD, SPECIALS, Vocabulary
from vaekit.distributions.sequence import TokenFamily
from vaekit.errors import ConfigError
from vaekit.networks.sequence import SequenceEncoder

VOCAB, LENGTH, CONTEXT = 12, 9, 16


@pytest.fixture(params=["gru", "transformer"])
def family(request: pytest.FixtureRequest) -> TokenFamily:
    """Both decoders: they share teacher forcing, the IWAE axis and the generation code."""
    torch.manual_seed(0)
    return TokenFamily(VOCAB, LENGTH, CONTEXT, embed_dim=8, hidden=16, decoder=request.param,
                       heads=4).eval()


def _ids(rows: list[list[int]]) -> torch.Tensor:
    out = torch.full((len(rows), LENGTH), PAD, dtype=torch.float32)
    for i, row in enumerate(rows):
        out[i, : len(row) + 2] = torch.tensor([BOS, *row, EOS], dtype=torch.float32)
    return out


def test_log_prob_is_the_sum_of_the_step_by_step_probabilities(family: TokenFamily) -> None:
    """Teacher forcing over the whole sequence equals feeding one token at a time with the state."""
    context = torch.randn(2, CONTEXT)
    x = _ids([[4, 5, 6], [7]])
    px = family(context[:, None])
    manual = torch.zeros(2)
    for i in range(2):
        state = None
        for t in range(1, LENGTH):
            if x[i, t] == PAD:
                break
            logits, state = family.logits(context[i : i + 1], x[i : i + 1, t - 1 : t].long(), state)
            if family.decoder == "transformer":
                assert state.shape == (1, t)  # its state is the prefix read so far
            manual[i] += torch.log_softmax(logits[0, -1], -1)[int(x[i, t])]
    torch.testing.assert_close(px.log_prob(x), manual)
    assert (px.log_prob_elements(x)[:, 0] == 0).all()  # <bos> is given
    assert (px.log_prob_elements(x)[1, 3:] == 0).all()  # nothing after <eos>


def test_a_leading_sample_axis_broadcasts_the_data(family: TokenFamily) -> None:
    context = torch.randn(3, 2, CONTEXT)  # (S, B, C), as the IWAE bound has it
    x = _ids([[4, 5], [6]])
    values = family(context[..., None, :]).log_prob(x)
    assert values.shape == (3, 2)
    torch.testing.assert_close(values[1], family(context[1][:, None]).log_prob(x))


def test_decodings_end_at_eos_and_beam_one_is_greedy(family: TokenFamily) -> None:
    px = family(torch.randn(5, 1, CONTEXT))
    greedy = px.generate("greedy")
    assert greedy.shape == (5, LENGTH) and (greedy[:, 0] == BOS).all()
    assert all(EOS in row.tolist() for row in greedy)
    for row in greedy.long().tolist():
        end = row.index(EOS)
        assert all(t == PAD for t in row[end + 1 :]) and PAD not in row[:end] and BOS not in row[1:end]
    torch.testing.assert_close(px.generate("beam", beam=1), greedy)
    torch.testing.assert_close(px.generate("sample", top_k=1, generator=torch.Generator().manual_seed(0)), greedy)
    torch.testing.assert_close(px.mean, greedy)


def test_beam_search_finds_sequences_at_least_as_likely_as_greedy_here(family: TokenFamily) -> None:
    px = family(torch.randn(16, 1, CONTEXT))
    greedy, beam = px.log_prob(px.generate("greedy")), px.log_prob(px.generate("beam", beam=5))
    assert (beam >= greedy - 1e-5).all() and (beam > greedy + 1e-3).any()


def test_sampling_is_seeded_and_temperature_spreads_it(family: TokenFamily) -> None:
    px = family(torch.randn(1, 1, CONTEXT).expand(200, 1, CONTEXT))
    first = px.generate("sample", generator=torch.Generator().manual_seed(3))
    again = px.generate("sample", generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(first, again)
    cold = px.generate("sample", temperature=0.05, generator=torch.Generator().manual_seed(3))
    hot = px.generate("sample", temperature=3.0, generator=torch.Generator().manual_seed(3))
    assert len({tuple(r) for r in cold.tolist()}) < len({tuple(r) for r in hot.tolist()})
    first_k = px.generate("top-k", generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(px.generate("top-k", generator=torch.Generator().manual_seed(3)), first_k)
    drawn = px.sample((2,), generator=torch.Generator().manual_seed(1))
    assert drawn.shape == (2, 200, LENGTH) and all(EOS in row for row in drawn.view(-1, LENGTH).tolist())
    with pytest.raises(ConfigError, match="decoding 'nucleus'"):
        px.generate("nucleus")


def test_word_dropout_only_while_training(family: TokenFamily) -> None:
    family.word_dropout = 0.9
    context, x = torch.randn(4, 1, CONTEXT), _ids([[4, 5, 6, 7]] * 4)
    evaluated = family(context).log_prob(x)
    torch.testing.assert_close(family(context).log_prob(x), evaluated)  # no dropout in eval mode
    family.train()
    torch.manual_seed(1)
    assert not torch.allclose(family(context).log_prob(x), evaluated)


def test_changing_a_token_leaves_every_earlier_prediction_alone(family: TokenFamily) -> None:
    context = torch.randn(2, CONTEXT)
    x = _ids([[4, 5, 6, 7, 8], [9, 10, 11]])
    changed = x.clone()
    t = 3
    changed[:, t] = torch.tensor([10.0, 4.0])
    before, _ = family.logits(context, x[:, :-1].long())
    after, _ = family.logits(context, changed[:, :-1].long())
    # logits at position s predict token s + 1 from tokens 0..s: those before t cannot see token t
    torch.testing.assert_close(after[:, :t], before[:, :t])
    assert not torch.allclose(after[:, t], before[:, t])  # position t reads it
    elements = family(context[:, None]).log_prob_elements(x)
    elements_changed = family(context[:, None]).log_prob_elements(changed)
    torch.testing.assert_close(elements_changed[:, :t], elements[:, :t])  # log p(x_s | x_<s), s < t
    assert not torch.allclose(elements_changed[:, t], elements[:, t])  # the changed target itself


def _reference_beam(family: TokenFamily, context: torch.Tensor, width: int) -> list[int]:
    """Beam search written plainly, for one context (1, C): every candidate scored from its whole
    prefix (no state carried), finished beams carried on at no cost, <eos> forced at the end."""
    beams = [([BOS], 0.0, False)]
    for t in range(1, family.length):
        candidates = []
        for ids, score, done in beams:
            if done:
                candidates.append((ids + [PAD], score, True))
                continue
            logits, _ = family.logits(context, torch.tensor([ids]))
            logp = torch.log_softmax(logits[0, -1], -1).tolist()
            for token in range(family.vocab_size):
                if token not in (PAD, BOS) and (t < family.length - 1 or token == EOS):
                    candidates.append((ids + [token], score + logp[token], token == EOS))
        beams = sorted(candidates, key=lambda beam: -beam[1])[:width]
    return max(beams, key=lambda beam: beam[1])[0]


def test_beam_search_matches_a_plain_one(family: TokenFamily) -> None:
    """The shared beam search, which carries each decoder's state and reorders it as beams are
    kept, finds what a stateless one finds."""
    small = family
    context = torch.randn(6, 1, CONTEXT)
    with torch.no_grad():
        beam = small(context).generate("beam", beam=3).long().tolist()
        assert beam == [_reference_beam(small, context[i], 3) for i in range(len(context))]
    assert sum(row.index(EOS) > 3 for row in beam) >= 2  # long enough for the kept states to matter


def test_the_encoder_reads_up_to_the_padding_only() -> None:
    torch.manual_seed(0)
    encoder = SequenceEncoder(VOCAB, 8, 16)
    short = _ids([[4, 5, 6]])[:, :6]
    padded = torch.cat([short, torch.zeros(1, 5)], 1)
    torch.testing.assert_close(encoder(short), encoder(padded))
    assert encoder(_ids([[4, 5, 6], [6, 5, 4]])).shape == (2, 32)


def test_the_token_likelihood_refuses_other_data_and_other_likelihoods_refuse_tokens() -> None:
    with pytest.raises(ConfigError, match="does not fit image data"):
        vaekit.train(resolve_config(overrides=["data.source=digits", "model.likelihood=tokens", "train.epochs=1"]))


def test_seq_vae_trains_uses_its_code_and_reloads(sentences: Path, tmp_path: Path) -> None:
    """Sentences of three independent choices: with the collapse remedies of the preset the code
    carries them (KL well above 0, many reconstructions exact); the run folder reloads as it was."""
    torch.manual_seed(0)
    config = resolve_config(preset="seq-vae", overrides=[
        f"data.source={sentences}", "data.tokens=word", "model.latent_dim=8", "model.embed_dim=64",
        "model.rnn_hidden=128", "train.epochs=8", "train.kl_warmup_epochs=4", "train.batch_size=64",
        "train.lr=3e-3", "train.progress=false", "eval.k=5", "model.word_dropout=0.5", "model.free_bits=0.5"])
    run = vaekit.train(config, out=tmp_path / "run")
    assert run.history[-1]["kl"] > 2.0  # nats: the code is used
    held = run.inputs().x[:100]
    recon = run.spec.to_text(run.reconstruct(held))
    exact = np.mean([a == b for a, b in zip(recon, held, strict=True)])
    # A collapsed model decodes one sentence for every code: about 1 in 216 right (short training here).
    assert exact > 0.1, exact
    words = {w for s in held for w in s.split()} | {"<unk>"}  # a short run may still emit <unk>
    assert all(set(s.split()) <= words for s in run.spec.to_text(run.sample(10, seed=0)))
    import json
    import math

    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]
    assert metrics["perplexity"] == pytest.approx(math.exp(metrics["nll_per_token"]))
    assert 1.0 < metrics["perplexity"] < len(run.spec.vocabulary)  # better than guessing among the words
    words_and_eos = np.mean([len(sentence.split()) + 1 for sentence in run.inputs().x])
    assert metrics["tokens_per_sample"] == pytest.approx(words_and_eos)
    assert metrics["mutual_information"] > 1.0 and "bits_per_dim" not in metrics
    again = vaekit.load(tmp_path / "run")
    # .cpu(): on a GPU machine the run trained there and the reloaded one is on the CPU
    torch.testing.assert_close(again.reconstruct(held[:8]).cpu(), run.reconstruct(held[:8]).cpu())


def test_the_recon_anomaly_score_is_refused_for_tokens(family: TokenFamily) -> None:
    from vaekit.applications.anomaly import score_samples

    class Model:  # only what score_samples looks at before scoring
        likelihood = family

    with pytest.raises(ConfigError, match="use elbo or nll"):
        score_samples(Model(), _ids([[4, 5]]), "recon")


def test_importance_chunks_count_a_logit_per_word(monkeypatch) -> None:
    """A token model holds vocabulary-many logits per position: the sampler's chunks must count
    them, or k = 50 at batch 256 over 7,500 words would need 8.6 GB at once."""
    from vaekit.evaluation import likelihood
    from vaekit.models import build_model

    vocabulary = Vocabulary.fit(["abcdefgh", "hgfedcba"], "char")
    spec = DataSpec(kind="sequence", shape=[vocabulary.length], scale="none", vocabulary=vocabulary,
                    n_levels=len(vocabulary), value_range=[0.0, float(len(vocabulary) - 1)])
    model = build_model(spec, resolve_config(preset="seq-vae", overrides=[
        "model.latent_dim=2", "model.embed_dim=8", "model.rnn_hidden=8"]).model).eval()
    x = spec.transform(np.array(["abcd", "hgfe"], dtype=object))
    per_draw = x[0].numel() * len(x) * len(vocabulary)
    monkeypatch.setattr(likelihood, "CHUNK_ELEMENTS", 3 * per_draw)  # 3 draws a pass with the logits counted
    calls = []
    forward = model.forward
    monkeypatch.setattr(model, "forward", lambda *a, **k: calls.append(k["n_samples"]) or forward(*a, **k))
    assert likelihood.log_weights(model, x, k=7, generator=torch.Generator().manual_seed(0)).shape == (7, 2)
    assert calls == [3, 3, 1]


def _config(sentences: Path, *more: str):
    return resolve_config(preset="seq-vae", overrides=[
        f"data.source={sentences}", "data.tokens=word", "model.latent_dim=4", "model.embed_dim=16",
        "model.rnn_hidden=32", "data.max_samples=300", "model.seq_decoder=transformer", "model.seq_layers=1",
        "model.seq_heads=2",
        "train.batch_size=32", "train.lr=3e-3", "train.progress=false", "eval.k=2", *more])


def test_a_transformer_seq_vae_trains_reloads_and_decodes(sentences: Path, tmp_path: Path) -> None:
    torch.manual_seed(0)
    run = vaekit.train(_config(sentences, "train.epochs=3"), out=tmp_path / "run")
    assert run.config.model.seq_decoder == "transformer" and run.model.likelihood.decoder == "transformer"
    losses = [h["loss"] for h in run.history]
    assert losses[-1] < 0.8 * losses[0], losses
    assert any(k.startswith("likelihood.transformer.") for k in run.model.state_dict())
    held = run.inputs().x[:8]
    again = vaekit.load(tmp_path / "run")
    assert again.model.likelihood.decoder == "transformer"
    # .cpu(): on a GPU machine the run trained there and the reloaded one is on the CPU
    torch.testing.assert_close(again.reconstruct(held).cpu(), run.reconstruct(held).cpu())
    words = {w for s in run.inputs().x for w in s.split()} | {"<unk>"}  # a short run may still emit <unk>
    texts = run.spec.to_text(run.sample(4, seed=0))
    for decoding in ("greedy", "sample", "top-k", "beam"):
        texts += sample_sequences(again, 4, seed=0, decoding=decoding, beam=3)
    assert len(texts) == 20 and all(isinstance(s, str) and set(s.split()) <= words for s in texts)
    assert sum(bool(s) for s in texts) >= 10  # mostly not empty after three epochs


def test_heads_must_divide_the_width(sentences: Path) -> None:
    with pytest.raises(ConfigError, match=r"model\.seq_heads=3 must divide model\.rnn_hidden=32"):
        vaekit.train(_config(sentences, "model.seq_heads=3", "train.epochs=1"))


def test_the_gru_default_keeps_its_weight_names() -> None:
    config = ModelConfig()
    assert config.seq_decoder == "gru"
    vocabulary = Vocabulary("word", [*SPECIALS, "a", "b"], max_len=LENGTH - 2)
    family = TokenFamily.from_spec(SimpleNamespace(vocabulary=vocabulary), config)
    assert family.decoder == "gru"
    assert list(family.state_dict()) == [
        "embed.weight", "initial.weight", "initial.bias", "rnn.weight_ih_l0", "rnn.weight_hh_l0",
        "rnn.bias_ih_l0", "rnn.bias_hh_l0", "out.weight", "out.bias"]
    with pytest.raises(ConfigError, match="sequence decoder 'lstm'"):
        TokenFamily(VOCAB, LENGTH, CONTEXT, decoder="lstm")
