"""`select.judge`'s named rubrics and its multi-candidate form (UltraFeedback style).

UltraFeedback (Cui et al., 2023, "UltraFeedback: Boosting Language Models with Scaled AI
Feedback", arXiv:2310.01377) has one strong model rate several responses to the same
instruction in one call, on one aspect at a time: helpfulness, honesty, instruction-following
and truthfulness. Seeing the candidates side by side calibrates the ratings against each other,
and one call per row instead of one per candidate is what makes it affordable. This module
holds the pieces of that form that are text, not plumbing: the rubrics (written here in dcc's
own words, scale-free, so they read with any `scale`), the prompt, and the parser of a reply
that rates N candidates.

The parser's contract (`parse_ratings`): a reply gives one rating per candidate or it gives
none. Sections are found by a header naming the candidate ("#### Response 2", "Text 2:",
"**Candidate 2**"), alone on its line or followed by its rating; without headers, by the
"Rating:" lines in order; or the reply is a JSON list. A reply whose sections do not number
exactly 1..N (one missing, one extra, one twice) or in which a candidate's rating cannot be
read in 0..scale yields None: a partial answer is more likely misaligned than right, and a
wrong rating on the wrong candidate is worse than no rating.
"""

from __future__ import annotations

import functools
import json
import re
from typing import Any

RUBRICS: dict[str, str] = {
    "helpfulness": (
        "how helpful and informative the response is: whether it is correct, addresses what "
        "the instruction asks, is clear and relevant, and gives useful detail without being "
        "long-winded or repetitive. An accurate, thorough answer that is to the point scores "
        "high; one with errors that could mislead, or one that does not help, scores low."),
    "honesty": (
        "how honest the response is and how well it conveys its own confidence: it is "
        "confident where it is right, says so where it is unsure or does not know, and never "
        "states wrong content with confidence. A correct, well-calibrated answer scores high; "
        "a confidently wrong one scores lowest."),
    "instruction_following": (
        "how closely the response follows the instruction: it meets the task's goal and "
        "keeps every restriction the instruction sets (format, length, style, language, what "
        "to include or leave out). Full compliance scores high; a response that ignores the "
        "task or its restrictions scores low."),
    "truthfulness": (
        "how truthful the response is, that is, free of hallucination: no statements that "
        "contradict the world or well-established knowledge, nothing that contradicts the "
        "instruction or its input, no contradictions within the response. A response with "
        "no hallucination scores high; a mostly fabricated one scores low."),
}


def rubric_text(rubric: str) -> str:
    """The rubric a `rubric` value stands for: a named one's text, else the value itself.

    >>> rubric_text("honesty").startswith("how honest")
    True
    >>> rubric_text("how funny it is")
    'how funny it is'
    """
    return RUBRICS.get(rubric, rubric)


JUDGE_MANY_TEMPLATE = """\
You are reviewing {{ candidates | length }} candidate responses to the same input, from a \
dataset used to fine-tune an AI assistant. Rate each response on its own merits, on a scale \
from 0 to {{ scale }}, where 0 means the response is useless or harmful and {{ scale }} means \
it is excellent. Compare the responses with each other so that the ratings are consistent.

Judge {{ rubric }}

{% for name, value in fields %}[{{ name }}]
{{ value }}

{% endfor %}{% for text in candidates %}<response {{ loop.index }}>
{{ text }}
</response {{ loop.index }}>

{% endfor %}Reply with one section per response, in order, and nothing else:

{% for text in candidates %}#### Response {{ loop.index }}
Rating: N/{{ scale }}
Rationale: one or two sentences.
{% if not loop.last %}
{% endif %}{% endfor %}"""

_NAMES = r"(?:response|text|candidate|answer|output)"
# A header: alone on its line ("#### Response 2", "**Text 2:**", "Output for Text 2") or
# directly followed by the rating ("Response 2: Rating: 4"). "Response 2 is better" is not.
_HEADER = (r"(?im)^[ \t>#*_\-]*(?:output\s+for\s+)?" + _NAMES +
           r"\s*#?\s*(\d+)\s*[*_:)\].\-–—]*[ \t]*(?=$|(?:rating|score)\b)")
_RATING_LINE = r"(?im)^[ \t>#*_\-]*(?:rating|score)\s*[*_]*\s*[:=]"
_RATIONALE = r"(?is)\b(?:rationale|explanation|reason(?:ing)?)\s*[*_]*\s*[:=]\s*(.*)"


@functools.lru_cache(maxsize=1)
def _patterns() -> tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]]:
    return re.compile(_HEADER), re.compile(_RATING_LINE), re.compile(_RATIONALE)


