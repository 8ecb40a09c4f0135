"""RowMemo: per-row results keyed by (op key without inputs, row hash), durable per batch."""

from __future__ import annotations

import signal
import textwrap
from collections.abc import Callable

import pytest

from dcc.cache.keys import KeyParts
from dcc.cache.rowmemo import RowMemo, row_hash
from dcc.cache.store import DiskStore

OP = "a" * 32


def rows(n: int, start: int = 0) -> dict[str, bytes]:
    return {row_hash({"id": i, "text": f"row {i}"}): f"answer {i}".encode()
            for i in range(start, start + n)}


def test_put_then_get(disk_store: DiskStore) -> None:
    memo = RowMemo(disk_store, OP)
    items = rows(10)
    assert memo.get_many(list(items)) == {}
    memo.put_many(items)
    assert memo.get_many(list(items)) == items
    extra = row_hash({"id": 99})
    assert memo.get_many([*items, extra]) == items


def test_count_for_plan(disk_store: DiskStore) -> None:
    memo = RowMemo(disk_store, OP)
    old, new = rows(90), rows(10, start=90)
    memo.put_many(old)
    assert memo.count([*old, *new]) == 90
    assert memo.count([]) == 0


def test_entries_are_per_operator_configuration(disk_store: DiskStore) -> None:
    items = rows(3)
    RowMemo(disk_store, OP).put_many(items)
    assert RowMemo(disk_store, "b" * 32).get_many(list(items)) == {}


def test_memo_key_survives_new_inputs(disk_store: DiskStore) -> None:
    def parts(inputs: tuple[str, ...]) -> KeyParts:
        return KeyParts("distill.respond", 1, "c" * 32, {"model": "m"}, "m@1", 0, inputs)

    items = rows(5)
    RowMemo(disk_store, parts(("1" * 32,)).memo_key()).put_many(items)
    later = RowMemo(disk_store, parts(("1" * 32, "2" * 32)).memo_key())
    assert later.get_many(list(items)) == items


def test_persists_across_reopening(disk_store: DiskStore) -> None:
    items = rows(4)
    RowMemo(disk_store, OP).put_many(items)
    with DiskStore(disk_store.root) as again:
        assert RowMemo(again, OP).get_many(list(items)) == items


def test_large_values_round_trip(disk_store: DiskStore) -> None:
    big = {row_hash("big"): bytes(range(256)) * 1000}
    memo = RowMemo(disk_store, OP)
    memo.put_many(big)
    assert memo.get_many(list(big)) == big


def test_rejects_bad_values_and_keys(disk_store: DiskStore) -> None:
    with pytest.raises(ValueError, match="not a dcc hash"):
        RowMemo(disk_store, "not-a-key")
    with pytest.raises(TypeError, match="must be bytes"):
        RowMemo(disk_store, OP).put_many({row_hash(1): "text"})  # type: ignore[dict-item]
    assert RowMemo(disk_store, OP).count([row_hash(1)]) == 0  # nothing half-written


def test_row_hash_is_canonical() -> None:
    assert row_hash({"a": 1, "b": "x"}) == row_hash({"b": "x", "a": 1})
    assert row_hash({"a": 1}) != row_hash({"a": 1.0})
    with pytest.raises(TypeError):
        row_hash({"a": {1}})


def test_killed_build_resumes_from_committed_batches(
    disk_store: DiskStore, spawn: Callable
) -> None:
    builder = spawn(f"""
        import time
        from dcc.cache.store import DiskStore
        from dcc.cache.rowmemo import RowMemo, row_hash
        memo = RowMemo(DiskStore({str(disk_store.root)!r}), {OP!r})
        for batch in range(1000):
            memo.put_many({{row_hash(batch * 10 + i): b"r" for i in range(10)}})
            if batch == 8:
                print("90 rows done", flush=True)
                time.sleep(60)
    """)
    assert builder.stdout.readline().strip() == "90 rows done"
    builder.send_signal(signal.SIGKILL)
    builder.wait()
    memo = RowMemo(disk_store, OP)
    assert memo.count([row_hash(i) for i in range(100)]) == 90


def test_lookups_of_many_rows_go_out_in_chunks(disk_store: DiskStore) -> None:
    from dcc.cache.rowmemo import CHUNK

    memo = RowMemo(disk_store, OP)
    items = rows(CHUNK * 2 + 17)
    memo.put_many(items)
    asked = [*items, *rows(50, start=10**6)]
    assert memo.get_many(asked) == items
    assert memo.count(asked + list(items)[:3]) == len(items) + 3


def test_a_first_format_memo_is_carried_over_once(tmp_path) -> None:  # noqa: ANN001
    import diskcache

    items = rows(5)
    root = tmp_path / "store"
    with diskcache.Cache(str(root / "rowmemo"), eviction_policy="none", statistics=0) as old:
        for h, value in items.items():
            old.set(f"{OP}:{h}", value)
        old.set("not-a-memo-key", b"ignored")
    with DiskStore(root) as store:
        assert RowMemo(store, OP).get_many(list(items)) == items
        RowMemo(store, OP).put_many({row_hash("new"): b"n"})
    with diskcache.Cache(str(root / "rowmemo"), eviction_policy="none", statistics=0) as old:
        old.set(f"{OP}:{row_hash('late')}", b"late")  # an old dcc writes after the upgrade
    with DiskStore(root) as store:  # already upgraded: not imported again
        assert RowMemo(store, OP).count([row_hash("new"), row_hash("late")]) == 1


def test_a_memo_of_a_newer_format_is_refused_clearly(tmp_path) -> None:  # noqa: ANN001
    import sqlite3

    from dcc.cache.rowmemo import FILENAME, FORMAT
    from dcc.errors import CacheError

    root = tmp_path / "store"
    (root / "rowmemo").mkdir(parents=True)
    db = sqlite3.connect(root / "rowmemo" / FILENAME)
    db.execute(f"PRAGMA user_version={FORMAT + 1}")
    db.close()
    with DiskStore(root) as store, pytest.raises(CacheError, match="newer dcc"):
        RowMemo(store, OP).get_many([row_hash(1)])


def test_two_processes_writing_at_once_lose_nothing(
    disk_store: DiskStore, spawn: Callable
) -> None:
    code = """
        import sys
        from dcc.cache.store import DiskStore
        from dcc.cache.rowmemo import RowMemo, row_hash
        w = int(sys.argv[1])
        memo = RowMemo(DiskStore(ROOT), OP)
        for batch in range(100):
            memo.put_many({row_hash((w, batch, i)): b"%d" % w for i in range(20)})
        print("done", flush=True)
    """.replace("ROOT", repr(str(disk_store.root))).replace("OP", repr(OP))
    writers = [spawn(f"import sys; sys.argv[1:] = [{w!r}]\n" + textwrap.dedent(code))
               for w in range(2)]
    for proc in writers:
        assert proc.stdout.readline().strip() == "done"
        proc.wait()
    memo = RowMemo(disk_store, OP)
    for w in range(2):
        hashes = [row_hash((w, b, i)) for b in range(100) for i in range(20)]
        assert memo.count(hashes) == 2000
        assert set(memo.get_many(hashes[:50]).values()) == {b"%d" % w}
