"""The CPU path of the sequence VAE (issue 18): the GRU run by length (networks/recurrent.py) computes
what ``nn.GRU`` computes. The encoder gives the packed bidirectional GRU's final states and the
decoder's teacher-forced log-probabilities are those of ``nn.GRU`` over the padded batch, for the same
weights and batch, to float rounding; so are the loss and every gradient of a seq-vae step."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pack_padded_sequence

from vaekit.config import resolve_config
from vaekit.data.spec import DataSpec
from vaekit.data.tokens import BOS, EOS, PAD, SPECIALS, Vocabulary
from vaekit.distributions.sequence import TokenFamily
from vaekit.models import build_model, build_objective
from vaekit.networks.factory import SequenceEncoder
from vaekit.networks.recurrent import Schedule

LENGTH = 12


def _batch(vocab: int, n: int = 40, seed: int = 0) -> torch.Tensor:
    """Token ids (n, LENGTH) float: <bos>, 0 to LENGTH - 2 tokens, <eos>, <pad>... of every length."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.full((n, LENGTH), PAD, dtype=torch.float32)
    for i in range(n):
        k = i % (LENGTH - 1)
        ids[i, : k + 2] = torch.tensor([BOS, *torch.randint(len(SPECIALS), vocab, (k,), generator=generator).tolist(),
                                        EOS], dtype=torch.float32)
    return ids[torch.randperm(n, generator=generator)]


def _packed_features(encoder: SequenceEncoder, x: torch.Tensor) -> torch.Tensor:
    ids = x.long()
    lengths = (ids != PAD).sum(1).clamp_min(1)
    packed = pack_padded_sequence(encoder.embed(ids), lengths, batch_first=True, enforce_sorted=False)
    _, state = encoder.rnn(packed)
    return torch.cat([state[0], state[1]], -1)


def _padded_log_probs(family: TokenFamily, context: torch.Tensor, inputs: torch.Tensor,
                      targets: torch.Tensor) -> torch.Tensor:
    """What the decoder computed before the CPU path: nn.GRU over every position, then masked."""
    logits, _ = family.logits(context, inputs)
    values = -F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
    return torch.where(targets != PAD, values, values.new_zeros(()))


def test_the_schedule_counts_the_rows_still_running() -> None:
    schedule = Schedule.of(torch.tensor([2, 4, 1, 4]))
    assert schedule.live == [4, 3, 2, 2]
    assert schedule.order.tolist() == [1, 3, 0, 2]


@pytest.mark.parametrize("vocab", [9, 500])  # a projected embedding table, and plain embeddings
def test_the_encoder_gives_the_packed_grus_final_states(vocab: int) -> None:
    torch.manual_seed(0)
    encoder = SequenceEncoder(vocab, 8, 16)
    x = _batch(vocab)
    features = encoder(x)
    expected = _packed_features(encoder, x)
    torch.testing.assert_close(features, expected, rtol=1e-5, atol=1e-6)
    grads = torch.autograd.grad(features.square().sum(), list(encoder.parameters()))
    expected_grads = torch.autograd.grad(expected.square().sum(), list(encoder.parameters()))
    for grad, reference in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, reference, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("vocab", [9, 500])
def test_teacher_forcing_gives_the_padded_grus_log_probabilities(vocab: int) -> None:
    torch.manual_seed(0)
    family = TokenFamily(vocab, LENGTH, 6, embed_dim=8, hidden=16)
    x = _batch(vocab)
    context = torch.randn(len(x), 6)
    inputs, targets = x.long()[:, :-1], x.long()[:, 1:]
    values = family.teacher_forced(context, inputs, targets)
    torch.testing.assert_close(values, _padded_log_probs(family, context, inputs, targets), rtol=1e-5, atol=1e-5)


def test_a_seq_vae_step_has_the_same_loss_and_gradients_as_through_nn_gru(monkeypatch) -> None:
    """The whole seq-vae loss (word dropout, free bits) for one batch with the same weights and noise:
    by length on the CPU, then through nn.GRU (the packed encoder, the padded decoder) as on CUDA."""
    vocabulary = Vocabulary("word", [*SPECIALS, *(f"w{i}" for i in range(40))], max_len=LENGTH - 2)
    spec = DataSpec(kind="sequence", shape=[vocabulary.length], scale="none", vocabulary=vocabulary,
                    n_levels=len(vocabulary), value_range=[0.0, float(len(vocabulary) - 1)])
    config = resolve_config(preset="seq-vae", overrides=[
        "model.latent_dim=4", "model.embed_dim=8", "model.rnn_hidden=16"]).model
    torch.manual_seed(0)
    model = build_model(spec, config).train()
    objective = build_objective(config, spec, 100)
    objective.kl_weight.fill_(0.5)
    x = _batch(len(vocabulary))

    def step() -> tuple[torch.Tensor, list[torch.Tensor]]:
        torch.manual_seed(1)  # the same word dropout and reparameterisation noise
        loss = objective(model, {"x": x}).loss
        return loss, list(torch.autograd.grad(loss, list(model.parameters())))

    loss, grads = step()
    monkeypatch.setattr(model.encoder, "forward", lambda x: _packed_features(model.encoder, x))
    monkeypatch.setattr(model.likelihood, "teacher_forced", lambda context, inputs, targets: _padded_log_probs(
        model.likelihood, context, inputs, targets))
    expected, expected_grads = step()
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-5)
    for grad, reference in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(grad, reference, rtol=1e-4, atol=1e-5)
