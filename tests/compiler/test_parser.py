"""The parser: recipe text -> AST statements plus diagnostics, never an exception.

Errors are a table of (source, line, col, message) rows (STYLE principle 6): the position is
the 1-based line and character column a user sees in `path:line:col`, the message the part
that tells them what is wrong. Every label of `syntax_errors.SYNTAX_EXAMPLES` has rows here,
as the first term of a binding *and* nested inside a pipe, where most real recipes make them.
Whole malformed files live in `tests/fixtures/syntax/` with their expected errors in a header.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from dcc.compiler import ast as A
from dcc.compiler.parser import parse, parse_full
from dcc.compiler.syntax_errors import SYNTAX_EXAMPLES
from dcc.spans import Span

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "syntax"
P = "t.recipe"


def errors(text: str) -> list[tuple[int, int, str]]:
    _, diags = parse(text, P)
    return [(d.span.line, d.span.col, d.message) for d in diags]


def stmts(text: str) -> list[A.Stmt]:
    recipe, diags = parse(text, P)
    assert diags == [], [d.render() for d in diags]
    return recipe.stmts


def expr(text: str) -> A.Expr:
    """The expression of `x = TEXT`."""
    (binding,) = stmts(f"x = {text}")
    assert isinstance(binding, A.Binding)
    return binding.value


def span(line: int, col: int, end_line: int, end_col: int) -> Span:
    return Span(P, line, col, end_line, end_col)


PIPE = "expected an operator after '|'"
EXPR = "expected an expression after '='"
ARG_COMMA = "missing ',' between arguments"
LIST_COMMA = "missing ',' between list items"
EXPORT_TO = "expected 'to \"path\"' after the exported dataset"
EXPORT_PATH = "expected a double-quoted path after 'to'"
USE_AS = "expected 'as NAME' after the imported path"
AS_NAME = "expected a name after 'as'"
USE_PATH = "expected a double-quoted path after 'use'"
STATEMENT = "a statement must be 'NAME = ...', 'param', 'use', 'pipeline', 'export' or 'recipe'"
RECIPE = "expected a name after 'recipe'"
PARAM = "expected 'NAME = value' after 'param'"
PIPE_EQ = "expected '=' after the pipeline's parameter list"
PIPE_ARGS = "expected '(' and a parameter list after the pipeline's name"
DOT = "expected a name after '.'"
EVOLVE = "expected '{' and the chain each round runs after evolve(...)"

# (source, line, col, message substring). A position past the last token ("found end of
# statement") is the column just after that token, where the missing piece belongs.
SYNTAX_ERRORS = [
    # -- every label of syntax_errors.py ------------------------------------------------------
    ("x = a |", 1, 8, f"{PIPE} (found end of statement)"),
    ('x = load.jsonl("a.jsonl")\n  | select.length(field="t", min=1) |', 2, 38, PIPE),
    ("x = a | | b", 1, 9, f"{PIPE} (found '|')"),
    ("x = a | b | )", 1, 13, f"{PIPE} (found ')')"),
    ("x = a | f(a=b |)", 1, 16, PIPE),
    ("x =", 1, 4, f"{EXPR} (found end of statement)"),
    ("x = f(a=)", 1, 9, f"{EXPR} (found ')')"),
    ("x = a | f(b=1, a=)", 1, 18, EXPR),
    ("param p =", 1, 10, EXPR),
    ("x = f(a=1 b=2)", 1, 11, f"{ARG_COMMA} (found 'b')"),
    ('x = a | select.length(field="text" min=1)', 1, 36, f"{ARG_COMMA} (found 'min')"),
    ("x = a | b | f(a=g() b=2)", 1, 21, ARG_COMMA),
    ('x = concat(a b)', 1, 14, ARG_COMMA),
    ("x = f(a=[1 2])", 1, 12, f"{LIST_COMMA} (found '2')"),
    ('x = a | f(a=["x" "y"])', 1, 18, LIST_COMMA),
    ("export", 1, 7, "expected the dataset to export after 'export'"),
    ("export x", 1, 9, f"{EXPORT_TO} (found end of statement)"),
    ('export x "out.jsonl"', 1, 10, EXPORT_TO),
    ('export x | f() "out.jsonl"', 1, 16, EXPORT_TO),
    ('export x | f "out.jsonl"', 1, 14, EXPORT_TO),
    ("export x to", 1, 12, EXPORT_PATH),
    ("export x to out", 1, 13, f"{EXPORT_PATH} (found 'out')"),
    ('use "lib.recipe"', 1, 17, USE_AS),
    ('use "lib.recipe" lib', 1, 18, f"{USE_AS} (found 'lib')"),
    ('use "lib.recipe" as', 1, 20, AS_NAME),
    ('use "lib.recipe" as "lib"', 1, 21, AS_NAME),
    ("use lib", 1, 5, f"{USE_PATH} (found 'lib')"),
    ("use", 1, 4, USE_PATH),
    ("x", 1, 2, f"{STATEMENT} (found end of statement)"),
    ("f()", 1, 2, f"{STATEMENT} (found '(')"),
    ("x | f()", 1, 3, STATEMENT),
    ('"text"', 1, 1, STATEMENT),
    ("x.y = 1", 1, 2, f"{STATEMENT} (found '.')"),
    ("recipe", 1, 7, RECIPE),
    ('recipe "name"', 1, 8, RECIPE),
    ("param", 1, 6, PARAM),
    ("param p", 1, 8, PARAM),
    ("param 1 = 2", 1, 7, f"{PARAM} (found '1')"),
    ("pipeline p(a) a", 1, 15, PIPE_EQ),
    ("pipeline p(a)", 1, 14, PIPE_EQ),
    ("pipeline p = a", 1, 12, f"{PIPE_ARGS} (found '=')"),
    ("pipeline p", 1, 11, PIPE_ARGS),
    ("x = a.", 1, 7, DOT),
    ("x = a | lib.", 1, 13, DOT),
    ("x = evolve(a, rounds=1)", 1, 24, EVOLVE),
    ("x = evolve(a, rounds=1) f()", 1, 25, f"{EVOLVE} (found 'f')"),
    # -- strings --------------------------------------------------------------------------
    ('x = load.jsonl("a.jsonl)', 1, 16, "unterminated string"),
    ('x = load.jsonl("a.jsonl)\ny = 1', 1, 16, "unterminated string"),
    ('x = r"abc', 1, 5, "unterminated string"),  # at the r of the raw string
    ('x = "abc\\"', 1, 5, "unterminated string"),  # \" escapes the quote
    ('x = f(a="\\q")', 1, 10, "invalid escape '\\q' in string"),  # at the bad escape
    ('x = f(a="ok \\n \\d")', 1, 16, "invalid escape '\\d' in string"),
    ('x = "\\u12"', 1, 6, "invalid escape '\\u' in string"),
    ("x = load.jsonl('a.jsonl')", 1, 16, "strings are double-quoted"),
    ("x = f(a='it\\'s')", 1, 9, "strings are double-quoted"),
    # -- characters -----------------------------------------------------------------------
    ("x = a $ b", 1, 7, "unexpected character '$'"),
    ("x = a ; b", 1, 7, "unexpected character ';'"),
    ("x = f(a=-)", 1, 10, "expected a value after the operator"),
    ("x = f(a > )", 1, 11, "expected a value after the operator"),
    ("x = select.where(len(a) > 3 and)", 1, 32, "expected a value after the operator"),
    ("x = f(a=not)", 1, 12, "expected a value after the operator"),
    ("x = f(a < b < c)", 1, 13, "comparisons do not chain; join them with 'and'"),
    ("x = a\ny = b @ c", 2, 7, "unexpected character '@'"),
    ("x = a ~", 1, 7, "unexpected character '~'"),
    # -- reserved words -------------------------------------------------------------------
    ("param to = 1", 1, 7, "'to' is a reserved word and cannot be used as a name"),
    ('as = load.jsonl("a")', 1, 1, "'as' is a reserved word"),
    ("null = 1", 1, 1, "'null' is a reserved word"),
    ("true = 1", 1, 1, "'true' is a reserved word"),
    ("pipeline recipe(a) = b", 1, 10, "'recipe' is a reserved word"),
    ("pipeline p(export) = b", 1, 12, "'export' is a reserved word"),
    ('use "a.recipe" as evolve', 1, 19, "'evolve' is a reserved word"),
    ("x = f(param=1)", 1, 7, "'param' is a reserved word"),
    # -- brackets: an unclosed one is reported at its opener --------------------------------
    ("x = f(a=1\ny = g()", 1, 6, "unclosed '('"),
    ("x = f(a=[1, 2)\ny = g()", 1, 9, "unclosed '['"),  # the innermost opener
    ("x = f(\n  a=[1,\n     2\n", 2, 5, "unclosed '['"),
    ('x = {"a": 1', 1, 5, "unclosed '{'"),
    ("x = f(a=1]", 1, 6, "unclosed '('"),  # ']' does not close '('
    ("x = a)", 1, 6, "unexpected ')'"),
    # -- numbers --------------------------------------------------------------------------
    ("x = f(a=1e400)", 1, 9, "number 1e400 is too large"),
    ("x = f(a=99999999999999999999)", 1, 9, "integer 99999999999999999999 is out of range"),
    ("x = f(a=-9223372036854775809)", 1, 9, "is out of range"),
    ("x = f(a=1.2.3)", 1, 12, "unexpected '.3'"),  # one bad number, not two values
    ('x = f(a="x"b)', 1, 12, "unexpected 'b'"),
]


@pytest.mark.parametrize(("source", "line", "col", "message"), SYNTAX_ERRORS,
                         ids=[c[0] for c in SYNTAX_ERRORS])
def test_syntax_error(source: str, line: int, col: int, message: str) -> None:
    found = errors(source)
    assert len(found) == 1, found
    assert found[0][:2] == (line, col), found
    assert message in found[0][2]


def test_every_label_of_the_table_is_covered_above() -> None:
    covered = {msg.split(" (found")[0] for _, _, _, msg in SYNTAX_ERRORS}
    assert set(SYNTAX_EXAMPLES) <= covered


@pytest.mark.parametrize(("label", "example"), [
    (label, ex) for label, exs in SYNTAX_EXAMPLES.items() for ex in exs
])
def test_each_example_classifies_as_its_own_label(label: str, example: str) -> None:
    """The table is self-consistent: no example is stolen by another label."""
    found = errors(example)
    assert len(found) == 1 and found[0][2].startswith(label), found


def test_exactly_the_largest_64_bit_integers_are_accepted() -> None:
    (arg,) = expr("f(a=9223372036854775807)").args
    assert arg.value.value == 2 ** 63 - 1
    (arg,) = expr("f(a=-9223372036854775808)").args
    assert arg.value.value == -(2 ** 63)


def test_a_statement_error_does_not_hide_the_next_statement() -> None:
    recipe, diags = parse("x = f(a=1 b=2)\ny = load.jsonl(\"a.jsonl\")\n", P)
    assert [(d.span.line, d.span.col) for d in diags] == [(1, 11)]
    assert [s.name for s in recipe.stmts] == ["y"]


MULTI = """\
recipe multi
x = load.jsonl("a.jsonl") |

