"""Fixtures shared by every test folder: recipe folders on disk and the `dcc` command.

* `recipe_dir(files)` writes a recipe folder under `tmp_path` and returns its path. Values
  are text, bytes, or a list of dicts (written as JSON Lines), so a test states its recipe
  and its tiny data in one place.
* `run_cli(*args, cwd=...)` runs the real command (`python -m dcc`, the venv's interpreter)
  in a child process and returns `(exit code, stdout, stderr)`: what a user sees.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[1]

# The `dcc` processes tests start run as a user's do, with Python's bytecode cache: where the
# environment sets PYTHONDONTWRITEBYTECODE, each of the suite's hundreds of child processes
# would otherwise recompile dcc's modules (~0.15 s apiece).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
RECIPES = REPO / "recipes"

FileContent = str | bytes | list[dict[str, Any]]


def write_files(root: Path, files: Mapping[str, FileContent]) -> Path:
    """Write `files` (relative path -> content) under `root`; returns `root`."""
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, list):
            content = "".join(json.dumps(row) + "\n" for row in content)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return root


@pytest.fixture
def recipe_dir(tmp_path: Path) -> Callable[[Mapping[str, FileContent]], Path]:
    """recipe_dir({"r.recipe": "...", "data/a.jsonl": [{"text": "hi"}]}) -> the folder."""

    def _make(files: Mapping[str, FileContent]) -> Path:
        return write_files(tmp_path, files)

    return _make


def cli(*args: str, cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None, timeout: float = 60) -> tuple[int, str, str]:
    """Run `dcc ARGS...` in a child process; (exit code, stdout, stderr)."""
    full_env = {**os.environ, "PYTHONPATH": str(REPO), **(env or {})}
    full_env.pop("DCC_DEBUG", None)  # a user's run: no raw tracebacks
    proc = subprocess.run([sys.executable, "-m", "dcc", *args], cwd=cwd, env=full_env,
                          capture_output=True, text=True, timeout=timeout, check=False)
    return proc.returncode, proc.stdout, proc.stderr


@pytest.fixture
def run_cli() -> Callable[..., tuple[int, str, str]]:
    """run_cli("check", "r.recipe", cwd=folder) -> (exit code, stdout, stderr)."""
    return cli
