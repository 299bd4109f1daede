"""Tokenisers and the vocabulary: each tokeniser reads its text back exactly, rare words become
<unk> and are reported, nothing is dropped without a warning, and the vocabulary survives JSON."""

from __future__ import annotations

import json
import logging
import os

import numpy as np
import pytest

from vaekit.data.tokens import BOS, EOS, PAD, SPECIALS, UNK, Vocabulary, join, split
from vaekit.errors import ConfigError, DataError

# Real molecules from the MOSES training set (aromatic rings, charges, stereo, two-digit ring bonds).
SMILES = [
    "CCCS(=O)c1ccc2[nH]c(=NC(=O)OC)[nH]c2c1",
    "CC(C)(C)C(=O)C(Oc1ccc(Cl)cc1)n1ccnc1",
    "Cc1c(Cl)cccc1Nc1ncccc1C(=O)OCC(O)CO",
    "O=C([O-])c1ccccc1[N+](=O)[O-]",
    "C[C@@H]1CC[C@H](Br)CC1",
    "c1ccc2c(c1)CCCC%10CCCCC%10C2",
]
SENTENCES = ["The cat sat on the mat.", "A dog barked, then the cat ran!", "the end"]


@pytest.mark.parametrize("text", SMILES)
def test_smiles_tokens_rebuild_the_string_and_keep_atoms_whole(text: str) -> None:
    tokens, unreadable = split(text, "smiles")
    assert unreadable == "" and join(tokens, "smiles") == text
    assert "Cl" in tokens or "Cl" not in text
    assert all(not t.startswith("[") or t.endswith("]") for t in tokens)


def test_smiles_tokens_for_a_bracket_atom_and_a_two_digit_ring() -> None:
    assert split("[nH]", "smiles")[0] == ["[nH]"]
    assert split("C%10CC%10", "smiles")[0] == ["C", "%10", "C", "C", "%10"]
    assert split("Brc1ccccc1", "smiles")[0][:2] == ["Br", "c"]


def test_characters_outside_smiles_are_reported_not_lost_silently(caplog) -> None:
    tokens, unreadable = split("CC&C", "smiles")
    assert unreadable == "&" and tokens == ["C", "C", "C"]
    vocab = Vocabulary.fit(SMILES, "smiles")
    with caplog.at_level(logging.WARNING, logger="vaekit"):
        _, report = vocab.encode(["CC&C"], what="mols.smi")
    assert report.unreadable == ["CC&C"]
    assert "mols.smi" in caplog.text and "cannot read" in caplog.text


def test_words_split_punctuation_and_join_back() -> None:
    tokens, _ = split("The cat sat on the mat.", "word")
    assert tokens == ["the", "cat", "sat", "on", "the", "mat", "."]
    assert join(tokens, "word") == "the cat sat on the mat."
    assert join(split("A dog barked, then ran!", "word")[0], "word") == "a dog barked, then ran!"


def test_rare_words_become_unk_and_are_counted(caplog) -> None:
    vocab = Vocabulary.fit(SENTENCES, "word", min_freq=2)
    assert set(vocab.tokens[len(SPECIALS):]) == {"the", "cat"}
    with caplog.at_level(logging.WARNING, logger="vaekit"):
        ids, report = vocab.encode(["the cat sat"], what="corpus.txt")
    assert ids[0, :5].tolist() == [BOS, vocab.index["the"], vocab.index["cat"], UNK, EOS]
    assert report.unknown == {"sat": 1} and "1 unknown tokens became <unk>" in caplog.text
    assert vocab.decode(ids) == ["the cat <unk>"]  # <unk> marks where the rare word was


def test_chars_round_trip_through_ids_with_padding() -> None:
    vocab = Vocabulary.fit(["hello", "hi"], "char")
    ids, report = vocab.encode(["hi", "hello"])
    assert ids.shape == (2, vocab.length) and vocab.length == 5 + 2
    assert ids[0].tolist() == [BOS, vocab.index["h"], vocab.index["i"], EOS, PAD, PAD, PAD]
    assert vocab.decode(ids) == ["hi", "hello"] and not report.describe("x")


