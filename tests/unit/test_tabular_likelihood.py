"""The per-column table likelihood (Nazabal et al. 2020) with missing values skipped (Mattei &
Frellsen 2019): log p against torch's distributions, the masked sum, gradients through holes,
means and seeded samples, the encoder's input layer, and training on tables with holes end to end."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import distributions as D

import vaekit
from vaekit.config import DataConfig, ModelConfig, resolve_config
from vaekit.data.columns import Column
from vaekit.data.sources.base import RawData
from vaekit.data.spec import DataSpec
from vaekit.distributions.likelihoods import LIKELIHOODS
from vaekit.distributions.tabular import MixedTable, TableFamily
from vaekit.errors import DataError
from vaekit.networks.factory import build_networks
from vaekit.networks.table import TableEncoder, TableInput, TableLayout

# Kinds interleaved, so a value put in the wrong column shows.
COLUMNS = [
    Column("height", "continuous", loc=170.0, std=10.0),
    Column("smoker", "binary", categories=["no", "yes"]),
    Column("colour", "categorical", categories=["blue", "green", "red"]),
    Column("visits", "count"),
    Column("weight", "continuous", loc=70.0, std=8.0),
    Column("size", "categorical", categories=["l", "s"]),
]
CONTINUOUS, BINARY, COUNT, CATEGORICAL = [0, 4], [1], [3], [(2, 3), (5, 2)]
N_PARAMS = 2 * 2 + 1 + 2 * 1 + 3 + 2  # means and log-scales, logits, log-means and dispersions, K logits each
B = 7


def decoder_output(*lead: int, seed: int = 0) -> torch.Tensor:
    """Raw decoder parameters (*lead, N_PARAMS)."""
    return torch.randn(*lead, N_PARAMS, generator=torch.Generator().manual_seed(seed))


def rows(n: int = B, seed: int = 1) -> torch.Tensor:
    """Model-space rows (n, 6): standardised values, 0/1, codes, counts."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, 6, generator=g)
    x[:, 1] = torch.randint(0, 2, (n,), generator=g).float()
    x[:, 2] = torch.randint(0, 3, (n,), generator=g).float()
    x[:, 3] = torch.randint(0, 8, (n,), generator=g).float()
    x[:, 5] = torch.randint(0, 2, (n,), generator=g).float()
    return x


def with_holes(x: torch.Tensor) -> torch.Tensor:
    """A copy with one hole per kind in different rows, and one row (the last) all missing."""
    x = x.clone()
    x[0, 0] = x[1, 1] = x[2, 2] = x[3, 3] = x[4, 5] = math.nan
    x[-1] = math.nan
    return x


def table() -> MixedTable:
    return MixedTable(decoder_output(B), TableLayout(COLUMNS))


# -------------------------------------------------------------------------------------- log p


def test_layout_counts_parameters_by_kind() -> None:
    layout = TableLayout(COLUMNS)
    assert layout.width == 6 and layout.n_params == N_PARAMS
    assert (layout.continuous, layout.binary, layout.count, layout.categorical) == (CONTINUOUS, BINARY, COUNT,
                                                                                    CATEGORICAL)


def test_log_prob_elements_match_torch_distributions() -> None:
    raw, x = decoder_output(B), rows()
    px = MixedTable(raw, TableLayout(COLUMNS))
    elements = px.log_prob_elements(x)
    assert elements.shape == (B, 6)
    # The decoder's flat vector: continuous means, log-scales, binary logits, count log-means,
    # count dispersions, then each categorical column's logits.
    loc, logits, log_mean = raw[:, 0:2], raw[:, 4], raw[:, 5]
    torch.testing.assert_close(px.log_scale, raw[:, 2:4], atol=2e-3, rtol=0)  # ~ the raw value away from its floor
    normal = D.Normal(loc, px.log_scale.exp())
    torch.testing.assert_close(elements[:, CONTINUOUS], normal.log_prob(x[:, CONTINUOUS]))
    torch.testing.assert_close(elements[:, 1], D.Bernoulli(logits=logits).log_prob(x[:, 1]))
    torch.testing.assert_close(elements[:, 2], D.Categorical(logits=raw[:, 7:10]).log_prob(x[:, 2].long()))
    torch.testing.assert_close(elements[:, 5], D.Categorical(logits=raw[:, 10:12]).log_prob(x[:, 5].long()))
    r = px.dispersion[:, 0]
    assert bool((r > 0).all())
    negative_binomial = D.NegativeBinomial(total_count=r, logits=log_mean - r.log())  # mean exp(log_mean)
    torch.testing.assert_close(elements[:, 3], negative_binomial.log_prob(x[:, 3]))
    torch.testing.assert_close(px.mean[:, 3], negative_binomial.mean)
    torch.testing.assert_close(px.log_prob(x), elements.sum(-1))


