"""The operators of this family are registered under their contract names, document themselves,
run their docstring examples, and keep `import dcc.ops.*` free of heavy libraries."""

from __future__ import annotations

import doctest
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

from dcc import ops

REPO = Path(__file__).resolve().parents[2]
MODULES = ["dcc.ops.sources", "dcc.ops.select", "dcc.ops.rewrite", "dcc.ops.combinators",
           "dcc.ops.sinks"]
SIGNATURES = {
    "load.jsonl": ["path", "on_error"],
    "load.json": ["path"],
    "load.parquet": ["path", "columns"],
    "load.csv": ["path", "delimiter"],
    "load.disk": ["path"],
    "load.hf": ["name", "split", "revision", "data_dir"],
    "select.length": ["field", "min", "max"],
    "select.words": ["field", "min", "max"],
    "select.regex": ["field", "pattern", "keep"],
    "select.dedup": ["fields", "method", "normalize", "threshold", "ngram", "unit", "num_perm",
                     "bands", "rows_per_band", "verify", "max_hamming", "seed", "model",
                     "n_clusters"],
    "select.sample": ["n", "fraction", "seed"],
    "rewrite.normalize": ["fields", "fix_mojibake"],
    "concat": [],
    "mix": ["weights", "n", "seed"],
    "split": ["test", "part", "seed"],
}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


@pytest.mark.parametrize("name, params", sorted(SIGNATURES.items()))
def test_registered_with_contract_signature(name: str, params: list[str]) -> None:
    cls = ops.get(name)
    assert cls is not None, name
    assert [p.name for p in cls.params] == params
    assert len(cls.doc().splitlines()) >= 3, f"{name} needs a docstring stating its semantics"
    assert all(p.doc for p in cls.params), name
    if cls.stochastic:
        assert cls.spec("seed") is not None and cls.spec("seed").default == 0
    if cls.kind == "source":
        first = cls.params[0]
        assert first.positional and cls.n_inputs == 0
        assert first.path == (name != "load.hf")
    if cls.kind == "combinator":
        assert cls.n_inputs is None


def test_column_params_are_marked() -> None:
    for name in ("select.length", "select.words", "select.regex", "rewrite.normalize"):
        spec = ops.get(name).params[0]
        assert spec.column and spec.col_type == "str", name
    assert ops.get("select.dedup").spec("fields").column


def test_importing_the_modules_stays_cheap() -> None:
    code = (
        "import sys\n"
        f"for m in {MODULES!r}: __import__(m)\n"
        "import dcc.ops; dcc.ops.names()\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in"
        " ('polars', 'pyarrow', 'numpy', 'datasets')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "[]"
