"""keep="none" on every scorer: the score column is written and no row is dropped.

The rule scorers (ratios, repetition, flagged words, language) are checked against their own
score expressions; the model scorers with a scripted backend (a loss per text, a reward per
input), so no model is loaded; one build shows the recipe form and a later `select.where`
on the score.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from dcc.errors import ParamError
from dcc.ops.base import RunContext
from dcc.ops.quality import SelectFlaggedWords
from dcc.ops.rules import SelectAlnumRatio, SelectLang, SelectRepetition, SelectSpecialCharsRatio
from dcc.ops.scorers import SelectIFD, SelectPerplexity, SelectReward

TEXTS = ["The cat sat on the mat.", "!!! ??? ###", "a a a a a a a a", "", None,
         "what the fuck is this"]


def frame() -> pl.DataFrame:
    return pl.DataFrame({"t": TEXTS}, schema={"t": pl.String})


@pytest.mark.parametrize("op", [
    SelectAlnumRatio(field="t", keep="none"),
    SelectSpecialCharsRatio(field="t", keep="none"),
    SelectRepetition(field="t", n=2, unit="word", keep="none"),
    SelectFlaggedWords(field="t", keep="none"),
], ids=lambda op: op.name)
def test_rule_scorers_annotate_every_row(op: Any) -> None:
    (col,) = op.writes()
    out = op.run([frame()], RunContext("t"))
    assert out["t"].to_list() == TEXTS  # nothing dropped, order kept
    want = frame().select(op.score().alias(col))[col].to_list()
    assert out[col].to_list() == want and len(set(want)) > 1
    assert op.kind == "dataset"  # it writes a column: not a fusable filter
    assert op.output_schema([]).columns[col] == "float"


def test_lang_annotates_every_row() -> None:
    out = SelectLang(field="t", keep="none").run([frame()], RunContext("t"))
    assert out["t"].to_list() == TEXTS
    assert out["_lang"][0] == "en" and 0 < out["_lang_score"][0] <= 1


@pytest.mark.parametrize("make, message", [
    (lambda: SelectAlnumRatio(field="t", keep="none", min=0.5),
     r"give keep=\"none\" \(annotate only\) or 'min', not both"),
    (lambda: SelectFlaggedWords(field="t", keep="none", max=0.1),
     r"give keep=\"none\" \(annotate only\) or 'max', not both"),
    (lambda: SelectAlnumRatio(field="t", keep="all"), r"'keep' must be one of 'none'"),
    (lambda: SelectAlnumRatio(field="t"), r"or keep=\"none\" to only write the score"),
    (lambda: SelectPerplexity(field="t", model="org/scripted", keep="none", max=9.0),
     r"give keep=\"none\" \(annotate only\) or 'max', not both"),
])
def test_errors(make: Callable[[], Any], message: str) -> None:
    with pytest.raises(ParamError, match=message):
        make()


@dataclass
class Scored:
    mean_loss: float
    logprobs: list[float]


class Scripted:
    """A backend whose loss of a continuation is its length / 10 (longer after a prefix),
    and whose reward of an input is the number of characters in it."""

    identity = "scripted@1"

    def score(self, prefixes: list[str], conts: list[str]) -> list[Scored]:
        return [Scored(len(c) / 10 + (0.5 if p else 0.0), [0.0]) for p, c in zip(prefixes, conts)]

    def reward(self, inputs: list[Any]) -> list[float]:
        return [float(len(json.dumps(x))) for x in inputs]


@pytest.mark.parametrize("op, col", [
    (SelectPerplexity(field="t", model="org/scripted", keep="none"), "_ppl"),
    (SelectIFD(instruction="t", output="t", model="org/scripted", keep="none"), "_ifd"),
    (SelectReward(field="t", model="org/scripted", keep="none"), "_reward"),
], ids=["perplexity", "ifd", "reward"])
def test_model_scorers_annotate_every_row(op: Any, col: str,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(type(op), "backend", lambda self, ctx: Scripted())
    rows = [{"t": t} for t in TEXTS]
    out = op.process(rows, RunContext("t"))
    assert all(r is not None for r in out)  # every row kept, null scores included
    scores = [r[col] for r in out]
    assert scores[3] is None and scores[4] is None  # "" and null have no score
    assert all(isinstance(s, float) and math.isfinite(s) for i, s in enumerate(scores)
               if i not in (3, 4))
    assert op.writes() == [col] and op.output_schema([]).columns[col] == "float"
    assert op.rowwise and not op.keep_ranked()


def test_annotate_then_filter_in_a_recipe(recipe_dir: Callable[..., Path],
                                          run_cli: Callable) -> None:
    recipe = ('recipe r\nrows = load.jsonl("rows.jsonl")\n'
              'scored = rows | select.alnum_ratio(field="t", keep="none")\n'
              'clean = scored | select.where(_alnum_ratio >= 0.5)\n'
              'export scored to "scored.jsonl"\nexport clean to "clean.jsonl"\n')
    folder = recipe_dir({"r.recipe": recipe, "rows.jsonl": [{"t": t} for t in TEXTS]})
    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder)
    assert code == 0, err
    scored = [json.loads(x) for x in (folder / "scored.jsonl").read_text().splitlines()]
    clean = [json.loads(x) for x in (folder / "clean.jsonl").read_text().splitlines()]
    assert [r["t"] for r in scored] == TEXTS
    assert [r["t"] for r in clean] == [r["t"] for r in scored if r["_alnum_ratio"] >= 0.5]
    assert 0 < len(clean) < len(scored)


def test_a_bare_none_points_at_the_string(recipe_dir: Callable[..., Path],
                                          run_cli: Callable) -> None:
    recipe = ('recipe r\nrows = load.jsonl("rows.jsonl")\n'
              'x = rows | select.alnum_ratio(field="t", keep=none)\nexport x to "x.jsonl"\n')
    folder = recipe_dir({"r.recipe": recipe, "rows.jsonl": [{"t": "a"}]})
    code, out, err = run_cli("check", "r.recipe", cwd=folder)
    assert code == 1 and "r.recipe:3:47: error: unknown name 'none'" in err
    assert 'write keep="none" (a string) to only write a score' in err
