"""Compile-time checks of recipes that use synthesize.*: `dcc check` reports them all, with
positions, before any model is loaded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

RECIPE = """\
recipe bad
seeds = load.jsonl("data/seeds.jsonl")
a = seeds | synthesize.self_instruct(n=5)
b = seeds | synthesize.self_instruct(model="./m", n=5, field="prompt")
c = seeds | synthesize.evol_instruct(model="./m", evolutions=["deepen", "harder"])
d = seeds | synthesize.magpie(model="./m", system="x", system_field="instruction")
e = synthesize.self_instruct(model="./m", n=2)
export concat(a, b, c, d, e) to "out/x.jsonl"
"""


def test_every_mistake_is_reported_at_its_place(recipe_dir: Callable[..., Path],
                                                run_cli: Callable[..., tuple[int, str, str]]
                                                ) -> None:
    folder = recipe_dir({"r.recipe": RECIPE,
                         "data/seeds.jsonl": [{"instruction": "Say hi.", "output": "Hi."}]})
    code, out, err = run_cli("check", "r.recipe", cwd=folder)
    assert code == 1 and "Traceback" not in err
    assert "r.recipe:3:" in err and "missing argument 'model'" in err
    assert "r.recipe:4:" in err and "reads column 'prompt', which its input does not have" in err
    assert "r.recipe:5:" in err and "unknown evolution 'harder'" in err
    assert "r.recipe:6:" in err and "give 'system' or 'system_field', not both" in err
    assert "r.recipe:7:" in err and "needs an input dataset" in err


def test_a_good_recipe_checks_without_loading_a_model(recipe_dir: Callable[..., Path],
                                                      run_cli: Callable[..., tuple[int, str,
                                                                                  str]]) -> None:
    text = ('recipe ok\nseeds = load.jsonl("data/seeds.jsonl")\n'
            'new = seeds | synthesize.self_instruct(model="openai:http://127.0.0.1:9/v1#m", '
            'n=5, seed=1)\nharder = seeds | synthesize.evol_instruct(model="./nowhere")\n'
            'export concat(seeds, new, harder) to "out/x.jsonl"\n')
    folder = recipe_dir({"r.recipe": text,
                         "data/seeds.jsonl": [{"instruction": "Say hi.", "output": "Hi."}]})
    code, out, err = run_cli("check", "r.recipe", cwd=folder)
    assert code == 0, err
