"""select.*: literal expectations on slices of the shared data, the null rule, edge cases."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from dcc.errors import ParamError
from dcc.ops.base import RunContext
from dcc.ops.select import SelectDedup, SelectLength, SelectRegex, SelectSample, SelectWords
from dcc.ops.sources import LoadJsonl

BENCH = Path("/work/shared/bench/gen_data.py")


def run(op, df: pl.DataFrame, ctx: RunContext | None = None) -> pl.DataFrame:
    return op.run([df], ctx or RunContext(node="t"))


def jsonl(path: Path) -> pl.DataFrame:
    return LoadJsonl(path=str(path)).run([], RunContext(node="t"))


@pytest.fixture
def gsm8k(data: Path) -> pl.DataFrame:
    return jsonl(data / "gsm8k_train.jsonl")


@pytest.fixture
def humaneval(data: Path) -> pl.DataFrame:
    return jsonl(data / "humaneval.jsonl")


# -- select.length ----------------------------------------------------------------------------
def test_length_on_gsm8k_slice(gsm8k: pl.DataFrame) -> None:
    # The first ten questions have 155, 113, 260, 219, 103, 277, 217, 445, 400, 232 characters.
    head = gsm8k.head(10).with_row_index("i")
    kept = run(SelectLength(field="question", min=150, max=260), head)
    assert kept["i"].to_list() == [0, 2, 3, 6, 9]  # both bounds inclusive (260 kept)
    assert kept["question"][0].startswith("Natalia sold clips to 48 of her friends")


def test_length_count_matches_plain_python(data: Path, gsm8k: pl.DataFrame) -> None:
    kept = run(SelectLength(field="question", max=200), gsm8k)
    lines = (data / "gsm8k_train.jsonl").read_text().splitlines()
    expected = [q for q in (json.loads(x)["question"] for x in lines) if len(q) <= 200]
    assert kept.height == len(expected) == 3166
    assert kept["question"].to_list() == expected


def test_length_counts_code_points_and_null_is_empty() -> None:
    df = pl.DataFrame({"t": ["é", "e\u0301", "☃☃☃", "", None]})
    assert run(SelectLength(field="t", min=2), df)["t"].to_list() == ["e\u0301", "☃☃☃"]
    assert run(SelectLength(field="t", max=0), df)["t"].to_list() == ["", None]


def test_length_validation() -> None:
    with pytest.raises(ParamError, match="give 'min', 'max' or both"):
        SelectLength(field="t")
    with pytest.raises(ParamError, match="'max' must be >= 'min' \\(got min=5, max=2\\)"):
        SelectLength(field="t", min=5, max=2)
    with pytest.raises(ParamError, match="'min' must be >= 0"):
        SelectLength(field="t", min=-1)
    assert SelectLength(field="output", min=1).reads() == ["output"]


def test_non_string_column_raises() -> None:
    df = pl.DataFrame({"n": [1, 2]})
    for op in (SelectLength(field="n", min=1), SelectWords(field="n", min=1),
               SelectRegex(field="n", pattern="1")):
        with pytest.raises(pl.exceptions.PolarsError):
            run(op, df)


# -- select.words -----------------------------------------------------------------------------
def test_words_on_gsm8k_slice(gsm8k: pl.DataFrame) -> None:
    # The first ten questions have 31, 20, 50, 41, 20, 53, 47, 85, 83, 47 words.
    head = gsm8k.head(10).with_row_index("i")
    assert run(SelectWords(field="question", min=20, max=41), head)["i"].to_list() == [0, 1, 3, 4]
    counts = gsm8k["question"].map_elements(lambda q: len(q.split()), return_dtype=pl.Int64)
    assert run(SelectWords(field="question", min=50), gsm8k).height == (counts >= 50).sum()


@pytest.mark.parametrize("text, words", [
    ("", 0), ("   ", 0), ("one", 1), (" a  b\tc\nd ", 4),
    ("a\u00a0b\u3000c\u2028d", 4),   # no-break, ideographic and line separator split words
    ("a\x1cb\x1fc", 3),               # Python's str.split() separators
    ("a\u200bb", 1),                  # zero-width space is not whitespace
])
def test_words_are_python_split(text: str, words: int) -> None:
    assert len(text.split()) == words
    df = pl.DataFrame({"t": [text]})
    assert run(SelectWords(field="t", min=words, max=words), df).height == 1
    assert run(SelectWords(field="t", min=words + 1), df).height == 0


def test_words_null_has_zero_words() -> None:
    df = pl.DataFrame({"t": [None, "x"]}, schema={"t": pl.String})
    assert run(SelectWords(field="t", max=0), df)["t"].to_list() == [None]


# -- select.regex -----------------------------------------------------------------------------
def test_regex_keep_and_drop_on_humaneval(humaneval: pl.DataFrame) -> None:
    head = humaneval.head(12)
    kept = run(SelectRegex(field="prompt", pattern="(?i)STRING"), head)
    assert kept["entry_point"].to_list() == ["separate_paren_groups", "parse_nested_parens",
                                             "filter_by_substring", "make_palindrome",
                                             "string_xor"]
    typing = run(SelectRegex(field="prompt", pattern=r"^from typing import"), humaneval)
    assert typing.height == 21
    untyped = run(SelectRegex(field="prompt", pattern=r"^from typing import", keep=False),
                  humaneval)
    assert untyped.height == 164 - 21
    assert untyped["task_id"][0] == "HumanEval/2"


def test_regex_null_is_matched_as_empty_string() -> None:
    df = pl.DataFrame({"t": ["abc", "", None]})
    assert run(SelectRegex(field="t", pattern="^$"), df)["t"].to_list() == ["", None]
    assert run(SelectRegex(field="t", pattern="b"), df)["t"].to_list() == ["abc"]
    assert run(SelectRegex(field="t", pattern="b", keep=False), df)["t"].to_list() == ["", None]


@pytest.mark.parametrize("pattern, why", [
    ("(", "unclosed group"),
    ("(?=x)", "look-around, including look-ahead and look-behind, is not supported"),
    (r"(a)\1", "backreferences are not supported"),
])
def test_regex_invalid_pattern_is_a_param_error(pattern: str, why: str) -> None:
    with pytest.raises(ParamError) as exc:
        SelectRegex(field="t", pattern=pattern)
    assert str(exc.value) == (f"select.regex: 'pattern' is not a valid regular expression: "
                              f"{why} (got {pattern!r})")


def test_regex_validate_reports_the_param() -> None:
    op = SelectRegex(field="t", pattern="ok")
    op.p["pattern"] = "["
    assert [name for name, _ in op.validate()] == ["pattern"]


# -- select.dedup -----------------------------------------------------------------------------
def test_dedup_keeps_first_occurrence_in_order(data: Path) -> None:
    users = jsonl(data / "self_instruct_user_oriented_instructions.jsonl")
    head = run(SelectDedup(fields=["motivation_app"]), users.head(10))
    assert head["motivation_app"].to_list() == ["Grammarly", "Google Scholar", "Gmail",
                                                "Twitter", "IMDB", "you.com (YouWrite)"]
    assert head["id"][:3].to_list() == ["user_oriented_task_0", "user_oriented_task_3",
                                        "user_oriented_task_5"]
    ctx = RunContext(node="t")
    assert run(SelectDedup(fields=["motivation_app"]), users, ctx).height == 71
    assert ctx.stats["duplicates"] == 252 - 71


def test_dedup_on_seed_task_names(data: Path) -> None:
    seeds = jsonl(data / "self_instruct_seed_tasks.jsonl")
    kept = run(SelectDedup(fields=["name"]), seeds)
    assert kept.height == 174  # "fact_verification" names seed_task_92 and seed_task_160
    assert "seed_task_92" in kept["id"].to_list()
    assert "seed_task_160" not in kept["id"].to_list()
    assert run(SelectDedup(fields=["name", "instruction"]), seeds).height == 175
    # Nested values work as keys too.
    assert run(SelectDedup(fields=["instances"]), seeds).height == 175


def test_dedup_multiple_fields_nulls_and_exactness() -> None:
    df = pl.DataFrame({"a": ["x", "x", "x", None, None, "", "X"],
                       "b": [1, 1, 2, None, None, None, 1],
                       "n": [0, 1, 2, 3, 4, 5, 6]})
    assert run(SelectDedup(fields=["a", "b"]), df)["n"].to_list() == [0, 2, 3, 5, 6]
    assert run(SelectDedup(fields=["a"]), df)["n"].to_list() == [0, 3, 5, 6]


def test_dedup_normalize_is_opt_in() -> None:
    df = pl.DataFrame({"t": ["Hello  World", "hello world", " HELLO\tworld\n", "ｈｅｌｌｏ world",
                             "hello-world"], "k": [1, 1, 1, 1, 2]})
    assert run(SelectDedup(fields=["t"]), df).height == 5
    kept = run(SelectDedup(fields=["t"], normalize=True), df)
    assert kept["t"].to_list() == ["Hello  World", "hello-world"]  # rows themselves unchanged
    assert run(SelectDedup(fields=["t", "k"], normalize=True), df).height == 2


def test_dedup_method_choices() -> None:
    with pytest.raises(ParamError, match="'method' must be one of 'exact', 'minhash', "
                                         "'simhash', 'semantic'"):
        SelectDedup(fields=["t"], method="fuzzy")
    with pytest.raises(ParamError, match="must name at least one column"):
        SelectDedup(fields=[])


def test_reference_bench_counts(tmp_path: Path) -> None:
    """F1-F3 + D of shared/bench/README.md on 100k generated rows: 89,691 -> 85,220."""
    if not BENCH.is_file():
        pytest.skip("shared/bench/gen_data.py is not here")
    out = tmp_path / "b100k.jsonl"
    subprocess.run([sys.executable, str(BENCH), "--rows", "100000", "--out", str(out),
                    "--no-truth"], check=True, capture_output=True)
    df = jsonl(out)
    df = run(SelectLength(field="output", min=20, max=2000), df)
    df = run(SelectWords(field="instruction", min=3), df)
    alnum = pl.col("output").str.count_matches(r"[\p{L}\p{N}]") / pl.col("output").str.len_chars()
    df = df.filter(alnum >= 0.5)  # F3 has no operator yet
    assert df.height == 89_691
    assert run(SelectDedup(fields=["output"]), df).height == 85_220


# -- select.sample ----------------------------------------------------------------------------
def test_sample_sizes_and_order() -> None:
    df = pl.DataFrame({"i": list(range(100))})
    for kwargs, size in [({"n": 10}, 10), ({"n": 500}, 100), ({"n": 0}, 0),
                         ({"fraction": 0.29}, 29), ({"fraction": 0.1}, 10),
                         ({"fraction": 0.999}, 99), ({"fraction": 1.0}, 100),
                         ({"fraction": 0.0}, 0)]:
        out = run(SelectSample(**kwargs), df)["i"].to_list()
        assert len(out) == size, kwargs
        assert out == sorted(set(out)), kwargs  # original order, no repeats


def test_sample_is_seeded() -> None:
    import numpy as np

    df = pl.DataFrame({"i": list(range(50))})
    a = run(SelectSample(n=5, seed=3), df)["i"].to_list()
    assert a == run(SelectSample(n=5, seed=3), df)["i"].to_list()
    assert a == sorted(np.random.default_rng(3).choice(50, size=5, replace=False).tolist())
    assert a != run(SelectSample(n=5, seed=4), df)["i"].to_list()
    assert SelectSample.stochastic and SelectSample(n=1).p["seed"] == 0


def test_sample_on_gsm8k(gsm8k: pl.DataFrame) -> None:
    out = run(SelectSample(fraction=0.01, seed=0), gsm8k)
    assert out.height == 74  # floor(0.01 x 7473)
    assert out["question"].is_in(gsm8k["question"].implode()).all()


def test_sample_needs_exactly_one_size() -> None:
    with pytest.raises(ParamError, match="exactly one of 'n' and 'fraction'"):
        SelectSample()
    with pytest.raises(ParamError, match="exactly one of 'n' and 'fraction'"):
        SelectSample(n=1, fraction=0.5)
    with pytest.raises(ParamError, match="'fraction' must be <= 1"):
        SelectSample(fraction=1.5)
