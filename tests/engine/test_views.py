"""Row-selection artifacts (views): a node that keeps a subset of its input's rows is stored
as its base table's content plus row indices, not as a copy; a node that also rewrites
columns (a plain Map, alone or fused with filters) is a patch: a view plus its own columns.

In-process builds on a real DiskStore; DCC_NO_VIEWS=1 gives the materialized reference.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import pytest
from engine_helpers import Project

from dcc.cache.store import PATCH_MAGIC, VIEW_MAGIC, DiskStore
from dcc.compiler import compile_recipe
from dcc.engine.artifacts import decode_view, encode_view, read_table
from dcc.engine.build import BuildResult, build
from dcc.ops import register
from dcc.ops.base import DatasetOp, RunContext

ROWS = [{"instruction": ("Task" if i % 5 == 0 else f"Task {i % 11} about   things")
         + ("?" if i % 2 else ""),
         "output": "word " * (i % 9) + "x" * (i % 4) + "y"} for i in range(300)]

RECIPE = """param shortest = 1
src = load.jsonl("data/rows.jsonl")
sized = src
  | select.length(field="output", min=shortest)
  | select.words(field="instruction", min=2)
tidy = sized | rewrite.normalize(fields=["instruction"])
thirds = tidy | test.every_third()
final = thirds | select.regex(field="instruction", pattern=r"\\?$", keep=false)
export sized to "out/sized.jsonl"
export final to "out/final.jsonl"
"""


@register
class EveryThird(DatasetOp):
    """Keep rows 0, 3, 6, ... (test-only; answers select_rows)."""

    name = "test.every_third"
    version = 1
    params = ()

    def select_rows(self, df: Any, ctx: RunContext) -> np.ndarray:
        return np.arange(0, df.height, 3)

    def run(self, inputs: list[Any], ctx: RunContext) -> Any:
        return inputs[0].gather_every(3)


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


def is_view(project: Project, content: str, magic: bytes = VIEW_MAGIC) -> bool:
    with DiskStore(project.cache) as store:
        return store.object_path(content).read_bytes()[:8] == magic


def is_patch(project: Project, content: str) -> bool:
    return is_view(project, content, PATCH_MAGIC)


@pytest.fixture
def proj(project: Project) -> Project:
    project.write_jsonl("data/rows.jsonl", ROWS)
    project.write("r.recipe", RECIPE)
    return project


def test_encoding_is_deterministic_and_round_trips() -> None:
    base = "0" * 32
    for n, rows in [(10, np.array([1, 4, 9])), (1000, np.arange(0, 1000, 2)),
                    (5, np.array([], dtype=np.int64))]:
        data = encode_view(base, n, rows)
        assert data == encode_view(base, n, rows.copy())
        b, bn, back = decode_view(data)
        assert (b, bn) == (base, n) and back.tolist() == rows.tolist()
    assert len(encode_view(base, 1000, np.arange(0, 1000, 2))) < 200  # a bitmap


def test_selections_are_small_views_and_exports_match_materialized(proj: Project,
                                                                   make_project: Any) -> None:
    result = run_build(proj)
    plain_proj = make_project("plain")
    plain_proj.write_jsonl("data/rows.jsonl", ROWS)
    plain_proj.write("r.recipe", RECIPE)
    plain = run_build(plain_proj, views=False)
    assert proj.snapshot("out/sized.jsonl", "out/final.jsonl") == \
        plain_proj.snapshot("out/sized.jsonl", "out/final.jsonl")
    for name in ("src", "sized", "tidy", "thirds", "final"):
        assert res(result, name).rows_out == res(plain, name).rows_out
        assert res(result, name).stats == res(plain, name).stats
    src = res(result, "src").content
    with DiskStore(proj.cache) as store, DiskStore(plain_proj.cache) as plain_store:
        for name in ("sized", "tidy", "thirds", "final"):
            content = res(result, name).content
            # sized is a view; tidy rewrites `instruction` (a patch); thirds and final select
            # rows of tidy: patches that carry tidy's own column, flattened onto src's table
            assert (is_view if name == "sized" else is_patch)(proj, content), name
            assert store.view_base(content) == src
            if name == "sized":  # (patches' sizes: tests/engine/test_patches.py)
                assert store.object_path(content).stat().st_size < 400
            assert read_table(store, content).equals(
                read_table(plain_store, res(plain, name).content))
    assert not is_view(proj, src) and not is_patch(proj, src)
    assert not any(is_view(plain_proj, res(plain, n).content)
                   or is_patch(plain_proj, res(plain, n).content) for n in ("sized", "final"))


def test_same_selection_gives_same_view_and_early_cutoff(proj: Project) -> None:
    first = run_build(proj)
    second = run_build(proj, shortest="0")  # keeps the same rows
    assert res(second, "sized").status == "ran"
    assert res(second, "sized").content == res(first, "sized").content
    assert [res(second, n).status for n in ("tidy", "thirds", "final")] == ["cached"] * 3


def test_gc_keeps_bases_of_needed_views(proj: Project) -> None:
    result = run_build(proj)
    base = res(result, "src").content
    with DiskStore(proj.cache) as store:
        assert base in store.needed_contents()
        store.gc(0)
        assert store.has_object(base) and store.has_object(res(result, "final").content)
        assert store.verify_all() == []
        store.gc(0, keep_needed=False)
        assert not any(True for _ in store._objects())
    again = run_build(proj)
    assert res(again, "final").content == res(result, "final").content


@pytest.mark.parametrize("damage", ["delete", "corrupt"])
def test_a_lost_base_is_detected_and_rebuilt(proj: Project, damage: str) -> None:
    first = run_build(proj)
    snap = proj.snapshot("out/sized.jsonl", "out/final.jsonl")
    base = res(first, "src").content
    with DiskStore(proj.cache) as store:
        path = store.object_path(base)
        if damage == "delete":
            path.unlink()
        else:
            path.chmod(0o644)
            data = bytearray(path.read_bytes())
            data[len(data) // 2] ^= 0xFF
            path.write_bytes(bytes(data))
    for p in ("out/sized.jsonl", "out/final.jsonl"):
        proj.path(p).unlink()  # the exports must be written again, through the views
    second = run_build(proj)
    assert proj.snapshot("out/sized.jsonl", "out/final.jsonl") == snap
    assert res(second, "src").status == "ran"
    assert [res(second, n).rows_out for n in ("sized", "tidy", "thirds", "final")] == \
        [res(first, n).rows_out for n in ("sized", "tidy", "thirds", "final")]
    with DiskStore(proj.cache) as store:
        assert store.view_base(res(second, "final").content) == res(second, "src").content
        # views left over on the lost base are unreadable: verify removes and lists them
        bad = store.verify_all()
        assert not {res(second, n).content for n in ("src", "tidy", "thirds", "final")} & set(bad)
        assert store.verify_all() == []
        assert read_table(store, res(second, "final").content).height == \
            res(first, "final").rows_out


def test_verify_reports_corrupt_views_and_views_of_corrupt_bases(proj: Project) -> None:
    result = run_build(proj)
    view = res(result, "sized").content
    final, tidy = res(result, "final").content, res(result, "src").content
    with DiskStore(proj.cache) as store:
        p = store.object_path(view)
        p.chmod(0o644)
        p.write_bytes(p.read_bytes()[:-1] + b"\x00\x01"[:1 if p.read_bytes()[-1:] != b"\x00"
                                                            else 2][-1:])
        q = store.object_path(tidy)
        q.chmod(0o644)
        data = bytearray(q.read_bytes())
        data[100] ^= 0xFF
        q.write_bytes(bytes(data))
        bad = store.verify_all()
        assert view in bad and tidy in bad and final in bad
        assert store.lookup(res(result, "final").key) is None
    again = run_build(proj)
    assert res(again, "final").content == final
