"""Running a fused stage: a chain of row-wise nodes as one lazy polars query.

No intermediate table is built or stored; each node's row count is captured inside the same
query by a `pl.len()` column after the node, which polars cannot move across the filters
around it. If the stage ends empty those columns are empty too, and the counts are recovered
by evaluating the chain's masks over the input (still one query, no table per node).

A stage of filters and plain maps (a Map whose `transform` is `with_columns(exprs())`, each
expression naming one column) also says how its output derives from its input
(`Derivation`): which input rows it kept, found by carrying a row-index column through the
query, and which columns it wrote. The engine then stores the output as a view or patch of
its input's base table instead of a copy. A single Filter or Map node run outside a stage
goes through the same function.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dcc.compiler.ir import Node
from dcc.engine.artifacts import Derivation
from dcc.ops.base import Filter, Map

if TYPE_CHECKING:
    import polars as pl

_COUNT = "__dcc_rows_{}"
_ROW = "__dcc_row"


def written_columns(nodes: list[Node], casts: list[str]) -> tuple[str, ...] | None:
    """The columns a stage may change (the null-text `casts` and every map's outputs), or
    None when that cannot be known (a map with its own transform, an expression with several
    or unnamed outputs)."""
    import polars as pl

    cols = list(casts)
    for node in nodes:
        op = node.op
        if isinstance(op, Filter):
            continue
        if not isinstance(op, Map) or type(op).transform is not Map.transform:
            return None
        for e in op.exprs():
            try:
                if e.meta.has_multiple_outputs():
                    return None
                cols.append(e.meta.output_name())
            except pl.exceptions.PolarsError:
                return None
    return tuple(dict.fromkeys(cols))


def run_stage(nodes: list[Node], df: pl.DataFrame, with_rows: bool = False
              ) -> tuple[pl.DataFrame, list[int], Derivation | None]:
    """Apply every node of a stage to `df`; returns the result, each node's rows out and,
    with `with_rows`, how the result derives from `df` when `written_columns` knows."""
    import polars as pl

    casts = {str(e.meta.output_name()): e for n in nodes for e in n.op.null_text_casts(df.schema)}
    if casts:
        df = df.with_columns(list(casts.values()))
    written = written_columns(nodes, list(casts)) if with_rows else None
    track = written is not None and any(isinstance(n.op, Filter) for n in nodes)
    lf = df.lazy()
    if track:
        lf = lf.with_row_index(_ROW)
    names = []
    for i, node in enumerate(nodes):
        carry = (*names, _ROW) if track else tuple(names)
        lf = _apply(node, lf, carry)
        names.append(_COUNT.format(i))
        lf = lf.with_columns(pl.len().cast(pl.Int64).alias(names[-1]))
    out = lf.collect()
    if out.height:
        counts = [int(out[name][0]) for name in names]
    else:
        counts = _counts_when_empty(nodes, df)
    derivation = None
    if written is not None:
        rows = out[_ROW].to_numpy().astype("int64") if track else None
        derivation = Derivation(rows, written)
        if track:
            names.append(_ROW)
    return out.drop(names), counts, derivation


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
