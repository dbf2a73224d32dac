"""Text fingerprints: could a model have seen this text?

A text is normalized (Unicode NFKC, lower case, every run of punctuation and whitespace made
one space), so a near-duplicate that differs only in case, punctuation or spacing gets the
same fingerprint. Its fingerprint is a 64-bit hash of the normalized text plus the 64-bit
hashes of its word n-grams (n = 8 and 13 are kept: 8 for single-sentence finance items,
13 as in GPT-3's and lm-eval's decontamination). Two texts overlap when their normalized
texts are equal or they share an n-gram. Only hashes are stored, never the text.

The hashes are exact sets (``np.uint64``, sorted and unique), so a lookup is a binary
search; a word is hashed once (blake2b) and an n-gram is a polynomial of its words' hashes
modulo 2**64, computed for a whole text at once with numpy. A training run's
:class:`Fingerprint` is its *lineage* (``lineage.npz`` beside its manifest).
"""
from __future__ import annotations

import hashlib
import io
import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

NGRAMS = (8, 13)  # the n-gram lengths a fingerprint keeps
DEFAULT_N = 8
LINEAGE_FILE = "lineage.npz"
_SEPARATORS = re.compile(r"[\W_]+", re.UNICODE)
_BASE = np.uint64(1099511628211)  # FNV's 64-bit prime: an odd multiplier for the n-gram polynomial
_WORDS: dict[str, int] = {}


def normalize(text: str) -> str:
    """Lower case, NFKC, punctuation and whitespace collapsed to single spaces."""
    return _SEPARATORS.sub(" ", unicodedata.normalize("NFKC", text).lower()).strip()