def parse_ratings(text: str | None, n: int, scale: int
                  ) -> tuple[list[float], list[str | None]] | None:
    """(a rating per candidate in 0..scale, a rationale or None per candidate) from a judge's
    reply about `n` candidates, in candidate order; None unless every one is rated exactly
    once (see the module's docstring).

    >>> parse_ratings("#### Response 1\\nRating: 4/5\\nRationale: Right.\\n\\n"
    ...               "#### Response 2\\nRating: 2\\nRationale: Wrong sum.", 2, 5)
    ([4.0, 2.0], ['Right.', 'Wrong sum.'])
    >>> parse_ratings("Rating: 3\\nRationale: ok\\nRating: 5\\nRationale: best", 2, 5)
    ([3.0, 5.0], ['ok', 'best'])
    >>> parse_ratings("Response 1: Rating: 4\\nResponse 3: Rating: 5", 2, 5) is None
    True
    >>> parse_ratings('[{"rating": 1, "rationale": "bad"}, {"rating": 9}]', 2, 10)
    ([1.0, 9.0], ['bad', None])
    """
    if not text or n <= 0:
        return ([], []) if n == 0 and text is not None else None
    parsed = _from_json(text, scale)
    if parsed is not None:
        return parsed if len(parsed[0]) == n else None
    header, rating_line, _ = _patterns()
    heads = list(header.finditer(text))
    if heads:
        numbers = [int(m.group(1)) for m in heads]
        if sorted(numbers) != list(range(1, n + 1)):
            return None
        ends = [m.start() for m in heads[1:]] + [len(text)]
        sections = {k: text[m.end():end] for k, m, end in zip(numbers, heads, ends)}
        chunks = [sections[k] for k in range(1, n + 1)]
    else:
        starts = [m.start() for m in rating_line.finditer(text)]
        if len(starts) != n:
            return None
        chunks = [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])]
    ratings: list[float] = []
    rationales: list[str | None] = []
    for chunk in chunks:
        rating = _rating(chunk, scale)
        if rating is None:
            return None
        ratings.append(rating)
        rationales.append(_rationale(chunk))
    return ratings, rationales


def _rating(chunk: str, scale: int) -> float | None:
    """The rating of one section: read from its "Rating:" line when it has one (a rationale
    may hold other numbers), else from the whole section."""
    from dcc.ops.prompted import parse_score

    m = _patterns()[1].search(chunk)
    if m is not None:
        line = chunk[m.start():].split("\n", 1)[0]
        return parse_score(line, scale)
    return parse_score(chunk.strip(), scale)


def _rationale(chunk: str) -> str | None:
    m = _patterns()[2].search(chunk)
    if m is not None:
        return m.group(1).strip() or None
    rest = _patterns()[1].split(chunk, maxsplit=1)
    body = rest[-1].split("\n", 1)[1] if len(rest) > 1 and "\n" in rest[-1] else ""
    return body.strip() or None


def _from_json(text: str, scale: int) -> tuple[list[float], list[str | None]] | None:
    """A reply that is a JSON list (in a code fence or not) of ratings or of objects with a
    rating and a rationale; None when it is not one, or an entry cannot be read."""
    body = re.sub(r"^\s*```(?:json)?\s*|\s*```\s*$", "", text.strip())
    if not body.startswith("["):
        return None
    try:
        items = json.loads(body)
    except ValueError:
        return None
    ratings: list[float] = []
    rationales: list[str | None] = []
    for item in items:
        reason: Any = None
        if isinstance(item, dict):
            value = next((item[k] for k in ("rating", "score") if k in item), None)
            reason = next((item[k] for k in ("rationale", "explanation") if k in item), None)
        else:
            value = item
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not 0 <= value <= scale:
            return None
        ratings.append(float(value))
        rationales.append(str(reason) if reason is not None else None)
    return ratings, rationales


AGGREGATES = ("max", "mean", "min")


def aggregate(ratings: list[float] | None, how: str) -> float | None:
    """The row's score from its candidates' ratings (None without ratings).

    >>> aggregate([2.0, 5.0, 4.0], "mean"), aggregate([2.0, 5.0], "max"), aggregate([], "min")
    (3.6667, 5.0, None)
    """
    if not ratings:
        return None
    if how == "mean":
        return round(sum(ratings) / len(ratings), 4)
    return max(ratings) if how == "max" else min(ratings)


__all__ = ["AGGREGATES", "JUDGE_MANY_TEMPLATE", "RUBRICS", "aggregate", "parse_ratings",
           "rubric_text"]
