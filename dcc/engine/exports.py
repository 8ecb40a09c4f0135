"""Exports: write a node's table to the path the recipe names, only when it changed.

An export is rewritten when the node's content differs from what was last written there or
the file on disk is not the file dcc wrote (its stat signature changed). The writer
(`dcc.ops.sinks`) writes to a temporary name and renames, so a reader never sees half a file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from dcc.cache.fingerprint import file_content
from dcc.cache.store import DiskStore
from dcc.compiler.ir import Program

if TYPE_CHECKING:
    import polars as pl


@dataclass
class ExportResult:
    node: str
    path: str
    rows: int | None
    content: str | None
    written: bool


def write_exports(program: Program, store: DiskStore, results: dict[str, Any],
                  table: Callable[[str], pl.DataFrame], dry_run: bool) -> list[ExportResult]:
    out = []
    state = store.export_state
    for exp in program.exports:
        res = results[exp.node]
        node_name = program.node(exp.node).name
        prev = state.get(exp.path)
        fresh = (prev is not None and res.content is not None and prev[0] == res.content
                 and _content(exp.path, store) == prev[1])
        if fresh or dry_run or res.content is None:
            out.append(ExportResult(node_name, exp.display, res.rows_out,
                                    prev[1] if fresh and prev else None, False))
            continue
        from dcc.ops.sinks import write_export

        write_export(table(exp.node), Path(exp.path))
        content = file_content(exp.path, store.stat_cache)
        state[exp.path] = (res.content, content)
        out.append(ExportResult(node_name, exp.display, res.rows_out, content, True))
    return out


def _content(path: str, store: DiskStore) -> str | None:
    """The export's current content (stat-cached), or None if it is missing."""
    try:
        return file_content(path, store.stat_cache)
    except OSError:
        return None
