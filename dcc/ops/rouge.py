"""ROUGE-L F-measure, as `rouge_score` computes it, with a bit-parallel LCS fast enough for pools.

Self-Instruct keeps a generated instruction only when its ROUGE-L similarity with every
instruction already in the pool is below a threshold; the paper's code scores with Google's
`rouge_score` (`RougeScorer(["rougeL"], use_stemmer=False)`, F-measure). This module gives the
same numbers without that package, for two reasons:

* speed: every candidate is compared with the whole pool (seeds plus everything accepted so
  far), so a run of n instructions makes O(n x pool) comparisons; `rouge_score` fills an
  O(len_a x len_b) table in pure Python per pair (the paper's code needed a process pool).
  Here the LCS is the bit-parallel algorithm of Allison and Dix / Hyyrö (2004): one pass over
  the other text with a few big-integer operations per token, and pairs that cannot reach the
  threshold whatever their order (2 x min(len) / (len_a + len_b) below it) are skipped;
* weight: `rouge_score` (last released 2022) pulls in nltk, absl-py and six for one function.

Tokens are what `rouge_score.tokenize` makes without a stemmer: the text lowercased, every run
of characters other than a-z and 0-9 a separator. So text in other scripts has no tokens and
scores 0 against anything (the Self-Instruct heuristics drop instructions that start with a
non-ASCII character before this check). F = 2 x LCS / (len_a + len_b); 0 when either side has
no tokens.

>>> rouge_l("Write a poem about the sea.", "Write a short poem about the sea!")
0.923076923076923
>>> rouge_l("Translate to French.", "")
0.0
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def tokenize(text: str) -> list[str]:
    """The tokens `rouge_score` scores (no stemming).

    >>> tokenize("It's 3:30 -- Café time!")
    ['it', 's', '3', '30', 'caf', 'time']
    """
    return _NON_ALNUM.sub(" ", text.lower()).split()


def lcs_length(a: Sequence[object], b: Sequence[object]) -> int:
    """Length of the longest common subsequence of two token sequences.

    >>> lcs_length("ABCBDAB", "BDCABA")
    4
    """
    if len(a) < len(b):
        a, b = b, a
    return _lcs_bits(_masks(a), len(a), b)


def _masks(a: Sequence[object]) -> dict[object, int]:
    """Per token, the bit set of its positions in `a`."""
    masks: dict[object, int] = {}
    for i, tok in enumerate(a):
        masks[tok] = masks.get(tok, 0) | (1 << i)
    return masks


def _lcs_bits(masks: dict[object, int], m: int, b: Iterable[object]) -> int:
    full = (1 << m) - 1
    v = full
    for tok in b:
        match = masks.get(tok)
        if match:
            u = v & match
            v = ((v + u) | (v - u)) & full
    return m - bin(v).count("1")


def f_measure(lcs: int, len_a: int, len_b: int) -> float:
    """ROUGE-L F from an LCS length, as rouge_score.scoring.fmeasure(precision, recall)."""
    if lcs == 0 or len_a == 0 or len_b == 0:
        return 0.0
    precision, recall = lcs / len_b, lcs / len_a
    return 2 * precision * recall / (precision + recall)


def rouge_l(a: str, b: str) -> float:
    """ROUGE-L F-measure of two texts (symmetric)."""
    ta, tb = tokenize(a), tokenize(b)
    return f_measure(lcs_length(ta, tb), len(ta), len(tb))


class UsesRouge:
    """Mixin for operators whose output depends on this module. The engine memoizes an
    operator's code fingerprint across processes keyed by the stat of the files that define
    the classes of its MRO; being in the MRO is what makes an edit here re-key them."""


class RougePool:
    """A growing set of texts to test new ones against: `max_score(text, at_least)` is the
    highest ROUGE-L F of `text` with any pooled text, computing exact scores only for pairs
    whose length bound can reach `at_least`. Tokens are interned to ints once, on `add`."""

    def __init__(self, texts: Iterable[str] = ()) -> None:
        self._ids: dict[str, int] = {}
        self._entries: list[tuple[int, ...]] = []
        for text in texts:
            self.add(text)

    def __len__(self) -> int:
        return len(self._entries)

    def _intern(self, text: str, grow: bool) -> tuple[int, ...]:
        out = []
        for tok in tokenize(text):
            tid = self._ids.get(tok)
            if tid is None:
                if not grow:
                    tid = -1 - len(out)  # unseen: matches nothing in the pool, never interned
                else:
                    tid = self._ids[tok] = len(self._ids)
            out.append(tid)
        return tuple(out)

    def add(self, text: str) -> None:
        self._entries.append(self._intern(text, grow=True))

    def max_score(self, text: str, at_least: float = 0.0) -> float:
        """The best ROUGE-L F of `text` against the pool; pairs that cannot score at least
        `at_least` count as 0 (so the answer is exact whenever it is >= `at_least`)."""
        cand = self._intern(text, grow=False)
        m = len(cand)
        if m == 0:
            return 0.0
        masks = _masks(cand)
        best = 0.0
        for entry in self._entries:
            n = len(entry)
            bound = 2 * min(m, n) / (m + n) if n else 0.0
            if bound < at_least or bound <= best:
                continue
            best = max(best, f_measure(_lcs_bits(masks, m, entry), m, n))
        return best


__all__ = ["RougePool", "UsesRouge", "f_measure", "lcs_length", "rouge_l", "tokenize"]
