"""The store under the engine: corrupt artifacts are rebuilt, never served; `dcc cache`.

Artifacts are real files under `.dcc/objects/`, made read-only by the store; these tests
corrupt them the way a disk or a careless user would (chmod, flip bytes) and check what the
next command does.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from engine_helpers import Project, node, statuses

ROWS = [{"instruction": f"task {i % 9}", "output": "x" * (1 + i % 6)} for i in range(30)]

RECIPE = """param shortest = 3
src = load.jsonl("data/rows.jsonl")
long = src | select.length(field="output", min=shortest)
distinct = long | select.dedup(fields=["instruction"])
export distinct to "out/distinct.jsonl"
export long to "out/long.parquet"
"""

EXPORTS = ("out/distinct.jsonl", "out/long.parquet")


@pytest.fixture
def store_project(project: Project) -> Project:
    project.write_jsonl("data/rows.jsonl", ROWS)
    project.write("r.recipe", RECIPE)
    return project


def object_path(project: Project, content: str) -> Path:
    return project.cache / "objects" / content[:2] / content


def corrupt(path: Path) -> None:
    """Flip bytes in the middle of an object (objects are 0444: make it writable first)."""
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    for i in range(mid, min(mid + 8, len(data))):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    os.chmod(path, 0o444)


def test_verify_detects_a_corrupt_artifact_and_the_next_build_rebuilds_it(
        store_project: Project) -> None:
    first = store_project.build()
    exports = store_project.snapshot(*EXPORTS)
    long_content = node(first, "long")["content"]
    corrupt(object_path(store_project, long_content))

    r = store_project.run("cache", "verify", "--cache-dir", ".dcc")
    assert r.returncode == 1
    assert long_content in r.stderr
    assert "Traceback" not in r.stderr

    for p in EXPORTS:
        store_project.path(p).unlink()
    rep = store_project.build()
    assert node(rep, "long")["status"] == "ran"
    assert node(rep, "long")["content"] == long_content
    assert store_project.snapshot(*EXPORTS) == exports
    assert store_project.run("cache", "verify", "--cache-dir", ".dcc").returncode == 0


def test_a_corrupt_artifact_is_not_served_even_without_verify(store_project: Project) -> None:
    first = store_project.build()
    exports = store_project.snapshot(*EXPORTS)
    content = node(first, "long")["content"]
    corrupt(object_path(store_project, content))
    for p in EXPORTS:
        store_project.path(p).unlink()

    store_project.build()  # both exports read the artifact of `long` (directly or via distinct)
    assert store_project.snapshot(*EXPORTS) == exports
    assert store_project.run("cache", "verify", "--cache-dir", ".dcc").returncode == 0


def test_a_corrupt_input_artifact_is_rebuilt_for_its_consumer(store_project: Project) -> None:
    first = store_project.build()
    corrupt(object_path(store_project, node(first, "long")["content"]))
    # `distinct` must re-run (its input changed), so it reads `long`'s corrupt artifact.
    store_project.write("r.recipe", RECIPE.replace('["instruction"]', '["instruction", "output"]'))
    rep = store_project.build()
    assert node(rep, "long")["status"] == "ran"
    assert node(rep, "long")["content"] == node(first, "long")["content"]
    assert node(rep, "distinct")["status"] == "ran"
    assert store_project.run("cache", "verify", "--cache-dir", ".dcc").returncode == 0


def test_cache_ls_lists_artifacts_with_node_names(store_project: Project) -> None:
    rep = store_project.build()
    r = store_project.run("cache", "ls", env={"COLUMNS": "200"})  # ./.dcc by default
    assert r.returncode == 0, r.stderr
    for name in ("src", "long", "distinct"):
        content = node(rep, name)["content"]
        line = next((ln for ln in r.stdout.splitlines() if content[:16] in ln), None)
        assert line is not None, f"{name}'s artifact {content} is not listed:\n{r.stdout}"
    named = {n for n in ("src", "long", "distinct") if f" {n} " in r.stdout}
    assert named == {"src", "long", "distinct"}


def test_cache_ls_on_an_empty_cache(project: Project) -> None:
    r = project.run("cache", "ls", "--cache-dir", "empty-cache")
    assert r.returncode == 0, r.stderr


def test_gc_keeps_what_the_newest_build_needs_and_all_drops_it(store_project: Project) -> None:
    old = store_project.build()
    new = store_project.build("--set", "shortest=5")
    stale = {node(old, n)["content"] for n in ("long", "distinct")}
    needed = {node(new, n)["content"] for n in ("src", "long", "distinct")}
    assert stale.isdisjoint(needed)

    r = store_project.run("cache", "gc", "--max-size", "0")
    assert r.returncode == 0, r.stderr
    for c in stale:
        assert not object_path(store_project, c).exists()
    for c in needed:
        assert object_path(store_project, c).exists()
    assert set(statuses(store_project.build("--set", "shortest=5")).values()) == {"cached"}

    r = store_project.run("cache", "gc", "--max-size", "0", "--all")
    assert r.returncode == 0, r.stderr
    assert not [p for p in (store_project.cache / "objects").rglob("*") if p.is_file()]
    ls = store_project.run("cache", "ls", env={"COLUMNS": "200"})
    assert not any(c[:16] in ls.stdout for c in needed)
    assert set(statuses(store_project.build("--set", "shortest=5")).values()) == {"ran"}


def test_gc_rejects_a_bad_size(project: Project) -> None:
    r = project.run("cache", "gc", "--max-size", "lots")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr
