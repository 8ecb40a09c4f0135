"""`keep=` (dcc.ops.base.KeepBest): its forms, its errors, and where the executor ranks.

A test-only scorer, `test.keepscore`, copies the numeric column `s` into `_score` row by row
(as select.perplexity writes `_ppl`), so each form's expected rows can be worked out by hand.
It runs through the real executor (the ranked part is the executor's hook) and through real
in-process builds, optimized and not.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import polars as pl
import pytest

from dcc.cache import open_store
from dcc.compiler import compile_recipe
from dcc.compiler.ir import Node
from dcc.engine.build import build
from dcc.engine.executor import LocalExecutor
from dcc.errors import ParamError
from dcc.ops import register
from dcc.ops.base import KeepBest, P, RowPython, RunContext


@register
class KeepScore(KeepBest, RowPython):
    """Copy `s` into `_score` (a stand-in for a model score). Test-only."""

    name = "test.keepscore"
    version = 1
    expensive = True
    params = (KeepBest.keep_param("the highest s"),
              P("min", "float", None, doc="lowest kept"),
              P("max", "float", None, doc="highest kept"))
    calls: ClassVar[int] = 0

    def validate(self) -> list[tuple[str | None, str]]:
        return self.keep_problems()

    def keep_column(self) -> str:
        return "_score"

    def writes(self) -> list[str]:
        return ["_score"]

    def process(self, rows: list[dict[str, Any]], ctx: RunContext) -> list[Any]:
        type(self).calls += len(rows)
        out = []
        for row in rows:
            s = row["s"]
            s = None if s is None or (isinstance(s, float) and math.isnan(s)) else s
            out.append({"_score": s} if self.keep_row(s) else None)
        return out


class Eligible(KeepScore):
    """Best = highest at or below 1, as select.ifd. Test-only."""

    name = "test.keepscore_eligible"
    keep_eligible = {"max": 1.0}


class Lowest(KeepScore):
    name = "test.keepscore_lowest"
    keep_best = "bottom"


def run(op: RowPython, scores: list[float | None]) -> list[int]:
    """The indices of the rows `op` keeps, run as the executor runs a node (no memo)."""
    df = pl.DataFrame({"i": list(range(len(scores))), "s": scores},
                      schema={"i": pl.Int64, "s": pl.Float64})
    node = Node("n1", op, [], None)  # type: ignore[arg-type]
    out, _ = LocalExecutor(None, lambda e: None, {}).execute(node, [df], None)  # type: ignore
    return out["i"].to_list()


S = [3.0, 9.0, None, 9.0, 1.0, 5.0, float("nan"), 7.0]  # 6 scored rows, a tie at 9


@pytest.mark.parametrize("keep, kept", [
    (0.5, [1, 3, 7]),             # best 50% of the 6 scored rows = 3: 9, 9, 7
    (2, [1, 3]),                  # the two 9s
    (1, [1]),                     # a tie goes to the earlier row
    (0.0, []),
    (1.0, [0, 1, 3, 4, 5, 7]),    # every scored row: nulls and NaN are never kept
    (100, [0, 1, 3, 4, 5, 7]),
    ({"top": 0.34}, [1, 3]),      # floor(0.34 x 6) = 2
    ({"top": 3}, [1, 3, 7]),
    ({"bottom": 2}, [0, 4]),      # 1 and 3, in input order
    ({"bottom": 0.5}, [0, 4, 5]),
    ({"min": 3, "max": 7}, [0, 5, 7]),
    ({"min": 5}, [1, 3, 5, 7]),
    ({"max": 3.0}, [0, 4]),
    ({"top": 0.5, "max": 7}, [5, 7]),   # range first (3, 1, 5, 7), then the top 2 of those
    ({"bottom": 1, "min": 4}, [5]),
])
def test_forms(keep: Any, kept: list[int]) -> None:
    assert run(KeepScore(keep=keep), S) == kept


def test_no_keep_keeps_every_row_with_its_score() -> None:
    assert run(KeepScore(), S) == list(range(8))


def test_keep_none_annotates_only() -> None:
    op = KeepScore(keep="none")
    assert run(op, S) == list(range(8))  # null and NaN scores too: nothing is dropped
    assert op.rowwise and not op.keep_ranked() and op.writes() == ["_score"]
    with pytest.raises(ParamError, match=r'give keep="none" \(annotate only\) or \'min\''):
        KeepScore(keep="none", min=1.0)
    with pytest.raises(ParamError, match=r"'keep' as a string is only \"none\""):
        KeepScore(keep="all")


def test_best_is_per_operator() -> None:
    assert run(Lowest(keep=2), S) == [0, 4]                 # the two lowest
    assert run(Lowest(keep={"top": 2}), S) == [1, 3]        # top/bottom are by value
    ifd = [0.5, 1.2, 0.9, 1.0, None, 0.2, 0.95]
    assert run(Eligible(keep=0.5), ifd) == [3, 6]           # 2 of the 5 at or below 1
    assert run(Eligible(keep=10), ifd) == [0, 2, 3, 5, 6]   # 1.2 is never best
    assert run(Eligible(keep={"top": 1}), ifd) == [1]       # an explicit form ranks all


def test_a_fraction_is_taken_exactly() -> None:
    scores = [float(i) for i in range(100)]
    assert len(run(KeepScore(keep=0.29), scores)) == 29   # not 28, as 0.29 * 100 gives
    assert len(run(KeepScore(keep={"bottom": 0.07}), scores)) == 7


def test_only_ranked_forms_leave_row_wise() -> None:
    assert KeepScore().rowwise and KeepScore(keep={"min": 1}).rowwise
    for keep in (0.3, 5, {"top": 1}, {"bottom": 0.1, "max": 3}):
        op = KeepScore(keep=keep)
        assert op.keep_ranked() and not op.rowwise and type(op).rowwise


@pytest.mark.parametrize("kw, message", [
    ({"keep": 1.5}, r"'keep' as a float is a fraction of the rows, from 0 to 1 \(got 1.5\); "
                    r"for a count write an int, for a threshold keep=\{\"min\": 1.5\}"),
    ({"keep": -1}, r"'keep' must be >= 0 \(got -1\)"),
    ({"keep": -0.5}, r"'keep' must be >= 0"),
    ({"keep": True}, r"'keep' must be number\|dict\|str \(got bool True\)"),
    ({"keep": "30%"}, r"'keep' as a string is only \"none\" .* \(got '30%'\)"),
    ({"keep": {"tpo": 0.1}}, r"'keep' has no key 'tpo'; did you mean 'top'\? its keys: top, "
                             r"bottom, min, max"),
    ({"keep": {}}, r"'keep' is an empty dict"),
    ({"keep": {"top": 1, "bottom": 1}}, r"'top' or 'bottom', not both"),
    ({"keep": {"top": 2.5}}, r"'keep.top' as a float is a fraction"),
    ({"keep": {"bottom": -3}}, r"'keep.bottom' must be >= 0"),
    ({"keep": {"min": "a"}}, r"'keep.min' must be a number \(got str 'a'\)"),
    ({"keep": {"min": 5, "max": 2}}, r"'keep.max' must be >= 'keep.min' \(got min=5, max=2\)"),
    ({"keep": 0.3, "max": 2.0}, r"give 'keep' or 'max', not both"),
    ({"keep": {"min": 1}, "min": 1.0}, r"give 'keep' or 'min', not both"),
])
def test_errors(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ParamError, match=message):
        KeepScore(**kw)


# -- in recipes ---------------------------------------------------------------------------------
ROWS = [{"t": "x" * (1 + i % 7), "s": s} for i, s in
        enumerate([3, 9, None, 9, 1, 5, 8, 7, 2, 6, 4, 9, 0, 5])]


def build_rows(folder: Path, recipe: str, optimize: bool) -> dict[str, list[dict]]:
    (folder / "r.recipe").write_text(recipe, encoding="utf-8")
    program = compile_recipe(str(folder / "r.recipe"), optimize=optimize)
    result = build(program, open_store(folder / ".dcc"))
    assert all(n.status in ("ran", "cached") for n in result.nodes)
    return {Path(e.path).stem: [json.loads(x) for x in Path(e.path).read_text().splitlines()]
            for e in program.exports}


def test_ranked_keep_is_one_barrier_node(recipe_dir: Callable[..., Path]) -> None:
    """Filters around a ranked keep change which rows rank first, so no pass may move them
    across it; the result is the same as scoring then select.topk, optimized or not."""
    folder = recipe_dir({"d.jsonl": ROWS})
    recipe = """recipe r
