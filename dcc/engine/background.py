"""Writing large artifacts while the build goes on.

The next node's key needs this node's content hash, not its file: so for a large table the
engine hashes the bytes it will write (cheap: pyarrow serializes without copying), carries on
with the walk, and leaves the copy to disk to one background thread. What must come after
the file is committed comes after it, in the same thread, in order:

* the index entry of every record whose content (or whose view's base) is still being
  written, so the index never names an object that is not there;
* releasing the node lock that the record was computed under, so a concurrent build that
  waits on that lock finds the record, and still computes each node once.

`wait()` joins everything and raises the first error (a full disk, a serialization that did
not give the bytes it was hashed as); the builder waits before it reads a pending object
back, before it records the build, and on every way out, so nothing outlives the build and a
Ctrl-C leaves no temps behind (kill -9 leaves temps that the next build removes, and no index
entry).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any


class Background:
    """One worker thread running jobs in the order given."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[Callable[[], Any], str | None, bool] | None] = \
            queue.Queue()
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._lock = threading.Lock()
        self.pending: set[str] = set()  # contents submitted and not yet committed

    def submit(self, job: Callable[[], Any], content: str | None = None,
               always: bool = False) -> None:
        """Run `job` after every job before it; `content` is pending until it has run. Once
        a job has failed the others are skipped, except those marked `always` (releasing a
        lock)."""
        if content is not None:
            with self._lock:
                self.pending.add(content)
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="dcc-artifact-writer",
                                            daemon=True)
            self._thread.start()
        self._jobs.put((job, content, always))

    def after(self, contents: tuple[str | None, ...], job: Callable[[], Any],
              always: bool = False) -> bool:
        """Run `job` now if none of `contents` is pending (True), else after they are written
        (False)."""
        if not self.waiting_for(contents):
            job()
            return True
        self.submit(job, always=always)
        return False

    def then(self, job: Callable[[], Any]) -> None:
        """Run `job` after every job submitted so far: now if there are none (it always runs,
        even after a failure: releasing a lock)."""
        if self._jobs.unfinished_tasks == 0:
            job()
        else:
            self.submit(job, always=True)

    def waiting_for(self, contents: tuple[str | None, ...]) -> bool:
        with self._lock:
            return any(c in self.pending for c in contents if c is not None)

    def _work(self) -> None:
        while True:
            item = self._jobs.get()
            if item is None:
                return
            job, content, always = item
            try:
                if self._error is None or always:
                    job()
            except BaseException as e:  # handed to the builder at its next check or wait
                if self._error is None:
                    self._error = e
            finally:
                if content is not None:
                    with self._lock:
                        self.pending.discard(content)
                self._jobs.task_done()

    def check(self) -> None:
        """Raise the error a job hit, if any (once)."""
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def wait(self) -> None:
        """Run every job submitted so far, then raise the first error, if any."""
        if self._thread is not None:
            self._jobs.join()
        self.check()

    def close(self) -> None:
        """Finish every job and stop the thread (errors are the caller's to check)."""
        if self._thread is not None:
            self._jobs.join()
            self._jobs.put(None)
            self._thread.join()
            self._thread = None


__all__ = ["Background"]
