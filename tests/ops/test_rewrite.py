"""rewrite.normalize: each rule on literals, and a property test against plain Python."""

from __future__ import annotations

import json
import re
import unicodedata
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dcc.ops.base import RunContext
from dcc.ops.rewrite import RewriteNormalize
from dcc.schema import Schema


def reference(text: str) -> str:
    """DESIGN.md's rule, one step at a time, in plain Python."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(c for c in text
                   if c in "\n\t" or unicodedata.category(c) not in ("Cc", "Cf"))
    text = re.sub("[ \t]+", " ", text)
    text = "\n".join(line.rstrip(" ") for line in text.split("\n"))
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return text.strip()


def normalize(*texts: str | None) -> list[str | None]:
    df = pl.DataFrame({"t": list(texts)}, schema={"t": pl.String})
    return RewriteNormalize(fields=["t"]).run([df], RunContext(node="t"))["t"].to_list()


@pytest.mark.parametrize("text, expected", [
    ("ﬁne Ｆｕｌｌ ①", "fine Full 1"),                 # NFKC
    ("a\u200bb\ufeffc\x00d\x7fe\u00adf", "abcdef"),     # Cc and Cf dropped
    ("line\r\nnext\rjoined", "line\nnextjoined"),        # \r is a control character
    ("a \t  b\t\tc", "a b c"),                           # runs of spaces and tabs
    ("a\u00a0\u00a0b", "a b"),                           # NBSP is a space after NFKC
    ("    indented\n\tcode", "indented\n code"),
    ("end   \nof  \t\nlines  ", "end\nof\nlines"),      # spaces at line ends
    ("a\n\n\n\nb\n \n \n c", "a\n\nb\n\n c"),          # >= 3 newlines -> 2
    ("  \n\n padded \n\n ", "padded"),                   # stripped
    ("a\u2028b", "a\u2028b"),                            # other line breaks are kept
    ("", ""),
])
def test_rules(text: str, expected: str) -> None:
    assert normalize(text) == [expected]
    assert reference(text) == expected


def test_null_stays_null_and_other_columns_untouched() -> None:
    df = pl.DataFrame({"a": [" x ", None], "b": [" y ", " z "]})
    out = RewriteNormalize(fields=["a"]).run([df], RunContext(node="t"))
    assert out.rows() == [("x", " y "), (None, " z ")]


def test_several_fields_and_schema() -> None:
    op = RewriteNormalize(fields=["a", "b"])
    df = pl.DataFrame({"a": ["x  y"], "b": ["\tz"], "c": [1]})
    assert op.run([df], RunContext(node="t")).rows() == [("x y", "z", 1)]
    assert op.reads() == ["a", "b"] and op.writes() == ["a", "b"]
    assert op.output_schema([Schema({"a": "any", "b": "str", "c": "int"})]) == Schema(
        {"a": "str", "b": "str", "c": "int"})
    assert op.rowwise and op.kind == "map"


def test_non_string_column_raises() -> None:
    with pytest.raises(pl.exceptions.PolarsError):
        RewriteNormalize(fields=["n"]).run([pl.DataFrame({"n": [1]})], RunContext(node="t"))


def test_matches_reference_on_real_data(data: Path) -> None:
    rows = [json.loads(x) for x in (data / "gsm8k_train.jsonl").read_text().splitlines()]
    rows += [{"question": r["prompt"], "answer": r["canonical_solution"]} for r in
             map(json.loads, (data / "humaneval.jsonl").read_text().splitlines())]
    df = pl.DataFrame(rows)
    out = RewriteNormalize(fields=["question", "answer"]).run([df], RunContext(node="t"))
    assert out["question"].to_list() == [reference(r["question"]) for r in rows]
    assert out["answer"].to_list() == [reference(r["answer"]) for r in rows]
    # gsm8k question 9 has double spaces after full stops.
    assert out["question"][9].startswith("Tina makes $18.00 an hour. If she works")


# Code points assigned in Python's Unicode database (polars may know a newer Unicode, whose
# new characters this Python cannot judge), plus the whitespace and controls that matter.
ASSIGNED = st.characters(codec="utf-8").filter(lambda c: unicodedata.category(c) != "Cn")
TRICKY = st.sampled_from(list(" \t\n\r\x0b\x0c\x1c\x85\u00a0\u200b\u200d\u2028\u3000\ufeff"
                              "\u00ad\ufb01\u2460\uff21e\u0301"))
TEXT = st.text(st.one_of(ASSIGNED, TRICKY, TRICKY), max_size=40)


@settings(max_examples=300, deadline=None)
@given(st.lists(TEXT, min_size=1, max_size=20))
def test_property_matches_plain_python(texts: list[str]) -> None:
    assert normalize(*texts) == [reference(t) for t in texts]
