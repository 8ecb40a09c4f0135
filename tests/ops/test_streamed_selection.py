"""Row selections from batches (an input larger than memory) equal the in-memory ones:
`select.sample` from the row count alone, exact `select.dedup` from 128-bit row hashes."""

from __future__ import annotations

import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from dcc.ops.base import RunContext
from dcc.ops.select import SelectDedup, SelectSample

TEXT = st.one_of(st.none(), st.sampled_from(["a", "A ", "a", "b  c", "B C", "", "é", "é"]))


def frames(df: pl.DataFrame, cuts: list[int]):
    """A `batches()` callable over `df` cut at the given sizes (the rest in one batch)."""
    def batches():
        at = 0
        for n in cuts + [df.height]:
            yield df.slice(at, n)
            at += n
            if at >= df.height:
                return
    return batches


@settings(max_examples=60, deadline=None)
@given(rows=st.lists(st.tuples(TEXT, st.one_of(st.none(), st.integers(0, 3))), max_size=40),
       cuts=st.lists(st.integers(0, 9), max_size=6), normalize=st.booleans(),
       fields=st.sampled_from([["t"], ["n"], ["t", "n"]]))
def test_streamed_exact_dedup_keeps_the_rows_select_rows_keeps(rows, cuts, normalize, fields):
    df = pl.DataFrame(rows, schema={"t": pl.String, "n": pl.Int64}, orient="row")
    op = SelectDedup(fields=fields, normalize=normalize)
    whole, streamed = RunContext("t"), RunContext("t")
    expect = op.select_rows(df, whole)
    got = op.select_rows_streamed(frames(df, cuts), df.height, streamed)
    assert got.tolist() == expect.tolist()
    assert streamed.stats == whole.stats


def test_only_exact_dedup_and_sample_stream() -> None:
    assert SelectDedup(fields=["t"]).streams_selection()
    assert not SelectDedup(fields=["t"], method="minhash").streams_selection()
    assert SelectSample(n=3).streams_selection()


def test_streamed_sample_never_reads_its_input() -> None:
    def unread():
        raise AssertionError("sample read its input")
    df = pl.DataFrame({"i": list(range(100))})
    op = SelectSample(fraction=0.29, seed=5)
    got = op.select_rows_streamed(unread, 100, RunContext("t"))
    assert got.tolist() == op.select_rows(df, RunContext("t")).tolist() and len(got) == 29
