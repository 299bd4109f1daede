"""Typed table columns: kinds inferred or declared, raw values to model space and back, the data spec
that carries them (JSON round trip, old run folders), the likelihood check, and the table loaders
and writers that keep text as text."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from vaekit.applications.visualize import save_array
from vaekit.config import DataConfig, ModelConfig, resolve_config
from vaekit.data.columns import Column, decode, encode, infer_columns, is_missing
from vaekit.data.sources.base import RawData
from vaekit.data.sources.tabular import from_frame, load_csv, load_parquet
from vaekit.data.spec import DataSpec
from vaekit.errors import ConfigError, DataError
from vaekit.models import build_model

NAMES = ["height", "smoker", "colour", "answer", "visits"]
COLOURS = ["red", "green", "blue"]


def mixed_table(n: int = 200, holes: float = 0.0, seed: int = 0) -> np.ndarray:
    """An object table (n, 5): height (float), smoker (0/1), colour (text), answer (yes/no), visits
    (non-negative integers); a fraction ``holes`` of the cells is None."""
    rng = np.random.default_rng(seed)
    x = np.empty((n, len(NAMES)), dtype=object)
    x[:, 0] = rng.normal(170.0, 10.0, n)
    x[:, 1] = rng.integers(0, 2, n).astype(float)
    x[:, 2] = rng.choice(COLOURS, n)
    x[:, 3] = rng.choice(["yes", "no"], n)
    x[:, 4] = rng.poisson(3.0, n).astype(float)
    x[:3, 2] = COLOURS  # every category is present
    if holes:
        x[rng.random(x.shape) < holes] = None
    return x


def table_spec(x: np.ndarray, **config) -> DataSpec:
    return DataSpec.fit(RawData(x=x, kind="table", feature_names=NAMES), DataConfig(source="mixed", **config))


# ------------------------------------------------------------------------------------------ kinds


def test_infer_columns_gives_each_column_its_kind() -> None:
    columns = infer_columns(mixed_table(), NAMES)
    assert [c.name for c in columns] == NAMES
    assert [c.kind for c in columns] == ["continuous", "binary", "categorical", "binary", "continuous"]
    assert columns[1].categories == ["0", "1"]
    assert columns[2].categories == ["blue", "green", "red"]  # sorted, so codes do not depend on row order
    assert columns[3].categories == ["no", "yes"]


def test_unnamed_columns_are_numbered() -> None:
    columns = infer_columns(np.array([[1.0, 0.0], [2.0, 1.0], [4.0, 1.0]]), None)
    assert [(c.name, c.kind) for c in columns] == [("x0", "continuous"), ("x1", "binary")]


@pytest.mark.parametrize("values", [np.array([[10.0], [2.0], [1.0], [2.0]]),
                                    np.array([["10"], ["2"], ["1"], ["2"]], dtype=object)])
def test_numeric_categories_sort_by_number(values: np.ndarray) -> None:
    (column,) = infer_columns(values, ["size"], {"size": "categorical"})
    assert column.kind == "categorical"
    assert column.categories == ["1", "2", "10"]  # not the string order 1 < 10 < 2
    codes = encode([column], values)
    assert codes[:, 0].tolist() == [2.0, 1.0, 0.0, 1.0]


def test_overrides_change_kinds() -> None:
    columns = infer_columns(mixed_table(), NAMES, {"visits": "count", "smoker": "categorical", "colour": "categorical"})
    kinds = {c.name: c.kind for c in columns}
    assert kinds == {"height": "continuous", "smoker": "categorical", "colour": "categorical",
                     "answer": "binary", "visits": "count"}
    inferred = [c.kind for c in infer_columns(mixed_table(), NAMES)]
    assert inferred.count("count") == 0, "these Poisson draws vary a little less than their mean: continuous"


def test_override_of_an_unknown_column_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="no column 'weight'"):
        infer_columns(mixed_table(), NAMES, {"weight": "count"})


def test_override_with_an_unknown_kind_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ordinal"):
        infer_columns(mixed_table(), NAMES, {"visits": "ordinal"})
    with pytest.raises(ConfigError, match="column_types"):
        resolve_config(overrides=["data.column_types={visits: ordinal}"])


def test_column_types_override_reaches_the_config() -> None:
    config = resolve_config(overrides=["data.column_types={visits: count, zip: categorical}"])
    assert config.data.column_types == {"visits": "count", "zip": "categorical"}


@pytest.mark.parametrize(("kind", "values"), [
    ("binary", [1.0, 2.0, 3.0]),
    ("count", [1.0, -2.0, 3.0]),
    ("count", [1.0, 2.5, 3.0]),
    ("count", ["a", "b", "c"]),
    ("continuous", ["a", "b", "c"]),
])
def test_a_declared_kind_the_values_cannot_have_is_a_data_error(kind: str, values: list) -> None:
    x = np.array([[v] for v in values], dtype=object)
    with pytest.raises(DataError, match="'visits'"):
        infer_columns(x, ["visits"], {"visits": kind})


@pytest.mark.parametrize("empty", [None, "", math.nan])
def test_a_column_with_no_values_is_a_data_error(empty) -> None:
    x = mixed_table(n=10)
    x[:, 2] = empty
    with pytest.raises(DataError, match="'colour'"):
        infer_columns(x, NAMES)
    numbers = np.array([[1.0, math.nan], [2.0, math.nan]])
    with pytest.raises(DataError, match="'x1'"):
        infer_columns(numbers, None)


# -------------------------------------------------------------------------------- encode / decode


def test_continuous_columns_are_standardised_on_the_training_data() -> None:
    x = mixed_table(holes=0.1)
    columns = infer_columns(x, NAMES)
    codes = encode(columns, x).double()
    height = codes[:, 0][~torch.isnan(codes[:, 0])]
    assert abs(float(height.mean())) < 1e-6
    assert abs(float(height.std(unbiased=False)) - 1.0) < 1e-6


def test_encode_decode_round_trip() -> None:
    x = mixed_table(n=50)
    columns = infer_columns(x, NAMES, {"visits": "count"})
    codes = encode(columns, x)
    assert codes.dtype == torch.float32 and codes.shape == (50, 5)
    assert set(codes[:, 1].tolist()) == {0.0, 1.0}
    assert codes[:3, 2].tolist() == [2.0, 1.0, 0.0]  # red, green, blue
    back = decode(columns, codes)
    assert back.dtype == object
    np.testing.assert_allclose(back[:, 0].astype(float), x[:, 0].astype(float), rtol=1e-6)
    np.testing.assert_array_equal(back[:, 1].astype(float), x[:, 1].astype(float))
    assert back[:, 2].tolist() == x[:, 2].tolist()
    assert back[:, 3].tolist() == x[:, 3].tolist()
    np.testing.assert_array_equal(back[:, 4].astype(float), x[:, 4].astype(float))


def test_decode_of_a_numeric_table_stays_numeric_and_keeps_holes() -> None:
    x = np.array([[1.0, 0.0, 5.0], [2.0, 1.0, math.nan], [3.0, 1.0, 7.0]])
    columns = infer_columns(x, None)
    back = decode(columns, encode(columns, x))
    assert back.dtype == np.float64
    np.testing.assert_allclose(back, x, rtol=1e-6)


def test_decode_of_values_already_in_data_units() -> None:
    x = mixed_table(n=20)
    columns = infer_columns(x, NAMES, {"visits": "count"})
    values = torch.tensor([[181.5, 0.8, 0.2, 0.0, 2.6]])  # a model mean: binary probability, code, count mean
    (row,) = decode(columns, values, model_space=False)
    assert row.tolist() == [pytest.approx(181.5), 1.0, "blue", "no", 3.0]


@pytest.mark.parametrize("marker", [None, math.nan, "", "NA", " na ", "?", "null"])
def test_missing_markers_become_nan(marker) -> None:
    x = mixed_table(n=20)
    columns = infer_columns(x, NAMES, {"visits": "count"})
    x[4] = marker
    codes = encode(columns, x)
    assert torch.isnan(codes[4]).all()
    assert not torch.isnan(codes[5]).any()
    assert is_missing(marker)


def test_decode_leaves_missing_text_cells_missing() -> None:
    x = mixed_table(n=20)
    columns = infer_columns(x, NAMES)
    x[4, 2] = None
    back = decode(columns, encode(columns, x))
    assert is_missing(back[4, 2]), f"a missing colour came back as {back[4, 2]!r}"


def test_unknown_category_is_a_data_error_naming_the_column() -> None:
    x = mixed_table(n=20)
    columns = infer_columns(x, NAMES)
    x[7, 2] = "purple"
    with pytest.raises(DataError, match="'colour'.*'purple'"):
        encode(columns, x, what="new.csv")


@pytest.mark.parametrize("bad", ["tall", math.inf, "-inf"])
def test_text_or_infinity_in_a_numeric_column_is_a_data_error(bad) -> None:
    x = mixed_table(n=20)
    columns = infer_columns(x, NAMES)
    x[3, 0] = bad
    with pytest.raises(DataError, match="'height'"):
        encode(columns, x)


def test_infinity_in_a_float_table_is_a_data_error() -> None:
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    columns = infer_columns(x, ["a", "b"])
    x[1, 1] = math.inf
    with pytest.raises(DataError, match="'b'"):
        encode(columns, x)


def test_negative_count_is_a_data_error() -> None:
    x = mixed_table(n=20)
    columns = infer_columns(x, NAMES, {"visits": "count"})
    x[2, 4] = -1.0
    with pytest.raises(DataError, match="'visits'"):
        encode(columns, x)


@pytest.mark.parametrize("width", [4, 6])
def test_wrong_number_of_columns_is_a_data_error(width: int) -> None:
    columns = infer_columns(mixed_table(n=20), NAMES)
    x = np.resize(mixed_table(n=20), (20, width))
    with pytest.raises(DataError, match="expects 5"):
        encode(columns, x)


# ------------------------------------------------------------------------------------- data spec


def test_spec_of_a_mixed_table() -> None:
    spec = table_spec(mixed_table(holes=0.2), column_types={"visits": "count"})
    assert spec.kind == "table" and spec.shape == [5]
    assert spec.feature_names == NAMES
    assert [c.kind for c in spec.columns] == ["continuous", "binary", "categorical", "binary", "count"]
    assert spec.has_missing
    assert spec.default_likelihood() == "table"
    assert not table_spec(mixed_table()).has_missing


def test_spec_json_round_trip_gives_the_same_transform() -> None:
    x = mixed_table(holes=0.2)
    spec = table_spec(x, column_types={"visits": "count"})
    again = DataSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    assert all(isinstance(c, Column) for c in again.columns)
    torch.testing.assert_close(again.transform(x), spec.transform(x), equal_nan=True)
    model_space = spec.transform(mixed_table(n=30, seed=1))
    assert again.to_table(model_space).tolist() == spec.to_table(model_space).tolist()


def test_spec_without_columns_from_an_old_run_folder_still_loads() -> None:
    legacy = {"kind": "table", "shape": [2], "scale": "standardize", "max_level": None, "loc": [1.0, -2.0],
              "std": [2.0, 0.5], "binarize": False, "value_range": [-3.0, 3.0], "n_levels": None,
              "class_names": None, "feature_names": ["a", "b"]}
    spec = DataSpec.from_dict(json.loads(json.dumps(legacy)))
    assert spec.columns is None and not spec.has_missing
    x = np.array([[3.0, -2.5], [1.0, -1.0]], dtype=np.float32)
    scaled = spec.transform(x)
    torch.testing.assert_close(scaled, torch.tensor([[1.0, -1.0], [0.0, 2.0]]))
    torch.testing.assert_close(spec.inverse(scaled), torch.from_numpy(x))
    assert spec.default_likelihood() == "gaussian"


def test_unit_scale_maps_continuous_columns_to_zero_one() -> None:
    x = mixed_table()
    spec = table_spec(x, scale="unit")
    height = spec.transform(x)[:, 0]
    assert float(height.min()) == pytest.approx(0.0, abs=1e-6)
    assert float(height.max()) == pytest.approx(1.0, abs=1e-6)
    np.testing.assert_allclose(spec.to_table(spec.transform(x))[:, 0].astype(float), x[:, 0].astype(float),
                               rtol=1e-5)


def test_inverse_maps_continuous_columns_back_and_keeps_codes() -> None:
    x = mixed_table(n=40)
    spec = table_spec(x)
    restored = spec.inverse(spec.transform(x)).double()
    np.testing.assert_allclose(restored[:, 0].numpy(), x[:, 0].astype(float), rtol=1e-5)
    assert restored[:3, 2].tolist() == [2.0, 1.0, 0.0]


def test_text_columns_refuse_a_non_table_likelihood() -> None:
    spec = table_spec(mixed_table())
    with pytest.raises(ConfigError, match=r"colour.*model\.likelihood=auto"):
        spec.check_likelihood("gaussian", "real")
    with pytest.raises(ConfigError, match=r"model\.likelihood=auto"):
        build_model(spec, ModelConfig(likelihood="gaussian", hidden=[8], latent_dim=2))


def test_missing_values_refuse_a_non_table_likelihood() -> None:
    x = np.random.default_rng(0).normal(size=(40, 3))
    x[5, 1] = math.nan
    spec = DataSpec.fit(RawData(x=x, kind="table"), DataConfig(source="holes"))
    assert spec.has_missing
    with pytest.raises(ConfigError, match="missing values"):
        spec.check_likelihood("gaussian", "real")


def test_a_complete_numeric_table_may_use_a_gaussian() -> None:
    spec = DataSpec.fit(RawData(x=np.random.default_rng(0).normal(size=(40, 3)), kind="table"),
                        DataConfig(source="numbers"))
    spec.check_likelihood("gaussian", "real")
    build_model(spec, ModelConfig(likelihood="gaussian", hidden=[8], latent_dim=2))


def test_the_table_likelihood_refuses_images() -> None:
    images = RawData(x=np.random.default_rng(0).integers(0, 256, (10, 1, 4, 4), dtype=np.uint8), kind="image",
                     max_level=255.0)
    spec = DataSpec.fit(images, DataConfig(source="images"))
    with pytest.raises(ConfigError, match="tables"):
        spec.check_likelihood("table", "table")


# -------------------------------------------------------------------------------- loaders, writers


def test_csv_keeps_text_columns_as_text(tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text("height,colour,visits\n171.5,red,3\n,blue,\n160,,1\n")
    x = load_csv(path, DataConfig(source=str(path))).train.x
    assert x.dtype == object and x.shape == (3, 3)
    assert x[:, 1].tolist() == ["red", "blue", None]
    assert x[0, 0] == 171.5 and math.isnan(x[1, 0]) and math.isnan(x[1, 2])


def test_csv_of_numbers_stays_float(tmp_path: Path) -> None:
    path = tmp_path / "numbers.csv"
    path.write_text("a,b\n1,2\n,4\n0.05068011873981862,5\n")
    x = load_csv(path, DataConfig(source=str(path))).train.x
    assert x.dtype == np.float64 and x[2, 0] == 0.05068011873981862  # every digit, as written
    assert math.isnan(x[1, 0]) and x[1, 1] == 4.0


def test_from_frame_keeps_text_as_text() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"height": [171.5, None, 160.0, 180.0], "colour": ["red", None, "blue", "green"],
                          "size": pd.Categorical(["s", "l", "s", "s"]), "smoker": [True, False, True, True],
                          "label": ["a", "b", "a", "b"]})
    raw = from_frame(frame, label_column="label")
    assert raw.feature_names == ["height", "colour", "size", "smoker"]
    assert raw.x.dtype == object and raw.x.shape == (4, 4)
    assert raw.x[:, 1].tolist() == ["red", None, "blue", "green"]
    assert raw.x[:, 2].tolist() == ["s", "l", "s", "s"]
    assert math.isnan(raw.x[1, 0])
    assert raw.y.tolist() == [0, 1, 0, 1] and raw.class_names == ["a", "b"]
    spec = DataSpec.fit(raw, DataConfig(source="frame"))
    assert [c.kind for c in spec.columns] == ["continuous", "categorical", "binary", "binary"]


def test_pandas_missing_markers_are_holes_not_categories() -> None:
    """pd.NA in a string column and NaN in a categorical column are missing, never the text "<NA>"."""
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"colour": pd.array(["red", pd.NA, "blue"], dtype="string"),
                          "size": pd.Categorical(["s", None, "l"]), "count": pd.array([1, None, 3], dtype="Int64")})
    raw = from_frame(frame)
    assert raw.x[1].tolist()[:2] == [None, None] and math.isnan(raw.x[1, 2])
    assert is_missing(pd.NA) and is_missing(pd.NaT) and not is_missing("<NA>x")
    spec = DataSpec.fit(raw, DataConfig(source="frame"))
    assert spec.columns[0].categories == ["blue", "red"]


def test_parquet_keeps_string_columns_as_text(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    path = tmp_path / "people.parquet"
    pq.write_table(pa.table({"height": [171.5, None, 160.0], "colour": ["red", None, "blue"]}), path)
    x = load_parquet(path, DataConfig(source=str(path))).train.x
    assert x.dtype == object and x.shape == (3, 2)
    assert x[:, 1].tolist() == ["red", None, "blue"]
    assert math.isnan(x[1, 0])


def test_save_array_writes_an_object_table_as_csv(tmp_path: Path) -> None:
    table = np.array([[1.25, "red", None], [math.nan, "blue", 3.0]], dtype=object)
    path = save_array(table, tmp_path / "out.csv", header=["height", "colour", "visits"])
    with path.open(newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows == [["height", "colour", "visits"], ["1.25", "red", ""], ["", "blue", "3"]]


def test_counts_are_inferred_for_spread_out_non_negative_integers_only() -> None:
    rng = np.random.default_rng(0)
    visits = rng.negative_binomial(2, 0.2, size=300).astype(np.float64)  # mean 8, variance 40
    years = rng.integers(2001, 2021, size=300).astype(np.float64)  # mean 2011, variance 33
    flags = rng.integers(0, 2, size=300).astype(np.float64)
    scores = rng.normal(size=300)
    table = np.stack([visits, years, flags, scores], 1)
    kinds = [c.kind for c in infer_columns(table, ["visits", "year", "flag", "score"])]
    assert kinds == ["count", "continuous", "binary", "continuous"]
    overridden = infer_columns(table, ["visits", "year", "flag", "score"], {"visits": "continuous"})
    assert overridden[0].kind == "continuous"


def test_a_column_of_two_values_is_binary_and_gives_back_exactly_those_values() -> None:
    """diabetes' sex is -0.0446 or 0.0507: it was a continuous column, imputed as 0.000435."""
    from sklearn.datasets import load_diabetes

    diabetes = load_diabetes()
    x, names = diabetes.data, list(diabetes.feature_names)
    columns = infer_columns(x, names)
    sex = columns[names.index("sex")]
    values = np.unique(x[:, 1])
    assert sex.kind == "binary" and [float(c) for c in sex.categories] == values.tolist()
    table = decode(columns, torch.tensor([[0.0] * 10, [0.3] * 10, [0.8] * 10]))  # codes, and probabilities of 1
    assert table[:, 1].tolist() == [values[0], values[0], values[1]]  # the numbers themselves, every digit
    assert infer_columns(x, names, {"sex": "continuous"})[1].kind == "continuous"  # unless declared


