"""Column schemas: an operator that reads a column its input cannot have is a compile-time
error at the argument that names the column, before any data is processed.

Sources infer their schema from at most their first 100 (non-blank) rows; everything
downstream derives its schema from its inputs.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from dcc.compiler import compile_recipe
from dcc.compiler.diagnostics import Diagnostic
from dcc.compiler.ir import Program
from dcc.errors import RecipeError

ROWS = [{"instruction": "say hi", "output": "hi", "n": 1},
        {"instruction": "say bye", "output": "bye", "n": 2}]
OTHER = [{"prompt": "p", "output": "o"}]


@pytest.fixture
def build(recipe_dir) -> Callable[..., Path]:
    def _build(recipe: str, **files) -> Path:
        files = {"a.jsonl": ROWS, "b.jsonl": OTHER, **files, "r.recipe": recipe}
        return recipe_dir({k.replace("__", "/"): v for k, v in files.items()}) / "r.recipe"

    return _build


def check(path: Path) -> Program:
    return compile_recipe(str(path), optimize=False)


def errors(path: Path) -> list[Diagnostic]:
    with pytest.raises(RecipeError) as info:
        check(path)
    return info.value.diagnostics


def rows(found: list[Diagnostic]) -> list[tuple]:
    return [(d.span.line, d.span.col, d.message, d.help) for d in found]


def test_a_missing_column_is_an_error_at_the_argument_with_did_you_mean(build) -> None:
    path = build('x = load.jsonl("a.jsonl") | select.length(field="outptu", min=1)\n'
                 'export x to "o.jsonl"\n')
    assert rows(errors(path)) == [
        (1, 49, "select.length reads column 'outptu', which its input does not have",
         "did you mean 'output'?")]


def test_with_nothing_close_the_help_lists_the_columns(build) -> None:
    path = build('x = load.jsonl("a.jsonl") | select.words(field="zzz", min=1)\n'
                 'export x to "o.jsonl"\n')
    assert rows(errors(path)) == [
        (1, 48, "select.words reads column 'zzz', which its input does not have",
         "the input's columns: instruction, n, output")]


def test_the_caret_is_under_the_missing_item_of_a_column_list(build) -> None:
    path = build('x = load.jsonl("a.jsonl") | select.dedup(fields=["instruction", "inptu"])\n'
                 'export x to "o.jsonl"\n')
    found = errors(path)
    assert rows(found) == [
        (1, 65, "select.dedup reads column 'inptu', which its input does not have",
         "the input's columns: instruction, n, output")]
    assert found[0].render().splitlines()[2].endswith("^^^^^^^")


def test_every_missing_column_is_reported(build) -> None:
    path = build('x = load.jsonl("a.jsonl")\n'
                 '  | rewrite.normalize(fields=["a", "output", "b"])\n'
                 '  | select.regex(field="c", pattern="x")\n'
                 'export x to "o.jsonl"\n')
    assert [(d.span.line, d.span.col, d.message.split(",")[0]) for d in errors(path)] == [
        (2, 31, "rewrite.normalize reads column 'a'"),
        (2, 46, "rewrite.normalize reads column 'b'"),
        (3, 24, "select.regex reads column 'c'"),
    ]


def test_a_column_of_the_wrong_type(build) -> None:
    path = build('x = load.jsonl("a.jsonl") | select.length(field="n", min=1)\n'
                 'export x to "o.jsonl"\n')
    assert rows(errors(path)) == [
        (1, 49, "select.length reads column 'n' as str, but it is int", None)]


def test_columns_of_mixed_or_null_type_are_not_type_errors(build) -> None:
    path = build('x = load.jsonl("m.jsonl") | select.length(field="mixed", min=1)\n'
                 '  | select.length(field="empty", min=0)\nexport x to "o.jsonl"\n',
                 **{"m.jsonl": [{"mixed": 1, "empty": None}, {"mixed": "one", "empty": None}]})
    assert check(path).warnings == []


def test_errors_inside_a_pipeline_point_at_the_pipeline_body(build) -> None:
    path = build('pipeline keep(f) =\n  select.length(field=f, min=1)\n'
                 'x = load.jsonl("a.jsonl") | keep(f="nope")\nexport x to "o.jsonl"\n')
    assert [(d.span.line, d.span.col) for d in errors(path)] == [(2, 23)]


# -- the first 100 rows ---------------------------------------------------------------------
def _late(at: int) -> list[dict]:
    """150 rows of {"text"}; row number `at` (1-based) also has a "late" column."""
    return [{"text": f"t{i}", **({"late": "x"} if i == at else {})} for i in range(1, 151)]


LATE = 'x = load.jsonl("big.jsonl") | select.length(field="late", min=1)\nexport x to "o.jsonl"\n'


def test_a_column_seen_in_the_first_100_rows_is_known(build) -> None:
    check(build(LATE, **{"big.jsonl": _late(100)}))


def test_a_column_first_seen_after_row_100_is_not_known(build) -> None:
    """Schema inference reads at most 100 rows (DESIGN.md), so a column that first appears at
    row 101 or 150 is unknown at compile time: reading it is reported as a missing column,
    even though the build would find it. The help names the columns that were seen."""
    for at in (101, 150):
        found = errors(build(LATE, **{"big.jsonl": _late(at)}))
        assert rows(found) == [
            (1, 51, "select.length reads column 'late', which its input does not have",
             "the input's columns: text")]


def test_blank_lines_do_not_count_towards_the_100_rows(build) -> None:
    text = "".join(("\n" if i % 2 else "") + json.dumps(row) + "\n"
                   for i, row in enumerate(_late(100)))
    check(build(LATE, **{"big.jsonl": text}))


def test_a_bad_row_after_row_100_is_not_read_at_compile_time(build) -> None:
    text = "".join(json.dumps({"text": "t", "late": "x"}) + "\n" for _ in range(100))
    check(build(LATE, **{"big.jsonl": text + "{not json\n"}))


# -- sources --------------------------------------------------------------------------------
def test_a_missing_source_file_is_an_error_at_the_path_string(build, tmp_path) -> None:
    path = build('x = load.jsonl("data/nope.jsonl") | select.length(field="t", min=1)\n'
                 'export x to "o.jsonl"\n')
    found = errors(path)
    assert rows(found) == [(1, 16, f"{tmp_path / 'data' / 'nope.jsonl'}: no such file", None)]
    assert found[0].render().splitlines()[2] == "    |                ^^^^^^^^^^^^^^^^^"


def test_check_exits_1_for_a_missing_source(build, run_cli) -> None:
    path = build('x = load.jsonl("nope.jsonl")\nexport x to "o.jsonl"\n')
    code, out, err = run_cli("check", "r.recipe", cwd=path.parent)
    assert code == 1
    assert "r.recipe:1:16: error: " in err and "nope.jsonl: no such file" in err
    assert '  1 | x = load.jsonl("nope.jsonl")' in err
    assert "    |                ^^^^^^^^^^^^" in err
    assert "Traceback" not in err and out == ""


def test_a_folder_is_not_a_jsonl_file(build) -> None:
    path = build('x = load.jsonl("sub")\nexport x to "o.jsonl"\n', **{"sub__f.txt": "x"})
    assert errors(path)[0].message.endswith("sub: is a directory, not a file")


def test_invalid_json_in_the_first_rows_is_an_error_at_the_path(build) -> None:
    path = build('x = load.jsonl("bad.jsonl")\nexport x to "o.jsonl"\n',
                 **{"bad.jsonl": '{"text": "a"}\n{"text": 1\n'})
    (d,) = errors(path)
    assert (d.span.line, d.span.col) == (1, 16)
    assert d.message.endswith("bad.jsonl:2: invalid JSON (Expecting ',' delimiter at column 11)")


def test_skipped_bad_rows_do_not_stop_the_compile(build) -> None:
    path = build('x = load.jsonl("bad.jsonl", on_error="skip") | select.length(field="text",'
                 ' min=1)\nexport x to "o.jsonl"\n',
                 **{"bad.jsonl": '{"text": "a"}\n{"text": 1\n'})
    assert check(path).node("n1").schema.columns == {"text": "str"}


def test_source_schemas_have_the_columns_and_types_of_the_rows(build) -> None:
    program = check(build('x = load.jsonl("a.jsonl")\nexport x to "o.jsonl"\n'))
    assert program.node(program.bindings["x"]).schema.columns == {
        "instruction": "str", "output": "str", "n": "int"}


# -- schemas flow downstream ----------------------------------------------------------------
def test_columns_flow_through_concat(build) -> None:
    program = check(build('a = load.jsonl("a.jsonl")\nb = load.jsonl("b.jsonl")\n'
                          'both = concat(a, b) | select.length(field="prompt", min=1)\n'
                          '  | select.dedup(fields=["instruction", "output"])\n'
                          'export both to "o.jsonl"\n'))
    both = program.node(program.bindings["both"])
    assert set(both.schema.columns) == {"instruction", "output", "n", "prompt"}


def test_a_column_neither_concat_input_has(build) -> None:
    path = build('both = concat(load.jsonl("a.jsonl"), load.jsonl("b.jsonl"))\n'
                 '  | select.length(field="answer", min=1)\nexport both to "o.jsonl"\n')
    assert rows(errors(path)) == [
        (2, 25, "select.length reads column 'answer', which its input does not have",
         "the input's columns: instruction, n, output, prompt")]


@pytest.mark.parametrize("stage", [
    'select.length(field="output", min=1)', 'select.words(field="output", max=9)',
    'select.regex(field="output", pattern="x")', 'rewrite.normalize(fields=["output"])',
    'select.dedup(fields=["output"])', "select.sample(n=1)",
])
def test_row_selecting_stages_keep_their_input_columns(build, stage: str) -> None:
    program = check(build(f'x = load.jsonl("a.jsonl") | {stage}\n'
                          '  | select.length(field="instruction", min=1)\n'
                          'export x to "o.jsonl"\n'))
    assert set(program.node(program.bindings["x"]).schema.columns) == {
        "instruction", "output", "n"}


@pytest.mark.parametrize("combinator", ['split(a, part="test")', "mix(a, b, seed=1)"])
def test_columns_flow_through_split_and_mix(build, combinator: str) -> None:
    path = build(f'a = load.jsonl("a.jsonl")\nb = load.jsonl("b.jsonl")\nx = {combinator}'
                 ' | select.length(field="missing", min=1)\nexport x to "o.jsonl"\n')
    (d,) = errors(path)
    assert d.message == "select.length reads column 'missing', which its input does not have"


def test_graph_json_lists_each_nodes_columns(build, run_cli) -> None:
    path = build('x = concat(load.jsonl("a.jsonl"), load.jsonl("b.jsonl"))\n'
                 'export x to "o.jsonl"\n')
    code, out, err = run_cli("graph", "r.recipe", "--format", "json", cwd=path.parent)
    assert code == 0, err
    columns = {n["name"]: n["columns"] for n in json.loads(out)["nodes"]}
    assert columns == {"x@1": ["instruction", "n", "output"], "x@2": ["output", "prompt"],
                       "x": ["instruction", "n", "output", "prompt"]}


def test_schema_errors_are_reported_together_with_name_errors(build) -> None:
    path = build('x = load.jsonl("a.jsonl") | select.length(field="outptu", min=1)\n'
                 'y = load.jsonl("nope.jsonl")\n'
                 'z = x | select.lenght(field="output", min=1)\n'
                 'export z to "o.jsonl"\nexport y to "y.jsonl"\n')
    assert [(d.span.line, d.span.col) for d in errors(path)] == [(1, 49), (2, 16), (3, 9)]
