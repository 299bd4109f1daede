"""The command line on text and molecules (issue 8): train the seq-vae preset on a text file and a
.smi file, then sample (printed, or one a line to .txt/.smi; greedy, sampled, top-k, beam),
reconstruct and interpolate as lines of text."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest

import vaekit

SMALL = ["--set", "model.latent_dim=4", "--set", "model.embed_dim=16", "--set", "model.rnn_hidden=32",
         "--set", "eval.k=5", "--quiet"]
MOLECULES = ["CCO", "c1ccccc1O", "CC(=O)Nc1ccc(O)cc1", "CC(=O)O", "O=C=O", "ClCCl", "CCN(CC)CC", "c1ccncc1"]


@pytest.fixture(scope="module")
def text_run(tmp_path_factory: pytest.TempPathFactory, invoke) -> Path:
    rng = random.Random(0)
    folder = tmp_path_factory.mktemp("text")
    corpus = folder / "corpus.txt"
    corpus.write_text("".join(f"{rng.choice(['a cat', 'the dog'])} {rng.choice(['sat', 'ran'])} here\n"
                              for _ in range(200)))
    invoke(["train", "--data", corpus, "--preset", "seq-vae", "--set", "data.tokens=word", "--epochs", "2",
            *SMALL, "--out", folder / "run"])
    return folder / "run"


@pytest.fixture(scope="module")
def smiles_run(tmp_path_factory: pytest.TempPathFactory, invoke) -> Path:
    folder = tmp_path_factory.mktemp("mols")
    (folder / "mols.smi").write_text("".join(f"{m}\n" for m in MOLECULES * 10))
    invoke(["train", "--data", folder / "mols.smi", "--preset", "seq-vae", "--epochs", "2", *SMALL,
            "--out", folder / "run"])
    return folder / "run"


def test_sample_prints_one_sentence_a_line(invoke, text_run: Path) -> None:
    lines = invoke(["sample", text_run, "--n", "5", "--seed", "1"]).stdout.splitlines()
    assert len(lines) == 5
    vocabulary = {"a", "cat", "the", "dog", "sat", "ran", "here"}
    assert all(set(line.split()) <= vocabulary for line in lines)


@pytest.mark.parametrize("decoding", ["greedy", "sample", "top-k", "beam"])
def test_each_decoding_writes_a_text_file(invoke, text_run: Path, tmp_path: Path, decoding: str) -> None:
    out = tmp_path / "samples.txt"
    invoke(["sample", text_run, "--n", "4", "--decode", decoding, "--seed", "3", "--out", out])
    assert len(out.read_text().splitlines()) == 4
    again = tmp_path / "again.txt"
    invoke(["sample", text_run, "--n", "4", "--decode", decoding, "--seed", "3", "--out", again])
    assert again.read_text() == out.read_text()  # seeded


def test_sample_molecules_to_smi_and_token_ids_to_npy(invoke, smiles_run: Path, tmp_path: Path) -> None:
    invoke(["sample", smiles_run, "--n", "6", "--decode", "sample", "--out", tmp_path / "mols.smi"])
    assert len((tmp_path / "mols.smi").read_text().splitlines()) == 6
    invoke(["sample", smiles_run, "--n", "3", "--out", tmp_path / "ids.npy"])
    ids = np.load(tmp_path / "ids.npy")
    assert ids.shape[0] == 3 and (ids[:, 0] == 1).all()  # each starts at <bos>


def test_reconstruct_and_interpolate_print_text(invoke, text_run: Path) -> None:
    pairs = invoke(["reconstruct", text_run, "--n", "3"]).stdout.splitlines()
    assert len(pairs) == 3 and all(line.count("\t") == 1 for line in pairs)
    lines = invoke(["interpolate", text_run, "--a", "0", "--b", "1", "--steps", "5"]).stdout.splitlines()
    held_out = vaekit.load(text_run).inputs()
    assert lines[0] == f"a: {held_out.x[0]}" and lines[-1] == f"b: {held_out.x[1]}", "the path between its inputs"
    assert len(lines) == 2 + 5


def test_an_image_suffix_for_text_is_one_line(run_main, text_run: Path, tmp_path: Path) -> None:
    code, _, err = run_main("sample", text_run, "--out", tmp_path / "samples.png")
    assert code == 2 and "expected a file ending in .txt or .smi or .npy" in err, err
    code, _, err = run_main("sample", text_run, "--decode", "nucleus")
    assert code == 2 and "decoding 'nucleus'" in err, err


def test_evaluate_reports_molecule_metrics(invoke, smiles_run: Path) -> None:
    pytest.importorskip("rdkit", reason="molecule metrics need RDKit (the chem extra)")
    import json

    invoke(["evaluate", smiles_run, "--k", "5", "--molecules", "50"])
    report = json.loads((smiles_run / "metrics.json").read_text())["evaluate"]["molecules"]
    assert report["n"] == 50 and 0.0 <= report["validity"] <= 1.0
    assert set(report) >= {"unique_at_1k", "unique_at_10k", "novelty", "int_div", "property_distance"}


def test_evaluate_molecules_refuses_a_text_run(run_main, text_run: Path) -> None:
    code, _, err = run_main("evaluate", text_run, "--k", "5", "--molecules", "10")
    assert code == 2 and "not trained on molecules" in err, err


@pytest.fixture(scope="module")
def property_run(tmp_path_factory: pytest.TempPathFactory, invoke) -> Path:
    """A logP head on the eight molecules, trained long enough (no word dropout, KL kept low) that
    it writes some of them back from their codes and not others."""
    pytest.importorskip("rdkit")
    folder = tmp_path_factory.mktemp("props")
    (folder / "mols.smi").write_text("".join(f"{m}\n" for m in MOLECULES * 10))
    invoke(["train", "--data", folder / "mols.smi", "--preset", "seq-vae", "--epochs", "10", *SMALL,
            "--set", "data.properties=[logp]", "--set", "train.lr=1e-2", "--set", "train.batch_size=8",
            "--set", "model.word_dropout=0", "--set", "train.kl_warmup_epochs=100", "--out", folder / "run"])
    return folder / "run"



def test_evaluate_reports_the_property_r2_as_training_does(invoke, property_run: Path, tmp_path: Path) -> None:
    run = Path(shutil.copytree(property_run, tmp_path / "run"))
    invoke(["evaluate", run, "--k", "2"])
    metrics = json.loads((run / "metrics.json").read_text())
    assert set(metrics["evaluate"]["property_r2"]) == set(metrics["test"]["property_r2"]) == {"logp"}

def test_optimize_prints_the_path_writes_csv_and_refuses_bad_input(invoke, run_main, property_run: Path,
                                                                   tmp_path: Path) -> None:
    lines = invoke(["optimize", property_run, "--seed", "CCO", "--property", "logp", "--steps", "10",
                    "--every", "5"]).stdout.splitlines()
    assert lines[0] == "step\tpredicted\tmeasured\tsmiles" and [line.split("\t")[0] for line in lines[1:]] == [
        "-1", "0", "5", "10"]
    assert lines[1].split("\t")[2:] == ["-0.001", "CCO"]  # the seed, measured
    out = tmp_path / "path.csv"
    invoke(["optimize", property_run, "--seed", "CCO", "--property", "logp", "--steps", "4", "--every", "2",
            "--minimize", "--decode", "beam", "--out", out])
    rows = out.read_text().splitlines()
    assert rows[0] == "step,smiles,valid,predicted_logp,measured_logp" and len(rows) == 5
    assert rows[1].startswith("-1,CCO,1,")
    for args, message in ((["--seed", "C1CC", "--property", "logp"], "RDKit cannot read it"),
                          (["--seed", "CCO", "--property", "qed"], "this run's head predicts logp"),
                          (["--seed", "CCO", "--property", "logp", "--decode", "top-k"], "expected greedy or beam"),
                          (["--seed", "CCO", "--property", "logp", "--out", tmp_path / "p.txt"], ".csv")):
        code, _, err = run_main("optimize", property_run, *args)
        assert code == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "p.txt").exists()


def test_optimize_says_when_the_seed_is_not_written_back_or_not_beaten(run_main, property_run: Path) -> None:
    from vaekit.evaluation.molecules import canonical

    written_back = []
    for seed in MOLECULES:
        code, out, err = run_main("optimize", property_run, "--seed", seed, "--property", "logp", "--steps", "4",
                                  "--every", "2")
        assert code == 0, err
        rows = [line.split("\t") for line in out.splitlines()[1:]]
        assert rows[0][0] == "-1" and rows[0][3] == seed
        first = canonical([rows[1][3]])[0]
        written_back.append(first == canonical([seed])[0])
        said = [line for line in err.splitlines() if "not to itself" in line]
        assert len(said) == (0 if written_back[-1] else 1), err
        assert not said or said[0].startswith(f"warning: the seed decodes to {rows[1][3] or 'an empty string'} (")
        seed_value = float(rows[0][2])
        decoded = [float(row[2]) for row in rows[1:] if row[2] != "invalid"]
        best_line = next(line for line in err.splitlines() if line.startswith(f"seed {seed}: "))
        assert float(best_line.rsplit(" ", 1)[1]) >= seed_value  # never worse than the seed
        beaten = any(value > seed_value for value in decoded)
        assert ("no molecule along the path beat the seed" in err) == (not beaten), err
        assert beaten or "best molecule: the seed itself" in best_line
    assert any(written_back) and not all(written_back), written_back
