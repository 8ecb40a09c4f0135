"""`dcc build` of distill.respond and distill.cot through the HTTP backend, end to end.

The `dcc` command runs in a child process against FakeOpenAI on loopback, on the first GSM8K
training problems. The fake teacher's replies depend on the request's seed, so the exact
outputs show which sample or attempt each row kept; the fake judge prefers long answers.
Rebuilds cost no model calls; a renamed column re-runs a node from the request memo alone;
raising `n` asks only the new samples.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fake_openai import FakeOpenAI

from dcc.ops.distill import COT_INSTRUCTION
from dcc.ops.teacher import sample_seed

ENV = {"DCC_OPENAI_BACKOFF_BASE": "0", "OPENAI_API_KEY": "", "DCC_OPENAI_API_KEY": ""}
SEEDS = [sample_seed(0, k) for k in range(3)]


def recipe(server: FakeOpenAI, respond: str = "n=2", cot: str = "") -> str:
    return f"""recipe distilled
param teacher = "{server.ref('m')}"
param critic = "{server.ref('m2')}"
rows = load.jsonl("data/gsm8k.jsonl")
answered = rows | distill.respond(model=teacher, field="question", {respond}, judge=critic,
                                  max_tokens=64)
solved = rows | distill.cot(model=teacher, answer="answer", attempts=3{cot})
export answered to "out/answered.jsonl"
export solved to "out/solved.jsonl"
"""


@pytest.fixture
def rows(gsm8k: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"question": r["question"], "answer": r["answer"], "_parent": f"g{i}"}
            for i, r in enumerate(gsm8k[:6])]


def teacher_and_judge(rows: list[dict[str, Any]]) -> Callable[[dict[str, Any], int], str]:
    finals = {r["question"]: r["answer"].splitlines()[-1][5:] for r in rows}

    def reply(body: dict[str, Any], index: int) -> str:
        text = body["messages"][-1]["content"]
        attempt = SEEDS.index(body["seed"]) if body["seed"] in SEEDS else -1
        if body["model"] == "m2":  # the judge
            return "Score: 8/10" if "[response]\nlong" in text else "Score: 3/10"
        if text.startswith(COT_INSTRUCTION):  # row i reaches its answer at attempt i % 4
            question = text.split("\n\n", 1)[1]
            i = [r["question"] for r in rows].index(question)
            got = finals[question] if attempt == i % 4 else "0"
            return f"Let me think ({attempt}).\n#### {got}\nQuestion: more"
        return f"{'short' if attempt == 0 else 'long'} answer {attempt}"

    return reply


def nodes(stdout: str) -> dict[str, dict[str, Any]]:
    return {n["name"]: n for n in json.loads(stdout)["nodes"]}


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_respond_and_cot_build_exactly_then_rebuild_from_the_caches(
        fake: FakeOpenAI, rows: list[dict[str, Any]], recipe_dir: Callable[..., Path],
        run_cli: Callable[..., tuple[int, str, str]]) -> None:
    fake.reply = teacher_and_judge(rows)
    folder = recipe_dir({"r.recipe": recipe(fake), "data/gsm8k.jsonl": rows})

    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder, env=ENV)
    assert code == 0, err
    first = nodes(out)
    assert (first["answered"]["rows_out"], first["answered"]["model_calls"]) == (6, 24)
    answered = read(folder / "out/answered.jsonl")
    assert [(r["_parent"], r["output"], r["_sample"], r["_judge"]) for r in answered] == \
        [(f"g{i}", "long answer 1", 1, 8.0) for i in range(6)]
    assert all(r["question"] == rows[i]["question"] for i, r in enumerate(answered))

    assert (first["solved"]["rows_in"], first["solved"]["rows_out"]) == (6, 5)
    assert first["solved"]["model_calls"] == 6 + 4 + 2
    assert first["solved"]["stats"] == {"wrong_answer": 7, "accepted": 5, "no_rationale": 1}
    solved = read(folder / "out/solved.jsonl")
    finals = [r["answer"].splitlines()[-1][5:].replace(",", "") for r in rows]
    assert [(r["_parent"], r["_answer"]) for r in solved] == \
        [(f"g{i}", finals[i]) for i in (0, 1, 2, 4, 5)]
    assert solved[2]["rationale"] == f"Let me think (2).\n#### {finals[2]}"  # cut after ####
    teacher_posts = [p for p in fake.posts() if p["body"]["model"] == "m"]
    assert {p["body"]["seed"] for p in teacher_posts} == set(SEEDS)
    assert all(p["body"]["n"] == 1 for p in teacher_posts)

    sent = len(fake.posts())
    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder, env=ENV)
    assert code == 0, err
    again = nodes(out)
    for name in ("answered", "solved"):
        assert (again[name]["status"], again[name]["model_calls"]) == ("cached", 0)
    assert len(fake.posts()) == sent

    # a new output column re-runs the node, but every request is in the memo
    (folder / "r.recipe").write_text(recipe(fake, cot=', into="reasoning"'), encoding="utf-8")
    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder, env=ENV)
    assert code == 0, err
    renamed = nodes(out)["solved"]
    assert (renamed["status"], renamed["model_calls"], renamed["stats"]["memo_hits"]) == \
        ("ran", 0, 12)
    assert [r["reasoning"] for r in read(folder / "out/solved.jsonl")] == \
        [r["rationale"] for r in solved]

    # a third sample: only it is asked (and judged); samples 0 and 1 come from the memo
    (folder / "r.recipe").write_text(recipe(fake, respond="n=3"), encoding="utf-8")
    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder, env=ENV)
    assert code == 0, err
    more = nodes(out)["answered"]
    assert (more["status"], more["model_calls"], more["stats"]["memo_hits"]) == ("ran", 12, 24)
    assert [r["output"] for r in read(folder / "out/answered.jsonl")] == ["long answer 1"] * 6
    assert len(fake.posts()) == sent + 12


def test_compress_through_an_endpoint_that_echoes_prompt_logprobs(
        fake: FakeOpenAI, recipe_dir: Callable[..., Path],
        run_cli: Callable[..., tuple[int, str, str]]) -> None:
    # FakeOpenAI gives the i-th whitespace token of a prompt the log-probability -0.5 i (and
    # the first none), so a word's self-information grows with its position: the last words
    # are the most informative, and the first word, with no score, ranks first.
    rows = [{"text": "Weng earns $12 an hour for babysitting.", "_parent": "w"},
            {"text": "Betty has only half of the money.\nHer parents give her $15.",
             "_parent": "b"}]
    text = f"""recipe squeezed
