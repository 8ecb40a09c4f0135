"""`dcc build` of a recipe with every synthesize.* operator, through the HTTP backend on loopback.

The fake server's replies are scripted from the request's content, so the outputs are exact.
A rebuild is served from the cache without a request; a changed filter threshold re-runs its
node from the request memo, again without a request.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fake_openai import FakeOpenAI

from dcc.ops.synth_evol import EvolInstruct
from dcc.ops.textgen import derive_seed

SEEDS = [
    {"id": 1, "instruction": "Give three tips for staying healthy.", "output": "Eat well."},
    {"id": 2, "instruction": "Translate the sentence into German.", "output": "Hallo."},
    {"id": 3, "instruction": "Summarize the plot of a famous novel.", "output": "A whale."},
]
NEW_A = "Describe the water cycle for a ten year old student."
NEW_B = "List five creative uses for an empty glass jar."
NEW_C = "Compose a short limerick about a forgetful robot chef."


def reply(body: dict[str, Any], index: int) -> str:
    if "prompt" in body:  # raw completions: self-instruct and magpie
        prompt = body["prompt"]
        if prompt.startswith("Come up with a series of tasks:"):
            if NEW_A in prompt:
                return f" Give three tips for staying healthy!\n5. {NEW_C}\n6. Unused item here."
            return (f" {NEW_A}\n5. Draw a map of your town.\n6. Go.\n7. {NEW_B}\n"
                    "8. Give three tips for staying healthy.")
        assert prompt == "<|user|>\n"
        return [f"  How do volcanoes form, part {body['seed'] % 1000}? <|end|> junk",
                "<|end|>"][index % 2]
    text = body["messages"][-1]["content"]
    if "#The Given Prompt#:\n" in text:
        given = text.split("#The Given Prompt#:\n")[1].split("\n\n#")[0]
        return f"#Rewritten Prompt#:\n{given[:-1]}, and explain why in one sentence."
    if "#Given Prompt#:\n" in text:
        return "Sorry, I cannot do that."
    if "Response:\n" in text:
        response = text.split("Response:\n")[1].split("\n\nInstruction:")[0]
        return f"Instruction: What would you say to get '{response}'?"
    return f"Answer: {text}"


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().start()
    fake.reply = reply
    try:
        yield fake
    finally:
        fake.stop()


def recipe(server: FakeOpenAI, max_rouge: float = 0.7) -> str:
    return f"""recipe synth
param m = "{server.ref()}"
seeds = load.jsonl("data/seeds.jsonl")
new = seeds | synthesize.self_instruct(model=m, n=3, seed=1, batch=1, max_requests=4,
                                      prompt_tasks=4, max_rouge={max_rouge})
harder = seeds | synthesize.evol_instruct(model=m, seed=2, evolutions=["constraints", "breadth"])
back = seeds | synthesize.backtranslate(model=m)
mag = seeds | synthesize.magpie(model=m, n=2, seed=3, pre_query="<|user|>\\n",
                                post_query="<|end|>", respond=true)
export concat(seeds, new) to "out/pool.jsonl"
export harder to "out/harder.jsonl"
export back to "out/back.jsonl"
export mag to "out/mag.jsonl"
"""


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def nodes(stdout: str) -> dict[str, dict[str, Any]]:
    return {n["name"]: n for n in json.loads(stdout)["nodes"]}


ENV = {"DCC_OPENAI_BACKOFF_BASE": "0"}


def test_every_generator_builds_exactly_and_rebuilds_free(
        server: FakeOpenAI, recipe_dir: Callable[..., Path],
        run_cli: Callable[..., tuple[int, str, str]]) -> None:
    folder = recipe_dir({"r.recipe": recipe(server), "data/seeds.jsonl": SEEDS})
    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder, env=ENV)
    assert code == 0, err
    first = nodes(out)

    pool = read(folder / "out/pool.jsonl")
    assert [r["instruction"] for r in pool[3:]] == [NEW_A, NEW_B, NEW_C]
    assert all(r["id"] is None and r["output"] is None for r in pool[3:])
    stats = first["new"]["stats"]
    assert (stats["banned_word"], stats["too_short"], stats["similar"]) == (1, 1, 2)
    assert (stats["candidates"], stats["kept"]) == (7, 3)  # the item after the third is unread
    assert first["new"]["model_calls"] == first["new"]["stats"]["requests"] == 2

    methods = [EvolInstruct(model="x", seed=2, evolutions=["constraints", "breadth"])
               .choose(s["instruction"])[0] for s in SEEDS]
    harder = read(folder / "out/harder.jsonl")
    kept = [s for s, m in zip(SEEDS, methods) if m == "constraints"]
    assert harder == [{"id": s["id"], "instruction": s["instruction"][:-1] +
                       ", and explain why in one sentence.", "output": None,
                       "_evol": "constraints"} for s in kept]
    assert first["harder"]["stats"].get("refused", 0) == methods.count("breadth")

    assert read(folder / "out/back.jsonl") == [
        {**s, "instruction": f"What would you say to get '{s['output']}'?",
         "_orig_instruction": s["instruction"]} for s in SEEDS]

    mag = read(folder / "out/mag.jsonl")
    assert [r["instruction"] for r in mag] == [  # round 0 made one, round 1 the other
        f"How do volcanoes form, part {derive_seed(3, 'magpie.round', r) % 1000}?"
        for r in (0, 1)]
    assert [r["output"] for r in mag] == [f"Answer: {r['instruction']}" for r in mag]
    assert first["mag"]["stats"]["empty"] == 1

    posts = len(server.posts())
    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder, env=ENV)
    assert code == 0, err
    again = nodes(out)
    for name in ("new", "harder", "back", "mag"):
        assert (again[name]["status"], again[name]["model_calls"]) == ("cached", 0)
    assert len(server.posts()) == posts

    (folder / "r.recipe").write_text(recipe(server, max_rouge=0.75), encoding="utf-8")
    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder, env=ENV)
    assert code == 0, err
    changed = nodes(out)["new"]
    assert (changed["status"], changed["model_calls"]) == ("ran", 0)
    assert changed["stats"]["memo_hits"] == 2 and len(server.posts()) == posts


def test_magpie_without_a_pre_query_on_an_endpoint_names_the_node(
        server: FakeOpenAI, recipe_dir: Callable[..., Path],
        run_cli: Callable[..., tuple[int, str, str]]) -> None:
    text = (f'recipe r\nseeds = load.jsonl("data/seeds.jsonl")\n'
            f'mag = seeds | synthesize.magpie(model="{server.ref()}", n=2)\n'
            f'export mag to "out/mag.jsonl"\n')
    folder = recipe_dir({"r.recipe": text, "data/seeds.jsonl": SEEDS})
    code, _, err = run_cli("build", "r.recipe", cwd=folder, env=ENV)
    assert code == 3
    assert "mag" in err and "pre_query" in err and "Traceback" not in err
