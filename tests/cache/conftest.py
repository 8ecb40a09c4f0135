"""Fixtures for the cache tests: stores over real folders, helpers for real child processes.

`store` is parametrised over every Store implementation, so `test_store_contract.py` runs the
same suite against each (STYLE principle 14). Child processes (lock holders, writers killed
with SIGKILL, a dead pid) are real `python -c` subprocesses: the behaviour under test is the
kernel's (flock, rename, pid lookup), so nothing about it is mocked.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:  # the repo is not installed into the venv
    sys.path.insert(0, str(REPO))

from dcc.cache.store import DiskStore  # noqa: E402

STORES: dict[str, Callable[[Path], DiskStore]] = {
    "disk": DiskStore,
}


@pytest.fixture(params=sorted(STORES))
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[DiskStore]:
    s = STORES[request.param](tmp_path / "store")
    yield s
    s.close()


@pytest.fixture
def disk_store(tmp_path: Path) -> Iterator[DiskStore]:
    s = DiskStore(tmp_path / "store")
    yield s
    s.close()


@pytest.fixture
def put() -> Callable[[DiskStore, bytes], str]:
    """Write bytes through temp_path + commit, as the engine does; return the content hash."""

    def _put(store: DiskStore, data: bytes) -> str:
        tmp = store.temp_path(".arrow")
        tmp.write_bytes(data)
        return store.commit(tmp)

    return _put


@pytest.fixture
def spawn() -> Iterator[Callable[[str], subprocess.Popen[str]]]:
    """Start `python -c CODE` with dcc importable; line-buffered text pipes; reaped at the end."""
    children: list[subprocess.Popen[str]] = []

    def _spawn(code: str) -> subprocess.Popen[str]:
        env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1"}
        child = subprocess.Popen(
            [sys.executable, "-c", textwrap.dedent(code)], env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )
        children.append(child)
        return child

    yield _spawn
    for child in children:
        if child.poll() is None:
            child.kill()
        child.communicate(timeout=10)


@pytest.fixture
def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    try:
        os.kill(child.pid, 0)
    except ProcessLookupError:
        return child.pid
    pytest.skip("the pid of a reaped child was reused at once")
