"""Final-answer extraction and normalization (dcc.ops.answers): the rules distill.cot's
rejection sampling compares with, as tables of replies and the answers they state."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from dcc.ops.answers import final_answer, normalize_answer, reference_answer

STATED = [
    # (reply, the answer as written, the rationale kept)
    ("Natalia sold 48/2 = 24 clips in May.\n#### 72", "72",
     "Natalia sold 48/2 = 24 clips in May.\n#### 72"),
    ("She pays 3 x 4 = 12.\n####  $1,080 \nQuestion: And next?\n#### 5", "$1,080",
     "She pays 3 x 4 = 12.\n####  $1,080 "),
    ("The sum is 4 + 5 = 9. The answer is 9.", "9.", None),
    ("First 2, then 3. So the answer is 2 and the final answer is: 3 apples", "3 apples", None),
    ("We get \\boxed{18} and later \\boxed{\\frac{3}{4}} done", "\\frac{3}{4}", None),
    ("Working...\nAnswer: 14", "14", None),
    ("**Answer:** 14", "14", None),
    ("####\nthe answer is 7", "7", None),  # an empty #### line states nothing
]


@pytest.mark.parametrize("reply, answer, kept", STATED)
def test_final_answer_finds_what_the_reply_states(reply: str, answer: str,
                                                  kept: str | None) -> None:
    found = final_answer(reply)
    assert found is not None and found[0] == answer
    assert reply[:found[1]] == (kept if kept is not None else reply)


@pytest.mark.parametrize("reply", ["", None, "I think it is about 40 or so.", "#### ",
                                   "\\boxed{} and nothing", "48 / 2 = 24"])
def test_a_reply_without_a_stated_answer_has_none(reply: str | None) -> None:
    assert final_answer(reply) is None


NUMBERS = [
    ("72", "72"), ("72.0", "72"), ("72.50", "72.5"), ("$1,080", "1080"), ("1,080.00", "1080"),
    ("109,200,000", "109200000"), ("-$5", "-5"), ("\u22125", "-5"), ("+7", "7"), ("-0", "0"),
    ("72 clips.", "72"), ("50%", "50"), ("$18.", "18"), ("**18**", "18"), ("\\$18", "18"),
    ("\\frac{3}{4}", "0.75"), ("3/4", "0.75"), ("1/3", "1/3"), ("6/3", "2"), (".5", "0.5"),
    ("48/2 = 24", "24"), ("x = 5", "5"), ("approximately 5.0", "5"), ("1{,}080", "1080"),
    (72, "72"), (72.0, "72"), (0.1, "0.1"),
]


@pytest.mark.parametrize("text, want", NUMBERS)
def test_numbers_normalize_to_one_exact_form(text: Any, want: str) -> None:
    assert normalize_answer(text) == want


@pytest.mark.parametrize("text", [None, "", "   ", "seventy-two", "was $36*3", "<<8-3>>5",
                                  "1/0", True, float("nan")])
def test_what_is_no_number_normalizes_to_none(text: Any) -> None:
    assert normalize_answer(text) is None


def test_text_answers_ignore_case_spacing_and_trailing_punctuation() -> None:
    assert normalize_answer("  The   Eiffel\nTower. ", "text") == "the eiffel tower"
    assert normalize_answer("**B**", "text") == normalize_answer("b", "text") == "b"
    assert normalize_answer(" .", "text") is None


def test_every_gsm8k_reference_reads_as_its_final_line(gsm8k: list[dict[str, Any]]) -> None:
    text = Path("/work/shared/data/gsm8k_train.jsonl").read_text(encoding="utf-8")
    rows = [json.loads(line) for line in text.splitlines()]
    assert len(rows) == 7473
    for row in rows:
        last = row["answer"].splitlines()[-1]
        assert last.startswith("#### ")
        assert reference_answer(row["answer"]) == last[5:].replace(",", "")


def test_references_without_a_marker_are_read_whole() -> None:
    assert reference_answer("1,000") == "1000"
    assert reference_answer(42) == "42"
    assert reference_answer("Paris", "text") == "paris"
    assert reference_answer("no number here") is None
    assert reference_answer(None) is None
