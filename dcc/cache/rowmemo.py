"""Per-row memo for expensive row-wise operators (model calls).

A model operator's node key changes whenever its input dataset changes, so the node cache alone
would re-run every row after adding one. Results are therefore also filed per row, under the
operator's key WITHOUT inputs (`KeyParts.memo_key()`) and a hash of the row: adding 1% new rows
costs about 1% of the calls. `put_many` commits each batch at once, so a build killed at 90%
resumes at 90%. Values are opaque bytes; the engine decides how a row result is encoded.

Storage: one sqlite table (`root/rowmemo/memo-v2.sqlite3`, WAL journal), keyed by the two
16-byte digests. A rebuild looks up every row of its input, so lookups go out as one
`IN (...)` query per chunk of rows rather than one query per row (20,000 rows: ~10 ms instead
of ~170 ms through a key-value API). Each `put_many` is one transaction: a process killed
(even by `kill -9`) keeps every batch committed before it and none of the batch in flight, and
two builds writing at once serialize on sqlite's write lock. The file's format is versioned
(`PRAGMA user_version`); a memo of the first format (a diskcache under `rowmemo/`) is copied
in once, the first time a newer dcc opens the store, so no model reply is paid for twice.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dcc.cache.base import check_hash
from dcc.cache.hashing import canonical_bytes, digest
from dcc.errors import CacheError

if TYPE_CHECKING:
    from dcc.cache.remote import RemoteCache
    from dcc.cache.store import DiskStore

FORMAT = 2  # PRAGMA user_version of the memo file; 1 was the diskcache layout
FILENAME = "memo-v2.sqlite3"
# Rows per lookup query: well under SQLITE_MAX_VARIABLE_NUMBER (999 before sqlite 3.32).
CHUNK = 900
_SCHEMA = """
CREATE TABLE IF NOT EXISTS memo (
    op BLOB NOT NULL,
    row BLOB NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (op, row)
) WITHOUT ROWID
"""
# What the team cache (dcc.cache.remote) already has: entries and batch files known to be
# there, because they were pulled from it or pushed to it. Tables added beside `memo` (an
# older dcc ignores them), so the file's format does not change.
_SHARED_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS memo_shared (op BLOB NOT NULL, row BLOB NOT NULL, "
    "PRIMARY KEY (op, row)) WITHOUT ROWID",
    "CREATE TABLE IF NOT EXISTS memo_batches (name TEXT PRIMARY KEY) WITHOUT ROWID",
)


def row_hash(obj: Any) -> str:
    """The hash a row is memoized under: digest of its canonical bytes.

    >>> row_hash({"text": "hi", "id": 1}) == row_hash({"id": 1, "text": "hi"})
    True
    """
    return digest(canonical_bytes(obj))


def _raw(h: str) -> bytes:
    """A 32-hex digest as its 16 bytes (anything else is a ValueError). Called once per row
    of a lookup, so it checks by decoding instead of by `check_hash`'s regex (5x slower)."""
    try:
        raw = bytes.fromhex(h)
    except (TypeError, ValueError):
        raw = b""
    if len(raw) != 16 or len(h) != 32:
        raise ValueError(f"not a dcc hash (32 lowercase hex characters): {h!r}")
    return raw


