"""`x.rejected`: the rows a select step dropped, exported like any dataset."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from dcc.cache.store import DiskStore
from dcc.compiler import compile_recipe
from dcc.engine.build import build
from dcc.errors import RecipeError

ROWS = [{"t": "aa", "n": 1}, {"t": "bbbb", "n": 2}, {"t": "aa", "n": 1}, {"t": "c", "n": 3},
        {"t": "dddddd", "n": 4}, {"t": "aa", "n": 1}]


def run(recipe_dir: Callable[..., Path], body: str) -> dict[str, list[dict]]:
    root = recipe_dir({"d.jsonl": ROWS, "r.recipe": 'rows = load.jsonl("d.jsonl")\n' + body})
    with DiskStore(root / ".dcc") as store:
        build(compile_recipe(str(root / "r.recipe")), store)
    return {p.stem: [json.loads(x) for x in p.read_text().splitlines()]
            for p in root.glob("*.jsonl") if p.name != "d.jsonl"}


def test_a_filter_chain_rejects_what_its_last_step_dropped(recipe_dir) -> None:
    out = run(recipe_dir, 'good = rows | select.length(field="t", min=2) '
                          '| select.length(field="t", max=4)\n'
                          'export good to "good.jsonl"\nexport good.rejected to "bad.jsonl"\n')
    assert [r["t"] for r in out["good"]] == ["aa", "bbbb", "aa", "aa"]
    assert out["bad"] == [{"t": "dddddd", "n": 4}]  # "c" was dropped by the first step


def test_dedup_rejects_the_later_copies(recipe_dir) -> None:
    out = run(recipe_dir, 'u = rows | select.dedup(fields=["t"], method="exact")\n'
                          'dups = u.rejected\nexport dups to "dups.jsonl"\n')
    assert out["dups"] == [{"t": "aa", "n": 1}, {"t": "aa", "n": 1}]


def test_kept_and_rejected_partition_the_input(recipe_dir) -> None:
    out = run(recipe_dir, 'k = rows | select.sample(n=3, seed=5)\n'
                          'export k to "k.jsonl"\nexport k.rejected to "r.jsonl"\n')
    assert len(out["k"]) + len(out["r"]) == len(ROWS)
    assert sorted(map(json.dumps, out["k"] + out["r"])) == sorted(map(json.dumps, ROWS))


def test_only_select_steps_have_rejected_rows(recipe_dir) -> None:
    root = recipe_dir({"d.jsonl": ROWS, "r.recipe": (
        'rows = load.jsonl("d.jsonl")\nn = rows | rewrite.normalize(fields=["t"])\n'
        'export n.rejected to "o.jsonl"\n')})
    with pytest.raises(RecipeError) as e:
        compile_recipe(str(root / "r.recipe"))
    d = e.value.diagnostics[0]
    assert (d.span.line, d.span.col) == (3, 8)
    assert d.message == ("'n' is made by rewrite.normalize, not by a select operator, so it "
                         "has no rejected rows")
