"""The `evolve` block, built: lineage, modes, early stops, per-round keys and seeds.

The chains here make new rows without a model (`rewrite.template` appends a character each
round) so the expectations are exact; model chains are covered with the generators' tests.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from dcc.cache.store import DiskStore
from dcc.compiler import compile_recipe
from dcc.engine.build import build
from dcc.ops.base import RunContext
from dcc.ops.evolve import EvolveFeed, check_until

SEEDS = [{"q": "a"}, {"q": "b"}]
GROW = 'rewrite.template(field="q", template="{{ q }}+")'


def recipe(block: str) -> str:
    return f'seeds = load.jsonl("seeds.jsonl")\ngrown = {block}\nexport grown to "out.jsonl"\n'


@pytest.fixture
def project(recipe_dir: Callable[..., Path]) -> Callable[..., tuple[dict[str, Any], list]]:
    """project(block) -> (node results by name, exported rows); one folder, one cache."""
    root: list[Path] = []

    def _build(block: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        if not root:
            root.append(recipe_dir({"seeds.jsonl": SEEDS, "r.recipe": recipe(block)}))
        folder = root[0]
        (folder / "r.recipe").write_text(recipe(block), encoding="utf-8")
        with DiskStore(folder / ".dcc") as store:
            result = build(compile_recipe(str(folder / "r.recipe")), store).to_json()
        nodes = {n["name"]: n for n in result["nodes"]}
        lines = (folder / "out.jsonl").read_text(encoding="utf-8").splitlines()
        return nodes, [json.loads(line) for line in lines]

    return _build


def lineage(rows: list[dict[str, Any]]) -> list[tuple]:
    return [(r["q"], r["_id"], r["_round"], r["_parent"]) for r in rows]


def test_accumulate_keeps_seeds_and_every_rounds_new_rows(project) -> None:
    _, rows = project(f"evolve(seeds, rounds=2) {{ {GROW} }}")
    # round 2 is fed the whole pool: "a" -> "a+" again (not new), "a+" -> "a++" (new)
    assert lineage(rows) == [
        ("a", "0-0", 0, None), ("b", "0-1", 0, None),
        ("a+", "1-0", 1, "0-0"), ("b+", "1-1", 1, "0-1"),
        ("a++", "2-0", 2, "1-0"), ("b++", "2-1", 2, "1-1"),
    ]


def test_replace_feeds_and_returns_the_newest_rows(project) -> None:
    _, rows = project(f'evolve(seeds, rounds=3, mode="replace") {{ {GROW} }}')
    assert lineage(rows) == [("a+++", "3-0", 3, "2-0"), ("b+++", "3-1", 3, "2-1")]


def test_zero_rounds_is_the_seed(project) -> None:
    _, rows = project(f"evolve(seeds, rounds=0) {{ {GROW} }}")
    assert lineage(rows) == [("a", "0-0", 0, None), ("b", "0-1", 0, None)]


def test_one_more_round_runs_only_that_round(project) -> None:
    project(f"evolve(seeds, rounds=3) {{ {GROW} }}")
    nodes, rows = project(f"evolve(seeds, rounds=4) {{ {GROW} }}")
    ran = sorted(n for n, r in nodes.items() if r["status"] == "ran")
    assert ran == ["grown", "grown.r4@1", "grown.r4@2", "grown.r4@3"]
    assert [r["q"] for r in rows if r["_round"] == 4] == ["a++++", "b++++"]


def test_a_changed_chain_runs_again_from_round_one(project) -> None:
    project(f"evolve(seeds, rounds=2) {{ {GROW} }}")
    nodes, rows = project('evolve(seeds, rounds=2) { rewrite.template(field="q", '
                          'template="{{ q }}!") }')
    assert nodes["grown.r1@2"]["status"] == "ran"
    assert nodes["grown@1"]["status"] == "cached"  # the seeds' stamp does not change
    assert [r["q"] for r in rows] == ["a", "b", "a!", "b!", "a!!", "b!!"]


def test_min_new_stops_the_loop_and_later_rounds_run_on_nothing(project) -> None:
    block = (f'evolve(seeds, rounds=5, until={{"min_new": 1}}) {{ {GROW} '
             '| select.length(field="q", max=3) }')
    nodes, rows = project(block)
    assert [r["q"] for r in rows] == ["a", "b", "a+", "b+", "a++", "b++"]
    # round 3 remakes the 4 rows of rounds 1-2 (not new); "a+++" and "b+++" are too long
    assert nodes["grown.r3@4"]["stats"] == {"made": 4, "new": 0}
    assert nodes["grown.r4@1"]["stats"]["stopped"] == "round 3 added 0 new rows (min_new=1)"
    assert nodes["grown.r4@1"]["rows_out"] == nodes["grown.r5@1"]["rows_out"] == 0


def test_stochastic_operators_sample_anew_each_round(recipe_dir) -> None:
    folder = recipe_dir({"seeds.jsonl": SEEDS, "r.recipe": recipe(
        'evolve(seeds, rounds=3) { select.sample(n=1, seed=7) }')})
    program = compile_recipe(str(folder / "r.recipe"), optimize=False)
    seeds = {n.name: n.op.p["seed"] for n in program.nodes() if n.op.name == "select.sample"}
    assert seeds == {"grown.r1@2": 7, "grown.r2@2": 8, "grown.r3@2": 9}


def test_a_pure_filter_chain_adds_nothing(project) -> None:
    nodes, rows = project('evolve(seeds, rounds=2) { select.length(field="q", min=1) }')
    assert [r["q"] for r in rows] == ["a", "b"]
    assert nodes["grown.r1@3"]["stats"] == {"made": 2, "new": 0}


def test_the_score_column_must_come_from_somewhere(recipe_dir) -> None:
    from dcc.errors import RecipeError

    folder = recipe_dir({"seeds.jsonl": SEEDS, "r.recipe": recipe(
        f'evolve(seeds, rounds=2, until={{"score": "_judge"}}) {{ {GROW} }}')})
    with pytest.raises(RecipeError) as e:
        compile_recipe(str(folder / "r.recipe"))
    assert "until's score column '_judge' is made neither by the chain nor by the seed" in \
        str(e.value)


# -- the stop rule on its own -------------------------------------------------------------------
def pool(rounds: list[int], scores: list[float | None]) -> pl.DataFrame:
    return pl.DataFrame({"q": [f"r{i}" for i in range(len(rounds))],
                         "_id": [f"{r}-{i}" for i, r in enumerate(rounds)],
                         "_round": rounds, "_parent": [None] * len(rounds), "s": scores},
                        schema_overrides={"_parent": pl.String, "s": pl.Float64})


@pytest.mark.parametrize(("rounds", "scores", "until", "round_", "stopped"), [
    ([0, 0, 1, 1], [1, 2, 3, 4], {"score": "s"}, 2, None),  # 3.5 > 1.5: improving
    ([0, 0, 1, 1], [3, 4, 1, 2], {"score": "s"}, 2, "mean s went from 3.5 to 1.5 in round 1 "
                                                     "(min_gain=0)"),
    ([0, 1, 2], [1, 2, 2.5], {"score": "s", "min_gain": 0.5}, 3,
     "mean s went from 2 to 2.5 in round 2 (min_gain=0.5)"),
    ([0, 1], [None, 2], {"score": "s"}, 2, None),  # the seeds have no score: no comparison
    ([0, 0], [1, 2], {"score": "s"}, 2, "round 1 added no rows to score"),
    ([0, 1, 1], [1, 2, 3], {"min_new": 3}, 2, "round 1 added 2 new rows (min_new=3)"),
    ([0, 1], [1, 2], {"min_new": 3}, 1, None),  # round 1 always runs
])
def test_stop_rule(rounds, scores, until, round_, stopped) -> None:
    feed = EvolveFeed(round=round_, until=until)
    assert feed.stop_reason(pool(rounds, scores)) == stopped
    ctx = RunContext("t")
    out = feed.run([pool(rounds, scores)], ctx)
    assert (out.height == 0) == (stopped is not None)
    assert ctx.stats.get("stopped") == stopped
    if stopped is None:
        assert out["_parent"].to_list() == pool(rounds, scores)["_id"].to_list()
        assert "_id" not in out.columns and "_round" not in out.columns


@pytest.mark.parametrize(("until", "problem"), [
    ({"min_new": -1}, "'min_new' must be an integer >= 0 (got -1)"),
    ({"score": 3}, "'score' must be a column name (got 3)"),
    ({"score": "s", "min_gain": "x"}, "'min_gain' must be a number (got 'x')"),
    ({"rounds": 2}, "'until' has no key 'rounds' (its keys: min_new, score, min_gain)"),
])
def test_until_is_checked(until, problem) -> None:
    assert check_until(until) == problem
