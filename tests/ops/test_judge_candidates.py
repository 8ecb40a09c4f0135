"""select.judge(candidates=...): several responses of one row rated in one call, UltraFeedback
style, against the fake OpenAI server (a scripted judge): the reply parser, null rows with a
count for replies that rate the wrong number of candidates, keep by the aggregate rating,
annotate-only, named and custom rubrics."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models_http"))
from fake_openai import FakeOpenAI  # noqa: E402  (the HTTP tests' fake server)

from dcc.errors import ParamError  # noqa: E402
from dcc.ops.judge_rubrics import RUBRICS, parse_ratings  # noqa: E402
from dcc.ops.prompted import SelectJudge  # noqa: E402


# -- the parser --------------------------------------------------------------------------------
@pytest.mark.parametrize("reply, n, want", [
    ("#### Response 1\nRating: 4/5\nRationale: Correct.\n\n#### Response 2\nRating: 1\n"
     "Rationale: Response 2 is wrong; Response 1 is right.", 2,
     ([4.0, 1.0], ["Correct.", "Response 2 is wrong; Response 1 is right."])),
    ("**Text 1:**\nRating: 3\nRationale: ok\n**Text 2:**\nRating: 5\nRationale: best", 2,
     ([3.0, 5.0], ["ok", "best"])),
    ("Output for Text 2\nRating: 2\n\nOutput for Text 1\nRating: 5\n", 2,  # out of order
     ([5.0, 2.0], [None, None])),
    ("Response 1: Rating: 8/10 - clear\nResponse 2: Rating: 6/10 - vague", 2,
     ([4.0, 3.0], [None, None])),  # rescaled from /10 to the scale 5
    ("Rating: 4\nRationale: fine, though 3 of 5 steps lack detail\nRating: 2\nRationale: no",
     2, ([4.0, 2.0], ["fine, though 3 of 5 steps lack detail", "no"])),
    ('```json\n[{"rating": 5, "rationale": "good"}, {"score": 0}]\n```', 2,
     ([5.0, 0.0], ["good", None])),
])
def test_parse_ratings(reply: str, n: int, want: Any) -> None:
    assert parse_ratings(reply, n, 5) == want


@pytest.mark.parametrize("reply", [
    "#### Response 1\nRating: 4\n",                                       # one missing
    "#### Response 1\nRating: 4\n#### Response 2\nRating: 3\n#### Response 3\nRating: 1",
    "#### Response 1\nRating: 4\n#### Response 1\nRating: 3\n",           # twice
    "#### Response 1\nRating: 4\n#### Response 2\nRating: 9\n",           # out of 0..5
    "#### Response 1\nRating: 4\n#### Response 2\nRationale: no rating",
    "Rating: 4\nRating: 3\nRating: 2",                                    # three for two
    "[4, 3, 2]", "I cannot rate these.", "",
])
def test_parse_ratings_all_or_nothing(reply: str) -> None:
    assert parse_ratings(reply, 2, 5) is None


# -- builds against a scripted judge -----------------------------------------------------------
ROWS = [
    {"q": "2+2?", "cands": ["4", "5", "four"]},
    {"q": "capital of France?", "cands": ["Paris", "Lyon"]},
    {"q": "a haiku", "cands": ["one", "two"]},       # the judge rates only one of two
    {"q": "empty", "cands": []},
    {"q": "null", "cands": None},
    {"q": "3*3?", "cands": ["9", "6", "nine"]},
]
REPLIES = {
    "2+2?": "#### Response 1\nRating: 5\nRationale: right\n\n#### Response 2\nRating: 1\n"
            "Rationale: wrong\n\n#### Response 3\nRating: 4\nRationale: right, in words",
    "capital of France?": "Response 1\nRating: 5/5\nRationale: yes\nResponse 2\nRating: 2/5\n"
                          "Rationale: no",
    "a haiku": "#### Response 1\nRating: 3\nRationale: meh",
    "3*3?": "#### Response 1\nRating: 5\n#### Response 2\nRating: 0\n#### Response 3\n"
            "Rating: 5\n",
}


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().start()

    def reply(body: dict[str, Any], index: int) -> str:
        prompt = body["messages"][-1]["content"]
        return next(v for q, v in REPLIES.items() if f"[q]\n{q}\n" in prompt)

    fake.reply = reply
    try:
        yield fake
    finally:
        fake.stop()


def build(folder: Path, run_cli: Callable, server: FakeOpenAI,
          args: str) -> tuple[dict, list[dict]]:
    text = (f'recipe j\nrows = load.jsonl("rows.jsonl")\n'
            f'best = rows | select.judge(model="{server.ref()}", fields=["q"], '
            f'candidates="cands", scale=5{args})\nexport best to "best.jsonl"\n')
    (folder / "r.recipe").write_text(text, encoding="utf-8")
    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder)
    assert code == 0, err
    node = next(n for n in json.loads(out)["nodes"] if n["name"] == "best")
    return node, [json.loads(x) for x in (folder / "best.jsonl").read_text().splitlines()]


def test_one_call_per_row_and_null_rows_counted(server: FakeOpenAI, recipe_dir: Callable,
                                                run_cli: Callable) -> None:
    folder = recipe_dir({"rows.jsonl": ROWS})
    node, rows = build(folder, run_cli, server, ', keep="none"')
    assert (node["rows_in"], node["rows_out"], node["model_calls"]) == (6, 6, 4)
    assert node["stats"] == {"unparsed": 1, "null_input": 1}
    by_q = {r["q"]: r for r in rows}
    assert by_q["2+2?"]["_judge"] == [5.0, 1.0, 4.0]
    assert by_q["2+2?"]["_judge_rationales"] == ["right", "wrong", "right, in words"]
    assert by_q["2+2?"]["_judge_max"] == 5.0
    assert by_q["a haiku"]["_judge"] is None and by_q["a haiku"]["_judge_max"] is None
    assert by_q["empty"]["_judge"] == [] and by_q["null"]["_judge"] is None
    assert by_q["3*3?"]["_judge_rationales"] == [None, None, None]
    prompts = [p["body"]["messages"][-1]["content"] for p in server.posts()]
    assert len(prompts) == 4 and all(RUBRICS["helpfulness"] not in p for p in prompts)
    assert "<response 3>\nfour\n</response 3>" in prompts[0]


def test_keep_ranks_rows_by_the_aggregate_and_asks_nothing_again(
        server: FakeOpenAI, recipe_dir: Callable, run_cli: Callable) -> None:
    folder = recipe_dir({"rows.jsonl": ROWS})
    node, rows = build(folder, run_cli, server, ', aggregate="mean", keep=2')
    # means: 2+2? 3.3333, France 3.5, 3*3? 3.3333 (a tie: the earlier row), the rest null
    assert [r["q"] for r in rows] == ["2+2?", "capital of France?"]
    assert [r["_judge_mean"] for r in rows] == [3.3333, 3.5]
    node, rows = build(folder, run_cli, server, ', min_score=5')  # aggregate max
    assert [r["q"] for r in rows] == ["2+2?", "capital of France?", "3*3?"]
    assert (node["model_calls"], node["stats"]["memo_hits"]) == (0, 4)
    node, rows = build(folder, run_cli, server, ', aggregate="min", keep={"zscore": 1}')
    assert node["stats"]["keep_bounds"] is not None and node["model_calls"] == 0
    assert len(server.posts()) == 4  # one request per row with candidates, over all builds


def test_named_and_custom_rubrics(server: FakeOpenAI) -> None:
    ref = server.ref()
    row = {"q": "2+2?", "cands": ["4"]}
    for name, text in RUBRICS.items():
        prompt = SelectJudge(model=ref, candidates="cands", rubric=name).prompt(row)
        assert f"Judge {text}" in prompt
    custom = SelectJudge(model=ref, candidates="cands", rubric="how funny it is").prompt(row)
    assert "Judge how funny it is" in custom
    single = SelectJudge(model=ref, fields=["q"], rubric="truthfulness").prompt(row)
    assert f"Judge {RUBRICS['truthfulness']}" in single  # a named rubric in the 1-row form


def test_errors() -> None:
    ref = "openai:http://127.0.0.1:9/v1#m"
    with pytest.raises(ParamError, match="keep_score=false would leave nothing"):
        SelectJudge(model=ref, candidates="c", keep_score=False)
    with pytest.raises(ParamError, match="'c' is both shown as a field and rated"):
        SelectJudge(model=ref, candidates="c", fields=["q", "c"])
    with pytest.raises(ParamError, match="'aggregate' must be one of"):
        SelectJudge(model=ref, candidates="c", aggregate="median")
    with pytest.raises(ParamError, match=r'give keep="none" \(annotate only\) or \'min_score\''):
        SelectJudge(model=ref, candidates="c", keep="none", min_score=3)