def test_continuous_scale_has_a_floor() -> None:
    raw = decoder_output(B)
    raw[:, 2:4] = -100.0
    px = MixedTable(raw, TableLayout(COLUMNS))
    assert bool((px.log_scale >= -7.0).all())
    assert bool(torch.isfinite(px.log_prob(rows())).all())


def test_log_prob_skips_missing_values() -> None:
    px, x = table(), rows()
    holes = with_holes(x)
    observed = ~torch.isnan(holes)
    expected = (px.log_prob_elements(x) * observed).sum(-1)  # observed terms do not depend on the holes
    log_prob = px.log_prob(holes)
    torch.testing.assert_close(log_prob, expected)
    assert float(log_prob[-1]) == 0.0, "a row with nothing observed contributes nothing"
    assert not bool(torch.isclose(log_prob[:5], px.log_prob(x)[:5]).any()), "each hole removes a term"


def test_log_prob_also_skips_where_the_mask_is_false() -> None:
    px, x = table(), rows()
    mask = torch.ones_like(x, dtype=torch.bool)
    mask[:, 2] = False
    keep = [0, 1, 3, 4, 5]
    torch.testing.assert_close(px.log_prob(x, mask), px.log_prob_elements(x)[:, keep].sum(-1))


def test_gradients_through_missing_values_are_finite() -> None:
    raw = decoder_output(B).requires_grad_()
    x = with_holes(rows())
    (-MixedTable(raw, TableLayout(COLUMNS)).log_prob(x).sum()).backward()
    assert bool(torch.isfinite(raw.grad).all())
    assert bool((raw.grad[-1] == 0).all()), "an unobserved row pulls on nothing"
    assert float(raw.grad[0, 0]) == 0.0 and float(raw.grad[0, 2]) == 0.0  # height missing: its mean and scale
    assert bool((raw.grad[2, 7:10] == 0).all())  # colour missing: its logits
    assert float(raw.grad[1, 0]) != 0.0  # height observed


def test_mean_gives_codes_for_categories() -> None:
    raw = decoder_output(B)
    px = MixedTable(raw, TableLayout(COLUMNS))
    mean = px.mean
    assert mean.shape == (B, 6)
    torch.testing.assert_close(mean[:, CONTINUOUS], raw[:, 0:2])
    torch.testing.assert_close(mean[:, 1], torch.sigmoid(raw[:, 4]))
    torch.testing.assert_close(mean[:, 3], raw[:, 5].exp())
    assert mean[:, 2].tolist() == raw[:, 7:10].argmax(-1).float().tolist()
    assert mean[:, 5].tolist() == raw[:, 10:12].argmax(-1).float().tolist()


def test_category_probs_sum_to_one() -> None:
    probs = table().category_probs()
    assert [(j, p.shape) for j, p in probs] == [([2], (B, 1, 3)), ([5], (B, 1, 2))]  # K 3 and 2: two groups
    for _, p in probs:
        torch.testing.assert_close(p.sum(-1), torch.ones(B, 1))


# Many categorical columns of many sizes (1 to 300 categories, several per power-of-two group),
# between a continuous column and one constant in training: the layout of 784 categorical pixels.
SIZES = [3, 1, 2, 17, 5, 300, 4, 3, 9, 2, 16, 129]
WIDE = ([Column("first", "continuous", loc=1.0, std=2.0), Column("border", "continuous", loc=0.0, constant=True)]
        + [Column(f"c{i}", "categorical", categories=[str(v) for v in range(k)]) for i, k in enumerate(SIZES)])


