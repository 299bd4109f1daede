"""Text and molecules as token sequences: four tokenisers and the vocabulary saved with a run.

- ``char``: one token per character.
- ``word``: words and punctuation marks (lower-cased), a vocabulary of those seen at least
  ``min_freq`` times; rarer ones become ``<unk>``.
- ``smiles``: the atom-level SMILES regular expression of Schwaller et al. (2019): bracket atoms,
  two-letter halogens, ring-bond numbers (``%12`` too), bonds and branches, each one token.
- ``selfies``: SELFIES symbols (Krenn et al. 2020; the ``selfies`` package, extra ``[chem]``); a
  SMILES string is translated to SELFIES first, and back when decoded, so every decoded string is
  a valid molecule's SELFIES.

A :class:`Vocabulary` maps tokens to ids with four reserved ones (``<pad>`` 0, ``<bos>`` 1, ``<eos>``
2, ``<unk>`` 3). Encoding never drops anything silently: unknown tokens, characters the SMILES
expression cannot read and sequences cut at ``max_len`` are counted and reported, once per call.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import sys
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from vaekit.errors import ConfigError, DataError

log = logging.getLogger("vaekit")

TokenKind = Literal["char", "word", "smiles", "selfies"]
TOKEN_KINDS: tuple[str, ...] = ("char", "word", "smiles", "selfies")
PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ["<pad>", "<bos>", "<eos>", "<unk>"]

SMILES_PATTERN = re.compile(
    r"(\[[^\]]+]|Br?|Cl?|N|O|S|P|F|I|b|c|n|o|s|p|\(|\)|\.|=|#|-|\+|\\|/|:|~|@|\?|>|\*|\$|%[0-9]{2}|[0-9])"
)
WORD_PATTERN = re.compile(r"[\w']+|[^\w\s]")
# Translating SMILES to SELFIES costs about 0.2 ms a molecule (5 minutes for the 1.58 M of MOSES on
# one core): from this many strings on, the work is spread over the CPU's cores.
PARALLEL_FROM = 20_000


def _selfies():
    try:
        import selfies
    except ImportError:
        raise ConfigError("data.tokens=selfies needs the selfies package: pip install 'vaekit[chem]'") from None
    return selfies


def split(text: str, kind: str) -> tuple[list[str], str]:
    """One string -> its tokens, and what could not be read ("" when everything was): for SMILES the
    characters outside every token of the expression; for SELFIES the reason a SMILES string has no
    SELFIES translation."""
    if kind == "char":
        return list(text), ""
    if kind == "word":
        return WORD_PATTERN.findall(text.lower()), ""
    if kind == "smiles":
        tokens = SMILES_PATTERN.findall(text)
        joined = "".join(tokens)
        if joined == text:
            return tokens, ""
        return tokens, "".join(sorted(set(text) - set(joined))) or text
    if kind == "selfies":
        selfies = _selfies()
        try:
            encoded = selfies.encoder(text)
        except selfies.EncoderError as error:
            return [], str(error).splitlines()[0][:80]
        return list(selfies.split_selfies(encoded)), ""
    raise ConfigError(f"data.tokens={kind!r}: expected one of {', '.join(TOKEN_KINDS)}")


def join(tokens: Sequence[str], kind: str) -> str:
    """Tokens -> text: words with single spaces (no space before punctuation), SELFIES decoded back
    to SMILES, the others concatenated."""
    if kind == "word":
        text = ""
        for token in tokens:
            glue = "" if not text or (not token[0].isalnum() and token[0] not in "'(<") else " "
            text += glue + token
        return text
    if kind == "selfies":
        return _selfies().decoder("".join(tokens)) or ""
    return "".join(tokens)


def _count(texts: Sequence[str], start: int, kind: str) -> tuple[Counter, int, int]:
    """One chunk of :meth:`Vocabulary.fit`: token counts, the longest sequence, the number of strings."""
    counts: Counter = Counter()
    longest = 0
    for text in texts:
        tokens, _ = split(text, kind)
        counts.update(tokens)
        longest = max(longest, len(tokens))
    return counts, longest, len(texts)


def _encode(texts: Sequence[str], start: int, kind: str, index: dict[str, int], max_len: int,
            what: str) -> tuple[np.ndarray, Counter, list[str], int]:
    """One chunk of :meth:`Vocabulary.encode` (rows from ``start``): ids, unknown tokens, unreadable
    inputs, truncated sequences."""
    ids = np.full((len(texts), max_len + 2), PAD, dtype=np.int64)
    unknown: Counter = Counter()
    unreadable, truncated = [], 0
    for row, text in enumerate(texts):
        if not isinstance(text, str):
            raise DataError(f"{what}: sequence {start + row} is {type(text).__name__}, expected text")
        tokens, bad = split(text, kind)
        if bad:
            unreadable.append(text if len(text) < 60 else text[:57] + "...")
        if len(tokens) > max_len:
            truncated += 1
            tokens = tokens[:max_len]
        coded = [index.get(token, UNK) for token in tokens]
        unknown.update(t for t, c in zip(tokens, coded, strict=True) if c == UNK)
        ids[row, : len(coded) + 2] = [BOS, *coded, EOS]
    return ids, unknown, unreadable, truncated


def _call(job: tuple[Callable[..., Any], Sequence[str], int, tuple[Any, ...]]) -> Any:
    fn, texts, start, args = job
    return fn(texts, start, *args)


def _by_chunks(fn: Callable[..., Any], texts: Sequence[str], kind: str, *args: Any) -> list[Any]:
    """``fn(chunk, start, kind, *args)`` over ``texts`` in order: in this process, or for many SELFIES
    strings in forked worker processes, one per core (Linux only: a fork needs no re-import of the
    caller's script, which a spawned worker would run again)."""
    workers = min(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1, 32)
    if kind != "selfies" or len(texts) < PARALLEL_FROM or workers < 2 or not sys.platform.startswith("linux"):
        return [fn(texts, 0, kind, *args)]
    _selfies()  # a missing package is one clear error here rather than one per worker
    size = -(-len(texts) // (workers * 4))
    jobs = [(fn, list(texts[i : i + size]), i, (kind, *args)) for i in range(0, len(texts), size)]
    with warnings.catch_warnings():  # Python 3.12+ warns about forking a threaded process; the workers only
        warnings.simplefilter("ignore", DeprecationWarning)  # run this module's pure-Python code
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            return pool.map(_call, jobs, chunksize=1)


@dataclass
class EncodeReport:
    """What encoding could not keep: counts and a few examples of each."""

    sequences: int = 0
    unknown: Counter = field(default_factory=Counter)  # token -> occurrences mapped to <unk>
    unreadable: list[str] = field(default_factory=list)  # inputs with characters the tokeniser cannot read
    truncated: int = 0  # sequences cut at max_len

    def describe(self, what: str) -> str | None:
        parts = []
        if self.unknown:
            shown = ", ".join(repr(t) for t, _ in self.unknown.most_common(8))
            parts.append(f"{sum(self.unknown.values())} unknown tokens became <unk> (most often {shown})")
        if self.unreadable:
            parts.append(f"{len(self.unreadable)} of {self.sequences} sequences hold characters the tokeniser "
                         f"cannot read (e.g. {self.unreadable[0]!r})")
        if self.truncated:
            parts.append(f"{self.truncated} of {self.sequences} sequences were cut at the maximum length")
        return f"{what}: " + "; ".join(parts) if parts else None


@dataclass
class Vocabulary:
    """Tokens by id for one tokeniser (``kind``); ``max_len`` counts the tokens between ``<bos>`` and
    ``<eos>``. Saved in the run's data_spec.json."""

    kind: str
    tokens: list[str]
    max_len: int
    min_freq: int = 1

    def __post_init__(self) -> None:
        if self.kind not in TOKEN_KINDS:
            raise ConfigError(f"data.tokens={self.kind!r}: expected one of {', '.join(TOKEN_KINDS)}")
        if self.tokens[: len(SPECIALS)] != SPECIALS:
            raise DataError(f"vocabulary: expected the reserved tokens {SPECIALS} first")
        self.index = {token: i for i, token in enumerate(self.tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    @property
    def length(self) -> int:
        """Positions per encoded sequence: ``<bos>``, up to ``max_len`` tokens, ``<eos>``."""
        return self.max_len + 2

    @classmethod
    def fit(cls, texts: Iterable[str], kind: str, min_freq: int = 1, max_len: int | None = None,
            what: str = "data") -> Vocabulary:
        """The vocabulary of ``texts``: every token (``word``: those seen at least ``min_freq``
        times), in order of frequency; ``max_len`` defaults to the longest sequence."""
        if min_freq < 1:
            raise ConfigError(f"data.min_freq={min_freq}: expected 1 or more")
        counts: Counter = Counter()
        longest, n = 0, 0
        for chunk_counts, chunk_longest, chunk_n in _by_chunks(_count, list(texts), kind):
            counts.update(chunk_counts)
            longest, n = max(longest, chunk_longest), n + chunk_n
        if n == 0 or not counts:
            raise DataError(f"{what}: no tokens to build a vocabulary from")
        kept = [t for t, c in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
                if c >= (min_freq if kind == "word" else 1) and t not in SPECIALS]
        return cls(kind=kind, tokens=SPECIALS + kept, max_len=int(max_len or longest), min_freq=min_freq)

    def encode(self, texts: Sequence[str], what: str = "input") -> tuple[np.ndarray, EncodeReport]:
        """Strings -> ids (N, length) int64: ``<bos>`` tokens ``<eos>``, then ``<pad>``; what could not
        be kept is in the report (and logged once)."""
        report = EncodeReport(sequences=len(texts))
        parts = []
        for ids, unknown, unreadable, truncated in _by_chunks(_encode, texts, self.kind, self.index,
                                                              self.max_len, what):
            parts.append(ids)
            report.unknown.update(unknown)
            report.unreadable.extend(unreadable)
            report.truncated += truncated
        ids = np.concatenate(parts) if parts else np.full((0, self.length), PAD, dtype=np.int64)
        message = report.describe(what)
        if message:
            log.warning(message)
        return ids, report

    def decode(self, ids: np.ndarray | Sequence[Sequence[int]]) -> list[str]:
        """Ids (N, T) -> strings: everything after ``<bos>`` up to the first ``<eos>`` (padding and
        reserved tokens left out, except ``<unk>`` in text, which marks where a rare word was)."""
        out = []
        shown_unknown = self.kind in ("char", "word")
        for row in np.asarray(ids).tolist():
            tokens = []
            for i in row[1:] if row and row[0] == BOS else row:
                if i == EOS:
                    break
                if i > UNK and i < len(self.tokens):
                    tokens.append(self.tokens[i])
                elif i == UNK and shown_unknown:  # text says where a rare word was; a molecule has no place for it
                    tokens.append(SPECIALS[UNK])
            out.append(join(tokens, self.kind))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k != "index"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vocabulary:
        try:
            return cls(kind=data["kind"], tokens=list(data["tokens"]), max_len=int(data["max_len"]),
                       min_freq=int(data.get("min_freq", 1)))
        except (KeyError, TypeError, ValueError) as error:
            raise DataError(f"vocabulary in data_spec.json: {error}") from None
