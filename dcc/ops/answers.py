"""Final answers of worked solutions: where a rationale states its answer, and when two agree.

`distill.cot` keeps a sampled rationale only when its final answer matches the row's reference
(rejection sampling, as in STaR and in GSM8K distillation), so whether "$1,080.00" and
"1080" are the same answer decides which rationales a dataset gets. The rules live here, in
one place, with their examples:

* `final_answer(text)` finds the answer a rationale states, trying in order: the first line
  that starts with `####` (GSM8K's convention: that line ends the solution), the last
  `\\boxed{...}`, then the last "final answer is/:" or "the answer is/:" phrase, or a line
  starting with "Answer:". It returns the answer as written and where the rationale may be
  cut (just after a `####` line, so text a model writes after its answer is not kept;
  otherwise the end of the text).
* `normalize_answer(text, kind)` puts an answer in a canonical form. For `kind="number"` the
  answer must start with a number, after optional markup (`**`, `$`, `\\(`), a currency sign
  or a sign: thousands separators (`1,080`) and a trailing `.0` go, a trailing unit, percent
  sign or sentence is ignored (`72 clips.` is 72), and the value is written exactly
  (`0.50` and `1/2` are both `0.5`; a fraction that does not end in decimals stays `p/q`).
  Anything else is no number (None). For `kind="text"` the answer is case-folded, with
  whitespace collapsed and trailing punctuation removed.
* `reference_answer(value, kind)` reads a reference column's value the same way: its
  `final_answer` when it states one (GSM8K's `answer` ends with `#### 72`), else the whole
  value; a number column is read as its number.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import Any

KINDS = ("number", "text")

_HASHES = re.compile(r"^[ \t]*####[ \t]*(.*?)[ \t]*$", re.MULTILINE)
_PHRASE = re.compile(r"(?:\bfinal\s+answer|\bthe\s+answer)\s*(?:is|:|=)\s*:?"
                     r"|^[ \t]*(?:\*\*)?answer(?:\*\*)?\s*[:=](?:\*\*)?",
                     re.IGNORECASE | re.MULTILINE)
_NUMBER = re.compile(r"([-+]?)\s*(?:\\?\$|[€£¥])?\s*(\d+(?:\.\d+)?|\.\d+)"
                     r"(?:\s*/\s*(\d+)(?![\d.]))?")
_LEADING = re.compile(r"^(?:\*\*|__|\\\(|\\\[|\$\$?|[€£¥]|\\\$|[:~≈]|\s|approximately\b"
                      r"|about\b)+", re.IGNORECASE)
_FRAC = re.compile(r"\\[dt]?frac\{([^{}]*)\}\{([^{}]*)\}")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


def final_answer(text: str | None) -> tuple[str, int] | None:
    """(the answer as written, where the rationale ends) or None when the text states none.

    >>> final_answer("48 / 2 = 24 clips in May.\\n#### 72\\nQuestion: ...")
    ('72', 33)
    >>> final_answer("So x = 4. The answer is 4 apples.")
    ('4 apples.', 33)
    >>> final_answer("... so we get \\\\boxed{\\\\frac{1}{2}} in the end")[0]
    '\\\\frac{1}{2}'
    >>> final_answer("Answer: B") , final_answer("no conclusion here")
    (('B', 9), None)
    """
    if not text:
        return None
    for m in _HASHES.finditer(text):
        if m.group(1):
            end = text.find("\n", m.end())
            return m.group(1), len(text) if end < 0 else end
    boxed = _last_boxed(text)
    if boxed:
        return boxed, len(text)
    found = None
    for m in _PHRASE.finditer(text):  # the last phrase that states something
        end = text.find("\n", m.end())
        found = text[m.end():len(text) if end < 0 else end].strip() or found
    return (found, len(text)) if found else None


def _last_boxed(text: str) -> str | None:
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 0, start + len("\\boxed")
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i + 1:j].strip() or None
    return None


def normalize_answer(text: Any, kind: str = "number") -> str | None:
    """The canonical form of an answer (see the module doc), or None when there is none.

    >>> [normalize_answer(a) for a in ["72", "$1,080.00", "72 clips.", "-3.50", "**18**"]]
    ['72', '1080', '72', '-3.5', '18']
    >>> [normalize_answer(a) for a in ["1/2", "4/2", "1/3", "+7", "-0", "50%", ".5"]]
    ['0.5', '2', '1/3', '7', '0', '50', '0.5']
    >>> normalize_answer("was $36*3"), normalize_answer("<<8-3>>5"), normalize_answer("")
    (None, None, None)
    >>> normalize_answer("  The  Eiffel Tower. ", kind="text")
    'the eiffel tower'
    """
    if text is None or isinstance(text, bool):
        return None
    if isinstance(text, (int, float)):
        return _exact(Fraction(repr(text))) if math.isfinite(text) else None
    if kind == "text":
        out = re.sub(r"\s+", " ", str(text)).strip().strip("*").rstrip(".!;:,").strip()
        return out.casefold() or None
    body = _FRAC.sub(r"\1/\2", str(text).replace("\u2212", "-").replace("{,}", ","))
    if "=" in body:  # "48/2 = 24": the value after the last '='
        body = body.rsplit("=", 1)[1]
    m = _NUMBER.match(_THOUSANDS.sub("", _LEADING.sub("", body)))
    if m is None:
        return None
    sign, digits, denom = m.groups()
    value = Fraction(digits if not digits.startswith(".") else "0" + digits)
    if denom is not None:
        if int(denom) == 0:
            return None
        value /= int(denom)
    return _exact(-value if sign == "-" else value)


def _exact(value: Fraction) -> str:
    """A fraction written exactly: an integer, a terminating decimal, or p/q."""
    if value.denominator == 1:
        return str(value.numerator)
    d, twos, fives = value.denominator, 0, 0
    while d % 2 == 0:
        d, twos = d // 2, twos + 1
    while d % 5 == 0:
        d, fives = d // 5, fives + 1
    if d != 1:
        return f"{value.numerator}/{value.denominator}"
    places = max(twos, fives)
    scaled = abs(value.numerator) * 10 ** places // value.denominator
    whole, frac = divmod(scaled, 10 ** places)
    sign = "-" if value < 0 else ""
    return f"{sign}{whole}.{str(frac).rjust(places, '0').rstrip('0')}"


def reference_answer(value: Any, kind: str = "number") -> str | None:
    """A reference column's answer, normalized; None when the value holds none.

    >>> reference_answer("Natalia sold 48/2 = <<48/2=24>>24 clips in May.\\n#### 72")
    '72'
    >>> reference_answer(72.0), reference_answer("1,000"), reference_answer(None)
    ('72', '1000', None)
    """
    if isinstance(value, str):
        stated = final_answer(value)
        return normalize_answer(stated[0] if stated else value, kind)
    return normalize_answer(value, kind)


__all__ = ["KINDS", "final_answer", "normalize_answer", "reference_answer"]
