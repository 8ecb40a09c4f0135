"""select.judge(keep=...) built end to end against the fake OpenAI server: the ranked cut
happens after every row is judged, and a new `keep` asks the judge nothing."""

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
from dcc.ops.prompted import SelectJudge  # noqa: E402

# scores 8, 9, 4 (2 of 5), none, 7, 3, 10
VERDICTS = ["Score: 8/10", "**9**", "Rating: 2 out of 5", "I cannot rate this.", "Score: 7",
            "3/10", "Score: 10/10"]
ROWS = [{"q": f"question {i}", "a": f"answer {i}"} for i in range(len(VERDICTS))]


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().start()

    def reply(body: dict[str, Any], index: int) -> str:
        prompt = body["messages"][-1]["content"]
        return next(v for r, v in zip(ROWS, VERDICTS) if f"{r['q']}\n" in prompt)

    fake.reply = reply
    try:
        yield fake
    finally:
        fake.stop()


def recipe(server: FakeOpenAI, keep: str, extra: str = "") -> str:
    return (f'recipe j\nrows = load.jsonl("rows.jsonl")\n'
            f'best = rows | select.judge(model="{server.ref()}", fields=["q", "a"], '
            f'keep={keep}{extra})\nexport best to "best.jsonl"\n')


def build(folder: Path, run_cli: Callable, text: str) -> tuple[dict, list[dict]]:
    (folder / "r.recipe").write_text(text, encoding="utf-8")
    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder)
    assert code == 0, err
    node = next(n for n in json.loads(out)["nodes"] if n["name"] == "best")
    return node, [json.loads(x) for x in (folder / "best.jsonl").read_text().splitlines()]


def test_judge_keep_ranks_after_every_row(server: FakeOpenAI, recipe_dir: Callable,
                                         run_cli: Callable) -> None:
    folder = recipe_dir({"rows.jsonl": ROWS})
    node, rows = build(folder, run_cli, recipe(server, "3"))
    assert (node["rows_in"], node["rows_out"], node["model_calls"]) == (7, 3, 7)
    assert [(r["q"], r["_judge"]) for r in rows] == [("question 0", 8.0), ("question 1", 9.0),
                                                     ("question 6", 10.0)]

    node, rows = build(folder, run_cli, recipe(server, '{"bottom": 0.5}'))
    assert (node["status"], node["model_calls"], node["stats"]["memo_hits"]) == ("ran", 0, 7)
    assert [r["_judge"] for r in rows] == [4.0, 7.0, 3.0]  # 3 of the 6 scored, input order

    node, rows = build(folder, run_cli, recipe(server, '{"min": 7, "max": 9}'))
    assert [r["_judge"] for r in rows] == [8.0, 9.0, 7.0]

    node, rows = build(folder, run_cli, recipe(server, "0.5", ", keep_score=false"))
    assert [r["q"] for r in rows] == ["question 0", "question 1", "question 6"]
    assert all(set(r) == {"q", "a"} for r in rows)  # ranked by a score it does not keep
    assert len(server.posts()) == 7  # one request per row over all four builds


def test_judge_keep_errors() -> None:
    ref = "openai:http://127.0.0.1:9/v1#m"
    with pytest.raises(ParamError, match="give 'keep' or 'min_score', not both"):
        SelectJudge(model=ref, keep=0.1, min_score=7)
    with pytest.raises(ParamError, match="'keep' has no key 'best'"):
        SelectJudge(model=ref, keep={"best": 3})
    assert SelectJudge(model=ref, keep=5, keep_score=False).writes() == []
    assert not SelectJudge(model=ref, keep=5).rowwise
    assert SelectJudge(model=ref, keep={"min": 5}).rowwise
