"""Text and molecule sources (issue 8): a text file, a .smi file, a CSV column and the MOSES sets
read from the molsets wheel's files without importing it; the data spec's vocabulary, token ids and
their way back to text."""

from __future__ import annotations

import gzip
import importlib
import importlib.metadata
import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from vaekit.config import DataConfig
from vaekit.data.loaders import prepare_data
from vaekit.data.sources import load_source
from vaekit.data.spec import DataSpec
from vaekit.data.tokens import BOS, EOS
from vaekit.errors import DataError

MOLECULES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "C[C@@H](N)C(=O)O", "O=C=O", "ClCCl", "CCN(CC)CC",
             "c1ccncc1", "CC(C)Cc1ccc(cc1)C(C)C(=O)O", "OCC(O)CO"]


def test_a_text_file_is_one_sequence_a_line(tmp_path: Path) -> None:
    path = tmp_path / "corpus.txt"
    path.write_text("The cat sat.\n\n  A dog ran!  \n")
    data = load_source(DataConfig(source=str(path))).train
    assert data.kind == "sequence" and data.x.tolist() == ["The cat sat.", "A dog ran!"]


def test_a_smi_file_reads_the_first_field_and_defaults_to_smiles_tokens(tmp_path: Path) -> None:
    path = tmp_path / "mols.smi"
    path.write_text("".join(f"{smiles} mol{i}\n" for i, smiles in enumerate(MOLECULES)))
    prepared = prepare_data(DataConfig(source=str(path), test_fraction=0.2, val_fraction=0.0))
    assert sorted(prepared.train.x.tolist() + prepared.test.x.tolist()) == sorted(MOLECULES)
    vocabulary = prepared.spec.vocabulary
    assert vocabulary.kind == "smiles"
    assert ("Cl" in vocabulary.tokens) == ("Cl" in "".join(prepared.train.x))  # chlorine is one token
    assert "l" not in vocabulary.tokens


def test_bad_text_files_are_one_clear_error(tmp_path: Path) -> None:
    empty, binary = tmp_path / "empty.txt", tmp_path / "binary.txt"
    empty.write_text("\n \n")
    binary.write_bytes(b"ok\n\xff\xfe\n")
    with pytest.raises(DataError, match="no lines of text"):
        load_source(DataConfig(source=str(empty)))
    with pytest.raises(DataError, match="not UTF-8"):
        load_source(DataConfig(source=str(binary)))


def test_a_csv_text_column_with_labels(tmp_path: Path, caplog) -> None:
    path = tmp_path / "reviews.csv"
    path.write_text('review,stars\n"good film, loved it",5\n"dull",1\n,3\n"fine",3\n')
    data = load_source(DataConfig(source=str(path), text_column="review", label_column="stars")).train
    assert data.kind == "sequence" and data.x.tolist() == ["good film, loved it", "dull", "fine"]
    assert [data.class_names[v] for v in data.y] == ["5", "1", "3"]
    assert "1 rows with an empty 'review' left out" in caplog.text
    with pytest.raises(DataError, match="no column 'text' for data.text_column"):
        load_source(DataConfig(source=str(path), text_column="text"))


@pytest.fixture
def fake_molsets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A molsets install in miniature: its data files, and an __init__ that fails if imported."""
    package = tmp_path / "site" / "moses"
    (package / "dataset" / "data").mkdir(parents=True)
    (package / "__init__.py").write_text("raise RuntimeError('vaekit must not import moses')\n")
    for name, rows in (("train", MOLECULES[:8]), ("test", MOLECULES[8:])):
        with gzip.open(package / "dataset" / "data" / f"{name}.csv.gz", "wt") as handle:
            handle.write("SMILES\n" + "".join(f"{smiles}\n" for smiles in rows))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    importlib.invalidate_caches()

    def not_installed(name):  # a real molsets install, if any, is not the one under test
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    return package


def test_moses_is_read_from_the_wheels_files_without_importing_it(fake_molsets: Path) -> None:
    splits = load_source(DataConfig(source="moses"))
    assert splits.train.x.tolist() == MOLECULES[:8] and splits.test.x.tolist() == MOLECULES[8:]
    assert "moses" not in sys.modules
    prepared = prepare_data(DataConfig(source="moses", val_fraction=0.0))
    assert prepared.spec.vocabulary.kind == "smiles" and len(prepared.test) == 2


def test_moses_without_molsets_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import vaekit.data.sources.text as text

    monkeypatch.setattr(text, "moses_folder", lambda: None)
    with pytest.raises(DataError, match="pip install --no-deps molsets"):
        load_source(DataConfig(source="moses"))


def test_the_spec_turns_text_into_ids_and_back_and_survives_json(tmp_path: Path) -> None:
    path = tmp_path / "corpus.txt"
    path.write_text("the cat sat\nthe dog sat\nthe cat ran\na bird\n" * 3)
    prepared = prepare_data(DataConfig(source=str(path), tokens="word", min_freq=2, val_fraction=0.0,
                                       test_fraction=0.0))
    spec = prepared.spec
    assert spec.kind == "sequence" and spec.shape == [3 + 2] and spec.default_likelihood() == "tokens"
    ids = spec.transform(np.array(["the cat sat", "a zebra"], dtype=object))
    assert ids.dtype == torch.float32 and ids.shape == (2, 5)
    assert ids[0, 0] == BOS and ids[0, 4] == EOS
    assert spec.to_text(ids) == ["the cat sat", "a <unk>"]  # "zebra" is unknown: <unk>
    again = DataSpec.from_dict(json.loads(spec.dumps()))
    torch.testing.assert_close(again.transform(np.array(["the cat sat"], dtype=object)), ids[:1])
    torch.testing.assert_close(spec.transform(ids), ids)  # ids pass through, checked
    torch.testing.assert_close(spec.transform(np.array(["the cat sat", "a zebra"])), ids)  # numpy's own strings
    with pytest.raises(DataError, match="whole numbers in 0.."):
        spec.transform(ids + 0.5)
    with pytest.raises(DataError, match=r"the model expects \(N, 5\)"):
        spec.transform(torch.zeros(2, 7))


def test_max_samples_keeps_validation_in_proportion_and_eval_max_samples_caps_the_test(tmp_path: Path) -> None:
    """A large source cut to a few samples validates on its share of them, not on a tenth of the
    whole source; the final evaluation can be capped too."""
    import vaekit
    from vaekit.config import resolve_config

    path = tmp_path / "many.txt"
    path.write_text("".join(f"line {i % 50} of {i % 7}\n" for i in range(5000)))
    prepared = prepare_data(DataConfig(source=str(path), max_samples=200, val_fraction=0.1))
    assert len(prepared.train) == 200 and len(prepared.val) == 22 and len(prepared.test) == 1000
    config = resolve_config(preset="seq-vae", overrides=[
        f"data.source={path}", "data.max_samples=200", "train.epochs=1", "model.latent_dim=2", "model.embed_dim=8",
        "model.rnn_hidden=8", "train.progress=false", "eval.k=2", "eval.max_samples=50"])
    vaekit.train(config, out=tmp_path / "run")
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())["test"]
    assert metrics["n_samples"] == 50