def wide_rows(n: int = B, seed: int = 3) -> torch.Tensor:
    """Model-space rows of WIDE (n, 2 + len(SIZES)): a value, the constant's 0, a code per column."""
    g = torch.Generator().manual_seed(seed)
    codes = [torch.randint(0, k, (n, 1), generator=g).float() for k in SIZES]
    return torch.cat([torch.randn(n, 1, generator=g), torch.zeros(n, 1), *codes], 1)


def per_column_categoricals(raw: torch.Tensor) -> list[torch.Tensor]:
    """The reference: each categorical column's K logits, one column at a time, from the end of the
    decoder output (after the continuous column's mean and log-scale)."""
    return list(raw[..., 2:].split(SIZES, -1))


def test_grouped_categorical_columns_equal_a_per_column_reference() -> None:
    layout = TableLayout(WIDE)
    assert layout.n_params == 2 + sum(SIZES) and len(layout.category_groups) < len(SIZES)
    raw = torch.randn(2, B, layout.n_params, generator=torch.Generator().manual_seed(4))  # (S, B, P): iwae draws
    px, x = MixedTable(raw, layout), with_holes(wide_rows())
    logits = per_column_categoricals(raw)
    elements = px.log_prob_elements(torch.nan_to_num(x))
    expected = [torch.log_softmax(lg, -1).gather(-1, torch.nan_to_num(x)[:, 2 + i].long()[None, :, None].expand(
        2, B, 1)).squeeze(-1) for i, lg in enumerate(logits)]
    torch.testing.assert_close(elements[..., 2:], torch.stack(expected, -1))
    assert (elements[..., 1] == 0).all()  # the constant column: no likelihood term
    observed = ~torch.isnan(x)
    reference = elements[..., 0] * observed[:, 0] + (torch.stack(expected, -1) * observed[:, 2:]).sum(-1)
    torch.testing.assert_close(px.log_prob(x), reference)
    torch.testing.assert_close(px.mean[..., 2:], torch.stack([lg.argmax(-1).float() for lg in logits], -1))
    probs = {j: p for columns, group in px.category_probs() for j, p in zip(columns, group.unbind(-2), strict=True)}
    for i, lg in enumerate(logits):
        torch.testing.assert_close(probs[2 + i][..., : SIZES[i]], torch.softmax(lg, -1))
        assert (probs[2 + i][..., SIZES[i]:] == 0).all()  # the padding of a smaller column is never drawn
    drawn = px.sample(generator=torch.Generator().manual_seed(5))[..., 2:]
    assert ((drawn >= 0) & (drawn < torch.tensor(SIZES, dtype=drawn.dtype))).all()


def test_the_encoder_input_of_grouped_categoricals_equals_a_per_column_one_hot() -> None:
    x = with_holes(wide_rows())
    observed = ~torch.isnan(x)
    one_hots = [F.one_hot(torch.nan_to_num(x[:, 2 + i]).long(), k).float() * observed[:, 2 + i, None]
                for i, k in enumerate(SIZES)]
    expected = torch.cat([torch.nan_to_num(x[:, :1]), *one_hots], 1)  # the constant column is no input
    torch.testing.assert_close(TableInput(WIDE)(x), expected)


# -------------------------------------------------------------------------------------- samples


def test_samples_have_the_right_shape_and_support() -> None:
    px = table()
    assert px.sample(generator=torch.Generator().manual_seed(0)).shape == (B, 6)
    drawn = px.sample((50,), generator=torch.Generator().manual_seed(0))
    assert drawn.shape == (50, B, 6)
    assert bool(torch.isfinite(drawn).all())
    assert set(drawn[..., 1].unique().tolist()) <= {0.0, 1.0}
    assert set(drawn[..., 2].unique().tolist()) == {0.0, 1.0, 2.0}
    assert set(drawn[..., 5].unique().tolist()) == {0.0, 1.0}
    counts = drawn[..., 3]
    assert bool((counts >= 0).all()) and bool((counts == counts.round()).all())
    assert len(drawn[..., 0].unique()) > 100, "continuous columns are not discretised"


