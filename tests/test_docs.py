"""Every `>>>` example in a dcc docstring runs and shows what it claims (STYLE principle 2).

The modules are found by walking the `dcc` package with pkgutil, including folders without
an `__init__.py` (namespace packages such as `dcc.engine`), so a new module is covered the
day it lands. A module whose import needs an optional heavy extra that is not installed
(`dcc[models]`: torch, transformers) is skipped with the reason, never silently.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil
from pathlib import Path

import pytest

import dcc

OPTIONAL = {"torch", "transformers", "tokenizers", "ray", "accelerate", "vllm"}


def _modules() -> list[str]:
    names = {"dcc"}
    for info in pkgutil.walk_packages(dcc.__path__, "dcc."):
        names.add(info.name)
    # pkgutil does not descend into folders without __init__.py; walk those too
    root = Path(dcc.__path__[0])
    for folder in sorted(p for p in root.rglob("*") if p.is_dir()):
        if (folder / "__init__.py").exists() or folder.name.startswith(("_", ".")) \
                or not any(folder.glob("*.py")):
            continue
        prefix = "dcc." + ".".join(folder.relative_to(root).parts) + "."
        names.add(prefix[:-1])
        names.update(info.name for info in pkgutil.iter_modules([str(folder)], prefix))
    return sorted(names)


MODULES = _modules()


def test_the_walk_finds_the_packages() -> None:
    for expected in ("dcc.cli", "dcc.compiler.parser", "dcc.compiler.passes.prune_dead",
                     "dcc.ops.select", "dcc.cache.keys", "dcc.engine.build"):
        assert expected in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        missing = (getattr(exc, "name", None) or "").split(".")[0]
        if missing in OPTIONAL:
            pytest.skip(f"{name} needs the optional package {missing}")
        raise
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                             verbose=False, report=True)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
