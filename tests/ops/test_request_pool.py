"""The request pool behind model groups: merging, ownership, failures (no model needed)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from dcc.ops.base import RunContext
from dcc.ops.models.pool import RequestPool, ask_model


class HTTP:  # a backend whose generate requests are each their own (as OpenAIBackend's)
    independent_requests = frozenset({"generate"})


def _run(pool: RequestPool, work: dict[str, Any]) -> dict[str, Any]:
    """Each member's `work()` on its own thread inside the pool; results or exceptions."""
    out: dict[str, Any] = {}

    def member(name: str) -> None:
        with pool.member(name):
            try:
                out[name] = work[name]()
            except Exception as e:  # noqa: BLE001 - the test inspects it
                out[name] = e

    threads = [threading.Thread(target=member, args=(n,)) for n in work]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    assert not any(t.is_alive() for t in threads), "a member never came back"
    return out


def test_members_share_one_call_and_each_request_is_paid_once() -> None:
    calls: list[list[str]] = []
    committed: dict[str, str] = {}

    def call(items: list[str]) -> list[str]:
        calls.append(list(items))
        return [x.upper() for x in items]

    pool = RequestPool(["a", "b"])
    ctxs = {"a": RunContext("a"), "b": RunContext("b")}

    def asking(name: str, items: list[str]) -> Any:
        return lambda: ask_model(ctxs[name], "m", [f"h{x}" for x in items], items, call,
                                 committed.update, 64, HTTP, "generate")

    out = _run(pool, {"a": asking("a", ["x", "yy"]), "b": asking("b", ["yy", "zzz"])})
    assert calls == [["zzz", "yy", "x"]]  # one call, longest first, "yy" once
    assert out["a"] == {"hx": "X", "hyy": "YY"} and out["b"] == {"hyy": "YY", "hzzz": "ZZZ"}
    assert committed == {"hx": "X", "hyy": "YY", "hzzz": "ZZZ"}
    # "yy" is the first member's call and the second's memo hit, as one after the other
    assert (ctxs["a"].model_calls, ctxs["b"].model_calls) == (2, 1)
    assert ctxs["b"].stats == {"memo_hits": 1}


def test_requests_a_backend_batches_together_are_never_merged() -> None:
    """A local model's results depend on their batch (padding): each member's requests go out
    as they would alone, in its order and chunks, one member at a time."""
    calls: list[list[str]] = []

    def call(items: list[str]) -> list[str]:
        calls.append(list(items))
        return [x.upper() for x in items]

    pool = RequestPool(["a", "b"])
    ctxs = {"a": RunContext("a"), "b": RunContext("b")}

    def asking(name: str, items: list[str]) -> Any:
        return lambda: ask_model(ctxs[name], "m", [f"h{x}" for x in items], items, call,
                                 lambda fresh: None, 2, object(), "generate")

    out = _run(pool, {"a": asking("a", ["x", "yy", "zzz"]),
                      "b": asking("b", ["yy", "w"])})
    # a's batches as alone, then b's without what a already asked (b alone would have found
    # "yy" in the memo): the same batches, replies and counts as one node after the other
    assert calls == [["x", "yy"], ["zzz"], ["w"]]
    assert out["a"] == {"hx": "X", "hyy": "YY", "hzzz": "ZZZ"}
    assert out["b"] == {"hyy": "YY", "hw": "W"}
    assert (ctxs["a"].model_calls, ctxs["b"].model_calls) == (3, 1)
    assert ctxs["b"].stats == {"memo_hits": 1}


def test_a_member_that_fails_or_asks_nothing_does_not_hold_the_others() -> None:
    pool = RequestPool(["a", "b", "c"])

    def boom() -> None:
        raise RuntimeError("bad row")

    ask = lambda: ask_model(RunContext("c"), "m", ["h"], ["q"], lambda xs: ["r"],  # noqa: E731
                            lambda fresh: None, 8)
    out = _run(pool, {"a": boom, "b": lambda: "cached", "c": ask})
    assert isinstance(out["a"], RuntimeError) and out["b"] == "cached"
    assert out["c"] == {"h": "r"}


def test_a_failing_model_call_fails_every_member_that_asked() -> None:
    pool = RequestPool(["a", "b"])

    def call(items: list[str]) -> list[str]:
        raise ConnectionError("the model server went away")

    def asking(name: str) -> Any:
        return lambda: ask_model(RunContext(name), "m", [name], [name], call,
                                 lambda fresh: None, 8)

    out = _run(pool, {"a": asking("a"), "b": asking("b")})
    assert all(isinstance(out[n], ConnectionError) for n in "ab")


def test_alone_a_node_asks_chunk_by_chunk_and_commits_each() -> None:
    commits: list[dict[str, int]] = []
    ctx = RunContext("n")
    got = ask_model(ctx, "m", ["a", "b", "c"], [1, 2, 3], lambda xs: [x * 10 for x in xs],
                    commits.append, 2)
    assert got == {"a": 10, "b": 20, "c": 30}
    assert commits == [{"a": 10, "b": 20}, {"c": 30}] and ctx.model_calls == 3


@pytest.mark.parametrize("members", [["a"], ["a", "b"]])
def test_leaving_without_asking_ends_cleanly(members: list[str]) -> None:
    pool = RequestPool(members)
    out = _run(pool, {m: (lambda m=m: m) for m in members})
    assert out == {m: m for m in members} and pool.flushes == []


def test_an_idle_member_does_not_hold_up_the_others() -> None:
    """b waits for a lock that a holds until a's model call is back (two branches with equal
    node keys): a's requests go out while b is idle, then b goes on."""
    from dcc.ops.models.pool import idle

    pool = RequestPool(["a", "b"])
    lock = threading.Lock()
    lock.acquire()  # a holds the node lock from the start

    def a() -> Any:
        got = ask_model(RunContext("a"), "m", ["h"], ["q"], lambda xs: ["r"],
                        lambda fresh: None, 8)
        lock.release()
        return got

    def b() -> str:
        with idle():
            lock.acquire()
        return "cached"

    out = _run(pool, {"a": a, "b": b})
    assert out == {"a": {"h": "r"}, "b": "cached"}


def test_batched_requests_go_out_one_member_at_a_time() -> None:
    """a asks in two rounds; b's one ask, which overlaps a's second, waits until a has left:
    the batches, replies and counts of one node after the other."""
    calls: list[list[str]] = []

    def call(items: list[str]) -> list[str]:
        calls.append(list(items))
        return [x.upper() for x in items]

    pool = RequestPool(["a", "b"])
    ctxs = {"a": RunContext("a"), "b": RunContext("b")}

    def ask(name: str, items: list[str]) -> dict[str, Any]:
        return ask_model(ctxs[name], "m", items, items, call, lambda fresh: None, 8,
                         object(), "score")

    out = _run(pool, {"a": lambda: [ask("a", ["x"]), ask("a", ["y"])],
                      "b": lambda: ask("b", ["y", "z"])})
    assert calls == [["x"], ["y"], ["z"]]
    assert out["b"] == {"y": "Y", "z": "Z"}
    assert (ctxs["a"].model_calls, ctxs["b"].model_calls) == (2, 1)
    assert ctxs["b"].stats == {"memo_hits": 1}
