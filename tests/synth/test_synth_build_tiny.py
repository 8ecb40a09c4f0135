"""`dcc build` with the synthesize.* generators on the tiny local model, as a user runs it.

The tiny model writes near-gibberish, so the checks are structural: the commands succeed,
outputs have the promised columns and bounds, and a rebuild costs zero model calls. Its copy
beside the recipe gets a ChatML chat template, so magpie takes its pre-query from the
tokenizer, as with a real chat model.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dcc.ops.synth_evol import EVOLUTIONS

CHATML = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
          "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")

RECIPE = """\
recipe tiny_synth
seeds = load.jsonl("data/seeds.jsonl")
new = seeds | synthesize.self_instruct(model="./tiny", n=6, seed=1, batch=4, max_requests=8,
                                      min_words=1, max_tokens=40, temperature=1.0, top_p=1.0)
harder = seeds | synthesize.evol_instruct(model="./tiny", seed=2, max_tokens=24)
back = seeds | synthesize.backtranslate(model="./tiny", max_tokens=16)
mag = seeds | synthesize.magpie(model="./tiny", n=5, seed=3, max_tokens=16, respond=true,
                                response_max_tokens=16)
export new to "out/new.jsonl"
export harder to "out/harder.jsonl"
export back to "out/back.jsonl"
export mag to "out/mag.jsonl"
"""

# one thread: tiny matrices gain nothing from more, and lose much on a busy machine
ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "DCC_DEVICE": "cpu",
       "OMP_NUM_THREADS": "1"}


def read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_generators_on_the_tiny_model_build_and_rebuild_free(
        tiny_dir: Path, seed_tasks: list[dict[str, Any]], recipe_dir: Callable[..., Path],
        run_cli: Callable[..., tuple[int, str, str]]) -> None:
    seeds = [{"instruction": t["instruction"], "output": t["instances"][0]["output"],
              "name": t["name"]} for t in seed_tasks[:12]]
    folder = recipe_dir({"r.recipe": RECIPE, "data/seeds.jsonl": seeds})
    shutil.copytree(tiny_dir, folder / "tiny")
    cfg_path = folder / "tiny" / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["chat_template"] = CHATML
    cfg_path.write_text(json.dumps(cfg))

    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder, env=ENV, timeout=240)
    assert code == 0, err
    first = {n["name"]: n for n in json.loads(out)["nodes"]}
    for name in ("new", "harder", "back", "mag"):
        assert first[name]["status"] == "ran" and first[name]["model_calls"] > 0, name

    new = read(folder / "out/new.jsonl")
    assert len(new) <= 6 and all(set(r) == {"instruction"} for r in new)
    assert first["new"]["model_calls"] <= 8
    assert all(r["instruction"] and r["instruction"][0].isascii() for r in new)

    harder = read(folder / "out/harder.jsonl")
    assert len(harder) <= len(seeds) and first["harder"]["model_calls"] == len(seeds)
    for row in harder:
        assert row["_evol"] in EVOLUTIONS and row["output"] is None
        assert row["name"] in {s["name"] for s in seeds}
    dropped = sum(v for k, v in first["harder"]["stats"].items()
                  if k not in ("evolved", "memo_hits"))
    assert len(harder) + dropped == len(seeds)

    back = read(folder / "out/back.jsonl")
    by_name = {s["name"]: s for s in seeds}
    for row in back:
        src = by_name[row["name"]]
        assert row["output"] == src["output"] and row["_orig_instruction"] == src["instruction"]
        assert isinstance(row["instruction"], str) and row["instruction"]

    mag = read(folder / "out/mag.jsonl")
    assert len(mag) <= 5 and all(set(r) == {"instruction", "output"} for r in mag)
    assert len({r["instruction"] for r in mag}) == len(mag)  # no duplicates

    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder, env=ENV, timeout=240)
    assert code == 0, err
    again = {n["name"]: n for n in json.loads(out)["nodes"]}
    for name in ("new", "harder", "back", "mag"):
        assert (again[name]["status"], again[name]["model_calls"]) == ("cached", 0), name
    assert read(folder / "out/mag.jsonl") == mag and read(folder / "out/new.jsonl") == new

    # a changed filter re-runs its node but asks the model nothing (the request memo)
    (folder / "r.recipe").write_text(RECIPE.replace("max_tokens=24)", "max_tokens=24, "
                                                    "max_similarity=0.9)"))
    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder, env=ENV, timeout=240)
    assert code == 0, err
    node = next(n for n in json.loads(out)["nodes"] if n["name"] == "harder")
    assert node["status"] == "ran" and node["model_calls"] == 0
