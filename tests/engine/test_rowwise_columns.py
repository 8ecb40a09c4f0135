"""The row-wise executor's columnar paths: row hashes and result assembly.

`dcc.engine.rowkeys.row_keys` must give exactly `row_hash` of each row's {column: value} view
(the memo's on-disk keys), whichever path computes it; `run_rowpython` must give the same
table whether results were computed or read back from the memo.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from dcc.cache.rowmemo import RowMemo, row_hash
from dcc.cache.store import DiskStore
from dcc.engine.rowkeys import read_columns, row_hashes, row_keys
from dcc.engine.rowwise import run_rowpython
from dcc.ops.base import P, RowPython, RunContext


class Reads:
    def __init__(self, cols: list[str]) -> None:
        self.cols = cols

    def reads(self) -> list[str]:
        return self.cols


def reference(cols: list[str], df: pl.DataFrame) -> list[str]:
    """The definition: the canonical hash of each row's dict of the read columns."""
    keys = read_columns(Reads(cols), df)
    return [row_hash({c: row.get(c) for c in keys}) for row in df.to_dicts()]


def random_text(rng: random.Random) -> str | None:
    if rng.random() < 0.1:
        return None
    alphabet = "ab:\n\"\\ é中😀\t0"
    return "".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12)))


@pytest.mark.parametrize("seed", range(5))
def test_column_hashes_equal_the_per_row_definition(seed: int) -> None:
    rng = random.Random(seed)
    n = 200
    df = pl.DataFrame({
        "text": [random_text(rng) for _ in range(n)],
        "other": [random_text(rng) for _ in range(n)],
        "n": [None if rng.random() < 0.1 else rng.randrange(-2**63, 2**63) for _ in range(n)],
        "small": pl.Series([rng.randrange(-100, 100) for _ in range(n)], dtype=pl.Int16),
        "big": pl.Series([rng.randrange(0, 2**64) for _ in range(n)], dtype=pl.UInt64),
        "flag": [None if rng.random() < 0.1 else rng.random() < 0.5 for _ in range(n)],
        "none": [None] * n,
        "x": [rng.random() for _ in range(n)],  # floats: the per-row path
        "tags": [[random_text(rng)] for _ in range(n)],  # lists: the per-row path
    })
    for cols in (["text"], ["text", "other"], ["n", "small", "big", "flag"], ["none"],
                 ["no_such_column", "text"], ["x", "text"], ["tags"], []):
        assert row_hashes(Reads(cols), df) == reference(cols, df), cols
        assert row_keys(Reads(cols), df) == [bytes.fromhex(h) for h in reference(cols, df)]


def test_a_key_with_non_ascii_name_and_an_empty_frame() -> None:
    df = pl.DataFrame({"clé": ["a", None, "ü"]})
    assert row_hashes(Reads(["clé"]), df) == reference(["clé"], df)
    assert row_keys(Reads(["clé"]), df.head(0)) == []


def test_dates_fall_back_to_their_text_form() -> None:
    import datetime

    df = pl.DataFrame({"d": [datetime.date(2024, 1, 2), None]})
    keys = row_keys(Reads(["d"]), df)
    assert len(set(keys)) == 2 and keys == row_keys(Reads(["d"]), df)


class Score(RowPython):
    """Test-only: writes `len` and `shout`; drops rows whose text starts with "drop"."""

    name = "test.rowwise_score"
    expensive = True
    params = (P("field", "str", column=True),)
    calls = 0

    def writes(self) -> list[str]:
        return ["shout", "len"]

    def process(self, rows: list[dict[str, Any]], ctx: RunContext) -> list[Any]:
        type(self).calls += len(rows)
        out: list[Any] = []
        for row in rows:
            text = row[self.p["field"]] or ""
            out.append(None if text.startswith("drop") else
                       {"len": len(text), "shout": text.upper(), "extra": [1.5, None]})
        return out


def test_computed_and_memoized_results_give_the_same_table(tmp_path: Path) -> None:
    df = pl.DataFrame({"id": pl.Series(range(6), dtype=pl.Int32),
                       "text": ["a", "drop me", "bb", None, "a", "ccc"]})
    op = Score(field="text")
    with DiskStore(tmp_path / "s") as store:
        memo = RowMemo(store, "a" * 32)
        Score.calls = 0
        cold = run_rowpython(op, df, RunContext("t"), memo)
        assert Score.calls == 5  # "a" twice: sent once
        warm = run_rowpython(op, df, RunContext("t"), memo)
        assert Score.calls == 5
    assert cold.equals(warm) and cold.schema == warm.schema
    # input columns keep their types; new ones follow writes() order, then by name
    assert cold.columns == ["id", "text", "shout", "len", "extra"]
    assert cold.schema["id"] == pl.Int32
    assert cold["id"].to_list() == [0, 2, 3, 4, 5]
    assert cold["len"].to_list() == [1, 2, 0, 1, 3]


def test_results_that_are_not_dicts_are_a_clear_error(tmp_path: Path) -> None:
    class Bad(Score):
        name = "test.rowwise_bad"

        def process(self, rows: list[dict[str, Any]], ctx: RunContext) -> list[Any]:
            return [["not", "a", "dict"] for _ in rows]

    with DiskStore(tmp_path / "s") as store, pytest.raises(ValueError, match="must return a dict"):
        run_rowpython(Bad(field="text"), pl.DataFrame({"text": ["a"]}), RunContext("t"),
                      RowMemo(store, "b" * 32))


def test_every_row_dropped_keeps_the_columns(tmp_path: Path) -> None:
    df = pl.DataFrame({"text": ["drop 1", "drop 2"]})
    with DiskStore(tmp_path / "s") as store:
        out = run_rowpython(Score(field="text"), df, RunContext("t"), RowMemo(store, "c" * 32))
    assert out.height == 0 and out.columns == ["text", "shout", "len"]


def test_without_a_memo_results_are_taken_as_they_are() -> None:
    df = pl.DataFrame({"text": ["x", "drop", "yy"]})
    out = run_rowpython(Score(field="text"), df, RunContext("t"), None)
    assert out["shout"].to_list() == ["X", "YY"]