class MemoDB:
    """The sqlite file behind every RowMemo of one store; safe for threads and processes."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self.path = self.folder / FILENAME
        self._lock = threading.Lock()
        # The team cache, when the build has one (DiskStore.share_memo): a namespace is
        # pulled from it before its first lookup, once per process.
        self.remote: RemoteCache | None = None
        self._pulled: set[bytes] = set()
        self._pull_lock = threading.Lock()  # model calls may look up from several threads
        self._shared_ready = False
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            # isolation_level=None: transactions are explicit (BEGIN IMMEDIATE ... COMMIT).
            self._db = sqlite3.connect(self.path, timeout=120, isolation_level=None,
                                       check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode: a commit survives the process dying at any point; a power
            # cut may lose the last commits, never corrupt the file (diskcache's setting too).
            self._db.execute("PRAGMA synchronous=NORMAL")
            if self._version() != FORMAT:
                with self._write():  # another process may have set it up meanwhile: ask again
                    if self._version() < FORMAT:
                        self._db.execute(_SCHEMA)
                        self._import_v1()
                        self._db.execute(f"PRAGMA user_version={FORMAT}")
        except sqlite3.Error as e:
            raise CacheError(f"cannot use the row memo {self.path}: {e}") from e

    def _version(self) -> int:
        version = int(self._db.execute("PRAGMA user_version").fetchone()[0])
        if version > FORMAT:
            raise CacheError(f"{self.path}: row memo of a newer dcc (format {version}); "
                             "upgrade dcc or use another --cache-dir")
        return version

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction, taken at once (BEGIN IMMEDIATE) so two processes never
        deadlock upgrading a read lock; rolled back if anything fails."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _import_v1(self) -> None:
        """Copy a first-format memo (diskcache, keys "op:row") into the table; runs inside
        the transaction that sets the format, so it happens once, all or nothing."""
        if not (self.folder / "cache.db").is_file():
            return
        import diskcache

        with diskcache.Cache(str(self.folder), eviction_policy="none", statistics=0) as old:
            rows = []
            for name in old.iterkeys():
                op, sep, row = str(name).partition(":")
                value = old.get(name)
                if sep and isinstance(value, bytes):
                    with contextlib.suppress(ValueError):
                        rows.append((_raw(op), _raw(row), value))
        self._db.executemany("INSERT OR IGNORE INTO memo VALUES (?, ?, ?)", rows)

    def get_many(self, op: bytes, rows: list[bytes]) -> dict[bytes, bytes]:
        self._pull(op)
        found: dict[bytes, bytes] = {}
        with self._lock:
            for start in range(0, len(rows), CHUNK):
                chunk = rows[start:start + CHUNK]
                marks = ",".join("?" * len(chunk))
                found.update(self._db.execute(
                    f"SELECT row, value FROM memo WHERE op = ? AND row IN ({marks})",
                    [op, *chunk]).fetchall())
        return found

    def has_many(self, op: bytes, rows: list[bytes]) -> set[bytes]:
        self._pull(op)
        found: set[bytes] = set()
        with self._lock:
            for start in range(0, len(rows), CHUNK):
                chunk = rows[start:start + CHUNK]
                marks = ",".join("?" * len(chunk))
                found.update(r for (r,) in self._db.execute(
                    f"SELECT row FROM memo WHERE op = ? AND row IN ({marks})", [op, *chunk]))
        return found

    def put_many(self, op: bytes, items: list[tuple[bytes, bytes]]) -> None:
        with self._write():
            self._db.executemany("INSERT OR REPLACE INTO memo VALUES (?, ?, ?)",
                                 [(op, row, value) for row, value in items])
        if self.remote is not None:
            self.remote.memo_touched(op)

    # -- sharing through the team cache (dcc.cache.remote) ---------------------------------
    def _pull(self, op: bytes) -> None:
        if self.remote is None or op in self._pulled:
            return
        with self._pull_lock:
            if op not in self._pulled:
                self.remote.pull_memo(self, op)
                self._pulled.add(op)

    def _shared_tables(self) -> None:
        """Create the sharing tables on first use (inside the caller's transaction)."""
        if not self._shared_ready:
            for statement in _SHARED_SCHEMA:
                self._db.execute(statement)
            self._shared_ready = True

    def known_batches(self) -> set[str]:
        """Names of the team cache's batch files this memo has pulled or pushed."""
        with self._write():
            self._shared_tables()
            return {n for (n,) in self._db.execute("SELECT name FROM memo_batches")}

    def unshared(self, op: bytes) -> list[tuple[bytes, bytes]]:
        """The entries of namespace `op` that the team cache does not have, by row."""
        with self._write():
            self._shared_tables()
            return [(bytes(r), bytes(v)) for r, v in self._db.execute(
                "SELECT row, value FROM memo WHERE op = ? AND row NOT IN "
                "(SELECT row FROM memo_shared WHERE op = ?) ORDER BY row", (op, op))]

    def mark_shared(self, op: bytes, rows: list[bytes], batch: str,
                    items: list[tuple[bytes, bytes]] | None = None) -> None:
        """Record that batch `batch` (holding `rows`) is on the team cache; `items` are
        entries it brought, filed where this memo lacks them (a local entry is kept)."""
        with self._write():
            self._shared_tables()
            if items:
                self._db.executemany("INSERT OR IGNORE INTO memo VALUES (?, ?, ?)",
                                     [(op, row, value) for row, value in items])
            self._db.executemany("INSERT OR IGNORE INTO memo_shared VALUES (?, ?)",
                                 [(op, row) for row in rows])
            self._db.execute("INSERT OR IGNORE INTO memo_batches VALUES (?)", (batch,))


class RowMemo:
    """Row results of one operator configuration, in the store's row-memo table."""

    def __init__(self, store: DiskStore, op_key: str) -> None:
        self.op_key = check_hash(op_key)
        self._op = bytes.fromhex(op_key)
        self._store = store

    @property
    def _db(self) -> MemoDB:
        """The store's memo file, opened on first use (most nodes never touch it)."""
        return self._store.rowmemo_db()

    def get_many(self, row_hashes: Iterable[str]) -> dict[str, bytes]:
        """The memoized results among `row_hashes` (missing rows are simply absent)."""
        wanted = {_raw(h): h for h in row_hashes}
        found = self._db.get_many(self._op, list(wanted))
        return {wanted[row]: bytes(value) for row, value in found.items()}

    def put_many(self, items: dict[str, bytes]) -> None:
        """Store results, committed before returning (one transaction per call)."""
        for value in items.values():
            if not isinstance(value, (bytes, bytearray)):
                raise TypeError(f"row results must be bytes (got {type(value).__name__})")
        rows = [(_raw(h), bytes(v)) for h, v in items.items()]
        if rows:
            self._db.put_many(self._op, rows)

    def count(self, row_hashes: Iterable[str]) -> int:
        """How many of `row_hashes` are memoized, counting repeats (for `dcc plan`)."""
        return self.count_raw([_raw(h) for h in row_hashes])

    # The same with 16-byte digests, for callers that hash rows by the thousand (the engine):
    # no hex text to make and parse per row.
    def get_raw(self, rows: Iterable[bytes]) -> dict[bytes, bytes]:
        return self._db.get_many(self._op, list(rows))

    def put_raw(self, items: dict[bytes, bytes]) -> None:
        for row, value in items.items():
            if len(row) != 16 or not isinstance(value, bytes):
                raise TypeError("put_raw takes 16-byte row digests and bytes results")
        if items:
            self._db.put_many(self._op, list(items.items()))

    def count_raw(self, rows: list[bytes]) -> int:
        found = self._db.has_many(self._op, list(set(rows)))
        return sum(1 for h in rows if h in found)


REQUESTS_NAMESPACE = digest(b"dcc-model-requests/1")


def request_memo(store: DiskStore) -> RowMemo:
    """The memo of raw model replies by exact request (`dcc.ops.models.memo`), shared by
    every node and recipe that uses this store."""
    return RowMemo(store, REQUESTS_NAMESPACE)


__all__ = ["FORMAT", "REQUESTS_NAMESPACE", "MemoDB", "RowMemo", "request_memo", "row_hash"]
