"""Near-copy detection: is a text (almost) one of a set of texts?

Two indexes share one normalisation (:func:`comparable_text`) and one n-gram hashing (:func:`char_ngrams`, NumPy
hashes that are the same in every process):

- :class:`NearDuplicateIndex`, exact and with containment, for a fixed set that must be protected: the validation
  texts (a generated row must not be one of them, even cut short or wrapped in other words);
- :class:`MinHashIndex`, incremental, Jaccard only, for the rows accepted so far (the quality gate's
  ``near_duplicate`` check), where containment would drop short rows that merely share a phrase with a longer one.

:class:`NearDuplicateIndex` compares texts on their sets of character 5-grams, after lower-casing, NFKC and turning
punctuation into spaces. A text is a near copy of an indexed text when the two sets' Jaccard similarity reaches
``threshold``, or when one set is contained in the other for a share ``threshold`` of its n-grams (the smaller set
having at least ``min_containment_ngrams`` of them, so that short common phrases are not copies). Copies in
capitals, with other punctuation, with a word changed (in texts of about 100 characters or more), wrapped in words
of their own, or cut short are found this way.

It is exact (no sampling, unlike MinHash): the n-grams of all indexed texts are kept as 64-bit hashes in one
sorted NumPy array, and a lookup counts the n-grams a text shares with every indexed text in one pass
(``searchsorted`` plus ``bincount``). Measured with 10,000 indexed texts of about 125 characters (1.1 million
n-grams, 13 MB): building took 1.7 s (once, at the first lookup) and a lookup 1.8 ms, on a shared 2-core machine.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable

import numpy as np

NGRAM = 5
_NON_WORD = re.compile(r"[\W_]+")


def comparable_text(text: str) -> str:
    """Lower-case, NFKC, punctuation to spaces, whitespace collapsed: what near copies are compared on."""
    text = unicodedata.normalize("NFKC", str(text)).lower()
    return " ".join(_NON_WORD.sub(" ", text).split())


def char_ngrams(text: str, n: int = NGRAM) -> np.ndarray:
    """The sorted, distinct 64-bit hashes of the character ``n``-grams of the normalised ``text``.

    Hashes are computed with NumPy (a polynomial rolling hash and a splitmix64 finaliser), so they are the same in
    every process and run. A text shorter than ``n`` is one n-gram.
    """
    return _hashed_ngrams(comparable_text(text), n)


def _hashed_ngrams(norm: str, n: int) -> np.ndarray:
    codes = np.frombuffer(norm.encode("utf-32-le"), dtype=np.uint32).astype(np.uint64)
    if len(codes) == 0:
        return np.zeros(0, dtype=np.uint64)
    m = max(1, len(codes) - n + 1)
    h = np.zeros(m, dtype=np.uint64)
    for j in range(min(n, len(codes))):
        h = h * np.uint64(0x100000001B3) + codes[j : j + m]
    h ^= h >> np.uint64(30)
    h *= np.uint64(0xBF58476D1CE4E5B9)
    h ^= h >> np.uint64(27)
    h *= np.uint64(0x94D049BB133111EB)
    h ^= h >> np.uint64(31)
    return np.unique(h)


def jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Jaccard similarity of two sorted arrays of distinct n-gram hashes (see :func:`char_ngrams`)."""
    if len(a) == 0 or len(b) == 0:
        return 0.0
    shared = len(np.intersect1d(a, b, assume_unique=True))
    return shared / (len(a) + len(b) - shared)


