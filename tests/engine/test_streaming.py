"""Tables larger than the memory budget: read, filtered, mapped and exported batch by batch.

In-process builds with DCC_MEMORY_BUDGET tiny (everything streams) against the same recipe
with the default budget (everything loads): the exports must be byte-identical and the
errors the same. One test runs `dcc build` in a child process whose data segment is limited
(RLIMIT_DATA) to less than half the size of its source, and checks that the streamed build
fits while loading the source whole does not.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from engine_helpers import Project, child_env

import dcc.ops.readers as readers
from dcc.cache.store import VIEW_MAGIC, DiskStore
from dcc.compiler import compile_recipe
from dcc.engine.build import BuildResult, build
from dcc.errors import OperatorError

ROWS = [{"instruction": f"  Task {i % 17}  ABOUT ｔｈｉｎｇｓ {i}" + ("?" if i % 3 else ""),
         "output": ("word " * (i % 40)) + f"answer {i % 101}",
         "n": i if i % 7 else None, "score": i / 4, "tags": [f"t{i % 5}"] * (i % 3)}
        for i in range(3000)]

RECIPE = """src = load.jsonl("data/rows.jsonl")
pq = load.parquet("data/rows.parquet")
sized = src | select.length(field="output", min=20) | select.words(field="instruction", min=2)
tidy = sized | rewrite.normalize(fields=["instruction"]) | select.words(field="output", max=30)
plain = tidy | select.regex(field="instruction", pattern=r"\\?$", keep=false)
uniq = plain | select.dedup(fields=["output"])
loose = plain | select.dedup(fields=["tags"], normalize=true)
picked = uniq | select.sample(fraction=0.5, seed=3)
pqs = pq | select.length(field="output", min=100)
export sized to "out/sized.jsonl"
export tidy to "out/tidy.csv"
export plain to "out/plain.jsonl"
export plain to "out/plain.parquet"
export plain to "out/plain.json"
export plain to "out/plain_hf"
export uniq to "out/uniq.jsonl"
export loose to "out/loose.jsonl"
export picked to "out/picked.parquet"
export pqs to "out/pqs.jsonl"
"""

EXPORTS = ("out/sized.jsonl", "out/tidy.csv", "out/plain.jsonl", "out/plain.parquet",
           "out/plain.json", "out/plain_hf", "out/uniq.jsonl", "out/loose.jsonl",
           "out/picked.parquet", "out/pqs.jsonl")


@pytest.fixture
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Several batches even for a small file."""
    monkeypatch.setattr(readers, "JSONL_CHUNK", 64 << 10)
    monkeypatch.setattr(readers, "PARQUET_BATCH_ROWS", 700)
    yield


def fill(project: Project, rows: list[dict[str, Any]] = ROWS) -> Project:
    project.write_jsonl("data/rows.jsonl", rows)
    pl.DataFrame(rows).write_parquet(project.path("data/rows.parquet"), row_group_size=500)
    project.write("r.recipe", RECIPE)
    return project


def run_build(project: Project, budget: str | None, **overrides: str) -> BuildResult:
    old = os.environ.pop("DCC_MEMORY_BUDGET", None)
    if budget is not None:
        os.environ["DCC_MEMORY_BUDGET"] = budget
    try:
        with DiskStore(project.cache) as store:
            return build(compile_recipe(str(project.path("r.recipe")), overrides), store)
    finally:
        os.environ.pop("DCC_MEMORY_BUDGET", None)
        if old is not None:
            os.environ["DCC_MEMORY_BUDGET"] = old


def res(result: BuildResult, name: str) -> Any:
    return next(r for r in result.nodes if name in r.names)


def test_streamed_and_loaded_builds_write_the_same_exports(
    small_chunks: None, project: Project, make_project: Any
) -> None:
    streamed = run_build(fill(project), budget="1")
    loaded_proj = fill(make_project("loaded"))
    loaded = run_build(loaded_proj, budget=None)
    assert project.snapshot(*EXPORTS) == loaded_proj.snapshot(*EXPORTS)
    for name in ("src", "sized", "tidy", "plain", "uniq", "loose", "picked", "pq", "pqs"):
        assert res(streamed, name).rows_out == res(loaded, name).rows_out, name
    assert res(streamed, "loose").stats["duplicates"] == res(loaded, "loose").stats["duplicates"]
    assert 0 < res(streamed, "loose").rows_out < res(streamed, "plain").rows_out
    with DiskStore(project.cache) as store:
        # the source table was written batch by batch; filters over it are views
        import pyarrow as pa
        import pyarrow.ipc as ipc

        with pa.memory_map(str(store.object_path(res(streamed, "src").content))) as f:
            assert ipc.open_file(f).num_record_batches > 3
        for name in ("sized", "plain", "pqs", "uniq", "loose", "picked"):
            path = store.object_path(res(streamed, name).content)
            assert path.read_bytes()[:8] == VIEW_MAGIC, name


def test_a_rebuild_reads_a_large_cached_input_batch_by_batch(
    small_chunks: None, project: Project, make_project: Any
) -> None:
    run_build(fill(project), budget="1")
    changed = RECIPE.replace("max=30", "max=12")
    project.write("r.recipe", changed)
    again = run_build(project, budget="1")
    assert res(again, "src").status == "cached" and res(again, "tidy").status == "ran"
    loaded_proj = fill(make_project("loaded"))
    loaded_proj.write("r.recipe", changed)
    run_build(loaded_proj, budget=None)
    assert project.snapshot(*EXPORTS) == loaded_proj.snapshot(*EXPORTS)


