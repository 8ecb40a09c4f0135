"""Prompt compression by self-information, at the level of words: what `distill.compress` runs.

LLMLingua (Jiang et al., 2023) and Selective Context (Li et al., 2023) drop the parts of a
prompt a small causal LM finds most predictable: a token's self-information
-log p(token | prefix) measures what it adds. The backends expose `score(prefixes,
continuations)`, per-token log-probabilities of a continuation after its prefix, but not
where the tokens of a whole text begin and end. So dcc works on words (maximal runs of
non-whitespace, the lexical units of Selective Context) and scores each word as a
continuation of the original text before it:

    info(word_i) = -sum over its tokens of log p(token | text before word_i, earlier tokens)

A word's continuation holds the whitespace before it (" clips"), which is how a
byte-level tokenizer sees it inside the text, so its tokens, and their count, are those the
model would read. `plan(words, scores, ratio, protected)` then keeps words by their
self-information per token, highest first, until the kept words hold `ratio` of the text's
tokens, and `join` writes the kept words back in their original order.

Scoring word by word costs one scored sequence per word (a text of w words scores about
w^2/2 tokens, within the model's context window: the backend cuts a prefix from the left).
A backend method that returns one pass's token offsets with their log-probabilities would
bring this to one sequence per text; the word-level result would be the same.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_WORD = re.compile(r"(\s*)(\S+)")


@dataclass(frozen=True)
class Word:
    space: str  # the whitespace before the word in the original text
    text: str
    start: int  # where `space` starts in the original text


def words(text: str) -> list[Word]:
    """The words of `text`, each with the whitespace before it.

    >>> [(w.space, w.text) for w in words("Natalia sold\\n48 clips.")]
    [('', 'Natalia'), (' ', 'sold'), ('\\n', '48'), (' ', 'clips.')]
    """
    return [Word(m.group(1), m.group(2), m.start()) for m in _WORD.finditer(text)]


def requests(text: str, ws: list[Word]) -> tuple[list[str], list[str]]:
    """(prefixes, continuations) that score each word after the original text before it.

    >>> requests("Hi  there", words("Hi  there"))
    (['', 'Hi'], ['Hi', '  there'])
    """
    return [text[:w.start] for w in ws], [w.space + w.text for w in ws]


@dataclass(frozen=True)
class Scored:
    info: float  # self-information of the word's tokens, in nats
    tokens: int  # how many tokens were scored (0: the model gave none)

    @property
    def density(self) -> float:
        """Self-information per token; a word with no scored token ranks first."""
        return self.info / self.tokens if self.tokens else float("inf")


def plan(scored: Sequence[Scored], ratio: float, protected: Sequence[bool]) -> list[bool]:
    """Which words to keep so that the kept words hold at most `ratio` of the tokens.

    Protected words are kept first, whatever they cost (so they can push the result over
    the target). Then the other words, by self-information per token from highest to lowest
    (ties: the earlier word), are kept when their tokens still fit in the budget
    floor(ratio x all tokens); a word that does not fit is skipped and the next is tried.
    A word the model gave no token for counts one token.

    >>> s = [Scored(9.0, 1), Scored(1.0, 1), Scored(8.0, 2), Scored(0.5, 1)]
    >>> plan(s, 0.6, [False] * 4)
    [True, False, True, False]
    >>> plan(s, 0.2, [False, False, False, True])
    [False, False, False, True]
    """
    cost = [max(s.tokens, 1) for s in scored]
    budget = int(ratio * sum(cost) + 1e-9)
    keep = [bool(p) for p in protected]
    used = sum(c for c, k in zip(cost, keep) if k)
    order = sorted((i for i, k in enumerate(keep) if not k),
                   key=lambda i: (-scored[i].density, i))
    for i in order:
        if used + cost[i] <= budget:
            keep[i] = True
            used += cost[i]
    return keep


def join(ws: Sequence[Word], keep: Sequence[bool]) -> str:
    """The kept words in their order. Between two kept words goes the whitespace before the
    second, unless a dropped stretch between them held a line break: then the first such
    break's whitespace, so line structure survives. The result has no leading whitespace.

    >>> ws = words("Step one:\\nadd 3.  Then  stop.")
    >>> join(ws, [True, False, False, True, False, True])
    'Step\\n3.  stop.'
    """
    out: list[str] = []
    gap: list[str] = []
    for w, k in zip(ws, keep):
        if not k:
            gap.append(w.space)
            continue
        if out:
            breaks = [s for s in [*gap, w.space] if "\n" in s]
            out.append(breaks[0] if breaks else w.space)
        out.append(w.text)
        gap = []
    return "".join(out)


__all__ = ["Scored", "Word", "join", "plan", "requests", "words"]
