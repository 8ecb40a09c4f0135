"""A throwaway local Ray head for tests and benchmarks: `ray start --head --block` on a free
port, with a token of its own, stopped (with every process it started) on exit.

Ray's `ray start` creates no auth token and CI machines have no ~/.ray, so the head and every
client of it (this process, and the `dcc` children it starts) share a fresh token through the
environment while the head runs. The temp dir is short because Ray puts socket paths in it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path


class RayHeadError(RuntimeError):
    """The head could not be started (no `ray` command, or it exited or never listened)."""


@contextlib.contextmanager
def ray_head(cpus: int, pythonpath: Sequence[str] = (), timeout: float = 90,
             env: dict[str, str] | None = None) -> Iterator[str]:
    """Yield "127.0.0.1:PORT" of a head with `cpus` CPUs and no GPUs; `pythonpath` goes first
    on its workers' path (the checkout under test), `env` is the base environment (default
    ours)."""
    ray_bin = Path(sys.executable).with_name("ray")
    if not ray_bin.exists():
        raise RayHeadError("the `ray` command is not installed beside this Python")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    temp = tempfile.mkdtemp(prefix="dccray", dir="/tmp")
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32)}
    base = dict(os.environ if env is None else env)
    path = os.pathsep.join(p for p in (*pythonpath, base.get("PYTHONPATH")) if p)
    head_env = {**base, **auth, "RAY_USAGE_STATS_ENABLED": "0", "PYTHONPATH": path}
    proc = subprocess.Popen(
        [str(ray_bin), "start", "--head", "--block", "--num-cpus", str(cpus), "--num-gpus", "0",
         "--port", str(port), "--include-dashboard", "false", "--temp-dir", temp,
         "--disable-usage-stats"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=head_env,
        start_new_session=True)
    os.environ.update(auth)  # this process's clients, and the children it starts
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RayHeadError("could not start a local Ray head") from None
                time.sleep(0.2)
        yield f"127.0.0.1:{port}"
    finally:
        for name in auth:
            os.environ.pop(name, None)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGINT)  # `ray start --block` stops its processes
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        shutil.rmtree(temp, ignore_errors=True)


__all__ = ["RayHeadError", "ray_head"]
