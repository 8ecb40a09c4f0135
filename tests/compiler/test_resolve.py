"""Names, params, imports, pipelines and arguments, through `compile_recipe`.

Each table row is a recipe body and the exact diagnostics it must produce: line and column
of the caret, the message, and the help line where one is given. Every recipe starts with
the same two lines (a source and a param), so the rows' own lines start at 3.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest

from dcc.compiler import compile_recipe
from dcc.compiler.diagnostics import Diagnostic
from dcc.compiler.ir import Program
from dcc.errors import RecipeError

ROWS = [{"text": "hello world", "id": 1}, {"text": "bye", "id": 2}]
HEAD = 'raw = load.jsonl("data.jsonl")\nparam min_len = 3\n'

MakeDir = Callable[[dict], Path]


@pytest.fixture
def compile_text(recipe_dir: MakeDir) -> Callable[..., Program]:
    """compile_text(body, files={...}, **options) -> Program for HEAD + body in a folder."""

    def _compile(body: str, files: dict | None = None, head: str = HEAD, **kw) -> Program:
        root = recipe_dir({"data.jsonl": ROWS, **(files or {}), "r.recipe": head + body})
        return compile_recipe(str(root / "r.recipe"), kw.pop("overrides", None),
                              optimize=kw.pop("optimize", False), **kw)

    return _compile


@pytest.fixture
def diags(compile_text: Callable[..., Program]) -> Callable[..., list[Diagnostic]]:
    """diags(body, ...) -> the diagnostics of the RecipeError that compiling raises."""

    def _diags(body: str, **kw) -> list[Diagnostic]:
        with pytest.raises(RecipeError) as info:
            compile_text(body, **kw)
        return info.value.diagnostics

    return _diags


def rows(found: list[Diagnostic]) -> list[tuple]:
    return [(d.span.line if d.span else None, d.span.col if d.span else None, d.message,
             d.help) for d in found]


LEN = 'select.length(field="text", min=1)'

# (id, body, [(line, col, message, help or None)])
ERRORS = [
    ("unknown operator", 'x = raw | select.lenght(field="text", min=1)\nexport x to "o.jsonl"',
     [(3, 11, "unknown operator 'select.lenght'", "did you mean 'select.length'?")]),
    ("unknown source", 'x = laod.jsonl("data.jsonl")',
     [(3, 5, "unknown operator 'laod.jsonl'", "did you mean 'load.jsonl'?")]),
    ("unknown operator, nothing close", "x = raw | select.zzzzzz(k=1)",
     [(3, 11, "unknown operator 'select.zzzzzz'", "run `dcc ops` to list operators")]),
    ("unknown pipeline", f"pipeline tidy() = {LEN}\nx = raw | tdy()",
     [(4, 11, "unknown operator or pipeline 'tdy'", "did you mean 'tidy'?")]),
    ("unknown dataset name", f"x = rwa | {LEN}",
     [(3, 5, "unknown name 'rwa'", "did you mean 'raw'?")]),
    ("unknown value name", 'x = raw | select.length(field="text", min=min_lne)',
     [(3, 43, "unknown name 'min_lne'", "did you mean 'min_len'?")]),
    ("unknown argument", 'x = raw | select.length(field="text", mni=1)',
     [(3, 39, "select.length has no parameter 'mni'", "did you mean 'min'?")]),
    ("unknown argument, nothing close", 'x = raw | select.length(field="text", zz=1)',
     [(3, 39, "select.length has no parameter 'zz'", "its parameters: field, min, max")]),
    ("missing argument", "x = raw | select.length(min=1)",
     [(3, 11, "select.length is missing argument 'field'", "'field': the text column to measure")]),
    ("missing source path", "x = load.jsonl()",
     [(3, 5, "load.jsonl is missing argument 'path'",
       "'path': file to read; relative to the folder of the recipe that names it")]),
    ("wrong type", 'x = raw | select.length(field="text", min="abc")',
     [(3, 43, "select.length: 'min' must be int (got str 'abc')", None)]),
    ("wrong type through a param",
     'param long = "yes"\nx = raw | select.length(field="text", min=long)',
     [(4, 43, "select.length: 'min' must be int (got str 'yes')", None)]),
    ("bool is not int", 'x = raw | select.length(field="text", min=true)',
     [(3, 43, "select.length: 'min' must be int (got bool True)", None)]),
    ("float is not int", 'x = raw | select.length(field="text", min=1.5)',
     [(3, 43, "select.length: 'min' must be int (got float 1.5)", None)]),
    ("list of str", 'x = raw | select.dedup(fields=["text", 1])',
     [(3, 31, "select.dedup: 'fields' must be list[str] (got list list)", None)]),
    ("null for a required str", "x = raw | select.length(field=null, min=1)",
     [(3, 31, "select.length: 'field' must be str (got null)", None)]),
    ("below the minimum", 'x = raw | select.length(field="text", min=-1)',
     [(3, 43, "select.length: 'min' must be >= 0 (got -1)", None)]),
    ("above the maximum", "x = raw | select.sample(fraction=1.5)",
     [(3, 34, "select.sample: 'fraction' must be <= 1 (got 1.5)", None)]),
    ("not a choice", 'x = load.jsonl("data.jsonl", on_error="ignore")',
     [(3, 39, "load.jsonl: 'on_error' must be one of 'raise', 'skip' (got 'ignore')", None)]),
    ("empty column list", "x = raw | select.dedup(fields=[])",
     [(3, 31, "select.dedup: 'fields' must name at least one column (got [])", None)]),
    ("bad regex", 'x = raw | select.regex(field="text", pattern="(unclosed")',
     [(3, 46, "select.regex: 'pattern' is not a valid regular expression: unclosed group "
              "(got '(unclosed')", None)]),
    ("max below min", 'x = raw | select.length(field="text", min=5, max=2)',
     [(3, 50, "select.length: 'max' must be >= 'min' (got min=5, max=2)", None)]),
    ("neither min nor max", 'x = raw | select.length(field="text")',
     [(3, 11, "select.length: give 'min', 'max' or both (with neither every row is kept)",
       None)]),
    ("n and fraction", "x = raw | select.sample(n=1, fraction=0.5)",
     [(3, 11, "select.sample: give exactly one of 'n' and 'fraction'", None)]),
    ("argument twice", 'x = raw | select.length(field="text", min=1, min=2)',
     [(3, 46, "argument 'min' given twice", None)]),
    ("positional to a named-only operator", 'x = raw | select.length("text", min=1)',
     [(3, 25, "select.length takes named arguments only",
       "write NAME=value; its parameters: field, min, max")]),
    ("second positional to a source", 'x = load.jsonl("data.jsonl", "raise")',
     [(3, 30, "load.jsonl takes named arguments only",
       "write NAME=value; its parameters: path, on_error")]),
    ("source after a pipe", 'x = raw | load.jsonl("data.jsonl")',
     [(3, 11, "load.jsonl is a source and cannot follow '|'", "start a chain with it instead")]),
    ("operator without input", f"x = {LEN}",
     [(3, 5, "select.length needs an input dataset",
       "pipe one into it: `data | select.length(...)`")]),
    ("dataset as a value", "x = raw | select.length(field=raw, min=1)",
     [(3, 31, "'raw' is a dataset; this argument needs a value", None)]),
    ("dataset as a value in a list", "x = raw | select.dedup(fields=[raw])",
     [(3, 32, "'raw' is a dataset; this argument needs a value", None)]),
    ("call as a value", 'x = raw | select.length(field=f(), min=1)',
     [(3, 31, "expected a value, got a call", "arguments are literals or params")]),
    ("param as a dataset", f"x = min_len | {LEN}",
     [(3, 5, "'min_len' is a param, not a dataset", None)]),
    ("string as a dataset", f'x = "data.jsonl" | {LEN}',
     [(3, 5, "expected a dataset, got a string",
       "a dataset is a binding, a load.* source, a combinator or a pipe")]),
    ("number exported", 'export 3 to "o.jsonl"',
     [(3, 8, "expected a dataset, got a number",
       "a dataset is a binding, a load.* source, a combinator or a pipe")]),
    ("number in concat", "x = concat(raw, 1)",
     [(3, 17, "expected a dataset, got a number",
       "a dataset is a binding, a load.* source, a combinator or a pipe")]),
    ("binding after a pipe", "x = raw | raw",
     [(3, 11, "'raw' is a dataset, not an operator",
       "only operators and pipelines can follow '|'")]),
    ("concat after a pipe", "x = raw | concat(raw)",
     [(3, 11, "concat takes its datasets as arguments",
       "write concat(a, b), not a | concat(b)")]),
    ("concat of nothing", "x = concat()", [(3, 5, "concat needs at least one dataset", None)]),
    ("split of two", "x = split(raw, raw)",
     [(3, 5, 'split takes exactly one dataset (got 2); write split(data, part="train") and '
             'split(data, part="test")', None)]),
    ("mix weights per input", "x = mix(raw, raw, weights=[1])",
     [(3, 5, "mix: 'weights' has 1 values for 2 inputs; give one weight per input", None)]),
    ("binding cycle", f"a = b | {LEN}\nb = a | {LEN}\nexport b to \"o.jsonl\"",
     [(4, 5, "cycle between bindings: a -> b -> a", "a binding cannot depend on itself")]),
    ("self cycle", f"a = a | {LEN}",
     [(3, 5, "cycle between bindings: a -> a", "a binding cannot depend on itself")]),
    ("longer cycle", "a = c\nb = a\nc = b\nexport c to \"o.jsonl\"",
     [(4, 5, "cycle between bindings: a -> c -> b -> a", "a binding cannot depend on itself")]),
    ("binding twice", 'raw = load.jsonl("data.jsonl")',
     [(3, 1, "'raw' is already defined at line 1", "each name is defined once per recipe")]),
    ("param and binding", 'min_len = load.jsonl("data.jsonl")',
     [(3, 1, "'min_len' is already defined at line 2", "each name is defined once per recipe")]),
    ("pipeline twice", f"pipeline p() = {LEN}\npipeline p() = {LEN}",
     [(4, 10, "'p' is already defined at line 3", "each name is defined once per recipe")]),
    ("recipe named twice", "recipe a\nrecipe b",
     [(4, 1, "a recipe may declare its name only once", None)]),
    ("param default not a literal", "param p = raw",
     [(3, 11, "a param's default must be a literal", "strings, numbers, bools, lists or null")]),
    ("same path exported twice", 'export raw to "o.jsonl"\nexport raw to "./o.jsonl"',
     [(4, 15, "'./o.jsonl' is exported twice", None)]),
    ("export outside the folder", 'export raw to "../o.jsonl"',
     [(3, 15, "export path '../o.jsonl' is outside the recipe's folder",
       "exports stay inside the recipe's folder (or --out-dir); pass --allow-write-outside "
       "to write elsewhere")]),
    ("absolute export path", 'export raw to "/tmp/dcc-test-o.jsonl"',
     [(3, 15, "export path '/tmp/dcc-test-o.jsonl' is outside the recipe's folder",
       "exports stay inside the recipe's folder (or --out-dir); pass --allow-write-outside "
       "to write elsewhere")]),
    ("evolve without rounds", f"x = evolve(raw) {{ {LEN} }}",
     [(3, 5, "evolve is missing argument 'rounds'",
       "'rounds': how many times the chain runs (0 returns the seed)")]),
    ("evolve piped into", f"x = raw | evolve(raw, rounds=1) {{ {LEN} }}",
     [(3, 11, "evolve takes its seed dataset as its first argument",
       "write `evolve(data, rounds=N) { ... }`, not `data | evolve(...)`")]),
    ("evolve misspelled parameter", f"x = evolve(raw, round=2) {{ {LEN} }}",
     [(3, 17, "evolve has no parameter 'round'", "did you mean 'rounds'?")]),
    ("evolve bad until", f'x = evolve(raw, rounds=2, until={{"min_gain": 1}}) {{ {LEN} }}',
     [(3, 33, "evolve: 'min_gain' needs 'score' (the column whose mean must improve)", None)]),
    ("evolve bad mode", f'x = evolve(raw, rounds=2, mode="grow") {{ {LEN} }}',
     [(3, 32, "evolve: 'mode' must be one of 'accumulate', 'replace' (got 'grow')", None)]),
    ("evolve chain error reported once", 'x = evolve(raw, rounds=3) { select.length(field="txt", '
     'min=1) }',
     [(3, 49, "select.length reads column 'txt', which its input does not have",
       "did you mean 'text'?")]),
    ("pipeline without input", f"pipeline p() = {LEN}\nx = p()",
     [(4, 5, "pipeline 'p' needs an input dataset", "pipe one into it: `data | p(...)`")]),
    ("pipeline recursion", "pipeline p(f) = select.length(field=f, min=1) | p(f=f)\n"
                           'x = raw | p(f="text")',
     [(3, 49, "pipeline 'p' calls itself", "pipelines cannot be recursive")]),
    ("mutual pipeline recursion", "pipeline p() = q()\npipeline q() = p()\nx = raw | p()",
     [(4, 16, "pipeline 'p' calls itself", "pipelines cannot be recursive")]),
    ("pipeline unknown argument", f'pipeline p(f) = {LEN}\nx = raw | p(f="text", g=1)',
     [(4, 23, "pipeline 'p' has no parameter 'g'", None)]),
    ("pipeline argument typo", f'pipeline p(field) = {LEN}\nx = raw | p(feld="text")',
     [(4, 13, "pipeline 'p' has no parameter 'feld'", "did you mean 'field'?")]),
    ("pipeline missing argument", f"pipeline p(f, g) = {LEN}\nx = raw | p(g=1)",
     [(4, 11, "pipeline 'p' is missing argument 'f'", None)]),
    ("pipeline positional argument", f'pipeline p(f) = {LEN}\nx = raw | p("text")',
     [(4, 13, "pipeline 'p' takes named arguments only", "its parameters: f")]),
    ("pipeline argument type reaches the operator",
     'pipeline p(n) = select.length(field="text", min=n)\nx = raw | p(n="many")',
     [(3, 49, "select.length: 'min' must be int (got str 'many')", None)]),
]


@pytest.mark.parametrize(("body", "expected"), [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_resolve_error(diags: Callable[..., list[Diagnostic]], body: str,
                       expected: list[tuple]) -> None:
    found = diags(body)
    assert rows(found) == expected
    assert all(d.span.file.endswith("r.recipe") for d in found)


def test_every_error_of_a_file_is_reported_once_in_one_run(diags) -> None:
    found = diags(
        'a = raw | select.lenght(field="text", min=1)\n'          # 3
        'b = a | select.length(field="text", min="x")\n'          # 4: a failed: quiet
        'c = rwa | select.length(field="text", min=1)\n'          # 5
        'd = raw | select.length(field="text", mni=1, min=1)\n'   # 6
        'export a to "a.jsonl"\nexport b to "b.jsonl"\nexport c to "c.jsonl"\n'
        'export concat(a, c, d) to "all.jsonl"\n')
    assert [(d.span.line, d.span.col) for d in found] == [(3, 11), (5, 5), (6, 39)]


def test_an_argument_that_fails_is_not_also_missing(diags) -> None:
    found = diags("x = raw | select.length(field=raw, min=1)")
    assert [d.message for d in found] == ["'raw' is a dataset; this argument needs a value"]


def test_an_input_that_fails_does_not_leave_concat_empty(diags) -> None:
    found = diags("x = concat(rwa)")
    assert [d.message for d in found] == ["unknown name 'rwa'"]


def test_a_use_of_a_definition_that_did_not_parse_is_not_an_unknown_name(diags) -> None:
    found = diags("x = raw | select.length(field=\"text\" min=1)\n"
                  "param p =\n"
                  "y = x | select.length(field=\"text\", min=p)\n"
                  "export y to \"o.jsonl\"")
    assert [(d.span.line, d.message.split(" (")[0]) for d in found] == [
        (3, "missing ',' between arguments"), (4, "expected an expression after '='")]


def test_values_are_bound_with_their_types(compile_text) -> None:
    program = compile_text('x = raw | select.length(field="text", min=min_len, max=100)\n'
                           'y = x | select.sample(fraction=1, seed=-3)\n'
                           'export y to "o.jsonl"')
    length = program.node(program.bindings["x"])
    assert length.params == {"field": "text", "min": 3, "max": 100}
    sample = program.node(program.bindings["y"])
    assert sample.params == {"n": None, "fraction": 1.0, "seed": -3}
    assert type(sample.params["fraction"]) is float  # an int given for a float param


def test_source_paths_are_relative_to_the_recipe_not_the_cwd(compile_text, tmp_path,
                                                             monkeypatch) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    program = compile_text('export raw to "o.jsonl"')
    src = program.node(program.bindings["raw"])
    assert src.params["path"] == str(tmp_path / "data.jsonl")
    assert program.exports[0].path == str(tmp_path / "o.jsonl")


# -- warnings -------------------------------------------------------------------------------
def test_unused_bindings_are_warnings_not_errors(compile_text) -> None:
    program = compile_text('used = raw | select.length(field="text", min=1)\n'
                           'spare = raw | select.words(field="text", min=1)\n'
                           'export used to "o.jsonl"')
    assert [(w.severity, w.span.line, w.span.col, w.message, w.help)
            for w in program.warnings] == [
        ("warning", 4, 1, "binding 'spare' feeds no export",
         "it is not built unless named with --target")]
    assert set(program.bindings) == {"raw", "used", "spare"}


def test_a_binding_used_only_by_another_used_binding_is_not_warned(compile_text) -> None:
    program = compile_text('a = raw | select.length(field="text", min=1)\nb = a\n'
                           'export b to "o.jsonl"')
    assert program.warnings == []


def test_check_prints_warnings_and_exits_0(recipe_dir, run_cli) -> None:
    root = recipe_dir({"data.jsonl": ROWS, "r.recipe": HEAD + 'export raw to "o.jsonl"\n'
                       'spare = raw | select.words(field="text", min=1)\n'})
    code, out, err = run_cli("check", "r.recipe", cwd=root)
    assert code == 0, err
    assert "r.recipe:4:1: warning: binding 'spare' feeds no export" in err
    assert "r.recipe: ok (2 nodes, 1 exports, 1 warnings)" in err
    assert out == ""


# -- exports --------------------------------------------------------------------------------
def test_exports_outside_the_folder_need_allow_outside(compile_text, tmp_path) -> None:
    program = compile_text('export raw to "../o.jsonl"', allow_outside=True)
    assert program.exports[0].path == str(tmp_path.parent / "o.jsonl")
    assert program.exports[0].display == "../o.jsonl"


def test_exports_go_under_out_dir(compile_text, tmp_path) -> None:
    out = tmp_path / "out"
    program = compile_text('export raw to "sub/o.jsonl"', out_dir=str(out))
    assert program.exports[0].path == str(out / "sub" / "o.jsonl")


def test_a_path_that_only_looks_inside_is_still_refused(diags) -> None:
    found = diags('export raw to "sub/../../o.jsonl"')
    assert rows(found)[0][:3] == (3, 15, "export path 'sub/../../o.jsonl' is outside the "
                                         "recipe's folder")


def test_check_refuses_an_outside_export_with_exit_1(recipe_dir, run_cli) -> None:
    root = recipe_dir({"data.jsonl": ROWS, "r.recipe": HEAD + 'export raw to "../o.jsonl"\n'})
    code, _, err = run_cli("check", "r.recipe", cwd=root)
    assert code == 1
    assert "r.recipe:3:15: error: export path '../o.jsonl' is outside the recipe's folder" in err


# -- --target -------------------------------------------------------------------------------
def test_unknown_target(diags) -> None:
    found = diags('export raw to "o.jsonl"', target="rw")
    assert rows(found) == [(None, None, "--target: no binding named 'rw'", "did you mean 'raw'?")]


# -- imports --------------------------------------------------------------------------------
LIB = {
    "lib/data/l.jsonl": [{"q": "a question", "a": "an answer"}],
    "lib/cleaning.recipe": (
        "recipe cleaning\n"
        "param min_chars = 2\n"
        'src = load.jsonl("data/l.jsonl")\n'  # relative to lib/, not to the importer
        "pipeline tidy(field) =\n"
        "    rewrite.normalize(fields=[field])\n"
        "  | select.length(field=field, min=min_chars)\n"),
}


def test_alias_binding_and_alias_pipeline(compile_text, tmp_path) -> None:
    program = compile_text('use "lib/cleaning.recipe" as cleaning\n'
                           'x = cleaning.src | cleaning.tidy(field="q")\n'
                           'export x to "o.jsonl"', files=LIB)
    assert set(program.bindings) == {"raw", "cleaning.src", "x"}
    src = program.node(program.bindings["cleaning.src"])
    length = program.node(program.bindings["x"])
    norm = program.node(length.inputs[0])
    assert src.params["path"] == str(tmp_path / "lib" / "data" / "l.jsonl")
    assert (norm.op_name, norm.params["fields"], norm.inputs) == ("rewrite.normalize", ["q"],
                                                                  [src.id])
    # the pipeline's body reads the library's own param
    assert (length.op_name, length.params["min"]) == ("select.length", 2)
    assert [n.names for n in (src, norm, length)] == [["cleaning.src"], ["x@1"], ["x"]]


def test_a_library_in_a_subfolder_imports_relative_to_itself(compile_text, tmp_path) -> None:
    files = {**LIB,
             "lib/nested/extra.recipe": 'more = load.jsonl("../data/l.jsonl")\n',
             "lib/mid.recipe": 'use "nested/extra.recipe" as extra\nboth = concat(extra.more)\n'}
    program = compile_text('use "lib/mid.recipe" as mid\nexport mid.both to "o.jsonl"',
                           files=files)
    more = program.node(program.bindings["mid.extra.more"])
    assert more.params["path"] == str(tmp_path / "lib" / "data" / "l.jsonl")
    assert program.node(program.bindings["mid.both"]).inputs == [more.id]


def test_imported_names_with_did_you_mean(diags) -> None:
    found = diags('use "lib/cleaning.recipe" as cleaning\nx = cleaning.scr\n'
                  'y = raw | cleaning.tdy(field="text")', files=LIB)
    assert rows(found) == [
        (4, 5, "unknown name 'cleaning.scr'", "did you mean 'cleaning.src'?"),
        (5, 11, "unknown operator 'cleaning.tdy'", "did you mean 'cleaning.tidy'?"),
    ]


def test_an_unknown_alias(diags) -> None:
    found = diags('use "lib/cleaning.recipe" as cleaning\nx = claening.src', files=LIB)
    assert rows(found) == [(4, 5, "unknown name 'claening.src'", "did you mean 'cleaning.src'?")]


def test_a_missing_import_is_an_error_at_its_path(diags, tmp_path) -> None:
    found = diags('use "lib/nope.recipe" as nope')
    assert rows(found) == [(3, 5, "no such recipe file: lib/nope.recipe",
                            f"looked for {tmp_path / 'lib' / 'nope.recipe'}; 'use' paths are "
                            "relative to the folder of the recipe that names them")]


def test_alias_clashes(diags) -> None:
    found = diags('use "lib/cleaning.recipe" as cleaning\nuse "lib/cleaning.recipe" as cleaning\n'
                  'use "lib/cleaning.recipe" as raw\nuse "lib/cleaning.recipe" as select\n',
                  files=LIB)
    assert rows(found) == [
        (4, 30, "'cleaning' is already defined", None),
        (5, 30, "'raw' is already defined", None),
        (6, 30, "'select' is an operator family name", "pick another alias"),
    ]


def test_errors_inside_an_imported_file_point_into_that_file(diags) -> None:
    files = {"lib/bad.recipe": "x = load.jsonl(\"data.jsonl\") | select.lenght(min=1)\n"}
    found = diags('use "lib/bad.recipe" as bad\nexport bad.x to "o.jsonl"', files=files)
    (d,) = [d for d in found if "operator" in d.message]  # the lib's data file is absent too
    assert d.span.file.endswith(os.path.join("lib", "bad.recipe"))
    assert (d.span.line, d.span.col, d.message) == (1, 32, "unknown operator 'select.lenght'")


def test_an_import_cycle_is_reported_once_at_the_use(recipe_dir) -> None:
    root = recipe_dir({"data.jsonl": ROWS,
                       "a.recipe": 'use "b.recipe" as b\nx = load.jsonl("data.jsonl")\n',
                       "b.recipe": 'use "a.recipe" as a\ny = load.jsonl("data.jsonl")\n'})
    with pytest.raises(RecipeError) as info:
        compile_recipe(str(root / "a.recipe"))
    (d,) = info.value.diagnostics
    assert d.span.file.endswith("b.recipe")
    assert (d.span.line, d.span.col, d.message) == (
        1, 5, "import cycle: a.recipe -> b.recipe -> a.recipe")


def test_a_recipe_importing_itself(diags) -> None:
    found = diags('use "r.recipe" as me')
    assert rows(found) == [(3, 5, "import cycle: r.recipe -> r.recipe", None)]


def test_one_library_under_two_aliases_is_two_modules_with_their_own_params(
        compile_text) -> None:
    files = {**LIB, "lib/short.recipe": 'param n = 2\n'
             'src = load.jsonl("data/l.jsonl") | select.length(field="q", min=n)\n'}
    program = compile_text('use "lib/short.recipe" as a\nuse "lib/short.recipe" as b\n'
                           'export concat(a.src, b.src) to "o.jsonl"', files=files,
                           overrides={"a.n": "5", "b.n": "9"})
    assert {"a.src", "b.src"} <= set(program.bindings)
    assert program.node(program.bindings["a.src"]).params["min"] == 5
    assert program.node(program.bindings["b.src"]).params["min"] == 9


# -- --set ----------------------------------------------------------------------------------
SET_BODY = ('use "lib/cleaning.recipe" as cleaning\n'
            'x = raw | select.length(field="text", min=min_len)\n'
            'y = cleaning.src | cleaning.tidy(field="q")\n'
            'export concat(x, y) to "o.jsonl"')


def test_set_overrides_params_with_the_type_of_the_default(compile_text) -> None:
    program = compile_text(SET_BODY, files=LIB,
                           overrides={"min_len": "7", "cleaning.min_chars": "9"})
    assert program.node(program.bindings["x"]).params["min"] == 7
    assert program.node(program.bindings["y"]).params["min"] == 9
    assert program.params["min_len"] == 7


@pytest.mark.parametrize(("default", "raw", "value"), [
    ('"s"', "hello world", "hello world"), ('"s"', "12", "12"), ("1", "-4", -4),
    ("1.5", "2", 2.0), ("true", "FALSE", False), ("[1, 2]", "[3]", [3]),
    ("null", '{"a": 1}', {"a": 1}), ("null", "plain", "plain"),
])
def test_set_parses_each_type(compile_text, default: str, raw: str, value) -> None:
    program = compile_text('export raw to "o.jsonl"', head=f"param p = {default}\n"
                           'raw = load.jsonl("data.jsonl")\n', overrides={"p": raw})
    assert program.params["p"] == value and type(program.params["p"]) is type(value)


@pytest.mark.parametrize(("default", "raw", "want"), [
    ("1", "abc", "int"), ("1", "1.5", "int"), ("1.5", "x", "float"), ("true", "yes", "bool"),
    ("[1]", '{"a": 1}', "list"), ("[1]", "not json", "list"),
])
def test_set_with_the_wrong_type_names_the_param(diags, default: str, raw: str,
                                                 want: str) -> None:
    found = diags('export raw to "o.jsonl"', head=f"param p = {default}\n"
                  'raw = load.jsonl("data.jsonl")\n', overrides={"p": raw})
    assert rows(found) == [(1, 7, f"--set p: 'p' must be {want} (got {raw!r})",
                            f"the default of 'p' is {want}")]


def test_set_of_an_unknown_param(diags) -> None:
    found = diags('export raw to "o.jsonl"', overrides={"min_lenn": "3"})
    assert rows(found) == [(None, None, "--set min_lenn: the recipe has no param 'min_lenn'",
                            "did you mean 'min_len'?")]


def test_set_of_an_imported_param(diags) -> None:
    found = diags(SET_BODY, files=LIB, overrides={"cleaning.min_chars": "many",
                                                  "cleaning.min_char": "1",
                                                  "claening.min_chars": "1"})
    assert sorted(rows(found), key=str) == sorted([
        (None, None, "--set cleaning.min_char: the recipe has no param 'min_char'",
         "did you mean 'min_chars'?"),
        (None, None, "--set claening.min_chars: no import named 'claening'",
         "did you mean 'cleaning'?"),
        (2, 7, "--set cleaning.min_chars: 'cleaning.min_chars' must be int (got 'many')",
         "the default of 'min_chars' is int"),
    ], key=str)
    lib_error = next(d for d in found if d.span is not None)
    assert lib_error.span.file.endswith("cleaning.recipe")


def test_set_on_the_command_line(recipe_dir, run_cli) -> None:
    root = recipe_dir({"data.jsonl": ROWS, "r.recipe": HEAD + 'export raw to "o.jsonl"\n'})
    code, _, err = run_cli("check", "r.recipe", "--set", "min_len=abc", cwd=root)
    assert code == 1
    assert "r.recipe:2:7: error: --set min_len: 'min_len' must be int (got 'abc')" in err
    assert "help: the default of 'min_len' is int" in err
    code, _, err = run_cli("check", "r.recipe", "--set", "min_len", cwd=root)
    assert code == 2
    assert "--set expects NAME=VALUE (got 'min_len')" in err
    code, _, err = run_cli("check", "r.recipe", "--set", "min_len=12", cwd=root)
    assert code == 0, err


# -- pipelines ------------------------------------------------------------------------------
def test_pipelines_are_inlined_at_each_use(compile_text) -> None:
    program = compile_text(
        "pipeline keep(f, n) =\n"
        "    rewrite.normalize(fields=[f])\n"
        "  | select.length(field=f, min=n)\n"
        'a = raw | keep(f="text", n=1)\n'
        'b = raw | keep(f="text", n=min_len) | select.words(field="text", min=1)\n'
        'export concat(a, b) to "o.jsonl"')
    ops = sorted((n.name, n.op_name, str(n.params)) for n in program.nodes())
    assert ops == sorted([
        ("raw", "load.jsonl", str(program.node(program.bindings["raw"]).params)),
        ("a@1", "rewrite.normalize", "{'fields': ['text'], 'fix_mojibake': False}"),
        ("a", "select.length", "{'field': 'text', 'min': 1, 'max': None}"),
        ("b@1", "rewrite.normalize", "{'fields': ['text'], 'fix_mojibake': False}"),
        ("b@2", "select.length", "{'field': 'text', 'min': 3, 'max': None}"),
        ("b", "select.words", "{'field': 'text', 'min': 1, 'max': None}"),
        ("export#1@1", "concat", "{}"),
    ])


def test_a_pipeline_used_by_name_without_parentheses(compile_text) -> None:
    program = compile_text('pipeline short() = select.length(field="text", max=5)\n'
                           'x = raw | short\nexport x to "o.jsonl"')
    assert program.node(program.bindings["x"]).op_name == "select.length"


def test_pipeline_parameters_shadow_params(compile_text) -> None:
    program = compile_text('pipeline p(min_len) = select.length(field="text", min=min_len)\n'
                           'x = raw | p(min_len=9)\nexport x to "o.jsonl"')
    assert program.node(program.bindings["x"]).params["min"] == 9


def test_an_unused_pipeline_is_still_checked(diags) -> None:
    """A library's pipelines are used by other recipes, so `dcc check lib.recipe` must see
    their typos: names of operators, pipelines, arguments and referenced values."""
    found = diags("pipeline tidy(field) =\n"
                  "    rewrite.normalise(fields=[field])\n"
                  "  | select.length(field=field, mni=2, max=mx_len)\n"
                  "  | tdy(field=field)\n"
                  "pipeline ok(f) = select.length(field=f, min=min_len)\n")
    assert rows(found) == [
        (4, 5, "unknown operator 'rewrite.normalise'", "did you mean 'rewrite.normalize'?"),
        (5, 32, "select.length has no parameter 'mni'", "did you mean 'min'?"),
        (5, 43, "unknown name 'mx_len'", "did you mean 'min_len'?"),
        (6, 5, "unknown operator or pipeline 'tdy'", "did you mean 'tidy'?"),
    ]


def test_a_used_pipeline_is_not_checked_twice(diags) -> None:
    found = diags("pipeline p(f) = select.length(field=f, min=1) | select.nope()\n"
                  'x = raw | p(f="text")\nexport x to "o.jsonl"')
    assert [d.message for d in found] == ["unknown operator 'select.nope'"]


def test_check_prints_every_error_in_file_order_then_a_count(recipe_dir, run_cli) -> None:
    root = recipe_dir({"data.jsonl": ROWS, "r.recipe": HEAD +
                       'b = rwa | select.length(field="text", min=1)\n'
                       'a = raw | select.lenght(field="text", min=1)\n'
                       'c = raw | select.length(field="text" min=1)\n'
                       'export concat(a, b, c) to "o.jsonl"\n'})
    code, out, err = run_cli("check", "r.recipe", cwd=root)
    assert code == 1 and out == ""
    headers = [line for line in err.splitlines() if ": error: " in line]
    assert headers == [
        "r.recipe:3:5: error: unknown name 'rwa'",
        "r.recipe:4:11: error: unknown operator 'select.lenght'",
        "r.recipe:5:38: error: missing ',' between arguments (found 'min')",
    ]
    assert "  help: did you mean 'raw'?" in err
    assert ('  4 | a = raw | select.lenght(field="text", min=1)\n'
            "    |           ^^^^^^^^^^^^^\n") in err
    assert err.rstrip().splitlines()[-1] == "3 errors"
