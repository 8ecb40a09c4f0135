"""Sharing model batches between nodes that run at the same time (a model group).

The optimizer's `group_model_calls` pass finds model nodes that could run together: same
model, no path between them in the plan. The engine runs such a group's nodes on one thread
each, cooperatively: a `RequestPool` lets one member run engine code at a time (the
*baton*), and a member that asks its model for requests the memo lacks hands the baton on
and waits. Once every member still running is waiting, the pool sends what they asked for.

Merged only where that cannot change a reply: a backend lists the calls whose every request
is answered on its own (`independent_requests`; an HTTP server's completions), and those
requests of all members go out as one set, each distinct request once, longest first, in
chunks as large as the members' together, so the client's window of concurrent requests is
filled from every node. A local model's numbers depend on the batch they are computed in
(padding changes the order of floating-point sums), so its requests keep each member's own
batches, sent for one member at a time in plan order, exactly as alone. Either way the
replies are committed to the request memo chunk by chunk, the model is loaded once, and each
node gets the replies, keys and statuses it would have got alone.

Calls are counted as one node after another counts them: a request two members both send is
a model call of the member that sends it first (the first in plan order when they send it in
the same round; with merged requests, a member that asks in several rounds may send a request
earlier than a member before it in the plan would have); the other gets the same reply,
counted as a memo hit (one node after another, it may instead have found the row in its row
memo, which counts nothing). A member that must wait for something else, the lock of a node
key another member is computing (two branches can have equal keys), waits *idle*: without
the baton, counted as waiting, so it never holds the others up.

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
    shared: bool  # may go out in one call with other members' requests
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
        self._answered: dict[tuple[Any, str], Any] = {}  # (backend group, request) -> reply
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
            commit: Callable[[dict[str, Any]], None], chunk: int,
            shared: bool = True) -> tuple[dict[str, Any], int]:
        """Results for `hashes` (distinct, none in the memo), and how many of them are this
        member's own model calls; blocks until every running member is waiting or done.
        With `shared=False` the requests still wait for the others (one flush at a time)
        but go out on their own, in their order and chunks."""
        me = _local.member
        ask = _Ask(me, group, list(hashes), list(items), call, commit, chunk, shared)
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
        # Requests a backend batches together go out for one member at a time: the first in
        # plan order that is not blocked elsewhere, until it leaves. So every one of its
        # batches is the batch it sends alone, and a later member's request that it also
        # sends gets its reply, as one node after another would.
        first = min((m for m in self.active if m not in self._idle), key=self.rank.get,
                    default=None)
        asks = sorted((a for a in self._waiting.values() if a.shared or a.member == first),
                      key=lambda a: self.rank[a.member])
        if not asks:
            return
        for a in asks:
            del self._waiting[a.member]
        groups: dict[Any, list[_Ask]] = {}
        for a in asks:
            groups.setdefault(a.group, []).append(a)
        for same in groups.values():
            if same[0].shared:
                self._send(same)
            else:
                for a in same:
                    self._send([a])
        for a in asks:
            a.done = True
        self._cond.notify_all()

    def _send(self, asks: list[_Ask]) -> None:
        """Send what `asks` (one backend and settings) need, each distinct request once,
        owned by the first member in plan order that asked. A request this pool already
        answered (for an earlier member, or an earlier flush) is that member's: the later
        one gets its reply as from the memo, as it would have one node after another.
        Several members: longest first, in large chunks; one: exactly as it would alone."""
        group = asks[0].group
        items: dict[str, Any] = {}
        owner: dict[str, str] = {}
        for a in asks:
            for h, item in zip(a.hashes, a.items):
                if h not in items and (group, h) not in self._answered:
                    items[h], owner[h] = item, a.member
        if len(asks) == 1:
            order, chunk = list(items), asks[0].chunk
        else:
            order = sorted(items, key=lambda h: -_size(items[h]))
            chunk = max(a.chunk for a in asks) * len(asks)
        try:
            for start in range(0, len(order), chunk):
                part = order[start:start + chunk]
                out = list(asks[0].call([items[h] for h in part]))
                if len(out) != len(part):
                    raise ValueError(f"the model returned {len(out)} results for "
                                     f"{len(part)} requests")
                fresh = dict(zip(part, out))
                asks[0].commit(fresh)
                self._answered.update({(group, h): r for h, r in fresh.items()})
        except BaseException as e:  # every member that asked fails as it would have alone
            for a in asks:
                a.error = e
            return
        sent: dict[str, int] = {}
        for a in asks:
            a.results = {h: self._answered[(group, h)] for h in a.hashes}
            a.owned = sum(1 for h in a.hashes if owner.get(h) == a.member)
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
              commit: Callable[[dict[str, Any]], None], chunk: int,
              backend: Any = None, kind: str = "") -> dict[str, Any]:
    """Results for the distinct, unmemoized requests `hashes`, counting model calls in
    `ctx.model_calls` and requests another member of the group paid for in
    `ctx.stats['memo_hits']`. Alone, chunk by chunk of `chunk` requests in the order given,
    each chunk committed (`commit`) before the next is sent; in a group, through the pool,
    shared with the other members only when `backend` says that a `kind` request's result
    does not depend on the requests sent with it (`independent_requests`)."""
    pool = current()
    if pool is not None and hashes:
        shared = kind in getattr(backend, "independent_requests", ())
        results, owned = pool.ask(group, hashes, items, call, commit, chunk, shared)
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
