"""Exports: write a node's table to the path the recipe names, only when it changed.

An export is rewritten when the node's content differs from what was last written there or
the file on disk is not the file dcc wrote (its stat signature changed). The writer
(`dcc.ops.sinks`) writes to a temporary name and renames, so a reader never sees half a file.

Two builds of one recipe may finish at the same moment: each export is written under a lock
on its path (in the store), and freshness is checked again once the lock is held, so the
second build finds the first one's file instead of racing it (replacing a folder is two
renames, which must not interleave). Before writing, temporaries that a killed writer left
beside the export (`.dcc-tmp-<pid>-...` of a dead pid) are removed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Callable

from dcc.cache.atomic import remove_stale_temps
from dcc.cache.fingerprint import file_content
from dcc.cache.hashing import canonical_bytes, digest
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
                  table: Callable[[str], pl.DataFrame], dry_run: bool,
                  batches: Callable[[str], tuple[dict[str, Any], Iterable[pl.DataFrame]] | None]
                  = lambda node: None) -> list[ExportResult]:
    """Write every export whose file is not fresh. `batches(node)` gives (schema, batches) of
    a table too large to load, which is then written batch by batch."""
    out = []
    if not dry_run:
        for folder in sorted({str(Path(e.path).parent) for e in program.exports}):
            remove_stale_temps(folder)
    for exp in program.exports:
        res = results[exp.node]
        # The binding the export statement names (when the compiler records it: two bindings
        # may compute one node), else the node's first name.
        node_name = getattr(exp, "binding", None) or program.node(exp.node).name
        fresh = _fresh(exp.path, res.content, store)
        if fresh is not None or dry_run or res.content is None:
            out.append(ExportResult(node_name, exp.display, res.rows_out, fresh, False))
            continue
        from dcc.ops.sinks import write_export, write_export_batches

        lazy = batches(exp.node)
        df = table(exp.node) if lazy is None else None
        with store.lock(digest(canonical_bytes({"export": exp.path}))):
            fresh = _fresh(exp.path, res.content, store)  # another build may have written it
            if fresh is not None:
                out.append(ExportResult(node_name, exp.display, res.rows_out, fresh, False))
                continue
            if lazy is not None:
                write_export_batches(lazy[0], lazy[1], Path(exp.path))
            else:
                write_export(df, Path(exp.path))
            content = file_content(exp.path, store.stat_cache)
            store.export_state[exp.path] = (res.content, content)
        out.append(ExportResult(node_name, exp.display, res.rows_out, content, True))
    return out


def _fresh(path: str, artifact: str | None, store: DiskStore) -> str | None:
    """The export file's content if it holds `artifact` as dcc last wrote it, else None."""
    prev = store.export_state.get(path)
    if prev is None or artifact is None or prev[0] != artifact:
        return None
    return prev[1] if _content(path, store) == prev[1] else None


def _content(path: str, store: DiskStore) -> str | None:
    """The export's current content (stat-cached), or None if it is missing."""
    try:
        return file_content(path, store.stat_cache)
    except OSError:
        return None
