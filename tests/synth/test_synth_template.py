"""synthesize.template: grid and table expansion, order, validation, and how recipes use it."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from dcc.errors import ParamError
from dcc.ops.base import RunContext
from dcc.ops.synth_template import SynthTemplate


def rows(**params) -> list[dict]:
    return SynthTemplate(**params).load(RunContext("t")).to_dicts()


def test_grid_product_order_is_sorted_names_last_fastest() -> None:
    out = rows(template="{{ level }}-{{ topic }}", grid={"topic": ["math", "code"],
                                                         "level": [1, 2, 3]})
    assert [r["instruction"] for r in out] == ["1-math", "1-code", "2-math", "2-code",
                                               "3-math", "3-code"]
    assert out[0] == {"instruction": "1-math", "level": 1, "topic": "math"}
    again = rows(template="{{ level }}-{{ topic }}", grid={"level": [1, 2, 3],
                                                           "topic": ["math", "code"]})
    assert again == out


def test_inline_table_crossed_with_grid() -> None:
    out = rows(template="As {{ who }}, write a {{ kind }}.", table=[{"who": "a nurse"},
                                                                   {"who": "a pilot"}],
               grid={"kind": ["poem", "joke"]}, field="prompt", keep_values=False)
    assert out == [{"prompt": "As a nurse, write a poem."}, {"prompt": "As a nurse, write a joke."},
                   {"prompt": "As a pilot, write a poem."}, {"prompt": "As a pilot, write a joke."}]


def test_nulls_lists_and_sandbox() -> None:
    out = rows(template="[{{ x }}] {{ tags }}", table=[{"x": None, "tags": ["a", "b"]}])
    assert out[0]["instruction"] == '[] ["a", "b"]'
    with pytest.raises(Exception, match="cannot render|unsafe|access"):
        rows(template="{{ x.__class__.__mro__ }}", grid={"x": ["a"]})


@pytest.mark.parametrize(("params", "message"), [
    ({"template": "x"}, "give 'grid', 'table' or both"),
    ({"template": "x", "grid": {"a": []}}, "non-empty list"),
    ({"template": "x", "grid": {"a": "b"}}, "non-empty list"),
    ({"template": "x", "grid": {"a": [1, "b"]}}, "mixes kinds"),
    ({"template": "x", "table": []}, "non-empty list of objects"),
    ({"template": "x", "table": [1, 2]}, "non-empty list of objects"),
    ({"template": "x", "table": [{"a": 1}, {"a": "s"}]}, "mixes kinds"),
    ({"template": "x", "table": "data.txt"}, "must be one of"),
    ({"template": "{{ nope }}", "grid": {"a": [1]}}, "reads 'nope'"),
    ({"template": "{{ a", "grid": {"a": [1]}}, "not a valid Jinja2"),
    ({"template": "x", "grid": {"instruction": [1]}}, "also a value's name"),
    ({"template": "x", "grid": {f"g{i}": list(range(100)) for i in range(4)}}, "at most"),
])
def test_parameter_checks(params, message) -> None:
    with pytest.raises(ParamError, match=message):
        SynthTemplate(**params)


def test_schema_for_the_compiler() -> None:
    op = SynthTemplate(template="{{ a }}{{ b }}", grid={"a": [1, 2.5], "b": ["x", None]})
    assert op.infer_schema().columns == {"instruction": "str", "a": "float", "b": "str"}
    assert op.files() == [] and op.key_params()["grid"] == {"a": [1, 2.5], "b": ["x", None]}
    table = SynthTemplate(template="{{ a }}", table=[{"a": True}])
    assert table.key_params()["table"] == [{"a": True}]
    assert (op.n_inputs, op.stochastic, op.expensive) == (0, False, False)


RECIPE = """\
recipe prompts
personas = synthesize.template(template="As {{ persona }}, ask about {{ topic }}.",
                               table="data/personas.jsonl", grid={"topic": ["tax", "sleep"]})
export personas to "out/p.jsonl"
"""


def test_a_table_file_in_a_recipe_build(recipe_dir: Callable, run_cli: Callable) -> None:
    folder = recipe_dir({"r.recipe": RECIPE,
                         "data/personas.jsonl": [{"persona": "a chef"}, {"persona": "a pilot"}]})
    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder)
    assert code == 0, err
    got = [json.loads(line) for line in (folder / "out/p.jsonl").read_text().splitlines()]
    assert [r["instruction"] for r in got] == [
        "As a chef, ask about tax.", "As a chef, ask about sleep.",
        "As a pilot, ask about tax.", "As a pilot, ask about sleep."]
    assert got[0] == {"instruction": "As a chef, ask about tax.", "persona": "a chef",
                      "topic": "tax"}
    assert run_cli("build", "r.recipe", "--json", cwd=folder)[1].count('"cached"') >= 1
    Path(folder / "data/personas.jsonl").write_text('{"persona": "a nurse"}\n')
    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder)
    node = next(n for n in json.loads(out)["nodes"] if n["name"] == "personas")
    assert (node["status"], node["rows_out"]) == ("ran", 2)


def test_recipe_errors(recipe_dir: Callable, run_cli: Callable) -> None:
    folder = recipe_dir({"r.recipe": 'recipe r\nx = synthesize.template(template="{{ a }}", '
                                     'table="data/t.jsonl")\ny = x | synthesize.template('
                                     'template="a", grid={"a": [1]})\nexport y to "o.jsonl"\n',
                         "data/t.jsonl": [{"b": 1}]})
    code, _, err = run_cli("check", "r.recipe", cwd=folder)
    assert code == 1
    assert "reads 'a', which is neither a grid name nor a column" in err
    assert "synthesize.template is a source and cannot follow '|'" in err
