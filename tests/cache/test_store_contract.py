"""The Store contract, run against every implementation in conftest.STORES.

Multi-process behaviour (locks, kill -9, dead writers) is exercised with real child processes
that open the same store root, because that is exactly what two `dcc build`s do.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import pytest

from dcc.cache.atomic import TMP_PREFIX
from dcc.cache.base import CorruptObject, LockTimeout, MissingObject, Record
from dcc.cache.hashing import digest
from dcc.cache.store import DiskStore
from dcc.errors import CacheError

Put = Callable[[DiskStore, bytes], str]
KEY, KEY2 = "1" * 32, "2" * 32


def record(content: str, node: str = "clean", rows: int = 3) -> Record:
    return Record(content=content, rows=rows, schema={"text": "str"}, stats={"kept": rows},
                  node=node, recipe="/r/quickstart.recipe", created=1700000000.5)


def corrupt(store: DiskStore, content: str) -> None:
    """Flip bytes of a stored object in place (same size), as bit rot would."""
    path = store.object_path(content)
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[0] ^= 0xFF
    path.write_bytes(bytes(data))


# -- key -> content -> object -----------------------------------------------------------------
def test_commit_then_lookup(store: DiskStore, put: Put) -> None:
    assert store.lookup(KEY) is None
    content = put(store, b"arrow bytes")
    assert content == digest(b"arrow bytes")
    assert store.has_object(content)
    assert store.object_path(content).read_bytes() == b"arrow bytes"
    store.save(KEY, record(content))
    assert store.lookup(KEY) == record(content)
    assert store.open_object(content, verify=True) == store.object_path(content)


def test_temp_paths_are_fresh_named_and_consumed_by_commit(store: DiskStore, put: Put) -> None:
    tmp = store.temp_path(".arrow")
    assert tmp != store.temp_path(".arrow")
    assert tmp.name.startswith(f"{TMP_PREFIX}{os.getpid()}-") and tmp.suffix == ".arrow"
    tmp.write_bytes(b"x")
    store.commit(tmp)
    assert not tmp.exists()


def test_same_content_is_stored_once(store: DiskStore, put: Put) -> None:
    a, b = put(store, b"same"), put(store, b"same")
    assert a == b
    assert [e.content for e in store.entries()] == [a]
    assert list((store.root / "tmp").iterdir()) == []


def test_objects_are_immutable_files(store: DiskStore, put: Put) -> None:
    content = put(store, b"data")
    assert store.object_path(content).stat().st_mode & 0o222 == 0
    if os.geteuid() != 0:  # root ignores file modes
        with pytest.raises(PermissionError):
            store.object_path(content).write_bytes(b"other")


def test_record_survives_reopening(store: DiskStore, put: Put) -> None:
    content = put(store, b"data")
    store.save(KEY, record(content))
    store.set_last_build("r", {"clean": {"key": KEY, "parts": {}, "content": content}})
    with DiskStore(store.root) as again:
        assert again.lookup(KEY) == record(content)
        assert again.last_build("r") == store.last_build("r")


def test_lookup_drops_a_record_whose_object_is_gone(store: DiskStore, put: Put) -> None:
    content = put(store, b"data")
    store.save(KEY, record(content))
    store.object_path(content).unlink()
    assert store.lookup(KEY) is None
    with pytest.raises(MissingObject):
        store.open_object(content, verify=False)


def test_hashes_are_checked_before_they_become_paths(store: DiskStore) -> None:
    for bad in ["../../etc/passwd", "ab", "A" * 32]:
        with pytest.raises(ValueError, match="not a dcc hash"):
            store.object_path(bad)


# -- corruption ---------------------------------------------------------------------------------
def test_corrupt_object_is_detected_and_never_served(store: DiskStore, put: Put) -> None:
    good, bad = put(store, b"good data"), put(store, b"bad data")
    store.save(KEY, record(bad))
    corrupt(store, bad)
    assert store.verify_object(good)
    assert not store.verify_object(bad)
    assert not store.has_object(bad)  # removed, so it gets rebuilt
    assert store.lookup(KEY) is None


def test_open_object_verifies_when_asked(store: DiskStore, put: Put) -> None:
    content = put(store, b"payload")
    corrupt(store, content)
    with pytest.raises(CorruptObject) as info:
        store.open_object(content, verify=True)
    assert isinstance(info.value, CacheError) and content in str(info.value)
    assert not store.has_object(content)


def test_verify_all_lists_and_removes_bad_objects(store: DiskStore, put: Put) -> None:
    contents = [put(store, bytes([i]) * 100) for i in range(4)]
    for c in contents:
        store.save(c, record(c))
    assert store.verify_all() == []
    corrupt(store, contents[1])
    corrupt(store, contents[3])
    assert store.verify_all() == sorted([contents[1], contents[3]])
    assert store.verify_all() == []
    assert {e.content for e in store.entries()} == {contents[0], contents[2]}
    assert store.lookup(contents[1]) is None and store.lookup(contents[0]) is not None


# -- listing and gc -----------------------------------------------------------------------------
def four_objects(store: DiskStore, put: Put) -> list[str]:
    """Four 1000-byte objects with records, used at t=1000, 2000, 3000, 4000 (oldest first)."""
    contents = []
    for i in range(4):
        c = put(store, bytes([i]) * 1000)
        store.save(str(i) * 32, record(c, node=f"n{i}", rows=i))
        store.touch(c, at=1000.0 * (i + 1))
        contents.append(c)
    return contents


def test_entries_describe_objects(store: DiskStore, put: Put) -> None:
    contents = four_objects(store, put)
    orphan = put(store, b"no record")
    entries = store.entries()
    assert [e.content for e in entries][1:] == contents[::-1]  # most recently used first
    assert entries[0].content == orphan and entries[0].node is None
    e1 = next(e for e in entries if e.content == contents[1])
    assert (e1.size, e1.last_used, e1.node, e1.recipe, e1.rows) == (
        1000, 2000.0, "n1", "/r/quickstart.recipe", 1)


def test_gc_removes_least_recently_used_first(store: DiskStore, put: Put) -> None:
    contents = four_objects(store, put)
    store.touch(contents[0], at=5000.0)  # used again: now the newest
    assert store.gc(max_size=2500) == (2, 2000)
    assert {e.content for e in store.entries()} == {contents[0], contents[3]}
    assert store.lookup("1" * 32) is None and store.lookup("2" * 32) is None
    assert store.lookup("0" * 32) is not None
    assert store.gc(max_size=2500) == (0, 0)


def test_gc_keeps_what_the_newest_builds_need(store: DiskStore, put: Put) -> None:
    contents = four_objects(store, put)
    store.set_last_build("a.recipe", {"n0": {"key": "0" * 32, "parts": {}, "content": contents[0]}})
    store.set_last_build("b.recipe", {"n1": {"key": "1" * 32, "parts": {}, "content": contents[1]}})
    assert store.needed_contents() == {contents[0], contents[1]}
    assert store.gc(max_size=0) == (2, 2000)
    assert {e.content for e in store.entries()} == {contents[0], contents[1]}
    assert store.gc(max_size=0, keep_needed=False) == (2, 2000)
    assert store.entries() == []
    with pytest.raises(ValueError):
        store.gc(max_size=-1)


def test_last_build_round_trip(store: DiskStore) -> None:
    assert store.last_build("r") is None
    data = {"clean": {"key": KEY, "parts": {"op": "select.length", "params": {"min": 1.0}},
                      "content": "3" * 32}}
    store.set_last_build("r", data)
    assert store.last_build("r") == data
    store.set_last_build("r", {})
    assert store.last_build("r") == {}


def test_stat_cache_is_a_persistent_mapping(store: DiskStore) -> None:
    cache = store.stat_cache
    cache["/a"] = (1, 2, 3, 4, "5" * 32)
    store.save(KEY, record("6" * 32))  # other index entries stay out of it
    assert cache["/a"] == (1, 2, 3, 4, "5" * 32) and cache.get("/b") is None
    assert list(cache) == ["/a"] and len(cache) == 1
    del cache["/a"]
    assert "/a" not in cache
    with pytest.raises(KeyError):
        del cache["/a"]


# -- crashes, dead writers and locks ------------------------------------------------------------
def test_stale_temps_are_removed_only_for_dead_writers(store: DiskStore, dead_pid: int) -> None:
    mine = store.temp_path(".arrow")
    mine.write_bytes(b"in progress")
    dead = store.root / "tmp" / f"{TMP_PREFIX}{dead_pid}-0badc0de.arrow"
    dead.write_bytes(b"abandoned")
    assert store.remove_stale_temps() == 1
    assert mine.exists() and not dead.exists()


def test_kill_9_while_committing_leaves_only_whole_objects(
    store: DiskStore, spawn: Callable, put: Put
) -> None:
    writer = spawn(f"""
        import os, sys
        from dcc.cache.store import DiskStore
        s = DiskStore({str(store.root)!r})
        for i in range(100000):
            tmp = s.temp_path(".arrow")
            with open(tmp, "wb") as f:
                f.write(os.urandom(200_000))
            s.commit(tmp)
            if i == 5:
                print("ready", flush=True)
    """)
    assert writer.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert len(store.entries()) > 5
    assert store.verify_all() == []  # every object that appeared is complete
    store.remove_stale_temps()
    assert list((store.root / "tmp").iterdir()) == []


def test_lock_makes_the_second_builder_wait_then_find_the_record(
    store: DiskStore, spawn: Callable, put: Put
) -> None:
    content = put(store, b"built once")
    with store.lock(KEY):
        second = spawn(f"""
            from dcc.cache.store import DiskStore
            s = DiskStore({str(store.root)!r})
            print("waiting", flush=True)
            with s.lock({KEY!r}):
                rec = s.lookup({KEY!r})
                print("found" if rec else "missing", rec and rec.content, flush=True)
        """)
        assert second.stdout.readline().strip() == "waiting"
        time.sleep(0.3)
        assert second.poll() is None  # blocked on our lock
        store.save(KEY, record(content))
    out, err = second.communicate(timeout=10)
    assert out.split() == ["found", content], err


def test_lock_is_released_when_the_holder_is_killed(store: DiskStore, spawn: Callable) -> None:
    holder = spawn(f"""
        import time
        from dcc.cache.store import DiskStore
        s = DiskStore({str(store.root)!r})
        with s.lock({KEY!r}):
            print("locked", flush=True)
            time.sleep(60)
    """)
    assert holder.stdout.readline().strip() == "locked"
    with pytest.raises(LockTimeout), store.lock(KEY, timeout=0.1):
        pass
    holder.kill()
    holder.wait()
    with store.lock(KEY, timeout=5):
        pass


def test_locks_are_per_key(store: DiskStore) -> None:
    with store.lock(KEY):
        with store.lock(KEY2, timeout=0.5):
            pass
        with pytest.raises(LockTimeout, match="locked by another build"), \
                store.lock(KEY, timeout=0.05):
            pass