class NearDuplicateIndex:
    """An index of texts that answers "which indexed text is ``text`` a near copy of?".

    Args:
        threshold (`float`, defaults to `0.9`): Jaccard similarity, or share of the smaller n-gram set found in the
            other, from which a text is a near copy.
        min_containment_ngrams (`int`, defaults to `16`): Containment counts only when the smaller text has at least
            this many n-grams (about 20 characters); shorter texts must match by Jaccard similarity.
    """

    def __init__(self, threshold: float = 0.9, min_containment_ngrams: int = 16):
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        self.min_containment_ngrams = min_containment_ngrams
        self.texts: list[str] = []
        self._keys: dict[str, int] = {}
        self._pending: list[str] = []
        self._sizes = np.zeros(0, dtype=np.int64)
        self._hashes = np.zeros(0, dtype=np.uint64)
        self._ids = np.zeros(0, dtype=np.int64)

    def __len__(self) -> int:
        self._build()
        return len(self.texts)

    def add(self, texts: Iterable[str]) -> None:
        """Index ``texts`` (the n-grams are computed at the first lookup)."""
        self._pending.extend(str(t) for t in texts)

    def _build(self) -> None:
        if not self._pending:
            return
        pending, self._pending = self._pending, []
        hashes, ids, sizes = [self._hashes], [self._ids], [self._sizes]
        for text in pending:
            key = comparable_text(text)
            if not key or key in self._keys:
                continue
            self._keys[key] = len(self.texts)
            grams = char_ngrams(text)
            hashes.append(grams)
            ids.append(np.full(len(grams), len(self.texts), dtype=np.int64))
            sizes.append(np.array([len(grams)], dtype=np.int64))
            self.texts.append(text)
        hashes, ids = np.concatenate(hashes), np.concatenate(ids)
        order = np.argsort(hashes, kind="stable")
        self._hashes, self._ids, self._sizes = hashes[order], ids[order], np.concatenate(sizes)

    def find(self, text: str) -> int | None:
        """The position (in :attr:`texts`) of an indexed text that ``text`` is a near copy of, or None."""
        self._build()
        key = comparable_text(text)
        if not key or not self.texts:
            return None
        if key in self._keys:
            return self._keys[key]
        query = char_ngrams(text)
        lo = np.searchsorted(self._hashes, query, side="left")
        counts = np.searchsorted(self._hashes, query, side="right") - lo
        hit = counts > 0
        if not hit.any():
            return None
        starts, counts = lo[hit], counts[hit]
        # positions of every matching entry: start of each run plus 0..count-1
        offsets = np.repeat(starts - np.cumsum(counts) + counts, counts) + np.arange(int(counts.sum()))
        shared = np.bincount(self._ids[offsets], minlength=len(self.texts))
        size = len(query)
        jaccard = shared >= self.threshold * (self._sizes + size - shared)
        smaller = np.minimum(self._sizes, size)
        contained = (shared >= self.threshold * smaller) & (smaller >= self.min_containment_ngrams)
        found = np.flatnonzero(jaccard | contained)
        return int(found[0]) if len(found) else None


class MinHashIndex:
    """Texts seen so far, searchable by character n-gram Jaccard similarity.

    MinHash signatures split into bands (locality-sensitive hashing) give the candidates, and the exact Jaccard
    similarity of their n-gram sets decides, so a match is never a hash accident. The bands are chosen so that a pair
    at exactly ``threshold`` is a candidate with probability >= 99 %, and surer above it.

    Args:
        threshold (`float`, defaults to 0.9): Similarity at or above which :meth:`find` reports a near-duplicate.
        n (`int`, defaults to 5): Length of the character n-grams (of the normalised text).
        num_perm (`int`, defaults to 64): Length of the MinHash signatures.
    """

    def __init__(self, threshold: float = 0.9, n: int = 5, num_perm: int = 64, seed: int = 0):
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.threshold, self.n, self.num_perm = threshold, n, num_perm
        rng = np.random.default_rng(seed)
        self._a = rng.integers(1, 2**63, num_perm, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
        self._b = rng.integers(0, 2**63, num_perm, dtype=np.uint64)
        rows = 1
        for r in range(num_perm, 0, -1):  # the largest band width that still finds a pair at the threshold
            if 1.0 - (1.0 - threshold**r) ** (num_perm // r) >= 0.99:
                rows = r
                break
        self.rows, self.bands = rows, num_perm // rows
        self._buckets: dict[tuple[int, bytes], list[int]] = {}
        self._grams: list[np.ndarray] = []
        self._keys: set[str] = set()

    def __len__(self) -> int:
        return len(self._grams)

    def _signature(self, grams: np.ndarray) -> np.ndarray:
        if len(grams) == 0:
            return np.zeros(self.num_perm, dtype=np.uint64)
        return (self._a[:, None] * grams[None, :] + self._b[:, None]).min(axis=1)

    def _band_keys(self, grams: np.ndarray) -> list[tuple[int, bytes]]:
        sig = self._signature(grams)
        return [(i, sig[i * self.rows : (i + 1) * self.rows].tobytes()) for i in range(self.bands)]

    def add(self, texts: Iterable[str] | str) -> None:
        """Index ``texts`` (one string or many). A text whose normalised form is already indexed is skipped."""
        for text in [texts] if isinstance(texts, str) else texts:
            key = comparable_text(text)
            if not key or key in self._keys:
                continue
            self._keys.add(key)
            grams = _hashed_ngrams(key, self.n)
            doc = len(self._grams)
            self._grams.append(grams)
            for band in self._band_keys(grams):
                self._buckets.setdefault(band, []).append(doc)

    def similarity(self, text: str, stop_at: float | None = None) -> float:
        """The highest Jaccard similarity of ``text`` to an indexed text among the candidates (0.0 when none)."""
        key = comparable_text(text)
        if key in self._keys:
            return 1.0
        grams = _hashed_ngrams(key, self.n)
        candidates: set[int] = set()
        for band in self._band_keys(grams):
            candidates.update(self._buckets.get(band, ()))
        best = 0.0
        for doc in candidates:
            best = max(best, jaccard(grams, self._grams[doc]))
            if stop_at is not None and best >= stop_at:
                break
        return best

    def find(self, text: str) -> bool:
        """Whether an indexed text is at least ``threshold`` similar to ``text``."""
        return self.similarity(text, stop_at=self.threshold) >= self.threshold
