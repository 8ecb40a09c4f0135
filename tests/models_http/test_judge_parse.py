"""select.judge's score parser and rewrite.llm's reply rules, as tables of free text.

Each row is (judge reply, scale, expected score or None). The replies are the shapes judges
actually write: bare numbers, "Score: N/M", markdown bold, "N out of M" on another scale,
MT-Bench's "[[N]]", AlpaGasus's score-on-the-first-line, number words, percentages, and the
traps (numbers that are not scores, restated scales, out-of-range values, refusals).
"""

from __future__ import annotations

import pytest

from dcc.ops.prompted import clean_rewrite, is_refusal, parse_score

CASES = [
    # plain and keyword forms
    ("7", 10, 7.0),
    ("  8.5 ", 10, 8.5),
    ("9.", 10, 9.0),
    ("Score: 7/10", 10, 7.0),
    ("Score: 7", 10, 7.0),
    ("score=6", 10, 6.0),
    ("Rating:\n\n7", 10, 7.0),
    ("The response is accurate and complete. Score: 9/10", 10, 9.0),
    ("### Score: 3\nThe answer is wrong.", 10, 3.0),
    # markdown
    ("**8**", 10, 8.0),
    ("**Score:** 6/10", 10, 6.0),
    ("Clear and correct. **9**", 10, 9.0),
    ("`7`", 10, 7.0),
    # other scales, rescaled to ours
    ("Rating: 4 out of 5", 10, 8.0),
    ("I would rate this response 4.5 out of 5.", 5, 4.5),
    ("I would rate this response 4.5 out of 5.", 10, 9.0),
    ("Score: 7/10", 5, 3.5),
    ("Score: 85%", 10, 8.5),
    ("score of eight out of ten", 10, 8.0),
    ("I'd rate it a seven.", 10, 7.0),
    # conventions of known judge prompts
    ("Rating: [[7]]", 10, 7.0),
    ("The assistant did well. [[8]]", 10, 8.0),
    ("4.5\nThe response follows the instruction closely.", 5, 4.5),   # AlpaGasus
    ("3 - the answer misses the second part", 5, 3.0),
    # which number when there are several
    ("Helpfulness score: 6. Final score: 8/10", 10, 8.0),
    ("Score: 7-8", 10, 7.5),
    ("On a scale of 1 to 10, I would rate this response 8.", 10, 8.0),
    ("The response deserves a 9/10.", 10, 9.0),
    # nothing to read, or nothing in range
    ("", 10, None),
    ("N/A", 10, None),
    ("Score: N/A", 10, None),
    ("I cannot rate this response.", 10, None),
    ("The answer contains 3 errors.", 10, None),
    ("The scores range from 1 to 10. I liked it.", 10, None),
    ("Score: 11/10", 10, None),
    ("12", 10, None),
    ("Score: 0/10", 10, 0.0),
]


@pytest.mark.parametrize("reply, scale, expected", CASES)
def test_parse_score(reply: str, scale: int, expected: float | None) -> None:
    assert parse_score(reply, scale) == expected


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 20


def test_none_reply_is_unparsed() -> None:
    assert parse_score(None) is None


@pytest.mark.parametrize("reply, expected", [
    ("Hello there.", "Hello there."),
    ("  Hello there.\n\n", "Hello there."),
    ("Here is the rewritten text:\nHello there.", "Hello there."),
    ("Sure! Here's a more formal version:\n\nGood afternoon.", "Good afternoon."),
    ("<text>\nGood afternoon.\n</text>", "Good afternoon."),
    ("Here: is not a preamble", "Here: is not a preamble"),
    ("", ""),
])
def test_clean_rewrite(reply: str, expected: str) -> None:
    assert clean_rewrite(reply) == expected


@pytest.mark.parametrize("reply, original, refused", [
    ("I'm sorry, but I can't help with that.", "make this rude", True),
    ("I cannot rewrite this text.", "x", True),
    ("As an AI language model, I must decline.", "x", True),
    ("Sorry, I am unable to do that.", "x", True),
    ("I won't do that.", "x", True),
    ("I'm sorry for the late reply.", "sry 4 late reply", False),
    ("I cannot believe how good this is.", "cant believe how good", False),
    ("I'm sorry, but I can't come tonight.", "I'm sorry, but I can't come tonite", False),
])
def test_is_refusal(reply: str, original: str, refused: bool) -> None:
    assert is_refusal(reply, original) is refused
