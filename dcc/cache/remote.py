"""A team cache on any fsspec filesystem: node records and objects shared between machines.

The local store stays the only thing a build reads from; the remote is a second-level cache
it reads through and writes through (`dcc.engine.build`, `dcc cache push|pull`). Layout under
the URL's root, the local store's layout minus everything machine-specific:

* `objects/<c[:2]>/<c>`: immutable objects named by the xxh3-128 of their bytes. Every
  download is hashed before the local store takes it; bytes that do not match are reported,
  skipped and never served (the node is computed locally), and a later upload of the right
  bytes replaces them.
* `records/<k[:2]>/<k>.json`: what a node key produced (the local index record, as JSON).
  A record is uploaded only after its object (and a view's or patch's base table) is there,
  so a complete record never names a missing object.
* `memo/<namespace>/<b>`: row-memo entries (model replies by request, per-row results of
  expensive operators) in immutable batch files named by their hash, so a team whose node
  keys differ (one more source row) still pays only for the rows it adds. A build pushes one
  batch per namespace it wrote, holding what the remote lacked; a namespace is pulled (its
  batches not seen before, each verified) before its first lookup.

Race safety: objects are content-addressed, so two writers of one name write the same bytes;
records of one key name the same content for deterministic nodes, and either complete record
is a valid answer. Nothing ever appears half-written under its final name: object stores
(S3, GCS, Azure) publish a PUT (or a completed multipart upload) atomically, and on every
other filesystem a file is written to a unique name under `tmp/` and renamed into place.

Credentials and endpoints come only from the filesystem's own configuration (AWS_* variables
and ~/.aws for s3://, gcloud's for gs://, fsspec's config files and FSSPEC_* variables); a URL
with a user or password in it is refused, and messages never show more than the URL.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import struct
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from dcc.cache.base import Record, check_hash
from dcc.cache.hashing import digest, hash_file
from dcc.errors import CacheError

if TYPE_CHECKING:
    from dcc.cache.rowmemo import MemoDB
    from dcc.cache.store import DiskStore

INSTALL_HINT = "pip install 'dcc-recipes[remote]'"
ENV = "DCC_REMOTE_CACHE"
# Filesystems whose single write appears atomically under its final name (a PUT, or a
# multipart upload once completed): no temp-and-rename needed, nor possible (rename = copy).
ATOMIC_PUT = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "memory"})
UPLOAD_THREADS = 4
MEMO_MAGIC = b"DCCMEMO1"
_COUNT, _LEN = struct.Struct("<Q"), struct.Struct("<I")


class RemoteError(CacheError):
    """The remote cache cannot be used: bad URL, missing driver, unreachable, refused."""


@dataclass
class Transfers:
    """What moved between the local store and the remote during one command."""

    downloaded: int = 0  # records fetched (with their objects)
    uploaded: int = 0  # records published
    objects_down: int = 0
    objects_up: int = 0
    bytes_down: int = 0
    bytes_up: int = 0
    memo_down: int = 0  # row-memo entries pulled
    memo_up: int = 0  # row-memo entries pushed
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class RemoteCache:
    """One remote cache root (`url`), used by one process; methods are thread-safe."""

    def __init__(self, url: str) -> None:
        self.url = url
        parts = urlsplit(url)
        if parts.username or parts.password:
            raise RemoteError(
                f"the remote cache URL must not carry credentials ({parts.scheme}://"
                f"{parts.hostname or ''}...); configure them the filesystem's standard way "
                "(AWS_* variables or ~/.aws for s3://, fsspec's config for others)")
        _quiet_unretrieved_tasks()
        try:
            import fsspec
        except ImportError:
            raise RemoteError(f"--remote-cache needs fsspec: {INSTALL_HINT}") from None
        try:
            self.fs, root = fsspec.core.url_to_fs(url)
        except ImportError as e:  # fsspec knows the protocol, its driver is not installed
            raise RemoteError(f"cannot open remote cache {url}: {e}; {INSTALL_HINT}") from None
        except (ValueError, TypeError) as e:  # e.g. "Protocol not known: xyz"
            raise RemoteError(f"bad remote cache URL {url!r}: {e}") from None
        except Exception as e:  # a driver that fails to start (hdfs without a JVM, ...)
            raise RemoteError(f"cannot open remote cache {url}: {_reason(e)}") from None
        self.root = str(root).rstrip("/")
        protocol = self.fs.protocol
        protocols = {protocol} if isinstance(protocol, str) else set(protocol)
        self.atomic_put = bool(protocols & ATOMIC_PUT)
        self.transfers = Transfers()
        self.bad: set[str] = set()  # contents whose remote bytes did not match their hash
        self._present: set[str] = set()  # contents known to be on the remote (this process)
        self._lock = threading.Lock()
        self._object_locks: dict[str, threading.Lock] = {}  # one upload of an object at once
        self._memo_written: set[bytes] = set()  # memo namespaces this run added entries to
        self.down = False  # set after a connection failure: the rest of the run stays local
        self.read_only = False  # set when an upload is refused: reads go on, uploads stop

    # -- paths -----------------------------------------------------------------------------
    def object_path(self, content: str) -> str:
        check_hash(content)
        return f"{self.root}/objects/{content[:2]}/{content}"

    def record_path(self, key: str) -> str:
        check_hash(key)
        return f"{self.root}/records/{key[:2]}/{key}.json"

    # -- reachability ----------------------------------------------------------------------
    def check(self) -> None:
        """Touch the remote once; RemoteError (with the reason) if it cannot be used."""
        try:
            if self.atomic_put:  # `exists` would say False for an unreachable endpoint
                bucket = self.root.split("/", 1)[0]
                try:
                    self.fs.info(bucket)
                except FileNotFoundError:
                    raise RemoteError(f"remote cache {self.url}: no such bucket "
                                      f"'{bucket}'") from None
            else:
                self.fs.makedirs(self.root, exist_ok=True)
        except RemoteError:
            raise
        except Exception as e:  # the driver's own errors (botocore, aiohttp, OSError, ...)
            raise RemoteError(f"remote cache {self.url} is unreachable: {_reason(e)}") from None

    def warn(self, message: str) -> None:
        with self._lock:
            self.transfers.warnings.append(message)

    def _failed(self, what: str, e: BaseException, upload: bool = False) -> None:
        """A transfer failed: warn, and stop using the remote for the rest of the run when
        the failure was the connection; a refused upload (read-only credentials, a common
        setup for most of a team) stops only the uploads."""
        self.warn(f"remote cache {self.url}: {what} failed: {_reason(e)}")
        if upload and isinstance(e, PermissionError):
            self.read_only = True
        elif not isinstance(e, (FileNotFoundError, ValueError)):
            self.down = True

    @property
    def writable(self) -> bool:
        return not (self.down or self.read_only)

    # -- reading ---------------------------------------------------------------------------
    def record(self, key: str) -> Record | None:
        """The remote record of `key`, or None (absent, unreadable, or the remote is down)."""
        if self.down:
            return None
        try:
            raw = self.fs.cat_file(self.record_path(key))
        except FileNotFoundError:
            return None
        except Exception as e:
            self._failed(f"reading the record of key {key}", e)
            return None
        try:
            record = Record.from_dict(json.loads(raw))
            check_hash(record.content)
        except (ValueError, TypeError, KeyError, AttributeError):
            self.warn(f"remote cache {self.url}: the record of key {key} is malformed; "
                      "skipped, the node is computed locally")
            return None
        return record

    def fetch(self, key: str, store: DiskStore) -> Record | None:
        """Read `key` through: its record, then its object (and a view's base table), each
        verified against its hash before the local store takes it; the record is filed
        locally last. None if the remote lacks it or anything failed (then warned)."""
        record = self.record(key)
        if record is None:
            return None
        if not self.fetch_object(record.content, store, key):
            return None
        store.save(key, record)
        with self._lock:
            self.transfers.downloaded += 1
        return record

    def fetch_object(self, content: str, store: DiskStore, key: str) -> bool:
        """Make `content` (and the base table it names, if a view or patch) local; False when
        the remote lacks it, it failed verification, or the transfer failed."""
        from dcc.cache.store import read_view_base

        if store.has_object(content) and store.verify_object(content):
            base = store.view_base(content)
            return base is None or self.fetch_object(base, store, key)
        tmp = store.temp_path(".remote")
        try:
            try:
                self.fs.get_file(self.object_path(content), str(tmp))
            except FileNotFoundError:
                self.warn(f"remote cache {self.url}: object {content} of key {key} is "
                          "missing; the node is computed locally")
                return False
            except Exception as e:
                self._failed(f"downloading object {content} of key {key}", e)
                return False
            if hash_file(tmp) != content:
                with self._lock:
                    self.bad.add(content)
                self.warn(f"remote cache {self.url}: object {content} of key {key} does not "
                          "match its hash; skipped (never served), the node is computed "
                          "locally")
                return False
            size = tmp.stat().st_size
            base = read_view_base(tmp)
            if base is not None and not self.fetch_object(base, store, key):
                return False  # a view without its base table is of no use
            store.commit(tmp, content=content)
        finally:
            tmp.unlink(missing_ok=True)
        with self._lock:
            self.transfers.objects_down += 1
            self.transfers.bytes_down += size
            self._present.add(content)
        return True

    # -- writing ---------------------------------------------------------------------------
    def publish(self, key: str, record: Record, store: DiskStore) -> bool:
        """Write `key` through: its objects (a view's base first), then its record. False
        (with a warning) when the remote is down or a transfer failed; a record is never
        uploaded unless every object it needs is on the remote."""
        if not self.writable:
            return False
        base = store.view_base(record.content)
        for content in (base, record.content):
            if content is not None and not self._publish_object(content, store, key):
                return False
        data = json.dumps(asdict(record), sort_keys=True).encode()
        try:
            self._put_bytes(data, self.record_path(key))
        except Exception as e:
            self._failed(f"uploading the record of key {key}", e, upload=True)
            return False
        with self._lock:
            self.transfers.uploaded += 1
        return True

    def _publish_object(self, content: str, store: DiskStore, key: str) -> bool:
        with self._lock:
            lock = self._object_locks.setdefault(content, threading.Lock())
        with lock:  # a base shared by two records is uploaded once, not by both threads
            return self._publish_object_locked(content, store, key)

    def _publish_object_locked(self, content: str, store: DiskStore, key: str) -> bool:
        with self._lock:
            if content in self._present and content not in self.bad:
                return True
        if not self.writable:
            return False
        if not store.verify_object(content):  # never spread bytes that are already wrong
            self.warn(f"local object {content} of key {key} is missing or does not match its "
                      "hash; not uploaded")
            return False
        path = self.object_path(content)
        try:
            if content in self.bad or not self.fs.exists(path):
                local = store.object_path(content)
                self._put_file(local, path)
                with self._lock:
                    self.transfers.objects_up += 1
                    self.transfers.bytes_up += local.stat().st_size
        except Exception as e:
            self._failed(f"uploading object {content} of key {key}", e, upload=True)
            return False
        with self._lock:
            self.bad.discard(content)
            self._present.add(content)
        return True

    def _put_file(self, local: Path, dest: str) -> None:
        """Upload a file so that it appears complete under `dest` or not at all."""
        if self.atomic_put:
            self.fs.put_file(str(local), dest)
            return
        tmp = self._temp_name()
        try:
            self.fs.put_file(str(local), tmp)
            self._move(tmp, dest)
        finally:
            _remove_quietly(self.fs, tmp)

    def _put_bytes(self, data: bytes, dest: str) -> None:
        if self.atomic_put:
            self.fs.pipe_file(dest, data)
            return
        tmp = self._temp_name()
        try:
            self.fs.pipe_file(tmp, data)
            self._move(tmp, dest)
        finally:
            _remove_quietly(self.fs, tmp)

    def _temp_name(self) -> str:
        self.fs.makedirs(f"{self.root}/tmp", exist_ok=True)
        return f"{self.root}/tmp/.dcc-tmp-{os.getpid()}-{secrets.token_hex(8)}"

    def _move(self, tmp: str, dest: str) -> None:
        self.fs.makedirs(dest.rsplit("/", 1)[0], exist_ok=True)
        self.fs.mv(tmp, dest)  # a rename on local and mounted filesystems: atomic


    # -- the row memo ----------------------------------------------------------------------
    def memo_dir(self, op: bytes) -> str:
        return f"{self.root}/memo/{check_hash(op.hex())}"

    def memo_touched(self, op: bytes) -> None:
        """The local memo got entries in namespace `op` (pushed by `flush_memo`)."""
        with self._lock:
            self._memo_written.add(op)

    def pull_memo(self, db: MemoDB, op: bytes) -> None:
        """File the remote's batches of namespace `op` that `db` has not seen, each verified
        against its name (a mismatch is warned about and skipped)."""
        if self.down:
            return
        folder = self.memo_dir(op)
        try:
            names = {p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(folder, detail=False)}
        except FileNotFoundError:
            return
        except Exception as e:
            self._failed(f"listing memo batches of {op.hex()}", e)
            return
        for name in sorted(names - db.known_batches()):
            try:
                check_hash(name)
                data = self.fs.cat_file(f"{folder}/{name}")
            except ValueError:
                continue  # not a batch (a temp of another writer's filesystem)
            except FileNotFoundError:
                continue
            except Exception as e:
                self._failed(f"downloading memo batch {name}", e)
                return
            if digest(data) != name:
                self.warn(f"remote cache {self.url}: memo batch {name} does not match its "
                          "hash; skipped (never used)")
                continue
            try:
                items = decode_memo_batch(data, op)
            except ValueError as e:
                self.warn(f"remote cache {self.url}: memo batch {name} is malformed ({e}); "
                          "skipped")
                continue
            db.mark_shared(op, [row for row, _ in items], name, items)
            with self._lock:
                self.transfers.memo_down += len(items)

    def push_memo(self, db: MemoDB, op: bytes) -> bool:
        """Upload the entries of namespace `op` the remote lacks, as one batch file."""
        if not self.writable:
            return False
        items = db.unshared(op)
        if not items:
            return True
        data = encode_memo_batch(op, items)
        name = digest(data)
        try:
            self._put_bytes(data, f"{self.memo_dir(op)}/{name}")
        except Exception as e:
            self._failed(f"uploading memo batch {name}", e, upload=True)
            return False
        db.mark_shared(op, [row for row, _ in items], name)
        with self._lock:
            self.transfers.memo_up += len(items)
        return True

    def memo_pending(self) -> bool:
        """Whether this run added memo entries that `flush_memo` would push."""
        with self._lock:
            return bool(self._memo_written)

    def flush_memo(self, db: MemoDB) -> None:
        """Push what this run added to the memo (the end of a build's write-through)."""
        with self._lock:
            ops = sorted(self._memo_written)
            self._memo_written.clear()
        for op in ops:
            self.push_memo(db, op)


def encode_memo_batch(op: bytes, items: list[tuple[bytes, bytes]]) -> bytes:
    """A batch file: MEMO_MAGIC, the namespace (16 bytes), the entry count, then per entry
    its row digest (16 bytes), value length and value; entries sorted by row, so the same
    entries always give the same bytes (and name)."""
    out = [MEMO_MAGIC, op, _COUNT.pack(len(items))]
    for row, value in sorted(items):
        out += [row, _LEN.pack(len(value)), value]
    return b"".join(out)


def decode_memo_batch(data: bytes, op: bytes) -> list[tuple[bytes, bytes]]:
    """The entries of a batch of namespace `op`; ValueError if it is not one."""
    head = len(MEMO_MAGIC)
    if data[:head] != MEMO_MAGIC or data[head:head + 16] != op:
        raise ValueError("not a memo batch of this namespace")
    try:
        (count,) = _COUNT.unpack_from(data, head + 16)
        pos, items = head + 16 + _COUNT.size, []
        for _ in range(count):
            row = data[pos:pos + 16]
            (size,) = _LEN.unpack_from(data, pos + 16)
            pos += 16 + _LEN.size
            value = data[pos:pos + size]
            if len(row) != 16 or len(value) != size:
                raise ValueError("truncated")
            items.append((row, value))
            pos += size
    except struct.error:
        raise ValueError("truncated") from None
    if pos != len(data):
        raise ValueError("trailing bytes")
    return items


class Uploader:
    """Publishes records on a few threads while the build goes on; `wait()` at the end."""

    def __init__(self, remote: RemoteCache, store: DiskStore) -> None:
        self.remote = remote
        self.store = store
        self._pool: ThreadPoolExecutor | None = None
        self._futures: list[Future[bool]] = []
        self._lock = threading.Lock()  # records are filed by the walk and the writer thread

    def submit(self, key: str, record: Record) -> None:
        with self._lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(UPLOAD_THREADS,
                                                thread_name_prefix="dcc-upload")
            self._futures.append(self._pool.submit(self.remote.publish, key, record,
                                                   self.store))

    def wait(self) -> None:
        """Wait for every upload; one warning says how many results stayed local."""
        with self._lock:
            pool, self._pool = self._pool, None
        if pool is None:
            return
        pool.shutdown(wait=True)
        failed = sum(1 for f in self._futures if f.exception() is not None or not f.result())
        for f in self._futures:
            if f.exception() is not None:
                self.remote.warn(f"remote cache {self.remote.url}: upload failed: "
                                 f"{_reason(f.exception())}")
        self._futures = []
        if failed:
            self.remote.warn(f"{failed} result(s) were not uploaded to {self.remote.url} "
                             "(they are in the local cache; `dcc cache push RECIPE` retries)")


def push(store: DiskStore, remote: RemoteCache, recipe_id: str) -> int:
    """Publish every stored result of the newest build of `recipe_id` (objects, a view's
    base, then the record); returns how many results the build has that the local store
    lacks (removed by gc or by hand since), which are not pushed."""
    last = store.last_build(recipe_id)
    if last is None:
        raise RemoteError(f"the cache {store.root} has no build of {recipe_id}; "
                          "run `dcc build` first")
    from dcc.cache.keys import KeyParts
    from dcc.cache.rowmemo import REQUESTS_NAMESPACE

    uploader = Uploader(remote, store)
    missing = 0
    nodes = {n["key"]: n for n in last.values()
             if isinstance(n, dict) and isinstance(n.get("key"), str)}
    for key, node in sorted(nodes.items()):
        record = store.lookup(key)
        if record is not None:
            uploader.submit(key, record)
        elif node.get("content") != key:  # a fused stage's inner node has no record
            missing += 1
    uploader.wait()
    # The memo: each node's row-memo namespace (empty for all but expensive operators) and
    # the model replies by request (shared by every recipe of this store).
    namespaces = {REQUESTS_NAMESPACE}
    for node in nodes.values():
        try:
            namespaces.add(KeyParts.from_dict(node["parts"]).memo_key())
        except (KeyError, TypeError, ValueError):
            continue
    db = store.rowmemo_db()
    for namespace in sorted(namespaces):
        remote.push_memo(db, bytes.fromhex(namespace))
    return missing


def _reason(e: BaseException | None) -> str:
    """A one-line reason for a driver's exception (its type and message, nothing else)."""
    if e is None:
        return "unknown error"
    text = str(e).strip().splitlines()[0] if str(e).strip() else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


class _DropUnretrieved(logging.Filter):
    """Drops asyncio's "Task exception was never retrieved" reports (with a traceback): when
    a connection drops mid-request, aiohttp leaves its body-writing task failed and unread,
    while the request itself fails and reaches dcc, which reports it as one warning."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Task exception was never retrieved")


def _quiet_unretrieved_tasks() -> None:
    log = logging.getLogger("asyncio")
    if not any(isinstance(f, _DropUnretrieved) for f in log.filters):
        log.addFilter(_DropUnretrieved())


def _remove_quietly(fs: Any, path: str) -> None:
    try:
        if fs.exists(path):
            fs.rm_file(path)
    except Exception:  # a leftover temp under tmp/ is harmless; the real error is reported
        pass


__all__ = ["ENV", "INSTALL_HINT", "RemoteCache", "RemoteError", "Transfers", "Uploader", "push"]
