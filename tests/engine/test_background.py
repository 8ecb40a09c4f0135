"""Large tables are hashed on the walk and written by a background thread; their records and
node locks follow the commit. In-process builds with the size threshold lowered to zero."""

from __future__ import annotations

import errno
from typing import Any

import pytest
from engine_helpers import Project

import dcc.engine.build as engine_build
from dcc.cache.store import DiskStore
from dcc.compiler import compile_recipe
from dcc.engine.build import BuildResult, build
from dcc.errors import CacheError

ROWS = [{"text": f"row {i} " + "word " * (i % 13), "n": i} for i in range(500)]
RECIPE = """src = load.jsonl("data/rows.jsonl")
tidy = src | rewrite.normalize(fields=["text"])
kept = tidy | select.length(field="text", min=12)
proj = kept | columns.drop(names=["n"])
export proj to "out/proj.jsonl"
"""


def fill(project: Project) -> Project:
    project.write_jsonl("data/rows.jsonl", ROWS)
    project.write("r.recipe", RECIPE)
    return project


def run_build(project: Project) -> BuildResult:
    with DiskStore(project.cache) as store:
        return build(compile_recipe(str(project.path("r.recipe"))), store)


def contents(result: BuildResult) -> dict[str, Any]:
    return {r.names[0]: r.content for r in result.nodes if r.names}


def test_background_writes_store_what_foreground_writes_do(
    project: Project, make_project: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    fore = run_build(fill(make_project("fore")))
    monkeypatch.setattr(engine_build, "BACKGROUND_MIN", 0)
    back = run_build(fill(project))
    assert contents(back) == contents(fore)
    assert project.snapshot("out/proj.jsonl") == make_project("fore").snapshot("out/proj.jsonl")
    with DiskStore(project.cache) as store:  # every stored node: a record, its object intact
        stored = [r for r in back.nodes if r.stage is None or r.stage == r.names[0]]
        assert {r.names[0] for r in stored} >= {"src", "proj"}
        for r in stored:
            record = store.lookup(r.key)
            assert record is not None and record.content == r.content
            assert store.verify_object(r.content)
    again = run_build(project)
    assert {r.status for r in again.nodes} == {"cached"}


def test_a_failed_background_write_fails_the_build_and_files_nothing(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine_build, "BACKGROUND_MIN", 0)
    real = DiskStore.put_object

    def full_disk(self: DiskStore, write: Any, suffix: str = "", expect: str | None = None
                  ) -> str:
        if expect is not None:  # the background writer's objects
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, write, suffix, expect)

    monkeypatch.setattr(DiskStore, "put_object", full_disk)
    with pytest.raises(CacheError, match="cannot store the table of node 'src'.*No space"):
        run_build(fill(project))
    with DiskStore(project.cache) as store:
        assert not any(True for _ in store._records())  # no index entry names a missing file
        assert list((project.cache / "tmp").iterdir()) == []
        for lock in (project.cache / "locks").rglob("*.lock"):  # every lock was released
            with store.lock(lock.stem, timeout=1):
                pass
    monkeypatch.setattr(DiskStore, "put_object", real)
    assert {r.status for r in run_build(project).nodes} == {"ran"}


def test_a_source_parsed_while_its_file_is_hashed(project: Project,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(engine_build, "SPECULATE_AFTER", 0)  # always parse meanwhile
    first = run_build(fill(project))
    assert {r.status for r in first.nodes} == {"ran"}
    again = run_build(project)  # the stat cache answers at once, or the parse is dropped
    assert {r.status for r in again.nodes} == {"cached"}
    project.write_jsonl("data/rows.jsonl", ROWS[:100])
    changed = run_build(project)
    src = next(r for r in changed.nodes if "src" in r.names)
    assert (src.status, src.rows_out) == ("ran", 100)
    assert sum(1 for _ in open(project.path("out/proj.jsonl"))) == \
        next(r for r in changed.nodes if "proj" in r.names).rows_out
    good = "".join('{"text": "ok %d", "n": %d}\n' % (i, i) for i in range(150))
    project.write("data/rows.jsonl", good + '{"text": \n')  # past what compiling reads
    from dcc.errors import OperatorError

    with pytest.raises(OperatorError, match=r"src.*rows\.jsonl:151: invalid JSON"):
        run_build(project)
