"""The causal Transformer decoder of the ``tokens`` likelihood (model.seq_decoder=transformer): it
never looks ahead, teacher forcing agrees with decoding one token at a time, it shares the GRU's
generation and IWAE broadcasting, a tiny seq-vae trains, reloads and decodes with it, and the GRU
default keeps its weight names."""

from __future__ import annotations

import random
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import vaekit
from vaekit.applications.generate import sample_sequences
from vaekit.config import ModelConfig, resolve_config
from vaekit.data.tokens import BOS, EOS, PAD, SPECIALS, Vocabulary
from vaekit.distributions.sequence import TokenFamily
from vaekit.errors import ConfigError

VOCAB, LENGTH, CONTEXT = 12, 9, 16


@pytest.fixture
def family() -> TokenFamily:
    torch.manual_seed(0)
    return TokenFamily(VOCAB, LENGTH, CONTEXT, embed_dim=8, hidden=16, decoder="transformer", layers=2,
                       heads=4).eval()


def _ids(rows: list[list[int]]) -> torch.Tensor:
    out = torch.full((len(rows), LENGTH), PAD, dtype=torch.float32)
    for i, row in enumerate(rows):
        out[i, : len(row) + 2] = torch.tensor([BOS, *row, EOS], dtype=torch.float32)
    return out


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


def test_teacher_forcing_agrees_with_one_token_at_a_time(family: TokenFamily) -> None:
    """log_prob (all positions at once, causal mask) equals feeding one token at a time with the
    state the decoder returns, the way generation does."""
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
            assert logits.shape == (1, 1, VOCAB) and state.shape == (1, t)  # the prefix read so far
            manual[i] += torch.log_softmax(logits[0, -1], -1)[int(x[i, t])]
    torch.testing.assert_close(px.log_prob(x), manual)
    assert (px.log_prob_elements(x)[:, 0] == 0).all()  # <bos> is given
    assert (px.log_prob_elements(x)[1, 3:] == 0).all()  # nothing after <eos>


def test_the_iwae_sample_axis_broadcasts_the_data(family: TokenFamily) -> None:
    context = torch.randn(3, 2, CONTEXT)  # (S, B, C), as the IWAE bound has it
    x = _ids([[4, 5], [6]])
    values = family(context[..., None, :]).log_prob(x)
    assert values.shape == (3, 2)
    torch.testing.assert_close(values[1], family(context[1][:, None]).log_prob(x))


def test_generation_is_shared_with_the_gru(family: TokenFamily) -> None:
    """The same decoding code: sequences end at <eos>, beam 1 and top-1 sampling are greedy, a wider
    beam is at least as likely as greedy, sampling is seeded."""
    px = family(torch.randn(16, 1, CONTEXT) * 3)
    greedy = px.generate("greedy")
    assert greedy.shape == (16, LENGTH) and (greedy[:, 0] == BOS).all()
    for row in greedy.long().tolist():
        end = row.index(EOS)
        assert all(t == PAD for t in row[end + 1 :]) and PAD not in row[:end] and BOS not in row[1:end]
    torch.testing.assert_close(px.generate("beam", beam=1), greedy)
    torch.testing.assert_close(px.generate("sample", top_k=1, generator=torch.Generator().manual_seed(0)), greedy)
    torch.testing.assert_close(px.mean, greedy)
    beam = px.generate("beam", beam=5)
    assert (px.log_prob(beam) >= px.log_prob(greedy) - 1e-5).all()
    first = px.generate("top-k", generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(px.generate("top-k", generator=torch.Generator().manual_seed(3)), first)
    drawn = px.sample((2,), generator=torch.Generator().manual_seed(1))
    assert drawn.shape == (2, 16, LENGTH) and all(EOS in row for row in drawn.view(-1, LENGTH).tolist())


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


@pytest.mark.parametrize("decoder", ["gru", "transformer"])
def test_beam_search_matches_a_plain_one(decoder: str) -> None:
    """The shared beam search, which carries each decoder's state and reorders it as beams are
    kept, finds what a stateless one finds."""
    torch.manual_seed(0)
    small = TokenFamily(VOCAB, LENGTH, CONTEXT, embed_dim=8, hidden=16, decoder=decoder, heads=4).eval()
    context = torch.randn(6, 1, CONTEXT)
    with torch.no_grad():
        beam = small(context).generate("beam", beam=3).long().tolist()
        assert beam == [_reference_beam(small, context[i], 3) for i in range(len(context))]
    assert sum(row.index(EOS) > 3 for row in beam) >= 2  # long enough for the kept states to matter


@pytest.fixture(scope="module")
def sentences(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(0)
    subjects = ["the cat", "a dog", "my friend", "the old man"]
    verbs = ["sees", "likes", "eats", "finds"]
    objects = ["the red ball", "a green apple", "some bread", "the river"]
    path = tmp_path_factory.mktemp("text") / "sentences.txt"
    path.write_text("".join(f"{rng.choice(subjects)} {rng.choice(verbs)} {rng.choice(objects)}\n"
                            for _ in range(300)))
    return path


def _config(sentences: Path, *more: str):
    return resolve_config(preset="seq-vae", overrides=[
        f"data.source={sentences}", "data.tokens=word", "model.latent_dim=4", "model.embed_dim=16",
        "model.rnn_hidden=32", "model.seq_decoder=transformer", "model.seq_layers=1", "model.seq_heads=2",
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
