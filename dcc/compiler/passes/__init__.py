"""Optimizer passes: each rewrites a Program without changing what its exports contain.

One pass per module, a same-named function returning a journal (one line per edit); `PASSES`
holds their order. `optimize` runs the sequence until a round makes no edit (a fixed point,
bounded), passing each pass only the keyword arguments it declares, and keeps the journal in
`program.journal` for `dcc plan --explain`.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from dcc.compiler.ir import Program
from dcc.compiler.passes.dedupe_nodes import dedupe_nodes
from dcc.compiler.passes.fuse_rowwise import fuse_rowwise
from dcc.compiler.passes.group_model_calls import group_model_calls
from dcc.compiler.passes.prune_columns import prune_columns
from dcc.compiler.passes.prune_dead import prune_dead
from dcc.compiler.passes.push_filters import push_filters
from dcc.compiler.passes.reorder_filters import reorder_filters

PASSES: tuple[Callable[..., list[str]], ...] = (prune_dead, dedupe_nodes, prune_columns,
                                                  push_filters, reorder_filters, fuse_rowwise,
                                                  group_model_calls)
MAX_ROUNDS = 10


def optimize(program: Program, **options: Any) -> Program:
    for _ in range(MAX_ROUNDS):
        changed = False
        for fn in PASSES:
            accepted = inspect.signature(fn).parameters
            kwargs = {k: v for k, v in options.items() if k in accepted}
            for entry in fn(program, **kwargs):
                program.journal.append(f"{fn.__name__}: {entry}")
                changed = True
        if not changed:
            break
    return program
