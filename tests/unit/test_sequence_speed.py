"""The CPU path of the sequence VAE (issue 18): the GRU run by length (networks/recurrent.py) computes
what ``nn.GRU`` computes. The encoder gives the packed bidirectional GRU's final states and the
decoder's teacher-forced log-probabilities are those of ``nn.GRU`` over the padded batch, for the same
weights and batch, to float rounding; so are the loss and every gradient of a seq-vae step."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from vaekit.config import resolve_config
from vaekit.data.spec import DataSpec
from vaekit.data.tokens import BOS, EOS, PAD, SPECIALS, Vocabulary
from vaekit.distributions.sequence import TokenFamily
from vaekit.models import build_model, build_objective
from vaekit.networks import recurrent
from vaekit.networks.recurrent import Schedule, gru_by_length
from vaekit.networks.sequence import SequenceEncoder

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


# ---------------------------------------------------------------------------- the loop's own backward
def _loop_case(lengths: list[int], width: int = 4, features: int = 3, dtype=torch.float64, seed: int = 0):
    """A GRU (nn.GRU's weights), a ragged batch x (B, T, E) with these lengths, an initial state (B, H)
    and fixed weights for the outputs and the final states, so that every gradient is checked."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    gru = nn.GRU(features, width, batch_first=True).to(dtype)
    lengths = torch.tensor(lengths)
    x = torch.randn(len(lengths), int(lengths.max()), features, dtype=dtype, generator=generator, requires_grad=True)
    h0 = torch.randn(len(lengths), width, dtype=dtype, generator=generator, requires_grad=True)
    out_weights = torch.randn(len(lengths), int(lengths.max()), width, dtype=dtype, generator=generator)
    state_weights = torch.randn(len(lengths), width, dtype=dtype, generator=generator)
    return gru, lengths, x, h0, out_weights, state_weights


def _by_length(gru: nn.GRU, lengths, x, h0, loop=gru_by_length):
    """gru_by_length (or ``loop``) on the case: its outputs (B, T, H) zero past each length and its
    final states (B, H), both in the batch's order."""
    schedule = Schedule.of(lengths)
    time, row = schedule.positions()
    inputs = F.linear(x[row, time], gru.weight_ih_l0, gru.bias_ih_l0)
    outputs, final = loop(inputs, h0[schedule.order], gru.weight_hh_l0, gru.bias_hh_l0, schedule.live)
    padded = outputs.new_zeros(*x.shape[:2], outputs.shape[1]).index_put((row, time), outputs)
    return padded, final[schedule.order.argsort()]


def _through_nn_gru(gru: nn.GRU, lengths, x, h0):
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    outputs, final = gru(packed, h0[None])
    padded, _ = pad_packed_sequence(outputs, batch_first=True, total_length=x.shape[1])
    return padded, final[0]


def _loss_and_grads(case, run):
    gru, lengths, x, h0, out_weights, state_weights = case
    outputs, final = run(gru, lengths, x, h0)
    loss = (outputs * out_weights).sum() + (final * state_weights).sum()
    return (outputs, final), torch.autograd.grad(loss, [x, h0, *gru.parameters()])


def _raw_arguments(lengths: list[int], width: int = 3, dtype=torch.float64):
    schedule = Schedule.of(torch.tensor(lengths))
    generator = torch.Generator().manual_seed(1)
    shapes = [(sum(schedule.live), 3 * width), (len(lengths), width), (3 * width, width), (3 * width,)]
    return [torch.randn(*shape, dtype=dtype, generator=generator, requires_grad=True) for shape in shapes], schedule


@pytest.mark.parametrize("lengths", [[5, 3, 3, 1], [4, 4, 4], [6]])  # ragged, all equal, B = 1
def test_the_loops_backward_passes_gradcheck(lengths: list[int]) -> None:
    arguments, schedule = _raw_arguments(lengths)

    def loop(*arguments):
        outputs, final = gru_by_length(*arguments, schedule.live)
        assert type(outputs.grad_fn).__name__ == "_GRULoopBackward"  # the Function, not the recorded loop
        return outputs, final

    assert torch.autograd.gradcheck(loop, arguments)
    # and each result alone: the other's gradient arrives as None
    assert torch.autograd.gradcheck(lambda *arguments: loop(*arguments)[0], arguments)
    assert torch.autograd.gradcheck(lambda *arguments: loop(*arguments)[1], arguments)


@pytest.mark.parametrize("lengths", [[5, 3, 3, 1], [7, 2, 5, 5, 1, 3], [4, 4, 4], [6]])
def test_the_loop_matches_the_recorded_loop_and_nn_gru(lengths: list[int]) -> None:
    case = _loop_case(lengths, width=16, features=8, dtype=torch.float32)
    results, grads = _loss_and_grads(case, _by_length)
    for reference, rtol, atol in ((lambda *a: _by_length(*a, loop=recurrent._recorded), 1e-6, 1e-6),
                                  (_through_nn_gru, 1e-5, 1e-5)):
        expected_results, expected_grads = _loss_and_grads(case, reference)
        for value, expected in zip((*results, *grads), (*expected_results, *expected_grads), strict=True):
            torch.testing.assert_close(value, expected, rtol=rtol, atol=atol)


def test_the_loop_gives_only_the_gradients_asked_for() -> None:
    arguments, schedule = _raw_arguments([5, 3, 3, 1], dtype=torch.float32)
    inputs, state, weight, bias = arguments
    state.requires_grad_(False)
    bias.requires_grad_(False)
    outputs, final = gru_by_length(inputs, state, weight, bias, schedule.live)
    got = torch.autograd.grad(outputs.sum() + final.sum(), [inputs, weight])
    expected_outputs, expected_final = recurrent._recorded(inputs, state, weight, bias, schedule.live)
    expected = torch.autograd.grad(expected_outputs.sum() + expected_final.sum(), [inputs, weight])
    for value, reference in zip(got, expected, strict=True):
        torch.testing.assert_close(value, reference, rtol=1e-6, atol=1e-6)


def test_autocast_tracing_and_double_backward_take_the_recorded_loop(monkeypatch) -> None:
    arguments, schedule = _raw_arguments([5, 3, 3, 1], dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        outputs, final = gru_by_length(*arguments, schedule.live)
        expected_outputs, expected_final = recurrent._recorded(*arguments, schedule.live)
    assert type(outputs.grad_fn).__name__ != "_GRULoopBackward"
    # autocast ran the recurrent product in bfloat16 (the Function's own ops would have skipped it)
    assert not torch.allclose(outputs, gru_by_length(*arguments, schedule.live)[0], rtol=0, atol=1e-4)
    torch.testing.assert_close(outputs, expected_outputs, rtol=0, atol=0)
    torch.testing.assert_close(final, expected_final, rtol=0, atol=0)
    grads = torch.autograd.grad(outputs.float().sum() + final.float().sum(), arguments)
    expected = torch.autograd.grad(expected_outputs.float().sum() + expected_final.float().sum(), arguments)
    for value, reference in zip(grads, expected, strict=True):
        torch.testing.assert_close(value, reference, rtol=0, atol=0)

    # mixed dtypes: the recorded loop, which says what is wrong
    inputs, state, weight, bias = arguments
    recorded, calls = recurrent._recorded, []
    monkeypatch.setattr(recurrent, "_recorded", lambda *a: calls.append(a) or recorded(*a))
    with pytest.raises(RuntimeError, match="dtype"):
        gru_by_length(inputs, state, weight.double(), bias, schedule.live)
    assert len(calls) == 1
    # twice=True: a gradient of the gradient
    outputs, _ = gru_by_length(*arguments, schedule.live, twice=True)
    (grad,) = torch.autograd.grad(outputs.square().sum(), [inputs], create_graph=True)
    assert grad.requires_grad and torch.autograd.grad(grad.sum(), [weight])[0].abs().sum() > 0
    # torch.compile's tracing (as dynamo reports it)
    monkeypatch.setattr(torch.compiler, "is_compiling", lambda: True)
    outputs, _ = gru_by_length(*arguments, schedule.live)
    assert type(outputs.grad_fn).__name__ != "_GRULoopBackward"