raw = load.jsonl("d.jsonl")
best = raw | select.length(field="t", min=2) | test.keepscore(keep=0.5)
  | select.length(field="t", max=5)
pair = raw | select.length(field="t", min=2) | test.keepscore(keep={"min": 0})
  | select.topk(by="_score", fraction=0.5) | select.length(field="t", max=5)
export best to "best.jsonl"
export pair to "pair.jsonl"
"""
    plain = build_rows(folder, recipe, optimize=False)
    optimized = build_rows(recipe_dir({"d.jsonl": ROWS}), recipe, optimize=True)
    assert plain == optimized
    assert plain["best"] == plain["pair"]
    # by hand: t of length >= 2 and a score leaves 11 rows; floor(5.5) = 5 of them rank top:
    # 9, 9, 9, 8, 6 (rows 1, 3, 11, 6, 9), and row 6's t has 7 characters
    assert [r["s"] for r in plain["best"]] == [9, 9, 6, 9]


def test_a_changed_keep_ranks_again(recipe_dir: Callable[..., Path]) -> None:
    """A rebuild is cached; a new keep ranks every row again (the row memo is keyed by the
    parameters, keep included: a model scorer's request memo makes that free)."""
    folder = recipe_dir({"d.jsonl": ROWS})
    recipe = ('recipe r\nparam k = 0.5\nraw = load.jsonl("d.jsonl")\n'
              'best = raw | test.keepscore(keep=k)\nexport best to "best.jsonl"\n')
    KeepScore.calls = 0
    first = build_rows(folder, recipe, optimize=True)["best"]
    assert KeepScore.calls == 14 and len(first) == 6   # floor(0.5 x 13 scored rows)
    again = build_rows(folder, recipe, optimize=True)["best"]
    assert KeepScore.calls == 14 and again == first    # cached
    third = build_rows(folder, recipe.replace("= 0.5", "= 3"), optimize=True)["best"]
    assert [r["s"] for r in third] == [9, 9, 9]


def test_check_points_at_the_keep_argument(recipe_dir: Callable[..., Path],
                                           run_cli: Callable[..., tuple]) -> None:
    folder = recipe_dir({"d.jsonl": [{"t": "a b"}], "tiny/config.json": "{}"})
    for keep, message in (("1.5", "'keep' as a float is a fraction"),
                          ('{"top": 1, "bottom": 2}', "'keep' takes 'top' or 'bottom'"),
                          ("0.3, max=9.0", "give 'keep' or 'max', not both")):
        (folder / "r.recipe").write_text(
            'recipe r\nraw = load.jsonl("d.jsonl")\n'
            f'p = raw | select.perplexity(field="t", model="./tiny", keep={keep})\n'
            'export p to "o.jsonl"\n', encoding="utf-8")
        code, _, err = run_cli("check", "r.recipe", cwd=folder)
        col = len('p = raw | select.perplexity(field="t", model="./tiny", keep=') + 1
        assert code == 1 and "Traceback" not in err, err
        assert f"r.recipe:3:{col}: error: select.perplexity: {message}" in err, err
