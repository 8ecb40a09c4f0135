"""The executor interface, and the local executor: where and how one node's work runs.

Operators never know where they run; the executor hands them tables and a `RunContext`.
The build engine (dcc.engine.build) owns everything else: keys, cache lookups, records,
views and stored artifacts, so every executor produces the same keys and the same bytes. An
executor decides only how four kinds of work are computed:

* `execute`      one node's operator on its input tables (sources, dataset operators,
                 combinators; row-wise Python operators through `process_batches`);
* `run_stage`    a fused chain of filters and maps (or one of them) over a table;
* `select_rows`  the kept rows of a dataset operator that selects rows (dedup, sample);
* `process_batches`  a row-wise Python operator's batches of new rows (model calls).

`LocalExecutor` does all four in this process; `dcc.engine.ray_executor.RayExecutor`
overrides the last three to run them on a Ray cluster (docs/executors.md).
Row-wise Python operators (model calls) go through the row memo here: rows whose result is
memoized are not sent to the operator, new results are committed batch by batch, so a build
killed at 90% of such a node resumes at 90%, and a source that grows by 1% costs about 1%.
A row-wise operator with a ranked `keep=` (`KeepBest`: "the best 30%") computes each row's
score the same way, then gets the whole result back for its top-k (`select_kept`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from dcc.cache.keys import KeyParts
from dcc.cache.rowmemo import RowMemo, request_memo
from dcc.cache.store import DiskStore
from dcc.compiler.ir import Node
from dcc.engine import events as ev
from dcc.engine.rowwise import count_new_rows, process_here, run_rowpython
from dcc.ops.base import KeepBest, RowPython, RunContext

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np
    import polars as pl

    from dcc.engine.artifacts import Derivation


class LocalExecutor:
    """Runs everything in this process."""

    def __init__(self, store: DiskStore, emit: Callable[[ev.Event], None],
                 options: dict[str, Any]) -> None:
        self.store = store
        self.emit = emit
        self.options = options

    def context(self, node: Node) -> RunContext:
        """The one way a node's RunContext is made: its seed, options, progress and the
        model-request memo every model call goes through."""
        seed = int(node.op.p.get("seed") or 0) if node.op.stochastic else 0
        return RunContext(node=node.name, seed=seed, options=self.options,
                          progress=lambda d, t: self.emit(ev.NodeProgress(node.name, d, t)),
                          requests=request_memo(self.store))

    def execute(self, node: Node, inputs: list[pl.DataFrame],
                parts: KeyParts | None) -> tuple[pl.DataFrame, RunContext]:
        ctx = self.context(node)
        if isinstance(node.op, RowPython):
            memo = RowMemo(self.store, parts.memo_key()) if parts and node.op.expensive else None
            out = run_rowpython(node.op, inputs[0], ctx, memo, self.process_batches)
            if isinstance(node.op, KeepBest):  # a top-k of every row's score: after all rows
                out = node.op.select_kept(out, ctx)
            return out, ctx
        return node.op.run(inputs, ctx), ctx

    def process_batches(self, op: RowPython, todo: pl.DataFrame,
                        ctx: RunContext) -> Iterator[list[Any]]:
        """The results for `todo`'s rows, one list per batch of MEMO_BATCH rows, in order (the
        row memo is consulted before and committed after each batch by
        dcc.engine.rowwise.run_rowpython, in this process)."""
        return process_here(op, todo, ctx)

    def run_stage(self, nodes: list[Node], df: pl.DataFrame, with_rows: bool
                  ) -> tuple[pl.DataFrame, list[int], Derivation | None]:
        """A fused chain of row-wise nodes over `df` (dcc.engine.stages.run_stage)."""
        from dcc.engine.stages import run_stage

        return run_stage(nodes, df, with_rows=with_rows)

    def select_rows(self, node: Node, df: pl.DataFrame, ctx: RunContext) -> np.ndarray | None:
        """The kept row positions of a row-selecting dataset operator (or None: run it)."""
        return node.op.select_rows(df, ctx)  # type: ignore[attr-defined]

    def count_new_rows(self, node: Node, parts: KeyParts,
                       inputs: list[pl.DataFrame]) -> int:
        """How many distinct rows of the input the memo lacks (what a run would send)."""
        return count_new_rows(node.op, inputs[0], RowMemo(self.store, parts.memo_key()))