def _hash64(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def _text_key(norm: str) -> int:
    """The 64-bit hash of an already normalized text."""
    return _hash64("\x00" + norm)  # a prefix keeps text hashes apart from word hashes


def _word_hash(word: str) -> int:
    h = _WORDS.get(word)
    if h is None:
        h = _WORDS[word] = _hash64(word)
    return h


def _word_hashes(words: Sequence[str]) -> np.ndarray:
    return np.fromiter((_word_hash(w) for w in words), dtype=np.uint64, count=len(words))


def _powers(n: int) -> np.ndarray:
    powers = np.ones(n, dtype=np.uint64)
    with np.errstate(over="ignore"):  # arithmetic modulo 2**64 is the point
        for k in range(n - 2, -1, -1):
            powers[k] = powers[k + 1] * _BASE
    return powers


def ngram_hashes(words: np.ndarray, n: int) -> np.ndarray:
    """Hashes of every window of ``n`` word hashes (empty when the text is shorter than n)."""
    if len(words) < n:
        return np.empty(0, dtype=np.uint64)
    windows = np.lib.stride_tricks.sliding_window_view(words, n)
    with np.errstate(over="ignore"):
        return (windows * _powers(n)).sum(axis=1, dtype=np.uint64)


def _all_ngrams(norms: Sequence[str], n: int) -> tuple[np.ndarray, np.ndarray]:
    """Every text's n-gram hashes at once, and the index of the text each belongs to."""
    split = [s.split() for s in norms]
    lengths = np.array([len(w) for w in split], dtype=np.int64)
    words = np.fromiter((_word_hash(w) for ws in split for w in ws), dtype=np.uint64, count=int(lengths.sum()))
    if len(words) < n:
        return np.empty(0, dtype=np.uint64), np.empty(0, dtype=np.int64)
    owner = np.repeat(np.arange(len(norms)), lengths)
    starts = np.arange(len(words) - n + 1)
    valid = owner[starts] == owner[starts + n - 1]  # windows inside one text
    windows = np.lib.stride_tricks.sliding_window_view(words, n)[valid]
    with np.errstate(over="ignore"):
        return (windows * _powers(n)).sum(axis=1, dtype=np.uint64), owner[starts[valid]]


@dataclass(eq=False)  # hashed by identity: cached fingerprints key other caches
class Fingerprint:
    """Hashes of a set of texts: normalized texts, and word n-grams per n."""

    texts: np.ndarray = field(default_factory=lambda: np.empty(0, dtype=np.uint64))
    ngrams: dict[int, np.ndarray] = field(default_factory=dict)
    # What it was derived from (plumbing/derived.py's key), where that is known: lookups
    # against it can then be kept on disk too.
    key: str | None = None

    @classmethod
    def of(cls, texts: Iterable[str], ns: Sequence[int] = NGRAMS) -> "Fingerprint":
        norms = [normalize(text) for text in texts]
        hashes = np.unique(np.array([_text_key(s) for s in norms], dtype=np.uint64))
        return cls(hashes, {n: np.unique(_all_ngrams(norms, n)[0]) for n in ns})

    def __len__(self) -> int:
        return len(self.texts)

    def union(self, other: "Fingerprint") -> "Fingerprint":
        ns = sorted(set(self.ngrams) & set(other.ngrams)) if self.ngrams and other.ngrams \
            else sorted(set(self.ngrams) | set(other.ngrams))
        return Fingerprint(np.union1d(self.texts, other.texts),
                           {n: np.union1d(self.ngrams.get(n, np.empty(0, np.uint64)),
                                          other.ngrams.get(n, np.empty(0, np.uint64))) for n in ns})

    def overlaps(self, texts: Sequence[str], n: int = DEFAULT_N) -> np.ndarray:
        """For each text: is its normalized text, or any of its word n-grams, in this fingerprint?"""
        if n not in self.ngrams:
            raise ValueError(f"this fingerprint keeps n-grams of n = {sorted(self.ngrams)}, not n = {n}")
        norms = [normalize(text) for text in texts]
        out = self._has_normalized(norms)
        grams, owners = _all_ngrams(norms, n)
        out[np.unique(owners[_contains(self.ngrams[n], grams)])] = True
        return out

    def same_texts(self, texts: Sequence[str]) -> np.ndarray:
        """For each text: is its normalized text in this fingerprint (n-grams not consulted)?"""
        return self._has_normalized([normalize(text) for text in texts])

    def _has_normalized(self, norms: Sequence[str]) -> np.ndarray:
        return _contains(self.texts, np.array([_text_key(s) for s in norms], dtype=np.uint64))

    def save(self, path: str | Path) -> None:
        from plumbing.atomic import write_atomic

        buffer = io.BytesIO()
        np.savez_compressed(buffer, **self.arrays())
        write_atomic(Path(path), buffer.getvalue())

    @classmethod
    def load(cls, path: str | Path) -> "Fingerprint":
        try:
            with np.load(Path(path), allow_pickle=False) as data:
                arrays = {k: data[k] for k in data.files}
            found = cls.from_arrays(arrays)
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ValueError(f"{path}: not a finharness lineage file ({err})") from None
        # Sorted 1-D hash sets, as save() writes them: anything else answers membership wrongly (C1).
        for name, array in [("texts", found.texts), *[(f"ngrams_{n}", a) for n, a in found.ngrams.items()]]:
            if array.ndim != 1 or (len(array) > 1 and np.any(array[1:] < array[:-1])):
                raise ValueError(f"{path}: not a finharness lineage file ({name} is not a sorted list of hashes, "
                                 f"shape {array.shape})")
        return found

    def arrays(self) -> dict[str, np.ndarray]:
        """Its hash sets by name, as :meth:`save` writes them and :meth:`from_arrays` reads them."""
        return {"texts": self.texts, **{f"ngrams_{n}": v for n, v in self.ngrams.items()}}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], key: str | None = None) -> "Fingerprint":
        return cls(arrays["texts"].astype(np.uint64),
                   {int(k.split("_", 1)[1]): v.astype(np.uint64) for k, v in arrays.items() if k.startswith("ngrams_")},
                   key)


def _contains(sorted_set: np.ndarray, values: np.ndarray) -> np.ndarray:
    if not len(sorted_set):
        return np.zeros(len(values), dtype=bool)
    at = np.searchsorted(sorted_set, values)
    at[at == len(sorted_set)] = len(sorted_set) - 1
    return sorted_set[at] == values