def test_samples_are_reproducible_from_a_generator() -> None:
    px = MixedTable(decoder_output(B), TableLayout(COLUMNS))
    torch.manual_seed(0)
    first = px.sample((4,), generator=torch.Generator().manual_seed(3))
    torch.manual_seed(0)
    again = px.sample((4,), generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(first, again)
    other = px.sample((4,), generator=torch.Generator().manual_seed(4))
    assert not torch.equal(first, other)


def test_samples_without_counts_depend_on_the_generator_only() -> None:
    columns = [c for c in COLUMNS if c.kind != "count"]
    px = MixedTable(torch.randn(B, TableLayout(columns).n_params, generator=torch.Generator().manual_seed(0)),
                    TableLayout(columns))
    torch.manual_seed(1)
    first = px.sample((4,), generator=torch.Generator().manual_seed(3))
    torch.manual_seed(2)  # the global generator must not matter
    torch.testing.assert_close(px.sample((4,), generator=torch.Generator().manual_seed(3)), first)


def test_samples_with_counts_depend_on_the_generator_only() -> None:
    px = table()
    torch.manual_seed(1)
    first = px.sample((4,), generator=torch.Generator().manual_seed(3))
    torch.manual_seed(2)
    torch.testing.assert_close(px.sample((4,), generator=torch.Generator().manual_seed(3)), first)


def test_count_log_pmf_is_accurate_for_very_large_counts() -> None:
    r = 3.0
    layout = TableLayout([Column("n", "count")])
    for k in (5.0, 1e4, 1e6, 1e8):
        raw = torch.tensor([[math.log(k), math.log(math.expm1(r - 1e-4))]])  # mean k, dispersion r
        p = r / (r + k)
        expected = (math.lgamma(k + r) - math.lgamma(r) - math.lgamma(k + 1) + r * math.log(p)
                    + k * math.log1p(-p))
        got = MixedTable(raw, layout).log_prob(torch.tensor([[k]])).item()
        assert got == pytest.approx(expected, abs=1e-3), k


def test_count_samples_without_a_generator_do_not_repeat_their_rates() -> None:
    layout = TableLayout([Column("n", "count")])
    # A wide gamma (shape 2) around a mean of 1e6, whose Poisson noise is tiny beside it.
    px = MixedTable(torch.tensor([[math.log(1e6), math.log(math.expm1(2.0))]]), layout)
    torch.manual_seed(0)
    first, second = px.sample((8,)), px.sample((8,))
    # With the same gamma rates, two draws of Poisson(~1e6) differ by a few thousand at most.
    assert (first - second).abs().max() > 1e5


def test_a_leading_sample_axis_works_as_for_iwae() -> None:
    S = 3
    raw, x = decoder_output(S, B), with_holes(rows())
    px = MixedTable(raw, TableLayout(COLUMNS))
    assert px.batch_shape == (S, B)
    log_prob = px.log_prob(x)
    assert log_prob.shape == (S, B)
    each = torch.stack([MixedTable(raw[s], TableLayout(COLUMNS)).log_prob(x) for s in range(S)])
    torch.testing.assert_close(log_prob, each)
    assert px.mean.shape == (S, B, 6)
    assert px.sample((2,), generator=torch.Generator().manual_seed(0)).shape == (2, S, B, 6)


def test_table_family_is_the_registered_table_likelihood() -> None:
    assert LIKELIHOODS.get("table") is TableFamily
    family = TableFamily(COLUMNS)
    assert family.support == "table"
    assert family.output_shape([6]) == [N_PARAMS]
    px = family(decoder_output(B).unsqueeze(-2))  # the decoder's (B, n_params=1, P)
    assert isinstance(px, MixedTable) and px.batch_shape == (B,)


# ------------------------------------------------------------------------------- encoder input


def test_table_input_expands_codes_and_marks_what_was_observed() -> None:
    x = torch.tensor([[0.5, 1.0, 2.0, 3.0, -1.0, 0.0],
                      [math.nan, 0.0, math.nan, math.nan, 2.0, 1.0]])
    plain = TableInput(COLUMNS, with_mask=False)
    masked = TableInput(COLUMNS, with_mask=True)
    width = 2 + 1 + 1 + 3 + 2  # continuous, binary, log1p count, one-hot colour and size
    assert plain.out_features == width and masked.out_features == width + 6
    out = masked(x)
    assert out.shape == (2, width + 6)
    assert not bool(torch.isnan(out).any())
    # continuous (height, weight), binary, log(1 + visits), colour one-hot, size one-hot, observed flags
    torch.testing.assert_close(out[0], torch.tensor([0.5, -1.0, 1.0, math.log(4.0), 0, 0, 1, 1, 0, 1, 1, 1, 1, 1, 1]))
    torch.testing.assert_close(out[1], torch.tensor([0.0, 2.0, 0.0, 0.0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 1, 1]))
    torch.testing.assert_close(plain(x), out[:, :width])


def test_counts_are_modelled_relative_to_their_training_mean() -> None:
    """A count column remembers its training mean: a zero decoder output means that mean, and the
    encoder sees log(1 + k) centred on log(1 + mean), a missing count at the centre (0)."""
    from vaekit.data.columns import infer_columns

    columns = infer_columns(np.array([[900.0], [1000.0], [1100.0], [1400.0]]), ["proline"], {"proline": "count"},
                            "table")
    assert columns[0].kind == "count" and columns[0].loc == pytest.approx(1100.0)
    layout = TableLayout(columns)
    table = MixedTable(torch.zeros(1, layout.n_params), layout)
    assert float(table.mean[0, 0]) == pytest.approx(1100.0, rel=1e-5)
    inputs = TableInput(columns)(torch.tensor([[1100.0], [math.nan], [0.0]]))
    torch.testing.assert_close(inputs[:, 0], torch.tensor([0.0, 0.0, -math.log1p(1100.0)]))
    old = Column("proline", "count")  # a run folder from before counts stored their mean: as then
    assert float(MixedTable(torch.zeros(1, 2), TableLayout([old])).mean[0, 0]) == pytest.approx(1.0)


def test_table_input_of_an_empty_row_is_zero() -> None:
    out = TableInput(COLUMNS, with_mask=True)(torch.full((1, 6), math.nan))
    assert bool((out == 0).all())


def test_build_networks_for_a_table() -> None:
    x = np.empty((40, 3), dtype=object)
    rng = np.random.default_rng(0)
    x[:, 0], x[:, 1], x[:, 2] = rng.normal(size=40), rng.choice(["a", "b", "c"], 40), rng.poisson(2.0, 40)
    x[5, 0] = x[6, 1] = None
    spec = DataSpec.fit(RawData(x=x, kind="table", feature_names=["v", "w", "k"]),
                        DataConfig(source="t", column_types={"k": "count"}))
    family = TableFamily.from_spec(spec, ModelConfig())
    encoder, decoder = build_networks(spec, ModelConfig(hidden=[16], latent_dim=3), family.n_params,
                                      out_shape=family.output_shape(spec.shape))
    assert isinstance(encoder, TableEncoder)
    flags = 3 if encoder.input.with_mask else 0  # one observed flag per column, if the encoder takes them
    assert encoder.input.out_features == 1 + 1 + 3 + flags  # v, log1p k, one-hot w
    features = encoder(spec.transform(x))
    assert features.shape == (40, encoder.out_features) and bool(torch.isfinite(features).all())
    assert decoder(torch.zeros(40, 3)).shape == (40, 1, 2 + 2 + 3)


# --------------------------------------------------------------------------------- end to end

FAST = ["model.hidden=[32]", "model.latent_dim=4", "train.progress=false", "eval.enabled=false",
        "train.device=cpu", "train.epochs=3"]


def write_table_csv(path: Path, n: int = 300, holes: float = 0.2, seed: int = 0) -> Path:
    """height (continuous), smoker (0/1), colour (text), visits (counts); a fraction ``holes`` of
    the cells is empty."""
    rng = np.random.default_rng(seed)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["height", "smoker", "colour", "visits"])
        for _ in range(n):
            colour = str(rng.choice(["red", "green", "blue"]))
            row = [f"{rng.normal(170, 10):.2f}", str(int(rng.random() < 0.3)), colour, str(rng.poisson(3.0))]
            writer.writerow(["" if rng.random() < holes else cell for cell in row])
    return path


