"""Helpers for the engine tests: a real recipe folder and the real `dcc` command.

Most engine tests run `python -m dcc` as a child process in a temporary recipe folder, with
real files, real caches under `.dcc/` and real signals, because what the engine promises
(keys that notice edits, atomic exports, locks between processes, exit codes) is about files
and processes, not about objects in one interpreter. `Project` wraps one such folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
HEAVY = ("torch", "transformers", "datasets")


def rows_jsonl(rows: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def child_env(**extra: str) -> dict[str, str]:
    """The environment of a child `dcc`: ours without DCC_CACHE_DIR/DCC_DEBUG, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if k not in ("DCC_CACHE_DIR", "DCC_DEBUG")}
    env.update(extra)
    return env


class Project:
    """A recipe folder: write files into it, run `dcc` in it, read what a build wrote."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    @property
    def cache(self) -> Path:
        return self.root / ".dcc"

    def path(self, name: str) -> Path:
        return self.root / name

    def write(self, name: str, text: str | bytes) -> Path:
        p = self.root / name
        p.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            p.write_bytes(text)
        else:
            p.write_text(text, encoding="utf-8")
        return p

    def write_jsonl(self, name: str, rows: Iterable[dict[str, Any]]) -> Path:
        return self.write(name, rows_jsonl(rows))

    def command(self, *args: str, python_code: str | None = None) -> list[str]:
        if python_code is None:
            return [sys.executable, "-m", "dcc", *args]
        return [sys.executable, "-c", python_code, *args]

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 120,
            python_code: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.command(*args, python_code=python_code), cwd=self.root,
                              capture_output=True, text=True, timeout=timeout,
                              env=child_env(**(env or {})))

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        return subprocess.Popen(self.command(*args), cwd=self.root, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=child_env(**(env or {})))

    def build(self, *args: str, recipe: str = "r.recipe", env: dict[str, str] | None = None,
              python_code: str | None = None) -> dict[str, Any]:
        """`dcc build RECIPE --json ARGS`, which must succeed; returns the JSON report."""
        r = self.run("build", recipe, "--json", *args, env=env, python_code=python_code)
        assert r.returncode == 0, f"dcc build exited {r.returncode}:\n{r.stderr}"
        assert "Traceback" not in r.stderr
        return json.loads(r.stdout)

    def snapshot(self, *names: str) -> dict[str, bytes]:
        """The bytes of each named export; a folder export gives one entry per file in it."""
        out: dict[str, bytes] = {}
        for name in names:
            p = self.root / name
            if p.is_dir():
                for f in sorted(p.rglob("*")):
                    if f.is_file():
                        out[f.relative_to(self.root).as_posix()] = f.read_bytes()
            else:
                out[name] = p.read_bytes()
        return out


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {n["name"]: n["status"] for n in report["nodes"]}


def node(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(n for n in report["nodes"] if n["name"] == name)
