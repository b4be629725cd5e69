"""The quality gate: cheap checks on every generated text before it is accepted, each drop under its own reason.

A weak or mis-prompted teacher writes markup, template residue, echoes of its own instructions, word salad, loops,
copies of the examples it was shown, and the same text over and over. Every such row that reaches training can only
hurt the student. :class:`QualityGate` drops them before they are written to the pool;
:class:`~hf_activekd.near_duplicates.MinHashIndex` finds texts close to earlier ones (character n-gram Jaccard
similarity, MinHash LSH for the candidates, checked exactly).

```python
>>> gate = QualityGate()
>>> gate.check("<p>Today the world will have a new thing called tech...</p>")
'markup'
>>> gate.check("I was charged $25.99 twice on 03/04, can you refund one?") is None
True
```
"""

from __future__ import annotations

import html
import re
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from .near_duplicates import MinHashIndex, char_ngrams

QUALITY_CHECKS = ("markup", "prompt_echo", "not_words", "repetition", "prompt_copy", "near_duplicate")

# HTML tags, template and code residue, JSON fragments, markdown code fences (entities: see has_markup).
_MARKUP = re.compile(
    r"</?[A-Za-z][A-Za-z0-9]*(?:\s[^<>]*)?/?>"  # <p>, </div>, <br/>, <a href="...">
    r"|\{\{|\}\}"  # repeated braces
    r"|\{\s*[\w.\-]*\s*\}"  # {placeholder}, {json_example_4}, {}
    r"|\{\s*\"|\[\s*\{|\"\s*\}"  # {"  [{  "}
    r"|\"(?:text|label|labels|examples?|class)\"\s*:"  # "text": "label":
    r"|```"  # markdown code fence
    r"|https?://|\b[\w-]+\.(?:[a-z]{2,4}\.)?[a-z]{2,4}/[\w./?=&%-]+|\w\.(?:html?|php|aspx?)\b"  # web addresses
    r"|\[(?:insert|your|name|placeholder|company|product)\b[^\]]{0,30}\]",  # [Your Name], [insert product]
    re.IGNORECASE,
)
# The teacher's own instructions (hf_activekd.prompts) coming back as a "sample".
_PROMPT_ECHO = re.compile(
    r"\bJSON\b"
    r"|\b(?:write|here are|generate|generated)\s+(?:\d+|two|three|four|five|six|seven|eight|nine|ten)\s+"
    r"(?:new,?\s+)?(?:diverse\s+)?(?:examples|samples)\b"
    r"|\b(?:new|diverse|more)\s+examples\s+of\b|\bexamples?\s+of\s+the\s+class\b|\bof\s+the\s+class\s+['\"]"
    r"|\bthe\s+student\s+(?:gets|would|was\s+confident)|\bstudent's\s+validation\b|\bvalidation\s+report\b"
    r"|\bhard\s+negatives?\b|\bdo\s+not\s+(?:copy|mention)\s+the\b|\bthe\s+class\s+name\b"
    r"|\bvary\s+length\b|\bexpert\s+annotator\b|\btext\s+classifier\b|\bexamples\s+above\b"
    r"|\b(?:true|predicted)\s*:\s*\w|\bconfidence\s+0?\.\d",
    re.IGNORECASE,
)
_ENTITY = re.compile(r"&(?:[A-Za-z]{2,8}|#\d{1,7}|#[xX][0-9A-Fa-f]{1,6});")
_WORD = re.compile(r"\w+")


def has_markup(text: str) -> bool:
    """HTML tags, template braces, JSON fragments, code fences, web addresses with a path, or an HTML entity of an
    ASCII character (``&amp;``, ``&#39;``, ``&lt;``). Entities of other characters (``caf&#233;``, ``&#163;5``) are
    encoding slips found in real scraped corpora (BBC News has them), not a sign of junk, and pass."""
    if _MARKUP.search(text) is not None or text.count("{") != text.count("}"):
        return True
    for entity in _ENTITY.findall(text):
        char = html.unescape(entity)
        if char != entity and (char.isascii() or char == "\xa0"):
            return True
    return False


def letter_ratio(text: str) -> float:
    """Letters (any script) over letters, symbols and half the digits: amounts and dates in a sentence pass, a
    string of digits or of symbols does not. Spaces don't count."""
    letters = sum(c.isalpha() for c in text)
    digits = sum(c.isdigit() for c in text)
    symbols = sum(not (c.isalnum() or c.isspace()) for c in text)
    total = letters + symbols + digits / 2
    return letters / total if total else 0.0


def is_repetitive(text: str) -> bool:
    """One word making most of the text, a phrase looping, or a long text that compresses far better than prose."""
    words = _WORD.findall(text.lower())
    if len(words) >= 6:
        top = Counter(words).most_common(1)[0][1]
        if top / len(words) > (0.5 if len(words) < 12 else 0.3) and top >= 4:
            return True
    trigrams = list(zip(words, words[1:], words[2:]))
    if len(trigrams) >= 6:
        counts = Counter(trigrams)
        if counts.most_common(1)[0][1] >= 3 and len(counts) / len(trigrams) < 0.6:
            return True
    data = text.encode("utf-8")
    return len(data) >= 200 and len(zlib.compress(data, 9)) / len(data) < 0.25


