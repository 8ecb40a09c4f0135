"""`dcc build` of a recipe that judges real rows through the HTTP backend, end to end.

The `dcc` command runs in a child process against the fake server on loopback; the rows are
the first GSM8K training problems from /work/shared/data. A rebuild must cost no model calls,
a new row exactly one, and the API key must never land in the cache or the outputs.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_openai import FakeOpenAI

DATA = Path("/work/shared/data/gsm8k_train.jsonl")
KEY = "sk-e2e-0123456789abcdef"
VERDICTS = ["Score: 8/10\nClear and correct.", "**9**", "Rating: 2 out of 5",
            "I cannot rate this.", "Score: 7", "3/10", "Score: 10/10"]


@pytest.fixture
def rows() -> list[dict[str, Any]]:
    if not DATA.is_file():
        pytest.skip("the shared data folder /work/shared/data is not here")
    with DATA.open(encoding="utf-8") as f:
        return [json.loads(next(f)) for _ in range(len(VERDICTS))]


@pytest.fixture
def server(rows: list[dict[str, Any]]) -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI(api_key=KEY).start()

    def reply(body: dict[str, Any], index: int) -> str:
        prompt = body["messages"][-1]["content"]
        return next(v for r, v in zip(rows, VERDICTS) if r["question"] in prompt)

    fake.reply = reply
    try:
        yield fake
    finally:
        fake.stop()


def recipe(server: FakeOpenAI) -> str:
    return f"""recipe judged
param judge = "{server.ref()}"
rows = load.jsonl("data/rows.jsonl")
good = rows | select.judge(model=judge, fields=["question", "answer"], min_score=7)
export good to "out/good.jsonl"
"""


def good_node(stdout: str) -> dict[str, Any]:
    return next(n for n in json.loads(stdout)["nodes"] if n["name"] == "good")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


ENV = {"OPENAI_API_KEY": KEY, "DCC_OPENAI_BACKOFF_BASE": "0"}


def test_judge_build_then_rebuild_costs_no_model_calls(
        server: FakeOpenAI, rows: list[dict[str, Any]],
        recipe_dir: Callable[..., Path], run_cli: Callable[..., tuple[int, str, str]]) -> None:
    folder = recipe_dir({"r.recipe": recipe(server), "data/rows.jsonl": rows[:6]})

    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder, env=ENV)
    assert code == 0, err
    node = good_node(out)
    assert (node["status"], node["rows_in"], node["rows_out"], node["model_calls"]) == \
        ("ran", 6, 3, 6)
    assert node["stats"]["unparsed"] == 1
    kept = read_jsonl(folder / "out/good.jsonl")
    assert [r["question"] for r in kept] == [rows[i]["question"] for i in (0, 1, 4)]
    assert [r["_judge"] for r in kept] == [8.0, 9.0, 7.0]
    assert len(server.posts()) == 6
    body = server.posts()[0]["body"]
    assert (body["model"], body["temperature"], body["seed"]) == ("m", 0.0, 0)

    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder, env=ENV)
    assert code == 0, err
    node = good_node(out)
    assert (node["status"], node["model_calls"]) == ("cached", 0)
    assert len(server.posts()) == 6  # nothing was asked again

    with (folder / "data/rows.jsonl").open("a", encoding="utf-8") as f:
        f.write(json.dumps(rows[6]) + "\n")
    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder, env=ENV)
    assert code == 0, err
    node = good_node(out)
    assert (node["status"], node["rows_in"], node["rows_out"], node["model_calls"]) == \
        ("ran", 7, 4, 1)  # the row memo: only the new row goes to the model
    assert len(server.posts()) == 7
    assert [r["_judge"] for r in read_jsonl(folder / "out/good.jsonl")] == \
        [8.0, 9.0, 7.0, 10.0]

    for path in folder.rglob("*"):  # the key is in the environment only
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


def test_a_changed_setting_asks_again(
        server: FakeOpenAI, rows: list[dict[str, Any]],
        recipe_dir: Callable[..., Path], run_cli: Callable[..., tuple[int, str, str]]) -> None:
    folder = recipe_dir({"r.recipe": recipe(server), "data/rows.jsonl": rows[:2]})
    assert run_cli("build", "r.recipe", cwd=folder, env=ENV)[0] == 0
    changed = recipe(server).replace("min_score=7", "min_score=7, seed=5, temperature=0.5")
    (folder / "r.recipe").write_text(changed, encoding="utf-8")
    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder, env=ENV)
    assert code == 0, err
    assert good_node(out)["model_calls"] == 2
    assert [p["body"]["seed"] for p in server.posts()] == [0, 0, 5, 5]


def test_a_build_without_the_key_fails_clearly(
        server: FakeOpenAI, rows: list[dict[str, Any]],
        recipe_dir: Callable[..., Path], run_cli: Callable[..., tuple[int, str, str]]) -> None:
    folder = recipe_dir({"r.recipe": recipe(server), "data/rows.jsonl": rows[:2]})
    code, _, err = run_cli("build", "r.recipe", cwd=folder,
                           env={"DCC_OPENAI_BACKOFF_BASE": "0"})
    assert code == 3
    assert f"authentication failed for {server.url}" in err and "set OPENAI_API_KEY" in err
    assert "Traceback" not in err


def test_check_reports_a_bad_template_at_its_argument(
        recipe_dir: Callable[..., Path], run_cli: Callable[..., tuple[int, str, str]]) -> None:
    folder = recipe_dir({
        "r.recipe": 'rows = load.jsonl("d.jsonl")\n'
                    'j = rows | select.judge(model="openai:http://127.0.0.1:9/v1#m", '
                    'template="{{ q ")\nexport j to "o.jsonl"\n',
        "d.jsonl": [{"q": "x"}]})
    code, _, err = run_cli("check", "r.recipe", cwd=folder)
    assert code == 1
    assert "r.recipe:2:" in err and "not a valid Jinja2 template" in err and "^" in err


def test_a_new_threshold_reuses_every_reply(
        server: FakeOpenAI, rows: list[dict[str, Any]],
        recipe_dir: Callable[..., Path], run_cli: Callable[..., tuple[int, str, str]]) -> None:
    """Replies are memoized by exact request: a new min_score re-runs the node, not the
    model, and a second node asking the same questions asks nothing either."""
    folder = recipe_dir({"r.recipe": recipe(server), "data/rows.jsonl": rows[:6]})
    assert run_cli("build", "r.recipe", cwd=folder, env=ENV)[0] == 0
    assert len(server.posts()) == 6
    changed = recipe(server).replace("min_score=7", "min_score=9") + (
        'loose = rows | select.judge(model=judge, fields=["question", "answer"], '
        'min_score=2)\nexport loose to "out/loose.jsonl"\n')
    (folder / "r.recipe").write_text(changed, encoding="utf-8")
    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder, env=ENV)
    assert code == 0, err
    nodes = {n["name"]: n for n in json.loads(out)["nodes"]}
    assert (nodes["good"]["status"], nodes["good"]["rows_out"]) == ("ran", 1)
    assert nodes["good"]["model_calls"] == nodes["loose"]["model_calls"] == 0
    assert nodes["good"]["stats"]["memo_hits"] == 6
    assert len(server.posts()) == 6  # the server was asked nothing new
    assert [r["_judge"] for r in read_jsonl(folder / "out/good.jsonl")] == [9.0]
    assert [r["_judge"] for r in read_jsonl(folder / "out/loose.jsonl")] == [8.0, 9.0, 4.0,
                                                                          7.0, 3.0]
