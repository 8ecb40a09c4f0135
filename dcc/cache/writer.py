"""Writing a new object: hashed on the way out, large ones around the page cache.

Two costs of storing a large artifact go away here:

* Hashing it again: the writer feeds every byte to xxh3-128 as it is written, so committing
  the file needs no second pass over it (`DiskStore.commit(tmp, content=...)`). The digest is
  the one `hash_file` gives, over exactly the bytes written.
* Buffered writes: an artifact is written once and usually not read back by this build (the
  engine keeps the table in memory), yet a buffered write copies it into fresh page-cache
  pages, and on some machines (VMs that fault in guest memory page by page) that costs ~10x
  the copy itself (measured: 1.6 s of system time for 640 MB, against 0.02 s with O_DIRECT)
  and evicts pages the build still reads. So once an object reaches one full chunk, whole
  chunks go out with O_DIRECT from an aligned buffer; the tail, and every object smaller
  than a chunk, is written normally. Where the filesystem refuses O_DIRECT (tmpfs, some
  network filesystems) the writer falls back to buffered writes; the bytes are the same.

The writer only writes into a temporary path; the store's commit (fsync, rename) is what makes
an object appear, so a writer killed half-way leaves only a temp that is cleaned up later.
"""

from __future__ import annotations

import errno
import fcntl
import io
import mmap
import os
import queue
import threading
from pathlib import Path
from typing import Any

import xxhash

CHUNK = 8 << 20  # a multiple of every block size O_DIRECT may require
BUFFERS = 4  # chunks in flight: the device writes one while the caller fills the next
_DIRECT = getattr(os, "O_DIRECT", 0)


class ObjectWriter(io.RawIOBase):
    """A write-only binary file at `path` (created; must not exist) that hashes its bytes.

    Whole chunks are written by one background thread (an O_DIRECT write waits for the
    device: 0.4 s for 640 MB here, which then overlaps with filling the next chunks), from a
    pool of BUFFERS page-aligned buffers, so memory stays at BUFFERS x CHUNK. The tail is
    written by `close()`, after every chunk."""

    def __init__(self, path: str | os.PathLike[str], direct: bool = True) -> None:
        super().__init__()
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        self._direct = direct and bool(_DIRECT)
        self._buf: mmap.mmap | None = None  # the chunk being filled (page-aligned)
        self._pending = bytearray()  # the bytes of an object smaller than a chunk, so far
        self._pos = 0
        self.size = 0
        self._hash = xxhash.xxh3_128()
        self._free: queue.Queue[mmap.mmap] | None = None
        self._full: queue.Queue[mmap.mmap | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        n = len(view)
        self._hash.update(view)
        self.size += n
        if self._buf is None:
            if self._pos + n < CHUNK:  # small so far: keep it in a bytes buffer
                self._pending += view
                self._pos += n
                return n
            self._start()
            self._buf = self._take()
            self._buf[:self._pos] = self._pending
            self._pending = bytearray()
        while len(view):
            k = min(CHUNK - self._pos, len(view))
            self._buf[self._pos:self._pos + k] = view[:k]
            self._pos += k
            view = view[k:]
            if self._pos == CHUNK:
                self._full.put(self._buf)
                self._buf = self._take()
                self._pos = 0
        return n

    def _start(self) -> None:
        self._free = queue.Queue()
        for _ in range(BUFFERS):
            self._free.put(_spare())
        self._thread = threading.Thread(target=self._drain, name="dcc-object-writer",
                                        daemon=True)
        self._thread.start()

    def _take(self) -> mmap.mmap:
        """A free buffer (waits while the device is behind); raises what the thread hit."""
        assert self._free is not None
        buf = self._free.get()
        if self._error is not None:
            raise self._error
        return buf

    def _drain(self) -> None:
        assert self._free is not None
        while True:
            buf = self._full.get()
            if buf is None:
                return
            try:
                if self._error is None:
                    self._flush_chunk(buf)
            except BaseException as e:  # handed to the caller at its next write or close
                self._error = e
            finally:
                self._free.put(buf)

    def _flush_chunk(self, buf: mmap.mmap) -> None:
        if self._direct:
            self._set_direct(True)
        try:
            self._write_all(buf)
        except OSError as e:
            if not self._direct or e.errno != errno.EINVAL:
                raise
            self._direct = False  # the filesystem takes the flag but not the write
            self._set_direct(False)
            self._write_all(buf)

    def _set_direct(self, on: bool) -> None:
        flags = fcntl.fcntl(self._fd, fcntl.F_GETFL)
        want = flags | _DIRECT if on else flags & ~_DIRECT
        if want != flags:
            try:
                fcntl.fcntl(self._fd, fcntl.F_SETFL, want)
            except OSError:
                self._direct = False

    def _write_all(self, data: Any) -> None:
        view = memoryview(data)
        while len(view):
            view = view[os.write(self._fd, view):]

    def _stop(self) -> None:
        """Wait for the chunks in flight."""
        if self._thread is not None:
            self._full.put(None)
            self._thread.join()
            self._thread = None

    def close(self) -> None:
        """Write what is left (buffered) and close; the file is complete but not synced."""
        if self.closed:
            return
        try:
            self._stop()
            if self._error is not None:
                raise self._error
            self._set_direct(False)
            if self._buf is not None:
                self._write_all(memoryview(self._buf)[:self._pos])
            elif self._pos:
                self._write_all(self._pending)
        finally:
            self._release()
            super().close()

    def abort(self) -> None:
        """Close without caring about the bytes (the caller removes the file)."""
        try:
            if not self.closed:
                self._stop()
                self._release()
        finally:
            super().close()

    def _release(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        if self._buf is not None:
            _keep(self._buf)
            self._buf = None
        while self._free is not None and not self._free.empty():
            _keep(self._free.get_nowait())

    def digest(self) -> str:
        """The content hash of everything written (what `hash_file` gives for the file)."""
        return self._hash.hexdigest()


# Chunk buffers of finished writers, for the next ones: a fresh 8 MiB mapping costs 2048 page
# faults when first filled (~25 ms on a VM), per buffer, per object. At most two writers run
# at once (the walk's and the background writer's), so at most 2 x BUFFERS are kept.
_SPARE: list[mmap.mmap] = []
_SPARE_LOCK = threading.Lock()


def _spare() -> mmap.mmap:
    with _SPARE_LOCK:
        if _SPARE:
            return _SPARE.pop()
    return mmap.mmap(-1, CHUNK)


def _keep(buf: mmap.mmap) -> None:
    with _SPARE_LOCK:
        if len(_SPARE) < 2 * BUFFERS:
            _SPARE.append(buf)
            return
    buf.close()


__all__ = ["BUFFERS", "CHUNK", "ObjectWriter"]
