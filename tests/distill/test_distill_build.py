"""`dcc build` of every distill operator on the tiny local model (and the packaged MiniLM), as a
user runs it: a recipe folder with the model beside it, a child process, `--json` out.

The tiny model writes nonsense, so this checks structure and bookkeeping, not quality: each
operator's rows and columns, lineage columns passed through, answers that match what the
kept rationale states, and a rebuild that makes no model call at all.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dcc.ops.answers import final_answer, normalize_answer

RECIPE = """\
recipe tiny_distill

rows = load.jsonl("data/gsm8k.jsonl")
answered = rows | distill.respond(model="./tiny", template="{{ question }}\\n", n=2,
                                  max_tokens=24, seed=3)
solved = rows | distill.cot(model="./tiny", template="{{ question }}\\n", attempts=3,
                            max_tokens=96)
short = rows | distill.compress(field="question", model="./tiny", ratio=0.5, into="short")
core = rows | distill.coreset(budget=2, field="question")

export answered to "out/answered.jsonl"
export solved to "out/solved.jsonl"
export short to "out/short.jsonl"
export core to "out/core.jsonl"
"""

ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "DCC_DEVICE": "cpu"}


def nodes(stdout: str) -> dict[str, dict[str, Any]]:
    return {n["name"]: n for n in json.loads(stdout)["nodes"]}


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_every_distill_operator_builds_then_rebuilds_without_model_calls(
        recipe_dir: Callable[..., Path], run_cli: Callable[..., tuple[int, str, str]],
        tiny_dir: Path, gsm8k: list[dict[str, Any]]) -> None:
    rows = [{"question": r["question"], "_parent": i} for i, r in enumerate(gsm8k[:4])]
    folder = recipe_dir({"r.recipe": RECIPE, "data/gsm8k.jsonl": rows})
    shutil.copytree(tiny_dir, folder / "tiny")

    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder, env=ENV, timeout=240)
    assert code == 0, err
    first = nodes(out)

    answered = read(folder / "out/answered.jsonl")
    assert first["answered"]["model_calls"] == 8
    assert first["answered"]["rows_out"] == len(answered) <= 8
    assert all(set(r) == {"question", "_parent", "output", "_sample"} for r in answered)
    assert all(r["output"] and r["output"] == r["output"].strip() for r in answered)
    assert [(r["_parent"], r["_sample"]) for r in answered] == sorted(
        (r["_parent"], r["_sample"]) for r in answered)

    solved = read(folder / "out/solved.jsonl")
    stats = first["solved"]["stats"]
    assert stats.get("accepted", 0) == len(solved) == 4 - stats.get("no_rationale", 0)
    assert 4 <= first["solved"]["model_calls"] <= 12 and solved  # some rationale states one
    for r in solved:
        stated = final_answer(r["rationale"])
        assert stated is not None and normalize_answer(stated[0]) == r["_answer"]
        assert r["question"] == rows[r["_parent"]]["question"]

    short = read(folder / "out/short.jsonl")
    assert [r["_parent"] for r in short] == [0, 1, 2, 3]
    for r in short:
        assert len(r["short"].split()) < len(r["question"].split())
        assert 0 < r["_compress_ratio"] <= 1
    assert first["short"]["model_calls"] == 4

    core = read(folder / "out/core.jsonl")
    assert len(core) == 2 and all(r in rows for r in core)
    assert first["core"]["model_calls"] == 4

    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder, env=ENV, timeout=240)
    assert code == 0, err
    for name, node in nodes(out).items():
        assert node["status"] == "cached", name
        assert node.get("model_calls", 0) == 0, name


def test_check_names_a_missing_prompt_column(recipe_dir: Callable[..., Path],
                                             run_cli: Callable[..., tuple[int, str, str]],
                                             gsm8k: list[dict[str, Any]]) -> None:
    text = """recipe bad
rows = load.jsonl("data/gsm8k.jsonl")
out = rows | distill.respond(model="openai:http://127.0.0.1:9/v1#m")
export out to "out.jsonl"
"""
    folder = recipe_dir({"r.recipe": text, "data/gsm8k.jsonl": gsm8k[:2]})
    code, _, err = run_cli("check", "r.recipe", cwd=folder)
    assert code == 1
    assert "r.recipe:3:" in err and "reads column 'instruction'" in err
    assert "Traceback" not in err