@pytest.mark.parametrize("on_error", ["raise", "skip"])
def test_bad_lines_are_named_or_counted_as_when_loaded(small_chunks: None, project: Project,
                                                       make_project: Any, on_error: str) -> None:
    lines = [json.dumps(r) for r in ROWS[:2000]]
    lines[1500] = '{"instruction": "broken", "output": '  # far into the file: a later chunk
    lines[1700] = "[1, 2]"
    recipe = RECIPE.replace('load.jsonl("data/rows.jsonl")',
                            f'load.jsonl("data/rows.jsonl", on_error="{on_error}")')
    outcomes = []
    for proj, budget in ((project, "1"), (make_project("loaded"), None)):
        fill(proj, ROWS[:10])
        proj.write("data/rows.jsonl", "\n".join(lines) + "\n")
        proj.write("r.recipe", recipe)
        try:
            result = run_build(proj, budget=budget)
            outcomes.append((res(result, "src").stats, res(result, "src").rows_out))
        except OperatorError as e:
            outcomes.append((str(e).replace(str(proj.root), "ROOT"), None))
    assert outcomes[0] == outcomes[1]
    if on_error == "raise":
        assert "rows.jsonl:1501: invalid JSON" in outcomes[0][0]
    else:
        assert outcomes[0] == ({"skipped_lines": 2}, 1998)


def test_a_type_clash_between_batches_names_its_line(small_chunks: None,
                                                     project: Project) -> None:
    rows: list[dict[str, Any]] = [{"meta": {"id": i}, "text": "x" * 50} for i in range(2000)]
    rows[1800] = {"meta": [1, 2], "text": "a list where objects were"}
    project.write_jsonl("data/rows.jsonl", rows)
    project.write("r.recipe", 'src = load.jsonl("data/rows.jsonl")\n'
                  'export src to "out/src.jsonl"\n')
    with pytest.raises(OperatorError, match=r"rows\.jsonl:1801: this row's types do not fit"):
        run_build(project, budget="1")


# -- memory --------------------------------------------------------------------------------
LIMIT = 300 << 20  # RLIMIT_DATA of the child: heap and private mappings, not mapped files
SOURCE = 640 << 20  # bytes of JSON Lines: over twice the limit
MEMORY_ENV = {  # fewer threads and arenas: a smaller fixed footprint, the same work
    "ARROW_DEFAULT_MEMORY_POOL": "system", "MALLOC_ARENA_MAX": "1",
    "OPENBLAS_NUM_THREADS": "1", "POLARS_MAX_THREADS": "1",
}


HEADROOM = 60 << 20  # what the streamed build may use beyond a tiny build (~40 MB here)


def limited_build(project: Project, budget: str,
                  limit_bytes: int = LIMIT) -> subprocess.CompletedProcess[str]:
    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_DATA, (limit_bytes, limit_bytes))

    return subprocess.run(
        [sys.executable, "-m", "dcc", "build", "r.recipe", "--json"], cwd=project.root,
        capture_output=True, text=True, timeout=300, preexec_fn=limit,
        env=child_env(DCC_MEMORY_BUDGET=budget, **MEMORY_ENV))


def generate(path: Path, size: int) -> int:
    """About `size` bytes of JSON Lines (a block of distinct rows, repeated); returns rows."""
    block = "".join(json.dumps({"instruction": f"Explain item {i} of the list, briefly?"
                                if i % 2 else f"Describe thing number {i}.",
                                "output": "lorem ipsum dolor sit amet " * (1 + i % 30)})
                    + "\n" for i in range(4000)).encode()
    copies = max(1, size // len(block))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        for _ in range(copies):
            f.write(block)
    return copies * 4000


def test_a_source_twice_the_memory_limit_is_filtered_and_exported(project: Project) -> None:
    project.write("r.recipe", 'src = load.jsonl("data/tiny.jsonl")\n'
                  'kept = src | select.length(field="output", min=400)\n'
                  'export kept to "out/kept.jsonl"\n')
    generate(project.path("data/tiny.jsonl"), 1 << 20)
    r = limited_build(project, "64M", LIMIT - HEADROOM)
    if r.returncode != 0:  # the fixed footprint (libraries, threads) is larger here
        pytest.skip(f"a tiny build does not fit in {(LIMIT - HEADROOM) >> 20} MB here, so "
                    f"{LIMIT >> 20} MB would not test streaming: {r.stderr[-300:]}")

    rows = generate(project.path("data/rows.jsonl"), SOURCE)
    assert project.path("data/rows.jsonl").stat().st_size > 2 * LIMIT
    project.write("r.recipe", 'src = load.jsonl("data/rows.jsonl")\n'
                  'kept = src | select.length(field="output", min=400)\n'
                  'export kept to "out/kept.jsonl"\n')
    loaded = limited_build(project, "100G")  # the whole source in memory: must not fit
    assert loaded.returncode != 0
    streamed = limited_build(project, "64M")
    assert streamed.returncode == 0, streamed.stderr[-2000:]
    report = json.loads(streamed.stdout)
    nodes = {n["name"]: n for n in report["nodes"]}
    assert nodes["src"]["rows_out"] == rows
    kept = sum(1 for _ in open(project.path("out/kept.jsonl"), "rb"))
    assert kept == nodes["kept"]["rows_out"] and 0 < kept < rows
