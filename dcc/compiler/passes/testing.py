"""Helpers for pass docstrings and tests: compile recipe text in a scratch folder.

The scratch folder gets a small JSONL file `d.jsonl` with text columns `t` and `u`, so examples can
name a real source without touching the user's files.
"""

from __future__ import annotations

import json
import os
import tempfile

from dcc.compiler.ir import Program

ROWS = [{"t": "alpha beta", "u": "x"}, {"t": "gamma", "u": ""}, {"t": "alpha beta", "u": "x"},
        {"t": "delta epsilon zeta", "u": "yz"}]


def program_from(text: str, optimize: bool = True, **kwargs: object) -> Program:
    from dcc.compiler import compile_recipe

    folder = tempfile.mkdtemp(prefix="dcc-pass-")
    with open(os.path.join(folder, "d.jsonl"), "w", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in ROWS)
    path = os.path.join(folder, "r.recipe")
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return compile_recipe(path, optimize=optimize, **kwargs)  # type: ignore[arg-type]
