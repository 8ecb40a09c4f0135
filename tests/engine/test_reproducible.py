"""Reproducibility: same recipe and inputs, same bytes; recorded samples; lockfiles."""

from __future__ import annotations

import pytest
from engine_helpers import Project, node, statuses

ROWS = [{"instruction": f"task {i % 23}", "input": "" if i % 3 else f"ctx {i}",
         "output": "résumé " * (1 + i % 5), "score": i * 0.5, "tags": [f"t{i % 4}"],
         "meta": {"id": i, "ok": i % 2 == 0}} for i in range(60)]

RECIPE = """recipe repro
src = load.jsonl("data/rows.jsonl")
long = src | select.length(field="output", min=8)
distinct = long | select.dedup(fields=["instruction"])
flat = load.jsonl("data/flat.jsonl") | select.words(field="text", min=2)
picked = distinct | select.sample(fraction=0.5, seed=7)
export distinct to "out/distinct.jsonl"
export distinct to "out/distinct.json"
export distinct to "out/distinct.parquet"
export flat to "out/flat.csv"
export picked to "out/picked"
"""

EXPORTS = ("out/distinct.jsonl", "out/distinct.json", "out/distinct.parquet", "out/flat.csv",
           "out/picked")


def fill(project: Project) -> Project:
    project.write_jsonl("data/rows.jsonl", ROWS)
    project.write_jsonl("data/flat.jsonl", [{"text": f"word {i} " * (i % 4), "n": i}
                                            for i in range(40)])
    project.write("r.recipe", RECIPE)
    return project


def test_two_fresh_caches_give_byte_identical_exports(make_project) -> None:  # noqa: ANN001
    a, b = fill(make_project("a")), fill(make_project("elsewhere/b"))
    rep_a = a.build(env={"PYTHONHASHSEED": "1"})
    rep_b = b.build(env={"PYTHONHASHSEED": "2"})
    assert set(statuses(rep_a).values()) == set(statuses(rep_b).values()) == {"ran"}
    snap_a, snap_b = a.snapshot(*EXPORTS), b.snapshot(*EXPORTS)
    assert sorted(snap_a) == sorted(snap_b)
    assert {p for p in snap_a if p.startswith("out/picked/")} >= {"out/picked/state.json"}
    for path in snap_a:
        assert snap_a[path] == snap_b[path], f"{path} differs between two fresh builds"
    assert [e["content"] for e in rep_a["exports"]] == [e["content"] for e in rep_b["exports"]]
    assert {n["name"]: n["key"] for n in rep_a["nodes"]} == \
        {n["name"]: n["key"] for n in rep_b["nodes"]}


def test_sample_replays_its_recorded_output_and_resample_reruns_it(project: Project) -> None:
    fill(project)
    project.write("r.recipe", RECIPE.replace('"out/picked"', '"out/picked.jsonl"'))
    first = project.build()
    picked = project.snapshot("out/picked.jsonl")
    rep = project.build()
    assert node(rep, "picked")["status"] == "cached"
    assert node(rep, "picked")["content"] == node(first, "picked")["content"]

    rep = project.build("--resample", "picked")
    assert node(rep, "picked")["status"] == "ran"
    assert statuses(rep)["distinct"] == "cached"  # only the named node is re-drawn
    assert node(rep, "picked")["content"] == node(first, "picked")["content"]  # same seed
    assert project.snapshot("out/picked.jsonl") == picked


def test_resample_of_an_unknown_name_is_a_usage_error(project: Project) -> None:
    fill(project)
    r = project.run("build", "r.recipe", "--resample", "pikced")
    assert r.returncode == 2, r.stderr
    assert "picked" in r.stderr and "Traceback" not in r.stderr
    assert not project.path("out").exists()


@pytest.fixture
def locked(project: Project) -> Project:
    project.write_jsonl("data/rows.jsonl", ROWS)
    project.write("r.recipe", """src = load.jsonl("data/rows.jsonl")
long = src | select.length(field="output", min=8)
export long to "out/long.jsonl"
""")
    r = project.run("lock", "r.recipe")
    assert r.returncode == 0, r.stderr
    return project


def test_lock_then_locked_build_passes(locked: Project) -> None:
    assert locked.path("r.recipe.lock").is_file()
    assert "data/rows.jsonl" in locked.path("r.recipe.lock").read_text()
    rep = locked.build("--locked")
    assert set(statuses(rep).values()) == {"ran"}


def test_locked_build_refuses_after_a_source_edit(locked: Project) -> None:
    locked.write_jsonl("data/rows.jsonl", ROWS[:-1])
    r = locked.run("build", "r.recipe", "--locked")
    assert r.returncode != 0
    assert "data/rows.jsonl" in r.stderr and "Traceback" not in r.stderr
    assert not locked.path("out").exists()  # refused before building anything
    assert locked.run("lock", "r.recipe").returncode == 0  # accepting the change
    assert locked.run("build", "r.recipe", "--locked").returncode == 0


def test_locked_build_without_a_lockfile_says_how_to_make_one(project: Project) -> None:
    fill(project)
    r = project.run("build", "r.recipe", "--locked")
    assert r.returncode != 0
    assert "dcc lock" in r.stderr and "Traceback" not in r.stderr
