"""Builds killed with SIGKILL at many points, and two builds racing on one cache.

A 200k-row JSONL source makes a build take a second or two, long enough to kill it in every
phase: while compiling, while a node runs, while an export is half written. The promises:
an export path is absent or complete at every moment (a watcher thread checks while the
build runs and dies), the next build completes with exports byte-identical to an
uninterrupted build and leaves no `.dcc-tmp-*` behind, and two builds started at once both
succeed with each node run by at most one of them. Nothing here asserts a speed.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from engine_helpers import Project, statuses

N_ROWS = 200_000

RECIPE = """src = load.jsonl("data/big.jsonl")
long = src | select.length(field="output", min=5)
distinct = long | select.dedup(fields=["instruction"])
tidy = distinct | rewrite.normalize(fields=["output"])
export tidy to "out/tidy.jsonl"
export distinct to "out/distinct.parquet"
export long to "out/long"
"""

EXPORTS = ("out/tidy.jsonl", "out/distinct.parquet", "out/long")


@pytest.fixture(scope="module")
def big_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    rng = random.Random(20240601)
    path = tmp_path_factory.mktemp("big") / "big.jsonl"
    with open(path, "w", encoding="utf-8") as f:
        for i in range(N_ROWS):
            f.write(json.dumps({"instruction": f"task {i % 150_000}",
                                "output": "  w " * rng.randint(1, 15), "id": i}) + "\n")
    return path


def big_project(root: Path, data: Path) -> Project:
    project = Project(root)
    (root / "data").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(data, root / "data/big.jsonl")
    project.write("r.recipe", RECIPE)
    return project


@pytest.fixture(scope="module")
def reference(big_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    """The exports of one uninterrupted build."""
    project = big_project(tmp_path_factory.mktemp("reference"), big_data)
    project.build()
    return project.snapshot(*EXPORTS)


class ExportWatcher(threading.Thread):
    """Reads every export path over and over while a build runs: each one must be absent or
    exactly the reference (a folder: all of its files, each complete)."""

    def __init__(self, root: Path, reference: dict[str, bytes]) -> None:
        super().__init__(daemon=True)
        self.root, self.reference = root, reference
        self.stop = threading.Event()
        self.problems: list[str] = []
        self.seen: set[str] = set()

    def run(self) -> None:
        while not self.stop.is_set():
            for name in EXPORTS:
                self._check(name)
            time.sleep(0.002)

    def _check(self, name: str) -> None:
        path = self.root / name
        want = {k: v for k, v in self.reference.items() if k == name or k.startswith(name + "/")}
        try:
            if path.is_dir():
                got = {f.relative_to(self.root).as_posix(): f.read_bytes()
                       for f in path.iterdir() if f.is_file()}
            elif path.exists():
                got = {name: path.read_bytes()}
            else:
                return
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            return  # renamed between the look and the read (away, or a folder into place)
        if got != want:
            self.problems.append(f"{name} was visible but incomplete ({sorted(got)})")
        else:
            self.seen.add(name)


def temps(project: Project) -> list[str]:
    found = [p for p in project.root.rglob(".dcc-tmp-*")]
    return sorted(p.relative_to(project.root).as_posix() for p in found)


def _after_line(text: str) -> Callable[[Project, list[str], float], bool]:
    return lambda project, lines, elapsed: any(ln.startswith(text) for ln in lines)


def _temp_in_out(project: Project, lines: list[str], elapsed: float) -> bool:
    return any((project.root / "out").glob(".dcc-tmp-*"))


def _after_seconds(seconds: float) -> Callable[[Project, list[str], float], bool]:
    return lambda project, lines, elapsed: elapsed >= seconds


# (id, when to kill, the signal, must it land before the build ends). The timed point is drawn
# from a seeded generator: a fixed moment somewhere in a typical build, the same in every run.
KILL_POINTS = [
    ("timed", _after_seconds(random.Random(7).uniform(0.3, 2.0)), signal.SIGKILL, False),
    ("source-running", _after_line("run    src"), signal.SIGKILL, True),
    ("mid-nodes", _after_line("ran    distinct"), signal.SIGKILL, True),
    ("mid-export", _temp_in_out, signal.SIGKILL, True),
    ("after-first-export", lambda p, lines, t: (p.root / "out/tidy.jsonl").exists(),
     signal.SIGKILL, True),
    ("ctrl-c-mid-export", _temp_in_out, signal.SIGINT, True),
]


@pytest.mark.parametrize("when,sig,must_land", [p[1:] for p in KILL_POINTS],
                         ids=[p[0] for p in KILL_POINTS])
def test_a_killed_build_then_a_rebuild_gives_the_uninterrupted_exports(
        big_data: Path, reference: dict[str, bytes], tmp_path: Path,
        when: Callable[[Project, list[str], float], bool], sig: int, must_land: bool) -> None:
    project = big_project(tmp_path / "p", big_data)
    watcher = ExportWatcher(project.root, reference)
    watcher.start()
    try:
        proc = project.popen("build", "r.recipe")
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")),
                                  daemon=True)
        reader.start()
        start = time.monotonic()
        while proc.poll() is None and not when(project, list(lines), time.monotonic() - start):
            time.sleep(0.002)
        proc.send_signal(sig)
        proc.wait(timeout=60)
        reader.join(timeout=10)
        proc.stdout.close()
        proc.stderr.close()
        if sig == signal.SIGINT and must_land:  # Ctrl-C: exit 130, quietly, temps cleaned up
            assert proc.returncode == 130, "".join(lines)
            assert "Traceback" not in "".join(lines)
            assert temps(project) == []
        elif must_land:
            assert proc.returncode == -sig, f"the build ended first:\n{lines}"
        for name in EXPORTS:  # right after the kill: each export absent or complete
            watcher._check(name)
        assert watcher.problems == []

        rebuilt = project.build()
    finally:
        watcher.stop.set()
        watcher.join(timeout=10)
    assert watcher.problems == []
    assert set(statuses(rebuilt).values()) <= {"ran", "cached"}
    assert project.snapshot(*EXPORTS) == reference
    assert temps(project) == []


def test_two_builds_at_once_share_the_work(big_data: Path, reference: dict[str, bytes],
                                           tmp_path: Path) -> None:
    project = big_project(tmp_path / "p", big_data)
    procs = [project.popen("build", "r.recipe", "--json") for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
        assert "Traceback" not in err
    reports = [statuses(json.loads(out)) for out, _ in outs]
    assert set(reports[0]) == set(reports[1]) == {"src", "long", "distinct", "tidy"}
    for name in reports[0]:
        ran = [r[name] for r in reports].count("ran")
        assert ran <= 1, f"{name} ran in both builds: {reports}"
        assert ran == 1 or all(r[name] == "cached" for r in reports)
    assert project.snapshot(*EXPORTS) == reference
    assert temps(project) == []
