"""`dcc plan` (what would run, what is cached, and why; writes nothing) and `dcc why`."""

from __future__ import annotations

import json

import pytest
from engine_helpers import Project, node, statuses

ROWS = [{"instruction": f"task {i % 8}", "output": "o" * (1 + i % 9)} for i in range(40)]

RECIPE = """param min = 4
src = load.jsonl("data/rows.jsonl")
long = src | select.length(field="output", min=min)
distinct = long | select.dedup(fields=["instruction"])
export distinct to "out/distinct.jsonl"
"""

WIDE = {"COLUMNS": "250"}  # rich tables wrap at 80 columns when stdout is not a terminal


@pytest.fixture
def plan_project(project: Project) -> Project:
    project.write_jsonl("data/rows.jsonl", ROWS)
    project.write("r.recipe", RECIPE)
    return project


def plan_json(project: Project, *args: str) -> dict:
    r = project.run("plan", "r.recipe", "--json", *args)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def objects(project: Project) -> list:
    root = project.cache / "objects"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def test_plan_on_a_fresh_cache_would_run_everything_and_writes_nothing(
        plan_project: Project) -> None:
    rep = plan_json(plan_project)
    assert statuses(rep) == {"src": "would-run", "long": "would-run", "distinct": "would-run"}
    assert node(rep, "src")["reason"] == "not in the cache"
    assert "src" in node(rep, "long")["reason"]
    assert not plan_project.path("out").exists()
    assert objects(plan_project) == []
    r = plan_project.run("plan", "r.recipe", env=WIDE)  # the table, too, is only a report
    assert r.returncode == 0 and "would-run" in r.stdout
    assert not plan_project.path("out").exists() and objects(plan_project) == []
    # Nothing was cached and no build was recorded: the build runs everything.
    assert set(statuses(plan_project.build()).values()) == {"ran"}


def test_plan_after_a_build_is_all_cached(plan_project: Project) -> None:
    plan_project.build()
    rep = plan_json(plan_project)
    assert set(statuses(rep).values()) == {"cached"}
    r = plan_project.run("plan", "r.recipe", env=WIDE)
    assert r.returncode == 0
    for name in ("src", "long", "distinct"):
        line = next(ln for ln in r.stdout.splitlines() if f" {name} " in ln)
        assert "cached" in line and "would-run" not in line


def test_plan_names_the_changed_param_and_the_stale_input(plan_project: Project) -> None:
    plan_project.build()
    before = plan_project.snapshot("out/distinct.jsonl")
    n_objects = len(objects(plan_project))
    rep = plan_json(plan_project, "--set", "min=6")
    assert statuses(rep) == {"src": "cached", "long": "would-run", "distinct": "would-run"}
    assert node(rep, "long")["reason"] == "changed: params.min"
    assert node(rep, "distinct")["reason"] == "an input will be rebuilt (long)"
    r = plan_project.run("plan", "r.recipe", "--set", "min=6", env=WIDE)
    assert "changed: params.min" in r.stdout
    assert plan_project.snapshot("out/distinct.jsonl") == before
    assert len(objects(plan_project)) == n_objects


def test_plan_names_an_edited_source_file(plan_project: Project) -> None:
    plan_project.build()
    plan_project.write_jsonl("data/rows.jsonl", ROWS + [{"instruction": "new", "output": "x"}])
    rep = plan_json(plan_project)
    assert node(rep, "src")["reason"] == "changed: source file data/rows.jsonl"


def test_why_prints_the_parts_of_the_key(plan_project: Project) -> None:
    rep = plan_project.build()
    r = plan_project.run("why", "r.recipe", "long", env=WIDE)
    assert r.returncode == 0, r.stderr
    for part in ("op", "op_version", "code", "params", "seed", "inputs"):
        assert any(ln.split("│")[1:2] and ln.split("│")[1].strip() == part
                   for ln in r.stdout.splitlines()), f"no row for {part}:\n{r.stdout}"
    assert node(rep, "long")["key"] in r.stdout
    assert "select.length" in r.stdout
    assert node(rep, "src")["content"] in r.stdout  # its input, by content
    assert "unchanged since the last build" in r.stdout


def test_why_names_a_changed_param(plan_project: Project) -> None:
    plan_project.build()
    r = plan_project.run("why", "r.recipe", "long", "--set", "min=6", env=WIDE)
    assert r.returncode == 0, r.stderr
    changed = r.stdout[r.stdout.index("changed since the last build"):]
    assert "params.min" in changed and "4 -> 6" in changed
    assert "inputs" not in changed


def test_why_names_an_edited_source_file(plan_project: Project) -> None:
    plan_project.build()
    plan_project.write_jsonl("data/rows.jsonl", ROWS[:-1])
    r = plan_project.run("why", "r.recipe", "src", env=WIDE)
    assert r.returncode == 0, r.stderr
    changed = r.stdout[r.stdout.index("changed since the last build"):]
    assert "inputs[0]" in changed and "data/rows.jsonl" in changed
    assert "params" not in changed


def test_why_of_an_unknown_name_is_a_usage_error(plan_project: Project) -> None:
    r = plan_project.run("why", "r.recipe", "lnog")
    assert r.returncode == 2
    assert "long" in r.stderr and "Traceback" not in r.stderr
