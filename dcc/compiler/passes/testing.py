"""Helpers for pass docstrings and tests: compile recipe text in a scratch folder.

The scratch folder gets a small JSONL file `d.jsonl` with a text column `t`, so examples can
name a real source without touching the user's files.
"""

from __future__ import annotations

import json
import os
import tempfile

from dcc.compiler.ir import Program

ROWS = [{"t": "alpha beta"}, {"t": "gamma"}, {"t": "alpha beta"}, {"t": "delta epsilon zeta"}]


def program_from(text: str, optimize: bool = True, **kwargs: object) -> Program:
    from dcc.compiler import compile_recipe

    folder = tempfile.mkdtemp(prefix="dcc-pass-")
    with open(os.path.join(folder, "d.jsonl"), "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in ROWS)
    path = os.path.join(folder, "r.recipe")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return compile_recipe(path, optimize=optimize, **kwargs)  # type: ignore[arg-type]