@pytest.fixture(autouse=True)
def empty_store(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VAEKIT_DATA", str(tmp_path / "store"))


@pytest.fixture(scope="module")
def holes_csv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_table_csv(tmp_path_factory.mktemp("table") / "people.csv")


def train_table(source: Path, *extra: str, preset: str = "vae", out: Path | None = None) -> vaekit.Run:
    config = resolve_config(preset=preset, overrides=[f"data.source={source}", "data.column_types={visits: count}",
                                                      *FAST, *extra])
    return vaekit.train(config, out=out)


def assert_finite_history(run: vaekit.Run) -> None:
    assert len(run.history) == run.config.train.epochs
    for epoch in run.history:
        assert math.isfinite(epoch["loss"]) and math.isfinite(epoch["val_loss"]), epoch


def test_a_table_with_holes_trains(holes_csv: Path) -> None:
    run = train_table(holes_csv)
    assert_finite_history(run)
    assert run.spec.has_missing
    assert isinstance(run.model.likelihood, TableFamily)
    assert [c.kind for c in run.spec.columns] == ["continuous", "binary", "categorical", "count"]
    samples = run.spec.to_table(run.sample(20, seed=0), model_space=False)
    assert samples.shape == (20, 4)
    assert set(samples[:, 2]) <= {"red", "green", "blue"}
    raw = np.array([[175.0, 1.0, "red", None], [None, None, None, 2.0]], dtype=object)
    assert bool(torch.isfinite(run.reconstruct(raw)).all())


def test_the_iwae_preset_trains_on_a_table_with_holes(holes_csv: Path) -> None:
    run = train_table(holes_csv, preset="iwae")  # MIWAE: the importance-weighted bound of the observed part
    assert run.config.model.objective == "iwae"
    assert_finite_history(run)


def test_a_table_without_holes_has_no_missing_values(tmp_path: Path) -> None:
    run = train_table(write_table_csv(tmp_path / "full.csv", holes=0.0), "train.epochs=1")
    assert not run.spec.has_missing
    assert_finite_history(run)


def test_a_saved_table_run_loads_and_gives_the_same_outputs(holes_csv: Path, tmp_path: Path) -> None:
    run = train_table(holes_csv, "train.epochs=1", out=tmp_path / "run")
    loaded = vaekit.load(tmp_path / "run")
    assert loaded.spec == run.spec
    raw = np.array([[175.0, 1.0, "red", None], [None, 0.0, "blue", 2.0]], dtype=object)
    torch.testing.assert_close(loaded.reconstruct(raw), run.reconstruct(raw))
    torch.testing.assert_close(loaded.sample(5, seed=1), run.sample(5, seed=1))


def test_unknown_category_in_new_input_is_a_data_error(holes_csv: Path) -> None:
    run = train_table(holes_csv, "train.epochs=1")
    with pytest.raises(DataError, match="'colour'.*'purple'"):
        run.reconstruct(np.array([[175.0, 1.0, "purple", 2.0]], dtype=object))


def test_rare_categories_in_the_held_out_splits_do_not_stop_training(tmp_path: Path) -> None:
    path = write_table_csv(tmp_path / "towns.csv", holes=0.0)
    with path.open() as handle:
        lines = handle.read().splitlines()
    for i in range(1, 31):  # 30 towns seen once each: some land in the validation and test splits
        height, smoker, _, visits = lines[i * 10].split(",")
        lines[i * 10] = ",".join([height, smoker, f"town{i}", visits])
    path.write_text("\n".join(lines) + "\n")
    run = train_table(path, "train.epochs=1", "eval.enabled=true", "eval.k=2", out=tmp_path / "run")
    assert_finite_history(run)


def test_a_parquet_table_with_text_trains(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    rng = np.random.default_rng(0)
    n = 300
    colour = [None if rng.random() < 0.2 else str(c) for c in rng.choice(["red", "green", "blue"], n)]
    height = [None if rng.random() < 0.2 else float(v) for v in rng.normal(170, 10, n)]
    pq.write_table(pa.table({"height": height, "colour": colour, "visits": rng.poisson(3.0, n)}),
                   tmp_path / "people.parquet")
    run = train_table(tmp_path / "people.parquet", "train.epochs=2")
    assert [c.kind for c in run.spec.columns] == ["continuous", "categorical", "count"]
    assert run.spec.has_missing
    assert_finite_history(run)


def digits_table() -> tuple[np.ndarray, list[str]]:
    """sklearn's digits as a table of 64 pixel columns 0..255 (the 8x8 images scaled from 0..16):
    the leftmost pixel column is 0 in every image, as a pixel table's border is."""
    from sklearn.datasets import load_digits

    return load_digits().data * 255 / 16, [f"p{i}" for i in range(64)]


def test_a_column_constant_in_training_is_a_constant_and_a_value_off_it_costs_nothing(caplog) -> None:
    """A column that is 0 in every training row was standardised by a floored spread (1e-8): a test
    row with 255 there came out at 2.5e10 and its -ELBO near 1e23, or NaN. It is a constant now,
    said in one line naming it, and such a row scores as the row without it, with a warning."""
    x, names = digits_table()
    config = resolve_config(preset="vae", overrides=["train.epochs=1", "model.hidden=[16]", "model.latent_dim=2",
                                                     "train.progress=false", "eval.enabled=false",
                                                     "data.val_fraction=0", "data.test_fraction=0"])
    with caplog.at_level("WARNING", logger="vaekit"):
        run = vaekit.train(config, data=RawData(x=x[:400], kind="table", feature_names=names))
    constant = [name for name, column in zip(names, x[:400].T, strict=True) if column.min() == column.max()]
    assert constant[0] == "p0" and [c.name for c in run.spec.columns if c.constant] == constant
    assert f"{len(constant)} columns hold one value throughout the training data (p0, " in caplog.text
    border = x[400:420].copy()
    border[:, 0] = 255.0
    caplog.clear()
    with caplog.at_level("WARNING", logger="vaekit"):
        odd = run.spec.transform(border, name="new rows")
    assert "new rows" in caplog.text and "p0 in 20 rows" in caplog.text
    from vaekit.evaluation.report import evaluate

    scores = [evaluate(run.model, rows, k=5)["neg_elbo"] for rows in (odd, run.spec.transform(x[400:420]))]
    assert math.isfinite(scores[0]) and scores[0] == pytest.approx(scores[1])
    decoded = run.spec.to_table(run.model.decode(torch.zeros(1, 2)).mean.detach())
    assert decoded[0, 0] == 0.0  # its value given back


def test_a_row_beyond_the_model_is_an_error_naming_its_column_not_a_nan_metric() -> None:
    """A column with a tiny spread and a row a billion standard deviations off it: the encoder
    overflows; the evaluation says which row and column instead of reporting NaN."""
    from vaekit.evaluation.report import evaluate

    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 3))
    x[:, 2] = np.round(x[:, 2], 1) * 1e-6
    config = resolve_config(preset="vae", overrides=["train.epochs=1", "model.hidden=[16]", "train.progress=false",
                                                     "eval.enabled=false"])
    run = vaekit.train(config, data=RawData(x=x, kind="table", feature_names=["a", "b", "tiny"]))
    rows = run.spec.transform(np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 1e3]]))
    with pytest.raises(DataError, match=r"new rows: 1 rows .*\(row 1: column 'tiny' is [\d.e+]+ training standard"):
        evaluate(run.model, rows, k=5, feature_names=run.spec.feature_names, what="new rows")
