"""Patch artifacts: a node that rewrites some columns of its input's rows stores only those
columns plus a view of its base table, and reads back exactly the table it computed.

In-process builds on a real DiskStore; DCC_NO_VIEWS=1 gives the materialized reference.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from engine_helpers import Project

from dcc.cache.base import CorruptObject
from dcc.cache.store import PATCH_MAGIC, VIEW_MAGIC, DiskStore
from dcc.compiler import compile_recipe
from dcc.engine.artifacts import read_artifact, read_table
from dcc.engine.build import BuildResult, build

ROWS = [{"instruction": f"  Task {i % 7}  ABOUT ｔｈｉｎｇｓ {i}", "output": f"answer {i % 13} " * 20,
         "n": i} for i in range(400)]

RECIPE = """param seed = 1
param longest = 100000
src = load.jsonl("data/rows.jsonl")
unique = src | select.dedup(fields=["output"])
tidy = unique | rewrite.normalize(fields=["instruction"])
picked = tidy | select.sample(fraction=0.5, seed=seed)
short = picked | select.length(field="output", max=longest)
slim = short | columns.drop(names=["n"])
export tidy to "out/tidy.jsonl"
export short to "out/short.parquet"
export slim to "out/slim.jsonl"
"""

EXPORTS = ("out/tidy.jsonl", "out/short.parquet", "out/slim.jsonl")


def run_build(project: Project, views: bool = True, **overrides: str) -> BuildResult:
    old = os.environ.pop("DCC_NO_VIEWS", None)
    if not views:
        os.environ["DCC_NO_VIEWS"] = "1"
    try:
        with DiskStore(project.cache) as store:
            return build(compile_recipe(str(project.path("r.recipe")), overrides), store)
    finally:
        os.environ.pop("DCC_NO_VIEWS", None)
        if old is not None:
            os.environ["DCC_NO_VIEWS"] = old


def res(result: BuildResult, name: str) -> Any:
    return next(r for r in result.nodes if name in r.names)


def magic(project: Project, content: str) -> bytes:
    with DiskStore(project.cache) as store:
        return store.object_path(content).read_bytes()[:8]


def fill(project: Project) -> Project:
    project.write_jsonl("data/rows.jsonl", ROWS)
    project.write("r.recipe", RECIPE)
    return project


def test_rewrites_are_patches_and_read_back_as_computed(project: Project,
                                                        make_project: Any) -> None:
    result = run_build(fill(project))
    plain_proj = fill(make_project("plain"))
    plain = run_build(plain_proj, views=False)
    assert project.snapshot(*EXPORTS) == plain_proj.snapshot(*EXPORTS)
    kinds = {n: magic(project, res(result, n).content) for n in
             ("unique", "tidy", "picked", "short")}
    assert kinds == {"unique": VIEW_MAGIC, "tidy": PATCH_MAGIC, "picked": PATCH_MAGIC,
                     "short": PATCH_MAGIC}
    assert magic(project, res(result, "slim").content) not in (VIEW_MAGIC, PATCH_MAGIC)
    with DiskStore(project.cache) as store, DiskStore(plain_proj.cache) as plain_store:
        src = res(result, "src").content
        for name in ("unique", "tidy", "picked", "short", "slim"):
            mine, origin = read_artifact(store, res(result, name).content)
            theirs = read_table(plain_store, res(plain, name).content)
            assert mine.equals(theirs) and mine.schema == theirs.schema, name
            if name != "slim":
                assert origin.base == src and store.view_base(res(result, name).content) == src
        # tidy's own column is the rewritten one; the others come from src
        _, origin = read_artifact(store, res(result, "tidy").content)
        assert origin.own == {"instruction"}
        size = store.object_path(res(result, "tidy").content).stat().st_size
        assert size < plain_store.object_path(res(plain, "tidy").content).stat().st_size / 3


def test_same_rewrite_gives_the_same_patch_and_early_cutoff(project: Project) -> None:
    first = run_build(fill(project))
    second = run_build(project, longest="99999")  # keeps the same rows
    assert res(second, "short").status == "ran"
    assert res(second, "short").content == res(first, "short").content
    assert res(second, "slim").status == "cached"


def test_a_damaged_patch_is_rebuilt_when_it_is_read(project: Project) -> None:
    first = run_build(fill(project))
    snap = project.snapshot(*EXPORTS)
    tidy = res(first, "tidy").content
    with DiskStore(project.cache) as store:
        path = store.object_path(tidy)
        path.chmod(0o644)
        data = bytearray(path.read_bytes())
        data[-100] ^= 0xFF  # inside the own columns
        path.write_bytes(bytes(data))
        with pytest.raises(CorruptObject):
            read_table(store, tidy)
    for p in EXPORTS:
        project.path(p).unlink()
    second = run_build(project, seed="2")  # picked re-runs: it reads tidy (rebuilt)
    assert res(second, "tidy").content == tidy
    assert project.snapshot("out/tidy.jsonl") == {k: v for k, v in snap.items()
                                                  if k == "out/tidy.jsonl"}


def test_a_malformed_patch_is_corrupt_not_a_crash(project: Project) -> None:
    first = run_build(fill(project))
    src = res(first, "src").content
    with DiskStore(project.cache) as store:
        from dcc.engine.artifacts import encode_view

        head = PATCH_MAGIC + encode_view(src, 400, [0, 1])[8:]
        for tail in (b"", b"\x05\x00\x00\x00\x00\x00\x00\x00{bad",
                     b"\x1a\x00\x00\x00\x00\x00\x00\x00" + b'{"columns": [], "own": []}'
                     + b"not arrow"):
            tmp = store.temp_path(".view")
            tmp.write_bytes(head + tail)
            content = store.commit(tmp)
            with pytest.raises(CorruptObject):
                read_table(store, content)
