"""How builds look: live progress per node on a terminal, plain lines otherwise, and tables.

The engine emits events; this module renders them (through `dcc.console`, on stderr) and
builds the rich tables the CLI prints for `build`, `plan` and `cache ls`.
"""

from __future__ import annotations

import time
from typing import Any

from rich.table import Table

from dcc.engine import events as ev


class Progress:
    """Shows node progress on stderr: a live display on a TTY, one line per event otherwise."""

    def __init__(self, enabled: bool = True) -> None:
        from dcc.console import err

        self.console = err()
        self.enabled = enabled
        self.live = enabled and self.console.is_terminal
        self._bar: Any = None
        self._tasks: dict[str, Any] = {}
        self._started: dict[str, float] = {}

    def __enter__(self) -> Progress:
        if self.live:
            from rich.progress import (BarColumn, MofNCompleteColumn, Progress as RichProgress,
                                       SpinnerColumn, TextColumn, TimeElapsedColumn,
                                       TimeRemainingColumn)

            self._bar = RichProgress(SpinnerColumn(), TextColumn("{task.description}"),
                                     BarColumn(), MofNCompleteColumn(),
                                     TextColumn("{task.fields[rate]}"), TimeElapsedColumn(),
                                     TimeRemainingColumn(), console=self.console,
                                     transient=True)
            self._bar.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.__exit__(*exc)

    def on_event(self, e: ev.Event) -> None:
        if not self.enabled:
            return
        if isinstance(e, ev.NodeStarted):
            self._started[e.node] = time.perf_counter()
            if self._bar is not None:
                self._tasks[e.node] = self._bar.add_task(f"{e.node} [dim]{e.op}[/]",
                                                         total=None, rate="")
            else:
                self.console.print(f"run    {e.node} ({e.op})", markup=False)
        elif isinstance(e, ev.NodeProgress) and self._bar is not None and e.node in self._tasks:
            elapsed = max(time.perf_counter() - self._started.get(e.node, 0), 1e-9)
            self._bar.update(self._tasks[e.node], completed=e.done, total=e.total,
                             rate=f"{e.done / elapsed:,.0f} rows/s")
        elif isinstance(e, ev.NodeFinished):
            if self._bar is not None and e.node in self._tasks:
                self._bar.remove_task(self._tasks.pop(e.node))
            self.console.print(f"[dcc.ran]ran[/]    {e.node}: {e.rows_in:,} -> {e.rows_out:,} "
                               f"rows in {e.seconds:.2f}s", highlight=False)
        elif isinstance(e, ev.NodeCached):
            where = "remote" if e.remote else "cached"
            self.console.print(f"[dcc.cached]{where}[/] {e.node}: {e.rows:,} rows",
                               highlight=False)
        elif isinstance(e, ev.NodeFailed):
            if self._bar is not None and e.node in self._tasks:
                self._bar.remove_task(self._tasks.pop(e.node))


def _status(status: str) -> str:
    style = {"cached": "dcc.cached", "remote-hit": "dcc.cached", "ran": "dcc.ran",
             "would-run": "dcc.warning"}
    return f"[{style.get(status, 'dcc.muted')}]{status}[/]"


_CACHE_COLUMN = {"cached": "hit", "remote-hit": "remote hit"}
_HIT = ("cached", "remote-hit")


def summary_table(result: Any) -> Table:
    table = Table(title=f"dcc build {result.recipe}", title_justify="left")
    for col in ("node", "operator", "status", "rows in -> out", "seconds", "cache"):
        table.add_column(col, justify="right" if col in ("seconds",) else "left")
    for r in result.nodes:
        rows = f"{_n(r.rows_in)} -> {_n(r.rows_out)}"
        table.add_row(", ".join(r.names) or r.id, r.op, _status(r.status), rows,
                      f"{r.seconds:.2f}", _CACHE_COLUMN.get(r.status, "miss"))
    for e in result.exports:
        table.caption = (table.caption + "\n" if table.caption else "") + \
            f"export {e.node} -> {e.path} ({_n(e.rows)} rows{', written' if e.written else ''})"
    remote = getattr(result, "remote", None)
    if remote is not None:
        table.caption = (table.caption + "\n" if table.caption else "") + remote_line(remote)
    return table


def remote_line(t: Any) -> str:
    """One line on what moved to and from the team cache."""
    from dcc.cache.gc import format_size

    return (f"remote cache: {t.downloaded} results downloaded ({t.objects_down} objects, "
            f"{format_size(t.bytes_down)}), {t.uploaded} uploaded ({t.objects_up} objects, "
            f"{format_size(t.bytes_up)}); memo entries: {t.memo_down} pulled, {t.memo_up} "
            "pushed")


def plan_table(result: Any) -> Table:
    table = Table(title=f"dcc plan {result.recipe}", title_justify="left")
    for col in ("node", "operator", "status", "rows", "model calls", "why"):
        table.add_column(col)
    for r in result.nodes:
        calls = "" if not r.expensive else (_n(r.new_rows) if r.status not in _HIT else "0")
        rows = _n(r.rows_out) if r.status in _HIT else _n(r.rows_in)
        table.add_row(", ".join(r.names) or r.id, r.op, _status(r.status), rows, calls,
                      r.reason)
    return table


def cache_table(entries: list[Any]) -> Table:
    from dcc.cache.gc import format_size

    table = Table(title="dcc cache", title_justify="left")
    for col in ("content", "size", "rows", "last used", "node", "recipe"):
        table.add_column(col)
    for e in entries:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.last_used))
        table.add_row(e.content[:16], format_size(e.size), _n(e.rows), when, e.node or "",
                      e.recipe or "")
    return table


def _n(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"
