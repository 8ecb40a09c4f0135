"""Statistical `keep=` forms (dcc.ops.base.KeepBest): a z-score band and a percentile range,
computed from the node's own scores, recorded in its stats, checked at compile time.

A test-only scorer, `test.keepstat`, copies the numeric column `s` into `_score` row by row,
so the expected bounds are worked out with numpy by hand (population std, linear
percentiles) and compared with what the executor kept.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from dcc.cache import open_store
from dcc.compiler import compile_recipe
from dcc.compiler.ir import Node
from dcc.engine.build import build
from dcc.engine.executor import LocalExecutor
from dcc.errors import DccError, ParamError
from dcc.ops import register
from dcc.ops.base import KeepBest, P, RowPython, RunContext


@register
class KeepStat(KeepBest, RowPython):
    """Copy `s` into `_score` (a stand-in for a model score). Test-only."""

    name = "test.keepstat"
    version = 1
    expensive = True
    params = (KeepBest.keep_param("the highest s"),
              P("min", "float", None, doc="lowest kept"),
              P("max", "float", None, doc="highest kept"))

    def validate(self) -> list[tuple[str | None, str]]:
        return self.keep_problems()

    def keep_column(self) -> str:
        return "_score"

    def writes(self) -> list[str]:
        return ["_score"]

    def process(self, rows: list[dict[str, Any]], ctx: RunContext) -> list[Any]:
        out = []
        for row in rows:
            s = row["s"]
            s = None if s is None or (isinstance(s, float) and math.isnan(s)) else s
            out.append({"_score": s} if self.keep_row(s) else None)
        return out


def run(op: RowPython, scores: list[float | None]) -> tuple[list[int], dict[str, Any]]:
    """(indices of the rows `op` keeps, the node's stats), run as the executor runs a node."""
    df = pl.DataFrame({"i": list(range(len(scores))), "s": scores},
                      schema={"i": pl.Int64, "s": pl.Float64})
    node = Node("n1", op, [], None)  # type: ignore[arg-type]
    out, ctx = LocalExecutor(None, lambda e: None, {}).execute(node, [df], None)  # type: ignore
    return out["i"].to_list(), ctx.stats


# 20 scores around 10 and one outlier; a null and a NaN that take no part
S = [10.0, 11.0, 9.0, 10.5, 9.5, 10.2, 9.8, 10.1, 9.9, 10.0,
     11.2, 8.8, 10.3, 9.7, 10.4, 9.6, 10.6, 9.4, 10.0, 10.0, 40.0, None, float("nan")]
SCORED = np.array([s for s in S if s is not None and not math.isnan(s)])


def expected(lo: float, hi: float) -> list[int]:
    return [i for i, s in enumerate(S)
            if s is not None and not math.isnan(s) and lo <= s <= hi]


@pytest.mark.parametrize("k", [1, 2, 3, 0.5])
def test_zscore_is_mean_plus_minus_k_population_std(k: float) -> None:
    mean, std = SCORED.mean(), SCORED.std(ddof=0)
    kept, stats = run(KeepStat(keep={"zscore": k}), S)
    assert kept == expected(mean - k * std, mean + k * std)
    assert stats["keep_bounds"] == pytest.approx([mean - k * std, mean + k * std])
    assert stats["keep_mean"] == pytest.approx(mean) and stats["keep_std"] == pytest.approx(std)
    assert stats["dropped_by_bounds"] == len(SCORED) - len(kept)


def test_three_sigma_drops_the_outlier_only() -> None:
    kept, _ = run(KeepStat(keep={"zscore": 3}), S)
    assert kept == list(range(20))          # 40.0, the null and the NaN are gone


def test_population_not_sample_std() -> None:
    # [0, 2]: mean 1, population std 1 (sample std 1.414): a z-band of 1 keeps both ends,
    # a band of 0.99 neither, which a sample std would not give
    assert run(KeepStat(keep={"zscore": 1}), [0.0, 2.0])[0] == [0, 1]
    assert run(KeepStat(keep={"zscore": 0.99}), [0.0, 2.0])[0] == []


def test_constant_scores_are_all_kept() -> None:
    kept, stats = run(KeepStat(keep={"zscore": 2}), [0.1, 0.1, 0.1, None])
    assert kept == [0, 1, 2] and stats["keep_bounds"] == [0.1, 0.1]


@pytest.mark.parametrize("lo, hi", [(5, 95), (0, 100), (25, 75), (10, 10), (0, 50)])
def test_percentile_is_numpys_linear_and_inclusive(lo: float, hi: float) -> None:
    plo, phi = np.percentile(SCORED, [lo, hi])
    kept, stats = run(KeepStat(keep={"percentile": [lo, hi]}), S)
    assert stats["keep_bounds"] == [float(plo), float(phi)]
    assert kept == expected(plo, phi)


def test_percentile_by_hand() -> None:
    # 1..5: the 25th percentile is 2, the 62.5th 3.5 (linear between 3 and 4)
    kept, stats = run(KeepStat(keep={"percentile": [25, 62.5]}), [5.0, 1.0, 4.0, 2.0, 3.0])
    assert stats["keep_bounds"] == [2.0, 3.5] and kept == [3, 4]
    assert run(KeepStat(keep={"percentile": [0, 100]}), [5.0, None, 1.0])[0] == [0, 2]


def test_no_scored_rows() -> None:
    kept, stats = run(KeepStat(keep={"zscore": 3}), [None, float("nan")])
    assert kept == [] and stats["keep_bounds"] == [None, None]


def test_statistical_forms_are_not_row_wise() -> None:
    for keep in ({"zscore": 3}, {"percentile": [5, 95]}):
        op = KeepStat(keep=keep)
        assert op.keep_ranked() and not op.rowwise


@pytest.mark.parametrize("keep, message", [
    ({"zscore": 0}, r"'keep.zscore' is k in mean \+- k x std: a number > 0"),
    ({"zscore": -1}, r"a number > 0"),
    ({"zscore": "3"}, r"a number > 0, e.g. \{\"zscore\": 3\} \(got '3'\)"),
    ({"zscore": True}, r"a number > 0"),
    ({"zscore": float("inf")}, r"a number > 0"),
    ({"percentile": 95}, r"'keep.percentile' is \[lo, hi\], two percentiles from 0 to 100"),
    ({"percentile": [5]}, r"two percentiles"),
    ({"percentile": [5, 101]}, r"two percentiles"),
    ({"percentile": [-1, 50]}, r"two percentiles"),
    ({"percentile": ["5", 95]}, r"two percentiles"),
    ({"percentile": [95, 5]}, r"'keep.percentile' needs lo <= hi \(got \[95, 5\]\)"),
    ({"zscore": 3, "min": 0}, (r"'keep.zscore' takes its bounds from the data and stands "
                               r"alone; drop 'min'")),
    ({"percentile": [5, 95], "top": 0.5}, r"stands alone; drop 'top'"),
    ({"zscore": 3, "percentile": [5, 95]}, r"stands alone; drop 'percentile'"),
    ({"zscor": 3}, r"did you mean 'zscore'\?"),
])
def test_errors(keep: dict[str, Any], message: str) -> None:
    with pytest.raises(ParamError, match=message):
        KeepStat(keep=keep)


# -- in recipes ---------------------------------------------------------------------------------
def test_in_a_build_bounds_are_in_the_stats(recipe_dir: Callable[..., Path]) -> None:
    rows = [{"s": s} for s in S[:21]]
    folder = recipe_dir({"d.jsonl": rows})
    (folder / "r.recipe").write_text(
        'recipe r\nraw = load.jsonl("d.jsonl")\n'
        'band = raw | test.keepstat(keep={"zscore": 3})\n'
        'mid = raw | test.keepstat(keep={"percentile": [5, 95]})\n'
        'export band to "band.jsonl"\nexport mid to "mid.jsonl"\n', encoding="utf-8")
    program = compile_recipe(str(folder / "r.recipe"), optimize=True)
    for attempt in ("ran", "cached"):
        result = build(program, open_store(folder / ".dcc"))
        nodes = {name: n for n in result.nodes for name in n.names}
        assert nodes["band"].status == attempt and nodes["mid"].status == attempt
        assert nodes["band"].stats["keep_bounds"] == pytest.approx(
            [SCORED.mean() - 3 * SCORED.std(), SCORED.mean() + 3 * SCORED.std()])
        assert nodes["mid"].stats["keep_bounds"] == [float(x) for x in
                                                      np.percentile(SCORED, [5, 95])]
    band = [json.loads(x)["s"] for x in (folder / "band.jsonl").read_text().splitlines()]
    assert band == S[:20]


def test_a_bad_form_fails_the_compile(recipe_dir: Callable[..., Path]) -> None:
    folder = recipe_dir({"d.jsonl": [{"s": 1.0}]})
    (folder / "r.recipe").write_text(
        'recipe r\nraw = load.jsonl("d.jsonl")\n'
        'x = raw | test.keepstat(keep={"percentile": [95, 5]})\nexport x to "x.jsonl"\n',
        encoding="utf-8")
    with pytest.raises(DccError, match=r"'keep.percentile' needs lo <= hi"):
        compile_recipe(str(folder / "r.recipe"))
