"""The local executor: runs one node's operator on its input tables in this process.

Operators never know where they run; the executor hands them tables and a `RunContext`.
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
from dcc.engine.rowwise import count_new_rows, run_rowpython
from dcc.ops.base import KeepBest, RowPython, RunContext

if TYPE_CHECKING:
    import polars as pl


class LocalExecutor:
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
            out = run_rowpython(node.op, inputs[0], ctx, memo)
            if isinstance(node.op, KeepBest):  # a top-k of every row's score: after all rows
                out = node.op.select_kept(out, ctx)
            return out, ctx
        return node.op.run(inputs, ctx), ctx

    def count_new_rows(self, node: Node, parts: KeyParts,
                       inputs: list[pl.DataFrame]) -> int:
        """How many distinct rows of the input the memo lacks (what a run would send)."""
        return count_new_rows(node.op, inputs[0], RowMemo(self.store, parts.memo_key()))
