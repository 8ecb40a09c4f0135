"""Running a fused stage: a chain of row-wise nodes as one lazy polars query.

No intermediate table is built or stored; each node's row count is captured inside the same
query by a `pl.len()` column after the node, which polars cannot move across the filters
around it. If the stage ends empty those columns are empty too, and the counts are recovered
by evaluating the chain's masks over the input (still one query, no table per node).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dcc.compiler.ir import Node
from dcc.ops.base import Filter, Map

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

_COUNT = "__dcc_rows_{}"
_ROW = "__dcc_row"


def is_selection(nodes: list[Node], schema: pl.Schema) -> bool:
    """True when the stage can only drop rows: every node is a plain Filter (its run() is
    Filter.run) and no column needs a cast, so the output keeps the input's columns and types
    and its rows are a subset of the input's, in order."""
    return all(isinstance(n.op, Filter) and type(n.op).run is Filter.run
               and not n.op.null_text_casts(schema) for n in nodes)


def run_stage(nodes: list[Node], df: pl.DataFrame,
              with_rows: bool = False) -> tuple[pl.DataFrame, list[int], np.ndarray | None]:
    """Apply every node of a stage to `df`; returns the result, each node's rows out and,
    with `with_rows` for a stage of filters (`is_selection`), the positions in `df` of the
    rows kept (computed by the engine, by carrying a row-index column through the query)."""
    import polars as pl

    casts = {str(e.meta.output_name()): e for n in nodes for e in n.op.null_text_casts(df.schema)}
    if casts:
        df = df.with_columns(list(casts.values()))
    with_rows = with_rows and not casts and is_selection(nodes, df.schema)
    lf = df.lazy()
    if with_rows:
        lf = lf.with_row_index(_ROW)
    names = []
    for i, node in enumerate(nodes):
        lf = _apply(node, lf, tuple(names))
        names.append(_COUNT.format(i))
        lf = lf.with_columns(pl.len().cast(pl.Int64).alias(names[-1]))
    out = lf.collect()
    if out.height:
        counts = [int(out[name][0]) for name in names]
    else:
        counts = _counts_when_empty(nodes, df)
    rows = None
    if with_rows:
        rows = out[_ROW].to_numpy().astype("int64")
        names.append(_ROW)
    return out.drop(names), counts, rows


def _apply(node: Node, lf: pl.LazyFrame, carry: tuple[str, ...] = ()) -> pl.LazyFrame:
    op = node.op
    if isinstance(op, Filter):
        return lf.filter(op.predicate())
    if isinstance(op, Map):
        return op.transform(lf, carry)
    raise TypeError(f"{op.name} cannot run inside a fused stage")


def _counts_when_empty(nodes: list[Node], df: pl.DataFrame) -> list[int]:
    """Rows after each node, by running the prefix chains' lengths in one collect_all."""
    import polars as pl

    lf = df.lazy()
    plans = []
    for node in nodes:
        lf = _apply(node, lf)
        plans.append(lf.select(pl.len()))
    return [int(r.item()) for r in pl.collect_all(plans)]
