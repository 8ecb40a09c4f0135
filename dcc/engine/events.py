"""Typed events an executor emits while it builds; the CLI turns them into progress output.

Executors never print. They call the `on_event` callback with one of these, and the console
layer decides how (a live rich display on a terminal, plain lines otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NodeStarted:
    node: str
    op: str
    rows_in: int | None


@dataclass(frozen=True)
class NodeProgress:
    node: str
    done: int
    total: int | None


@dataclass(frozen=True)
class NodeCached:
    node: str
    op: str
    rows: int
    remote: bool = False  # read through from the team cache (--remote-cache)


@dataclass(frozen=True)
class NodeFinished:
    node: str
    op: str
    rows_in: int
    rows_out: int
    seconds: float


@dataclass(frozen=True)
class NodeFailed:
    node: str
    op: str
    message: str


Event = NodeStarted | NodeProgress | NodeCached | NodeFinished | NodeFailed
