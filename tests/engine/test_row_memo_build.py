"""The row memo through the engine: expensive row-wise operators pay only for new rows.

In-process builds (`compile_recipe` + `dcc.engine.build.build` on a real DiskStore) with the
test-only `test.shout` operator, which counts the rows it is sent; one CLI build checks that
`model_calls` reaches `dcc build --json`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from engine_helpers import HERE, Project, node, rows_jsonl
from engine_ops import SHOUT_CLI, Shout

from dcc.cache.store import DiskStore
from dcc.compiler import compile_recipe
from dcc.engine.build import build, plan
from dcc.errors import OperatorError

RECIPE = """src = load.jsonl("data/rows.jsonl")
loud = src | test.shout(field="text")
export loud to "out/loud.jsonl"
"""


def rows(start: int, stop: int) -> list[dict[str, str]]:
    return [{"text": f"row number {i}"} for i in range(start, stop)]


@pytest.fixture
def memo_project(project: Project) -> Iterator[Project]:
    project.write_jsonl("data/rows.jsonl", rows(0, 1000))
    project.write("r.recipe", RECIPE)
    Shout.calls, Shout.fail_after = 0, None
    yield project
    Shout.calls, Shout.fail_after = 0, None


def run_build(project: Project):  # noqa: ANN201
    with DiskStore(project.cache) as store:
        return build(compile_recipe(str(project.path("r.recipe"))), store)


def loud_result(result):  # noqa: ANN001, ANN201
    return next(r for r in result.nodes if "loud" in r.names)


def test_one_percent_more_rows_costs_one_percent_of_the_calls(memo_project: Project) -> None:
    first = loud_result(run_build(memo_project))
    assert (first.status, Shout.calls, first.model_calls) == ("ran", 1000, 1000)

    with open(memo_project.path("data/rows.jsonl"), "a", encoding="utf-8") as f:
        f.write(rows_jsonl(rows(1000, 1010)))
    Shout.calls = 0
    with DiskStore(memo_project.cache) as store:  # once the source is in, a plan knows the cost
        program = compile_recipe(str(memo_project.path("r.recipe")))
        build(program, store, target="src")
        planned = next(r for r in plan(program, store).nodes if "loud" in r.names)
    assert (planned.status, planned.new_rows, Shout.calls) == ("would-run", 10, 0)
    second = loud_result(run_build(memo_project))
    assert (second.status, second.rows_out) == ("ran", 1010)
    assert Shout.calls == 10 and second.model_calls == 10

    Shout.calls = 0
    third = loud_result(run_build(memo_project))
    assert (third.status, Shout.calls) == ("cached", 0)

    out = [json.loads(ln) for ln in memo_project.path("out/loud.jsonl").read_text().splitlines()]
    assert out == [{**r, "shout": r["text"].upper()} for r in rows(0, 1010)]


def test_repeated_rows_are_sent_once(memo_project: Project) -> None:
    memo_project.write_jsonl("data/rows.jsonl", rows(0, 50) * 3)
    result = loud_result(run_build(memo_project))
    assert (Shout.calls, result.rows_out) == (50, 150)


def test_a_crash_part_way_resumes_where_it_stopped(memo_project: Project) -> None:
    Shout.fail_after = 640
    with pytest.raises(OperatorError, match="loud"):
        run_build(memo_project)
    assert Shout.calls == 640  # ten batches were answered (and memoized) before the failure
    Shout.fail_after, Shout.calls = None, 0
    result = loud_result(run_build(memo_project))
    assert (result.status, Shout.calls, result.rows_out) == ("ran", 360, 1000)


def test_model_calls_appear_in_build_json(memo_project: Project) -> None:
    cli = SHOUT_CLI.format(here=str(HERE))
    rep = memo_project.build(python_code=cli)
    assert node(rep, "loud")["model_calls"] == 1000
    assert "model_calls" not in node(rep, "src")  # only expensive nodes carry it
    rep = memo_project.build(python_code=cli)
    assert node(rep, "loud")["status"] == "cached"
    assert node(rep, "loud")["model_calls"] == 0
