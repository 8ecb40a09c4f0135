"""The team cache in process: the row memo through a shared folder (batches pushed once, pulled
once, verified against their names, a tampered batch never used), and a remote that refuses
uploads (read-only credentials) still serves reads."""

from __future__ import annotations

import secrets
import time
from pathlib import Path

import pytest

from dcc.cache.base import Record
from dcc.cache.hashing import digest
from dcc.cache.remote import RemoteCache, decode_memo_batch, encode_memo_batch
from dcc.cache.rowmemo import RowMemo, row_hash
from dcc.cache.store import DiskStore

pytest.importorskip("fsspec")

OP = digest(b"an expensive operator's key without inputs")


def entries(n: int, start: int = 0) -> dict[str, bytes]:
    return {row_hash({"text": f"row {i}"}): f"reply {i}".encode() for i in range(start, n)}


def shared_store(root: Path, remote: RemoteCache) -> DiskStore:
    store = DiskStore(root)
    store.share_memo(remote)
    return store


def test_batches_round_trip_and_are_deterministic() -> None:
    op = bytes.fromhex(OP)
    items = [(bytes.fromhex(h), v) for h, v in entries(5).items()]
    data = encode_memo_batch(op, items)
    assert data == encode_memo_batch(op, list(reversed(items)))
    assert decode_memo_batch(data, op) == sorted(items)
    with pytest.raises(ValueError):
        decode_memo_batch(data[:-1], op)
    with pytest.raises(ValueError):
        decode_memo_batch(data, bytes(16))


def test_memo_entries_travel_once_and_a_tampered_batch_is_never_used(tmp_path: Path) -> None:
    remote = RemoteCache((tmp_path / "team").as_uri())
    a = shared_store(tmp_path / "a", remote)
    RowMemo(a, OP).put_many(entries(10))
    assert remote.memo_pending()
    remote.flush_memo(a.rowmemo_db())
    RowMemo(a, OP).put_many(entries(12))  # two new rows, ten old ones written again
    remote.flush_memo(a.rowmemo_db())
    assert remote.transfers.memo_up == 12  # each entry was pushed once
    batches = sorted((tmp_path / "team" / "memo" / OP).iterdir())
    assert len(batches) == 2 and all(digest(p.read_bytes()) == p.name for p in batches)

    b_remote = RemoteCache((tmp_path / "team").as_uri())
    b = shared_store(tmp_path / "b", b_remote)
    assert RowMemo(b, OP).get_many(entries(12)) == entries(12)
    assert b_remote.transfers.memo_down == 12
    assert RowMemo(b, OP).count(entries(12)) == 12  # pulled once per process
    assert b_remote.transfers.memo_down == 12

    # a batch whose bytes no longer match its name is reported and skipped
    bad = batches[0]
    n_bad = len(decode_memo_batch(bad.read_bytes(), bytes.fromhex(OP)))
    data = bytearray(bad.read_bytes())
    data[-1] ^= 0xFF
    bad.chmod(0o644)
    bad.write_bytes(bytes(data))
    c_remote = RemoteCache((tmp_path / "team").as_uri())
    c = shared_store(tmp_path / "c", c_remote)
    got = RowMemo(c, OP).get_many(entries(12))
    assert any(bad.name in w and "does not match its hash" in w
               for w in c_remote.transfers.warnings)
    assert len(got) == 12 - n_bad  # the tampered batch's entries were not used
    assert all(entries(12)[h] == v for h, v in got.items())


def stored(store: DiskStore, data: bytes) -> tuple[str, Record]:
    content = store.put_object(lambda f: f.write(data))
    return digest(b"key of " + data), Record(content=content, rows=1, schema={}, stats={},
                                             node="n", recipe="r", created=time.time())


def test_a_remote_that_refuses_uploads_still_serves_reads(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    remote = RemoteCache(f"memory://team-{secrets.token_hex(4)}/cache")
    a = DiskStore(tmp_path / "a")
    key, record = stored(a, b"first table bytes")
    assert remote.publish(key, record, a)

    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError("Access Denied")

    monkeypatch.setattr(remote.fs, "put_file", refuse)
    monkeypatch.setattr(remote.fs, "pipe_file", refuse)
    key2, record2 = stored(a, b"second table bytes")
    assert not remote.publish(key2, record2, a)
    assert remote.read_only and not remote.down
    assert any("Access Denied" in w for w in remote.transfers.warnings)
    assert remote.record(key2) is None  # nothing half-published: no record without objects

    b = DiskStore(tmp_path / "b")
    assert remote.fetch(key, b) == record  # reads go on
    assert b.lookup(key) == record and b.verify_object(record.content)
