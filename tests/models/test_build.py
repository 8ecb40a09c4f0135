"""`dcc build` of recipes with model operators, as a user runs it: real processes, real files."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

RECIPE = """\
recipe fluent

raw = load.jsonl("data/gsm8k.jsonl")
scored = raw | select.perplexity(field="answer", model="./tiny", max=1000.0)
best = scored | select.topk(by="_ppl", fraction=0.5, descending=false)

export best to "out/best.jsonl"
"""

ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "DCC_DEVICE": "cpu"}


def nodes(stdout: str) -> dict[str, dict[str, Any]]:
    return {n["name"]: n for n in json.loads(stdout)["nodes"]}


def test_build_then_rebuild_makes_no_model_calls(recipe_dir: Callable, run_cli: Callable,
                                                 tiny_dir: Path, gsm8k: list[dict]) -> None:
    rows = [{"question": r["question"], "answer": r["answer"]} for r in gsm8k[:24]]
    folder = recipe_dir({"r.recipe": RECIPE, "data/gsm8k.jsonl": rows})
    shutil.copytree(tiny_dir, folder / "tiny")

    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder, env=ENV, timeout=180)
    assert code == 0, err
    first = nodes(out)
    assert first["scored"]["status"] == "ran" and first["scored"]["model_calls"] == 24
    assert first["best"]["rows_out"] == 12
    kept = [json.loads(line) for line in (folder / "out/best.jsonl").read_text().splitlines()]
    assert len(kept) == 12 and all(isinstance(r["_ppl"], float) for r in kept)
    cutoff = max(r["_ppl"] for r in kept)
    scores = sorted(r["_ppl"] for r in kept)
    assert scores[-1] == cutoff and len({r["answer"] for r in kept}) == 12

    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder, env=ENV, timeout=180)
    assert code == 0, err
    again = nodes(out)
    assert again["scored"]["status"] == "cached" and again["scored"].get("model_calls", 0) == 0

    # two new rows and a different cut: only the new rows go to the model
    more = rows + [{"question": r["question"], "answer": r["answer"]} for r in gsm8k[24:26]]
    (folder / "data/gsm8k.jsonl").write_text("".join(json.dumps(r) + "\n" for r in more))
    (folder / "r.recipe").write_text(RECIPE.replace("fraction=0.5", "fraction=0.25"))
    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder, env=ENV, timeout=180)
    assert code == 0, err
    grown = nodes(out)
    assert grown["scored"]["status"] == "ran" and grown["scored"]["model_calls"] == 2
    assert grown["best"]["rows_out"] == 6  # floor(0.25 x 26)
    assert max(json.loads(line)["_ppl"] for line in (folder / "out/best.jsonl").read_text()
               .splitlines()) <= cutoff  # a stricter cut of (almost) the same rows

    # different weights (here: an edited config file) are a different model: every row re-runs
    cfg = folder / "tiny" / "generation_config.json"
    cfg.write_text(cfg.read_text().rstrip().rstrip("}") + ', "dcc_note": "edited"}\n')
    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder, env=ENV, timeout=180)
    assert code == 0, err
    assert nodes(out)["scored"]["status"] == "ran" and nodes(out)["scored"]["model_calls"] == 26


def test_a_missing_model_folder_is_a_clear_error(recipe_dir: Callable, run_cli: Callable,
                                                 gsm8k: list[dict]) -> None:
    folder = recipe_dir({"r.recipe": RECIPE, "data/gsm8k.jsonl": gsm8k[:2]})
    code, _, err = run_cli("build", "r.recipe", "--json", cwd=folder, env=ENV, timeout=120)
    assert code == 3, err
    assert "tiny" in err and "Traceback" not in err