def test_long_sequences_are_cut_and_reported(caplog) -> None:
    vocab = Vocabulary.fit(["abc"], "char", max_len=3)
    with caplog.at_level(logging.WARNING, logger="vaekit"):
        ids, report = vocab.encode(["abcabc"])
    assert report.truncated == 1 and vocab.decode(ids) == ["abc"]
    assert "cut at the maximum length" in caplog.text


def test_the_most_frequent_tokens_get_the_smallest_ids() -> None:
    vocab = Vocabulary.fit(["aab", "a"], "char")
    assert vocab.tokens[len(SPECIALS):] == ["a", "b"]


def test_the_vocabulary_survives_json() -> None:
    vocab = Vocabulary.fit(SMILES, "smiles", max_len=60)
    again = Vocabulary.from_dict(json.loads(json.dumps(vocab.to_dict())))
    assert again.tokens == vocab.tokens and again.max_len == 60 and again.kind == "smiles"
    np.testing.assert_array_equal(again.encode(SMILES)[0], vocab.encode(SMILES)[0])
    with pytest.raises(DataError, match="vocabulary"):
        Vocabulary.from_dict({"kind": "char"})
    with pytest.raises(DataError, match="reserved tokens"):
        Vocabulary(kind="char", tokens=["a", "b"], max_len=3)


def test_unknown_tokeniser_and_bad_input_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="data.tokens='bpe'"):
        split("abc", "bpe")
    with pytest.raises(ConfigError, match="min_freq"):
        Vocabulary.fit(["a"], "word", min_freq=0)
    with pytest.raises(DataError, match="no tokens"):
        Vocabulary.fit([""], "char")
    with pytest.raises(DataError, match="sequence 1 is float"):
        Vocabulary.fit(["ab"], "char").encode(["ab", float("nan")])


def test_selfies_decode_to_the_same_molecule() -> None:
    pytest.importorskip("selfies")
    chem = pytest.importorskip("rdkit.Chem", reason="comparing molecules needs RDKit (the chem extra)")
    vocab = Vocabulary.fit(SMILES, "selfies")
    ids, report = vocab.encode(SMILES)
    assert not report.describe("x")
    assert all(t.startswith("[") and t.endswith("]") for t in vocab.tokens[len(SPECIALS):])
    for original, back in zip(SMILES, vocab.decode(ids), strict=True):  # the same molecule, maybe written otherwise
        assert chem.CanonSmiles(back) == chem.CanonSmiles(original), (original, back)


def test_many_selfies_are_translated_in_worker_processes_with_the_same_result(monkeypatch, caplog) -> None:
    pytest.importorskip("selfies")
    from vaekit.data import tokens

    texts = [*SMILES * 7, "C1CC", *SMILES * 5, 4.5]  # an unclosed ring (no SELFIES) and a non-string late on
    serial = Vocabulary.fit(texts[:-1], "selfies", max_len=12)
    serial_ids, serial_report = serial.encode(texts[:-1])
    calls, get_context = [], tokens.multiprocessing.get_context
    monkeypatch.setattr(tokens, "PARALLEL_FROM", 10)
    monkeypatch.setattr(tokens.multiprocessing, "get_context",
                        lambda method: calls.append(method) or get_context(method))
    parallel = Vocabulary.fit(texts[:-1], "selfies", max_len=12)
    ids, report = parallel.encode(texts[:-1])
    assert calls == ["fork", "fork"] or len(os.sched_getaffinity(0)) < 2
    assert parallel.tokens == serial.tokens and parallel.max_len == serial.max_len
    np.testing.assert_array_equal(ids, serial_ids)
    assert (report.unknown, report.unreadable, report.truncated) == (
        serial_report.unknown, serial_report.unreadable, serial_report.truncated)
    assert report.truncated > 0
    with pytest.raises(DataError, match=f"sequence {len(texts) - 1} is float"):  # row numbers across chunks
        parallel.encode(texts)


def test_decoded_text_shows_where_a_rare_word_was_and_molecules_leave_it_out() -> None:
    words = Vocabulary.fit(["the cat sat", "the dog sat"], "word", min_freq=2)
    ids, _ = words.encode(["the cat sat"])  # "cat" is rare: <unk>
    assert words.decode(ids) == ["the <unk> sat"]
    molecules = Vocabulary.fit(["CCO"], "smiles")
    assert molecules.decode([[BOS, molecules.index["C"], UNK, molecules.index["O"], EOS]]) == ["CO"]
