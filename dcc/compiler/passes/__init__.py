"""Optimizer passes: each rewrites a Program without changing what its exports contain.

One pass per module, a same-named function; `PASSES` holds their order and `optimize` runs
them, passing each only the keyword arguments it declares, and records what each did in
`program.journal` for `dcc plan --explain`.
"""

from __future__ import annotations

import inspect
from typing import Any, Callable

from dcc.compiler.ir import Program
from dcc.compiler.passes.prune_dead import prune_dead

PASSES: tuple[Callable[..., list[str]], ...] = (prune_dead,)


def optimize(program: Program, **options: Any) -> Program:
    for fn in PASSES:
        accepted = inspect.signature(fn).parameters
        kwargs = {k: v for k, v in options.items() if k in accepted}
        for entry in fn(program, **kwargs):
            program.journal.append(f"{fn.__name__}: {entry}")
    return program