def test_a_third_value_in_the_held_out_rows_keeps_a_two_valued_column_numeric() -> None:
    train, held_out = np.array([[1.5], [2.5], [1.5]]), np.array([[4.0]])
    assert infer_columns(train, ["v"], others=[held_out])[0].kind == "continuous"


def test_few_whole_number_levels_are_categories_counts_and_measurements_are_not() -> None:
    rng = np.random.default_rng(0)
    x = np.column_stack([rng.choice([0, 1, 2], 100), rng.choice([2007, 2008, 2009], 100),
                         rng.negative_binomial(1, 0.3, 100), np.round(rng.normal(50.0, 5.0, 100))])
    kinds = [c.kind for c in infer_columns(x.astype(float), ["cls", "year", "visits", "age"])]
    assert kinds == ["categorical", "categorical", "count", "continuous"]
    assert infer_columns(np.array([[1.0], [2.0], [4.0]]), None)[0].kind == "continuous"  # too few rows to tell


def test_an_identifier_or_date_column_is_named_in_a_warning(caplog) -> None:
    """One value per row (an ID 1001.., a date) cannot be learned: training says so in one line;
    a measurement with repeats is not caught."""
    from vaekit.data.columns import infer_columns

    n = 60
    rng = np.random.default_rng(0)
    x = np.empty((n, 3), dtype=object)
    x[:, 0] = np.arange(1001, 1001 + n)
    x[:, 1] = [f"2007-11-{d:02d}" if d < 31 else f"2007-12-{d - 30:02d}" for d in range(1, n + 1)]
    x[:, 2] = rng.integers(3000, 3100, n)
    infer_columns(x, ["penguin_id", "date", "mass"])
    assert "penguin_id, date hold a different value" in caplog.text
    assert "mass" not in caplog.text.split("hold a different value")[0]
