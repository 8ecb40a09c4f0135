"""Sharing model batches between nodes that run at the same time (a model group).

The optimizer's `group_model_calls` pass finds model nodes that could run together: same
model, no path between them in the plan. The engine runs such a group's nodes on one thread
each, cooperatively: a `RequestPool` lets one member run engine code at a time (the
*baton*), and a member that asks its model for requests the memo lacks hands the baton on
and waits. Once every member still running is waiting, the pool merges their requests for
the same backend and settings, asks the model once for the union (each distinct request
once, longest prompts first, in chunks the backend batches by token length), commits the
replies to the request memo and gives each member its own replies back. So the model is
loaded once and its batches are filled from every node, while each node sees exactly the
replies, keys and statuses it would have seen alone.

Calls and memo hits are counted as a run one node after another would count them: a request
two members both send is a model call of the member that comes first in the plan and a memo
hit of the other (which, alone, would have found it in the memo).

Why threads and not a rewrite of every model operator into "requests, then results": the
operators stay ordinary code (multi-round ones included), and the pool needs nothing from
them but going through the memo functions (`dcc.ops.models.memo`, `score_losses`), as every
model call already does.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any

_local = threading.local()


@dataclass
class _Ask:
    member: str
    group: Any  # what must match to share a batch: (call, backend, settings)
    hashes: list[str]
    items: list[Any]
    call: Callable[[list[Any]], Sequence[Any]]
    commit: Callable[[dict[str, Any]], None]
    chunk: int
    done: bool = False
    results: dict[str, Any] = field(default_factory=dict)
    owned: int = 0
    error: BaseException | None = None


class RequestPool:
    """The meeting point of one model group's members (node names, in plan order)."""

    def __init__(self, members: Sequence[str]) -> None:
        self.rank = {m: i for i, m in enumerate(members)}
        self.active = set(members)
        self.baton = threading.Lock()
        self._cond = threading.Condition()
        self._waiting: dict[str, _Ask] = {}
        self._idle: set[str] = set()  # members blocked on something else (a node lock)
        self.flushes: list[dict[str, int]] = []  # per flush: requests sent per member

    @contextmanager
    def member(self, name: str) -> Iterator[None]:
        """Run the body as `name`: holding the baton, with model asks going through the pool;
        leaving (normally or not) lets the others go on without it."""
        _local.pool, _local.member = self, name
        try:
            with self.baton:
                yield
        finally:
            _local.pool = _local.member = None
            with self._cond:
                self.active.discard(name)
                self._flush_if_all_waiting()

    def ask(self, group: Any, hashes: list[str], items: list[Any],
            call: Callable[[list[Any]], Sequence[Any]],
            commit: Callable[[dict[str, Any]], None], chunk: int) -> tuple[dict[str, Any], int]:
        """Results for `hashes` (distinct, none in the memo), and how many of them are this
        member's own model calls; blocks until every running member is waiting or done."""
        me = _local.member
        ask = _Ask(me, group, list(hashes), list(items), call, commit, chunk)
        self.baton.release()
        try:
            with self._cond:
                self._waiting[me] = ask
                self._flush_if_all_waiting()
                while not ask.done:
                    self._cond.wait()
        finally:
            self.baton.acquire()
        if ask.error is not None:
            raise ask.error
        return ask.results, ask.owned

    @contextmanager
    def idle(self) -> Iterator[None]:
        """Wait for something outside the pool (a node lock another member, or another
        build, holds) without holding the baton, and without holding up the others: an
        idle member counts as waiting, so the requests of the rest go out meanwhile."""
        me = _local.member
        self.baton.release()
        with self._cond:
            self._idle.add(me)
            self._flush_if_all_waiting()
        try:
            yield
        finally:
            with self._cond:
                self._idle.discard(me)
            self.baton.acquire()

    def _flush_if_all_waiting(self) -> None:
        if not self._waiting or not self.active <= set(self._waiting) | self._idle:
            return
        asks = sorted(self._waiting.values(), key=lambda a: self.rank[a.member])
        self._waiting.clear()
        groups: dict[Any, list[_Ask]] = {}
        for a in asks:
            groups.setdefault(a.group, []).append(a)
        for same in groups.values():
            self._send(same)
        for a in asks:
            a.done = True
        self._cond.notify_all()

    def _send(self, asks: list[_Ask]) -> None:
        """One backend's union of requests: each distinct one once, owned by the first
        member (in plan order) that asked, longest first, committed chunk by chunk."""
        items: dict[str, Any] = {}
        owner: dict[str, str] = {}
        for a in asks:
            for h, item in zip(a.hashes, a.items):
                if h not in items:
                    items[h], owner[h] = item, a.member
        order = sorted(items, key=lambda h: -_size(items[h]))
        chunk = max(a.chunk for a in asks) * len(asks)
        results: dict[str, Any] = {}
        try:
            for start in range(0, len(order), chunk):
                part = order[start:start + chunk]
                out = list(asks[0].call([items[h] for h in part]))
                if len(out) != len(part):
                    raise ValueError(f"the model returned {len(out)} results for "
                                     f"{len(part)} requests")
                fresh = dict(zip(part, out))
                asks[0].commit(fresh)
                results.update(fresh)
        except BaseException as e:  # every member that asked fails as it would have alone
            for a in asks:
                a.error = e
            return
        sent: dict[str, int] = {}
        for a in asks:
            a.results = {h: results[h] for h in a.hashes}
            a.owned = sum(1 for h in a.hashes if owner[h] == a.member)
            sent[a.member] = a.owned
        self.flushes.append(sent)


def current() -> RequestPool | None:
    """The pool this thread's node runs in, or None (a node run on its own)."""
    return getattr(_local, "pool", None)


def idle() -> AbstractContextManager[None]:
    """`RequestPool.idle` of this thread's pool; nothing for a node run on its own."""
    pool = current()
    return pool.idle() if pool is not None else nullcontext()


def _size(item: Any) -> int:
    """A request's length for ordering (characters; the backend then sorts by tokens)."""
    if isinstance(item, str):
        return len(item)
    if isinstance(item, (list, tuple)):
        return sum(_size(x) for x in item)
    if isinstance(item, dict):
        return sum(_size(v) for v in item.values())
    return len(str(item))


def ask_model(ctx: Any, group: Any, hashes: list[str], items: list[Any],
              call: Callable[[list[Any]], Sequence[Any]],
              commit: Callable[[dict[str, Any]], None], chunk: int) -> dict[str, Any]:
    """Results for the distinct, unmemoized requests `hashes`, counting model calls in
    `ctx.model_calls` and requests another member of the group paid for in
    `ctx.stats['memo_hits']`. Alone, chunk by chunk of `chunk` requests in the order given,
    each chunk committed (`commit`) before the next is sent; in a group, through the pool."""
    pool = current()
    if pool is not None and hashes:
        results, owned = pool.ask(group, hashes, items, call, commit, chunk)
        ctx.model_calls += owned
        if len(hashes) > owned:
            ctx.stats["memo_hits"] = ctx.stats.get("memo_hits", 0) + len(hashes) - owned
        return results
    results = {}
    for start in range(0, len(hashes), chunk):
        part = hashes[start:start + chunk]
        out = list(call(items[start:start + chunk]))
        ctx.model_calls += len(part)
        fresh = dict(zip(part, out))
        commit(fresh)
        results.update(fresh)
    return results


__all__ = ["RequestPool", "ask_model", "current", "idle"]
