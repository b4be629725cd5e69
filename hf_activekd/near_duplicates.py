"""Near-copy detection: is a text (almost) one of a set of texts, e.g. the validation texts quoted in prompts?

Texts are compared on their sets of character 5-grams, after lower-casing, NFKC and turning punctuation into spaces.
A text is a near copy of an indexed text when the two sets' Jaccard similarity reaches ``threshold``, or when one
set is contained in the other for a share ``threshold`` of its n-grams (the smaller set having at least
``min_containment_ngrams`` of them, so that short common phrases are not copies). Copies in capitals, with other
punctuation, with a word changed (in texts of about 100 characters or more), wrapped in words of their own, or cut
short are found this way.

The index is exact (no sampling, unlike MinHash): the n-grams of all indexed texts are kept as 64-bit hashes in one
sorted NumPy array, and a lookup counts the n-grams a text shares with every indexed text in one pass
(``searchsorted`` plus ``bincount``). Measured with 10,000 indexed texts of about 125 characters (1.1 million
n-grams, 13 MB): building took 1.7 s (once, at the first lookup) and a lookup 1.8 ms, on a shared 2-core machine.
Near copies among generated rows themselves are not looked for (only exact copies are dropped there).
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


def ngram_hashes(text: str, n: int = NGRAM) -> np.ndarray:
    """The distinct character ``n``-grams of ``comparable_text(text)``, as int64 hashes (consistent within a
    process)."""
    text = comparable_text(text)
    grams = {text[i : i + n] for i in range(len(text) - n + 1)} if len(text) > n else ({text} if text else set())
    return np.fromiter((hash(g) for g in grams), dtype=np.int64, count=len(grams))


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
        self._hashes = np.zeros(0, dtype=np.int64)
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
            grams = ngram_hashes(text)
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
        query = ngram_hashes(text)
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