rows = load.jsonl("data/rows.jsonl")
short = rows | distill.compress(field="text", model="{fake.ref()}", ratio=0.5)
export short to "out/short.jsonl"
"""
    folder = recipe_dir({"r.recipe": text, "data/rows.jsonl": rows})
    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder, env=ENV)
    assert code == 0, err
    assert [(r["_parent"], r["text"], r["_compress_ratio"])
            for r in read(folder / "out/short.jsonl")] == [
        ("w", "Weng $12 babysitting.", 0.4286),
        ("b", "Betty\nHer parents give her $15.", 0.5)]
    node = nodes(out)["short"]
    assert (node["model_calls"], node["stats"]) == (2, {"words_scored": 19})
    assert len(fake.posts("/v1/completions")) == 19  # one echo request per word
    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder, env=ENV)
    assert code == 0 and nodes(out)["short"]["status"] == "cached"
    assert len(fake.posts("/v1/completions")) == 19


def test_an_endpoint_that_cannot_score_fails_compress_clearly(
        fake: FakeOpenAI, recipe_dir: Callable[..., Path],
        run_cli: Callable[..., tuple[int, str, str]]) -> None:
    fake.score_mode = "reject"
    text = f"""recipe squeezed
rows = load.jsonl("data/rows.jsonl")
short = rows | distill.compress(field="text", model="{fake.ref()}")
export short to "out/short.jsonl"
"""
    folder = recipe_dir({"r.recipe": text, "data/rows.jsonl": [{"text": "a b c d"}]})
    code, _, err = run_cli("build", "r.recipe", cwd=folder, env=ENV)
    assert code == 3 and "Traceback" not in err
    assert "'short'" in err and "this endpoint cannot score" in err
