"""Two teams, one S3 team cache: what team A paid a model for, team B gets for free.

Team A builds a recipe with a model step (`select.judge` through the OpenAI-compatible HTTP
backend, against the fake server on loopback) and pushes its results to moto's S3 server on
loopback. Team B, in another folder with an empty local cache, has its own recipe that reaches
the same nodes (same data, same judge) and goes on from there: its `dcc plan` shows those
nodes as remote hits, and its build makes zero model calls, both in `--json` and as counted
by the server. Team C's source has one more row, so its nodes have other keys: the row memo
shared through the team cache still answers all but the new row (one model call). The API
key is only ever in the environment: never in the team cache.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_openai import FakeOpenAI

pytest.importorskip("s3fs")
pytest.importorskip("moto.server")

from dcc.testing.loopback_s3 import LoopbackS3, loopback_s3  # noqa: E402

KEY = "sk-team-0123456789abcdef"
ROWS = [{"question": f"What is {i} plus {i}?", "answer": f"It is {2 * i}."} for i in range(8)]
MORE = [{"question": "What is 10 plus 10?", "answer": "It is 20."}]


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI(api_key=KEY).start()

    def reply(body: dict[str, Any], index: int) -> str:  # even questions are good ones
        n = int(re.search(r"What is (\d+) plus", body["messages"][-1]["content"]).group(1))
        return "Score: 9/10" if n % 2 == 0 else "Score: 2/10"

    fake.reply = reply
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def s3() -> Iterator[LoopbackS3]:
    with loopback_s3() as s:
        yield s


def recipe_a(server: FakeOpenAI) -> str:
    return f"""recipe team_a
param judge = "{server.ref()}"
rows = load.jsonl("data/rows.jsonl")
good = rows | select.judge(model=judge, fields=["question", "answer"], min_score=7)
export good to "out/good.jsonl"
"""


def recipe_b(server: FakeOpenAI) -> str:
    """Another team's recipe: the same judged rows, then a step of its own."""
    return f"""recipe team_b
param judge = "{server.ref()}"
questions = load.jsonl("data/rows.jsonl")
judged = questions | select.judge(model=judge, fields=["question", "answer"], min_score=7)
tidy = judged | rewrite.normalize(fields=["answer"])
export tidy to "out/tidy.parquet"
"""


def nodes(stdout: str) -> dict[str, dict[str, Any]]:
    return {n["name"]: n for n in json.loads(stdout)["nodes"]}


def test_team_b_reuses_team_a_model_results_with_zero_model_calls(
        server: FakeOpenAI, s3: LoopbackS3, recipe_dir: Callable[..., Path],
        run_cli: Callable[..., tuple[int, str, str]]) -> None:
    root = recipe_dir({"team_a/a.recipe": recipe_a(server), "team_a/data/rows.jsonl": ROWS,
                       "team_b/b.recipe": recipe_b(server), "team_b/data/rows.jsonl": ROWS})
    team_a, team_b = root / "team_a", root / "team_b"
    url = s3.url("team")
    env_a = {**s3.env(), "OPENAI_API_KEY": KEY}
    env_b = {**s3.env(), "OPENAI_API_KEY": KEY}

    code, out, err = run_cli("build", "a.recipe", "--json", cwd=team_a, env=env_a)
    assert code == 0, err
    assert nodes(out)["good"]["model_calls"] == len(ROWS)
    code, _, err = run_cli("cache", "push", "a.recipe", "--remote-cache", url, cwd=team_a,
                           env=env_a)
    assert code == 0, err
    asked = len(server.posts())
    assert asked == len(ROWS)

    code, out, err = run_cli("plan", "b.recipe", "--json", "--remote-cache", url,
                             cwd=team_b, env=env_b)
    assert code == 0, err
    planned = nodes(out)
    assert (planned["questions"]["status"], planned["judged"]["status"]) == \
        ("remote-hit", "remote-hit")
    assert planned["tidy"]["status"] == "would-run"

    code, out, err = run_cli("build", "b.recipe", "--json", "--remote-cache", url,
                             cwd=team_b, env=env_b)
    assert code == 0, err
    built = nodes(out)
    assert built["judged"]["status"] == "remote-hit" and built["tidy"]["status"] == "ran"
    assert sum(n.get("model_calls", 0) for n in built.values()) == 0
    assert len(server.posts()) == asked  # the server saw no request from team B
    import polars as pl

    tidy = pl.read_parquet(team_b / "out/tidy.parquet")
    good = pl.read_ndjson(team_a / "out/good.jsonl")
    assert tidy["question"].to_list() == good["question"].to_list() == \
        [r["question"] for i, r in enumerate(ROWS) if i % 2 == 0]

    code, out, err = run_cli("plan", "b.recipe", "--remote-cache", url, cwd=team_b, env=env_b)
    assert code == 0 and "remote-hit" not in out  # now all local ("cached")

    # Team C's source has one more row: its judge node has another key, yet the row memo
    # that team A pushed answers every row but the new one.
    team_c = recipe_dir({"team_c/b.recipe": recipe_b(server),
                         "team_c/data/rows.jsonl": ROWS + MORE}) / "team_c"
    code, out, err = run_cli("build", "b.recipe", "--json", "--remote-cache", url,
                             cwd=team_c, env=env_b)
    assert code == 0, err
    built = nodes(out)
    assert built["judged"]["status"] == "ran" and built["judged"]["model_calls"] == 1
    assert json.loads(out)["remote"]["memo_down"] >= len(ROWS)
    assert len(server.posts()) == asked + 1
    assert pl.read_parquet(team_c / "out/tidy.parquet").height == len(ROWS) // 2 + 1
    for path in s3.fs.find(f"{s3.bucket}/team"):  # the key stayed in the environment
        assert KEY.encode() not in s3.fs.cat_file(path), path
