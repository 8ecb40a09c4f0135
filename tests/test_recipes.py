"""The example recipes build offline, and a second build runs nothing and calls no model.

The quickstart needs only the packaged MiniLM; llm_steps.recipe runs every generating verb on
the tiny local test model (near-gibberish text, so few rows pass its checks: what is asserted
is that each step runs, is cached, and costs zero model calls the second time).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

RECIPES = Path(__file__).resolve().parents[1] / "recipes"


def build(folder: Path, recipe: str, *args: str) -> dict[str, Any]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("DCC_CACHE_DIR", None)
    proc = subprocess.run([sys.executable, "-m", "dcc", "build", recipe, "--json", *args],
                          cwd=folder, capture_output=True, text=True, timeout=600, env=env,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture
def recipes(tmp_path: Path) -> Path:
    folder = tmp_path / "recipes"
    shutil.copytree(RECIPES, folder, ignore=shutil.ignore_patterns(".dcc", "out", "models"))
    return folder


def test_quickstart_builds_then_rebuilds_for_free(recipes: Path) -> None:
    first = build(recipes, "quickstart.recipe")
    nodes = {n["name"]: n for n in first["nodes"]}
    assert nodes["core"]["rows_out"] == 100
    assert nodes["grown"]["rows_out"] > nodes["prompts"]["rows_out"] == 8
    assert nodes["core"].get("model_calls", 0) == 0  # the dedup's embeddings were reused
    rows = [json.loads(x) for x in (recipes / "out/prompts.jsonl").read_text().splitlines()]
    assert {r["_round"] for r in rows} == {0, 1, 2}
    again = build(recipes, "quickstart.recipe")
    assert {n["status"] for n in again["nodes"]} == {"cached"}


def test_llm_steps_run_on_a_tiny_local_model(recipes: Path) -> None:
    from dcc.testing.tiny_model import shared_data_dir, tiny_model

    data = shared_data_dir()
    if data is None:
        pytest.skip("the shared data (for the tiny model) is not here")
    shutil.copytree(tiny_model(data), recipes / "models" / "tiny")
    sets = ["--set", "max_tokens=32", "--set", "new_instructions=4", "--set",
            "evolve_seeds=3"]
    first = build(recipes, "llm_steps.recipe", *sets)
    ops = {n["op"] for n in first["nodes"] if n["status"] == "ran"}
    assert {"synthesize.self_instruct", "synthesize.evol_instruct", "distill.respond",
            "select.judge", "distill.cot", "distill.coreset", "distill.compress"} <= ops
    assert sum(n.get("model_calls", 0) for n in first["nodes"]) > 0
    for name in ("out/self_instruct.jsonl", "out/evolved.jsonl", "out/gsm8k_cot.jsonl",
                 "out/gsm8k_compact.jsonl"):
        assert (recipes / name).is_file()
    again = build(recipes, "llm_steps.recipe", *sets)
    assert {n["status"] for n in again["nodes"]} == {"cached"}
    assert sum(n.get("model_calls", 0) for n in again["nodes"]) == 0
