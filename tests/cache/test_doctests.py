"""The `>>>` examples in dcc.cache docstrings run (until tests/test_docs.py covers all of dcc)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import dcc.cache

MODULES = ["dcc.cache", *sorted(
    f"dcc.cache.{m.name}" for m in pkgutil.iter_modules(dcc.cache.__path__)
)]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_cache_never_imports_engine_compiler_cli_ops_or_heavy_libraries() -> None:
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys, dcc.cache, dcc.cache.store, dcc.cache.rowmemo, dcc.cache.fingerprint,"
        " dcc.cache.keys, dcc.cache.gc, dcc.cache.atomic\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in"
        " ('polars', 'pyarrow', 'datasets', 'numpy', 'torch')"
        " or m.startswith(('dcc.engine', 'dcc.compiler', 'dcc.cli', 'dcc.ops'))]\n"
        "print(bad)"
    )
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