y = f(a=1 b=2)
z = 'single'
param to = 1
w = g(
export y to out
v = a $ b
ok = load.jsonl("fine.jsonl")
"""


def test_every_error_of_a_file_is_reported_in_one_run() -> None:
    recipe, diags = parse(MULTI, P)
    assert [(d.span.line, d.span.col, d.message.split(" (")[0]) for d in diags] == [
        (5, 5, "strings are double-quoted"),
        (9, 7, "unexpected character '$'"),
        (2, 28, PIPE),
        (4, 11, ARG_COMMA),
        (6, 7, "'to' is a reserved word and cannot be used as a name"),
        (7, 6, "unclosed '('"),
        (8, 13, EXPORT_PATH),
    ]
    # the repaired single-quoted string and the good statements still parse
    assert [s.name for s in recipe.stmts] == ["multi", "z", "ok"]
    assert recipe.stmts[1].value.value == "single"


def test_broken_definitions_are_named_so_their_uses_stay_quiet() -> None:
    _, _, broken = parse_full(MULTI, P)
    assert broken == {"x", "y", "w", "v"}  # `to` is no name, so no use of it can parse
    _, _, broken = parse_full('pipeline p(a = b\nuse "l.recipe" as lib x\nparam q 1', P)
    assert broken == {"p", "lib", "q"}


def test_the_lexer_gives_up_after_fifty_bad_characters_without_raising() -> None:
    found = errors("x = " + "$" * 80)
    assert len(found) == 50
    assert found[0][:2] == (1, 5) and found[-1][:2] == (1, 54)


def test_a_byte_order_mark_is_not_part_of_the_recipe() -> None:
    (decl, binding) = stmts("\ufeffrecipe bom\nx = 1")
    assert decl.name == "bom" and decl.span == span(1, 1, 1, 11)
    assert binding.name == "x"


def test_an_empty_or_comment_only_file_has_no_statements() -> None:
    assert stmts("") == []
    assert stmts("\n\n# only a comment\n   # another\n") == []


# -- statements -----------------------------------------------------------------------------
def test_recipe_param_use_binding_export() -> None:
    recipe_decl, param, use, binding, export = stmts(
        'recipe demo\nparam teacher = "m"\nuse "lib/c.recipe" as c\n'
        'raw = load.jsonl("data/a.jsonl")\nexport raw to "out/a.jsonl"\n')
    assert recipe_decl == A.RecipeDecl("demo", span(1, 1, 1, 12))
    assert (param.name, param.value.value, param.name_span) == ("teacher", "m", span(2, 7, 2, 14))
    assert (use.path.value, use.alias, use.alias_span) == ("lib/c.recipe", "c", span(3, 23, 3, 24))
    assert binding.name == "raw" and isinstance(binding.value, A.Call)
    assert binding.value.name == "load.jsonl"
    (arg,) = binding.value.args
    assert arg.name is None and arg.value == A.Str("data/a.jsonl", span(4, 18, 4, 32))
    assert export.value == A.Ref("raw", span(5, 8, 5, 11))
    assert export.path == A.Str("out/a.jsonl", span(5, 15, 5, 28))


def test_pipeline_declaration() -> None:
    (decl,) = stmts("pipeline tidy(field, n) =\n    rewrite.normalize(fields=[field])\n"
                    "  | select.length(field=field, min=n)\n")
    assert isinstance(decl, A.PipelineDecl)
    assert decl.name == "tidy" and decl.name_span == span(1, 10, 1, 14)
    assert decl.params == (("field", span(1, 15, 1, 20)), ("n", span(1, 22, 1, 23)))
    assert isinstance(decl.body, A.Pipe)
    assert [s.name for s in decl.body.stages] == ["rewrite.normalize", "select.length"]
    assert decl.span == span(1, 1, 3, 38)


def test_pipeline_without_parameters() -> None:
    (decl,) = stmts('pipeline strip() = rewrite.normalize(fields=["t"])')
    assert decl.params == ()


def test_evolve_block() -> None:
    value = expr("evolve(best, rounds=3) {\n    f(model=m)\n  | g(min_score=7)\n}")
    assert isinstance(value, A.Evolve)
    seed, rounds = value.args
    assert seed.name is None and seed.value == A.Ref("best", span(1, 12, 1, 16))
    assert rounds.name == "rounds" and rounds.value.value == 3
    assert isinstance(value.body, A.Pipe)
    assert [s.name for s in value.body.stages] == ["f", "g"]
    assert value.span == span(1, 5, 4, 2)


@pytest.mark.parametrize("name", ["concat", "mix", "split"])
def test_combinators_take_datasets_positionally(name: str) -> None:
    value = expr(f"{name}(a, b | f(), weights=[1, 2])")
    assert value.name == name
    a, b, w = value.args
    assert (a.name, b.name, w.name) == (None, None, "weights")
    assert isinstance(b.value, A.Pipe)
    assert A.literal_value(w.value) == [1, 2]


def test_export_of_an_expression() -> None:
    (export,) = stmts('export concat(best, grown) to "out/train.jsonl"')
    assert isinstance(export.value, A.Call) and export.value.name == "concat"
    assert export.path.value == "out/train.jsonl"


# -- line continuation ----------------------------------------------------------------------
@pytest.mark.parametrize("text", [
    "x = a |\n  f() |\n  g()",          # after a trailing '|'
    "x = a\n  | f()\n  | g()",          # before a leading '|'
    "x = a\n\n  | f()\n# comment\n  | g()",  # blank and comment lines in between
    "x = a | f(\n) | g(\n\n)",           # inside brackets
    "x =\n  a | f() | g()",            # after '='
])
def test_a_statement_continues_on_the_next_line(text: str) -> None:
    (binding,) = stmts(text)
    assert [getattr(s, "name", None) for s in binding.value.stages] == ["a", "f", "g"]


def test_continuation_inside_brackets_keeps_positions() -> None:
    value = expr('f(\n  a=1,\n  b=[1,\n 2],\n)')
    a, b = value.args
    assert a.value.span == span(2, 5, 2, 6)
    assert b.value.span == span(3, 5, 4, 4)
    assert b.value.items[1].span == span(4, 2, 4, 3)


def test_a_new_statement_ends_a_trailing_pipe() -> None:
    """`x = a |` followed by a statement is an error, not `x = a | y = ...`."""
    recipe, diags = parse("x = a |\ny = b\n", P)
    assert [(d.span.line, d.span.col) for d in diags] == [(1, 8)]
    assert [s.name for s in recipe.stmts] == ["y"]


def test_statements_end_at_newlines() -> None:
    assert [s.name for s in stmts("a = x\nb = y\n\n\nc = z")] == ["a", "b", "c"]


def test_crlf_line_endings() -> None:
    a, b = stmts('a = f(x=1)\r\nb = a\r\n  | g()\r\n')
    assert a.span == span(1, 1, 1, 11)
    assert b.span == span(2, 1, 3, 8)


# -- literals -------------------------------------------------------------------------------
def test_raw_strings_keep_backslashes() -> None:
    value = expr(r'f(pattern=r"(?i)\b(image|graph)\b\d+")').args[0].value
    assert value == A.Str(r"(?i)\b(image|graph)\b\d+", span(1, 15, 1, 42), raw=True)


def test_json_escapes() -> None:
    value = expr(r'f(s="tab\tnl\n q\" bs\\ sl\/ \u00e9\ud83d\ude00 \b\f\r")').args[0].value
    assert value.value == 'tab\tnl\n q" bs\\ sl/ \u00e9\U0001F600 \b\f\r'
    assert value.raw is False


def test_hash_inside_a_string_is_not_a_comment() -> None:
    assert expr('f(s="a # b") # real comment').args[0].value.value == "a # b"


@pytest.mark.parametrize(("text", "value"), [
    ("0", 0), ("42", 42), ("-3", -3), ("1.0", 1.0), ("-2.5", -2.5), (".5", 0.5),
    ("1e3", 1000.0), ("2E-2", 0.02), ("-1.5e+2", -150.0), ("3.", 3.0),
])
def test_numbers(text: str, value: float) -> None:
    num = expr(f"f(n={text})").args[0].value
    assert isinstance(num, A.Num)
    assert num.value == value and type(num.value) is type(value)
    assert num.text == text


def test_ints_stay_ints_and_floats_stay_floats() -> None:
    a, b = expr("f(a=1, b=1.0)").args
    assert type(a.value.value) is int and type(b.value.value) is float


def test_bools_null_lists_and_dicts() -> None:
    args = expr('f(t=true, f=false, n=null, l=[1, "a", [true], []], '
                'd={"k": 1, name: [null]}, trailing=[1, 2,],)').args
    values = {a.name: A.literal_value(a.value) for a in args}
    assert values == {"t": True, "f": False, "n": None, "l": [1, "a", [True], []],
                      "d": {"k": 1, "name": [None]}, "trailing": [1, 2]}
    assert type(values["t"]) is bool
    assert args[2].value == A.Null(span(1, 26, 1, 30))
    assert args[0].value == A.Bool(True, span(1, 9, 1, 13))


def test_comments_are_ignored_everywhere() -> None:
    recipe = stmts("# header\nrecipe r  # the name\n\nx = a # trailing\n"
                   "  # between\n  | f(a=1, # inside\n  b=2)\n# end")
    assert [type(s).__name__ for s in recipe] == ["RecipeDecl", "Binding"]
    assert [a.name for a in recipe[1].value.stages[1].args] == ["a", "b"]


def test_parenthesised_pipes_flatten() -> None:
    value = expr("a | (f() | g()) | h()")
    assert [s.name for s in value.stages] == ["a", "f", "g", "h"]


def test_dotted_names() -> None:
    value = expr("lib.src | lib.tidy(field=\"q\") | select.length(min=1)")
    assert value.stages[0] == A.Ref("lib.src", span(1, 5, 1, 12))
    assert value.stages[1].name == "lib.tidy"
    assert value.stages[1].name_span == span(1, 15, 1, 23)


# -- spans ----------------------------------------------------------------------------------
def test_spans_of_a_call_its_name_and_its_arguments() -> None:
    (binding,) = stmts('clean = raw | select.length(field="output", min=16)')
    assert binding.name_span == span(1, 1, 1, 6)
    assert binding.span == span(1, 1, 1, 52)
    pipe = binding.value
    assert pipe.span == span(1, 9, 1, 52)
    call = pipe.stages[1]
    assert call.name_span == span(1, 15, 1, 28)
    assert call.span == span(1, 15, 1, 52)
    field, low = call.args
    assert field.span == span(1, 29, 1, 43)
    assert field.value.span == span(1, 35, 1, 43)
    assert low.span == span(1, 45, 1, 51)
    assert low.value == A.Num(16, span(1, 49, 1, 51), "16")


def test_spans_of_a_multi_line_statement() -> None:
    (binding,) = stmts("x = a\n  | f(\n      n=1)\n  | g()")
    assert binding.span == span(1, 1, 4, 8)
    assert binding.value.stages[1].span == span(2, 5, 3, 11)
    assert binding.value.stages[1].args[0].value.span == span(3, 9, 3, 10)


# -- fixture files --------------------------------------------------------------------------
EXPECT = re.compile(r"^# expect: (\d+):(\d+): (.+)$")


def _fixture_cases() -> list[Path]:
    return sorted(FIXTURES.glob("*.recipe"))


@pytest.mark.parametrize("path", _fixture_cases(), ids=lambda p: p.stem)
def test_syntax_fixture(path: Path) -> None:
    """Each file's header lists every error `dcc check` reports, in order."""
    from dcc.compiler import compile_recipe
    from dcc.errors import RecipeError

    text = path.read_text(encoding="utf-8")
    want = [(int(m[1]), int(m[2]), m[3]) for m in map(EXPECT.match, text.splitlines()) if m]
    assert want, f"{path.name} has no '# expect: LINE:COL: message' header"
    with pytest.raises(RecipeError) as info:
        compile_recipe(str(path), optimize=False)
    got = [(d.span.line, d.span.col, d.message) for d in info.value.diagnostics]
    assert [g[:2] for g in got] == [w[:2] for w in want], got
    for (_, _, message), (_, _, expected) in zip(got, want):
        assert message.startswith(expected), (message, expected)


def test_there_are_syntax_fixtures() -> None:
    assert len(_fixture_cases()) >= 5


# -- rendering ------------------------------------------------------------------------------
def test_a_diagnostic_renders_as_header_source_line_caret_and_help() -> None:
    _, diags = parse('x = load.jsonl("a.jsonl")\ny = x | select.regex(field="t", pattern="\\d")\n',
                     "r.recipe")
    assert diags[0].render() == "\n".join([
        "r.recipe:2:42: error: invalid escape '\\d' in string",
        '  2 | y = x | select.regex(field="t", pattern="\\d")',
        "    |                                          ^^",
        '  help: strings use JSON escapes (\\n \\t \\" \\\\ \\uXXXX); write r"..." for a raw '
        "string",
    ])


def test_the_caret_spans_the_whole_unterminated_string() -> None:
    _, diags = parse('x = load.jsonl("a.jsonl)', "r.recipe")
    assert diags[0].render().splitlines()[2] == "    |                ^^^^^^^^^"


def test_the_caret_of_an_error_at_the_end_of_a_statement_is_one_wide() -> None:
    _, diags = parse("x = a |\n", "r.recipe")
    assert diags[0].render().splitlines()[1:] == ["  1 | x = a |", "    |        ^"]


@pytest.mark.parametrize("sep", ["\f", "\u2028", "\x85"])
def test_the_quoted_line_is_the_reported_line(sep: str) -> None:
    # The separator sits in a comment: inside a string a raw \f is itself an error (JSON).
    _, diags = parse(f'x = load.jsonl("ab.jsonl")  # a{sep}b\ny = a $ b\n', "r.recipe")
    (d,) = diags
    assert d.span.line == 2
    assert d.render().splitlines()[1] == "  2 | y = a $ b"


@pytest.mark.parametrize("text", [
    "x = mix(\na, b,\nweights=[1, 2])",
    "x = f(\nn=1)",
    "x = f(\n  a=1,\nb=2,\n)",
])
def test_an_argument_at_column_1_inside_brackets_continues_the_call(text: str) -> None:
    (binding,) = stmts(text)
    assert isinstance(binding.value, A.Call)


def test_a_statement_keyword_inside_brackets_starts_a_new_statement() -> None:
    recipe, diags = parse('x = f(a=1,\nexport y to "o.jsonl"', P)
    assert [(d.span.line, d.span.col, d.message) for d in diags] == [(1, 6, "unclosed '('")]
    assert [type(s).__name__ for s in recipe.stmts] == ["ExportStmt"]