class QualityGate:
    """Drops generated texts that are junk, with one reason per check (the names of :data:`QUALITY_CHECKS`).

    - ``markup``: HTML tags or entities, braces of templates (``{{``, ``{placeholder}``), JSON fragments
      (``"text":``, ``{"``), markdown code fences, ``[Your Name]`` placeholders, web addresses with a scheme or a
      path (``sports.com.au/category/TV``, ``page.html``; a bare ``Amazon.com`` passes: news cites them).
    - ``prompt_echo``: the request's own instructions (``JSON``, ``Write 5 new examples``, ``hard negatives``,
      ``true: ... predicted: ...``) or a ``snake_case`` label name in the text.
    - ``not_words``: fewer letters than ``min_letter_ratio`` of the letters, symbols and half the digits.
    - ``repetition``: a word or a phrase repeated over and over.
    - ``prompt_copy``: at least ``near_duplicate_threshold`` similar to a text shown in the request's prompt, or
      holding that share of its n-grams (a copy with a few words added).
    - ``near_duplicate``: at least ``near_duplicate_threshold`` similar to a text accepted before (see :meth:`add`).

    Args:
        checks (`Sequence[str]`, defaults to all of :data:`QUALITY_CHECKS`): The checks to run; empty turns the
            gate off.
        near_duplicate_threshold (`float`, defaults to 0.9): Character 5-gram Jaccard similarity from which a text
            is a copy of a prompt text or a near-duplicate of an accepted one.
        min_letter_ratio (`float`, defaults to 0.6): Smallest share of letters among the letters, symbols and half
            the digits (any script: ``str.isalpha``).
    """

    def __init__(
        self,
        checks: Sequence[str] = QUALITY_CHECKS,
        near_duplicate_threshold: float = 0.9,
        min_letter_ratio: float = 0.6,
    ):
        unknown = sorted(set(checks) - set(QUALITY_CHECKS))
        if unknown:
            raise ValueError(f"Unknown quality checks {unknown}; valid ones are {list(QUALITY_CHECKS)}.")
        self.checks = [c for c in QUALITY_CHECKS if c in set(checks)]
        self.near_duplicate_threshold = near_duplicate_threshold
        self.min_letter_ratio = min_letter_ratio
        self.index = MinHashIndex(near_duplicate_threshold)
        self._prompt_grams: dict[str, np.ndarray] = {}

    @classmethod
    def from_config(cls, config: Any) -> QualityGate:
        """The gate of an :class:`~hf_activekd.ActiveKDConfig` (``quality_checks`` and its thresholds)."""
        return cls(config.quality_checks, config.near_duplicate_threshold, config.min_letter_ratio)

    def add(self, texts: Iterable[str] | str) -> None:
        """Remember accepted texts, so that later near-duplicates of them are dropped."""
        if "near_duplicate" in self.checks:
            self.index.add(texts)

    def _copies_prompt_text(self, text: str, prompt_texts: Sequence[str]) -> bool:
        """Whether ``text`` is similar to a shown text, or holds nearly all of it with at most as much again added
        (``"<shown> today"``). Long examples are clipped in prompts (``…``): then any addition counts as a copy."""
        if not prompt_texts:
            return False
        grams = char_ngrams(text)
        for shown in prompt_texts:
            clipped = shown.endswith("…")
            if shown not in self._prompt_grams:
                if len(self._prompt_grams) > 10_000:
                    self._prompt_grams.clear()
                self._prompt_grams[shown] = char_ngrams(shown.rstrip("…") if clipped else shown)
            seen = self._prompt_grams[shown]
            if len(seen) == 0 or len(grams) == 0:
                continue
            shared = len(np.intersect1d(grams, seen, assume_unique=True))
            if shared / (len(grams) + len(seen) - shared) >= self.near_duplicate_threshold:
                return True
            if shared / len(seen) >= self.near_duplicate_threshold and (clipped or len(grams) <= 2 * len(seen)):
                return True
        return False

    def check(self, text: str, label: str = "", prompt_texts: Sequence[str] = ()) -> str | None:
        """The reason to drop ``text`` (written for class ``label`` by a request that showed ``prompt_texts``), or
        None when it passes every check. Nothing is remembered: call :meth:`add` for the texts accepted."""
        for name in self.checks:
            if name == "markup":
                failed = has_markup(text)
            elif name == "prompt_echo":
                failed = _PROMPT_ECHO.search(text) is not None or ("_" in label and label in text)
            elif name == "not_words":
                failed = letter_ratio(text) < self.min_letter_ratio
            elif name == "repetition":
                failed = is_repetitive(text)
            elif name == "prompt_copy":
                failed = self._copies_prompt_text(text, prompt_texts)
            else:
                failed = len(self.index) > 0 and self.index.find(text)
            if failed:
                return name
        return None
