"""`x.rejected`: the rows a select step dropped, as a dataset a recipe can export.

The compiler lowers a reference `x.rejected` (x a binding whose last step is a `select.*`
operator) to `rows.rejected(input of that step, x)`. Every select operator keeps a subset of
its input's rows in their original order, so the dropped rows are found by walking both
tables once: an input row that is the next kept row (equal on the input's columns) is kept,
any other was dropped. Rows that occur twice are matched in order, so the dropped copies are
the ones the operator dropped, or copies equal to them. Columns the select step added (a
score such as `_judge`) are not on the rejected rows: they keep the input's columns.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dcc.ops.base import Combinator, RunContext
from dcc.schema import Schema

if TYPE_CHECKING:
    import polars as pl


class RowsRejected(Combinator):
    """The rows of the first input (a select step's input) missing from the second (its
    output), in input order, with the first input's columns."""

    name = "rows.rejected"
    version = 1
    n_inputs = 2
    params = ()

    def input_columns(self, needed: set[str] | None) -> set[str] | None:
        return None  # rows are matched on every column

    def output_schema(self, inputs: list[Schema]) -> Schema:
        return inputs[0]

    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        import numpy as np
        import polars as pl

        source, kept = inputs
        cols = [c for c in source.columns if c in kept.columns]

        def lines(df: pl.DataFrame) -> list[str]:
            # JSON text per row: equal values give equal text whatever the chunking
            return df.select(cols).write_ndjson().splitlines() if df.height else []

        have, out = lines(source), lines(kept)
        dropped = np.ones(len(have), dtype=bool)
        j = 0
        for i, row in enumerate(have):
            if j < len(out) and row == out[j]:
                dropped[i] = False
                j += 1
        ctx.stats["rejected"] = int(dropped.sum())
        return source.filter(pl.Series(dropped))


__all__ = ["RowsRejected"]
