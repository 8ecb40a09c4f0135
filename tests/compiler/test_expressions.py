"""Column expressions: parsing and precedence, compile-time diagnostics at the sub-expression,
and a property test that the vectorized polars form agrees with a plain Python reading of
the same expression on random rows."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dcc.cache.store import DiskStore
from dcc.compiler import ast as A
from dcc.compiler import compile_recipe
from dcc.compiler.expr import preorder, to_polars
from dcc.compiler.fmt import format_text
from dcc.compiler.parser import parse
from dcc.engine.build import build
from dcc.errors import RecipeError

ROWS = [{"q": "What is 2+2?", "a": "4", "n": 3, "x": 1.5, "tags": ["m"]},
        {"q": "Explain gravity", "a": "Gravity pulls\nmasses together.\n", "n": 12,
         "x": None, "tags": []},
        {"q": "hi", "a": "As an AI, I cannot", "n": None, "x": -2.0, "tags": ["a", "b"]}]


def binding_value(src: str) -> Any:
    recipe, diags = parse(f"x = f({src})", "t.recipe")
    assert not diags, [d.render() for d in diags]
    return recipe.stmts[0].value.args[0].value


def shape(e: Any) -> Any:
    if isinstance(e, A.BinOp):
        return (e.op, shape(e.left), shape(e.right))
    if isinstance(e, A.UnOp):
        return (e.op, shape(e.operand))
    if isinstance(e, A.Call):
        return (e.name, *[shape(a.value) for a in e.args])
    if isinstance(e, A.Ref):
        return e.name
    if isinstance(e, A.ListLit):
        return [shape(i) for i in e.items]
    return e.value


@pytest.mark.parametrize(("src", "tree"), [
    ("a or b and not c", ("or", "a", ("and", "b", ("not", "c")))),
    ("not a == b", ("not", ("==", "a", "b"))),
    ("a + b * c - d / e", ("-", ("+", "a", ("*", "b", "c")), ("/", "d", "e"))),
    ("-a * -3", ("*", ("-", "a"), -3)),
    ("(a + b) * c", ("*", ("+", "a", "b"), "c")),
    ("len(q) >= 2 * len(a)", (">=", ("len", "q"), ("*", 2, ("len", "a")))),
    ("x in [1, 2]", ("in", "x", [1, 2])),
    ("a-1", ("-", "a", 1)),
])
def test_precedence(src: str, tree: Any) -> None:
    assert shape(binding_value(src)) == tree


def test_negative_literals_stay_numbers() -> None:
    value = binding_value("-9223372036854775808")
    assert isinstance(value, A.Num) and value.value == -(2 ** 63)


@pytest.fixture
def compile_body(recipe_dir: Callable[..., Path]) -> Callable[[str], Any]:
    def _compile(body: str) -> Any:
        root = recipe_dir({"d.jsonl": ROWS, "r.recipe":
                           f'param lim = 5\nrows = load.jsonl("d.jsonl")\n{body}\n'
                           'export y to "o.jsonl"\n'})
        return compile_recipe(str(root / "r.recipe"))
    return _compile


def problems(compile_body: Callable[[str], Any], body: str) -> list[tuple[int, int, str, Any]]:
    with pytest.raises(RecipeError) as e:
        compile_body(body)
    return [(d.span.line, d.span.col, d.message, d.help) for d in e.value.diagnostics]


@pytest.mark.parametrize(("body", "expected"), [
    ("y = rows | select.where(len(qq) > 3)",
     (3, 29, "select.where: no column 'qq' in the input", "did you mean 'q'?")),
    ("y = rows | select.where(lenn(q) > 3)",
     (3, 25, "unknown function 'lenn'", "did you mean 'len'?")),
    ("y = rows | select.where(len(n) > 3)",
     (3, 25, "select.where: len() argument 1 must be str or list, got int", None)),
    ("y = rows | select.where(len(q))",
     (3, 25, "select.where: the condition must be true/false, but it is int", None)),
    ("y = rows | select.where(contains(q) and n > 1)",
     (3, 25, "select.where: contains() takes 2 arguments, got 1", None)),
    ('y = rows | select.where(q > 1)',
     (3, 25, "select.where: cannot compare str with int", None)),
    ('y = rows | select.where(matches(q, r"(?=x)"))',
     (3, 25, "select.where: matches(): is not a valid regular expression: look-around, "
             "including look-ahead and look-behind, is not supported (got '(?=x)')", None)),
    ("y = rows | select.sample(n=1 + 1)",
     (3, 28, "this argument takes a value, not an expression",
      "expressions go to select.where, rewrite.derive and bounds such as min/max of "
      "select.length")),
    ("y = rows | select.where(rows == 1)",
     (3, 25, "'rows' is a dataset; an expression reads columns of its input",
      'to name a column, write col("rows")')),
    ('y = rows | select.length(field="q", max=lower(q))',
     (3, 41, "select.length: 'max' must be a number, but the expression is str", None)),
    ("y = rows | rewrite.derive(m=n + q)",
     (3, 29, "rewrite.derive: '+' needs numbers or two strings, got int and str", None)),
])
def test_diagnostics_point_at_the_sub_expression(compile_body, body, expected) -> None:
    found = problems(compile_body, body)
    assert len(found) == 1, found
    line, col, message, help_ = found[0]
    assert (line, col) == expected[:2], found
    assert message == expected[2] or message.startswith(expected[2].split(": is")[0]), found
    if expected[3] is not None:
        assert help_ == expected[3]


def test_params_and_pipeline_arguments_are_values_col_names_a_column(compile_body) -> None:
    program = compile_body('pipeline short(f) = select.where(len(col(f)) <= lim)\n'
                           'y = rows | short(f="q")')
    where = next(n for n in program.nodes() if n.op.name == "select.where")
    assert where.op.p["expr"] == {"op": "<=", "args": [
        {"fn": "len", "args": [{"col": "q"}]}, {"lit": 5}]}
    assert where.op.reads() == ["q"]


def test_build_with_expressions(recipe_dir) -> None:
    root = recipe_dir({"d.jsonl": ROWS, "r.recipe": (
        'rows = load.jsonl("d.jsonl")\n'
        'y = rows\n'
        '  | select.where(not contains(lower(a), "as an ai") and coalesce(n, 0) < 20)\n'
        '  | rewrite.derive(w=words(q), l=lines(a), r=len(a) / len(q), t=len(tags), '
        'big=n * 2 > 5, s=upper(q) + "!")\n'
        '  | select.length(field="a", max=len(q) * 3)\n'
        'export y to "o.jsonl"\n')})
    with DiskStore(root / ".dcc") as store:
        build(compile_recipe(str(root / "r.recipe")), store)
    out = [json.loads(x) for x in (root / "o.jsonl").read_text().splitlines()]
    assert [(r["w"], r["l"], r["t"], r["big"], r["s"]) for r in out] == [
        (3, 1, 1, True, "WHAT IS 2+2?!"), (2, 2, 0, True, "EXPLAIN GRAVITY!")]
    assert out[0]["r"] == 1 / 12 and out[1]["r"] == len(ROWS[1]["a"]) / len("Explain gravity")


def test_fmt_keeps_parentheses_and_breaks_at_and(recipe_dir) -> None:
    text = ('y = rows | select.where(( a+b )*c>1 and not contains(lower(output), "as an ai model"'
            ') and words(question) in [20, 21, 22] or -x<=-3)\n')
    out = format_text(text, "r.recipe")
    assert out == ("y = rows\n"
                   "  | select.where(\n"
                   "        (a + b) * c > 1\n"
                   '        and not contains(lower(output), "as an ai model")\n'
                   "        and words(question) in [20, 21, 22]\n"
                   "        or -x <= -3,\n"
                   "    )\n")
    assert format_text(out, "r.recipe") == out


# -- the property: vectorized == a plain Python reading ------------------------------------------
COLUMNS = {"s": "str", "t": "str", "i": "int", "j": "int", "f": "float", "b": "bool"}
TEXT = st.text(alphabet="abAB é\n1", max_size=8)
PATTERNS = [r"a+b", r"^A", r"\d", r"(?i)b$"]


def rows_strategy() -> st.SearchStrategy[list[dict[str, Any]]]:
    row = st.fixed_dictionaries({
        "s": st.none() | TEXT, "t": st.none() | TEXT,
        "i": st.none() | st.integers(-5, 5), "j": st.none() | st.integers(-5, 5),
        "f": st.none() | st.sampled_from([-2.5, -1.0, 0.0, 0.5, 3.25]),
        "b": st.none() | st.booleans()})
    return st.lists(row, min_size=1, max_size=12)


@functools.cache  # one strategy object per (kind, depth): building them is the slow part
def tree_of(kind: str, depth: int) -> st.SearchStrategy[dict[str, Any]]:
    leaves = {
        "str": st.sampled_from([{"col": "s"}, {"col": "t"}]) | TEXT.map(lambda v: {"lit": v}),
        "num": st.sampled_from([{"col": "i"}, {"col": "j"}, {"col": "f"}]) |
        st.integers(-3, 3).map(lambda v: {"lit": v}),
        "bool": st.sampled_from([{"col": "b"}, {"lit": True}, {"lit": False}]),
    }[kind]
    if depth == 0:
        return leaves
    sub = lambda k: tree_of(k, depth - 1)  # noqa: E731
    fn = lambda name, *ks: st.tuples(*[sub(k) for k in ks]).map(  # noqa: E731
        lambda args: {"fn": name, "args": list(args)})
    op = lambda name, *ks: st.tuples(*[sub(k) for k in ks]).map(  # noqa: E731
        lambda args: {"op": name, "args": list(args)})
    options = {
        "str": [fn("lower", "str"), fn("upper", "str"), fn("strip", "str"),
                op("+", "str", "str"), fn("coalesce", "str", "str")],
        "num": [fn("len", "str"), fn("words", "str"), fn("lines", "str"), fn("abs", "num"),
                *[op(o, "num", "num") for o in "+-*/"], op("-", "num"),
                fn("coalesce", "num", "num")],
        "bool": [*[op(o, "num", "num") for o in ("==", "!=", "<", "<=", ">", ">=")],
                 *[op(o, "str", "str") for o in ("==", "<")],
                 op("and", "bool", "bool"), op("or", "bool", "bool"), op("not", "bool"),
                 fn("contains", "str", "str"), fn("startswith", "str", "str"),
                 fn("endswith", "str", "str"), fn("is_null", "num"),
                 st.tuples(sub("num"), st.lists(st.integers(-3, 3), max_size=3)).map(
                     lambda a: {"op": "in", "args": [a[0], {"lit": a[1]}]}),
                 st.tuples(sub("str"), st.sampled_from(PATTERNS)).map(
                     lambda a: {"fn": "matches", "args": [a[0], {"lit": a[1]}]})],
    }[kind]
    return leaves | st.one_of(*options)


def py_eval(node: dict[str, Any], row: dict[str, Any]) -> Any:
    """The reference: what each construct means, one row at a time, in plain Python."""
    import re

    if "lit" in node:
        return node["lit"]
    if "col" in node:
        return row[node["col"]]
    args = node["args"]
    if node.get("fn") == "coalesce":
        return next((v for v in (py_eval(a, row) for a in args) if v is not None), None)
    if node.get("fn") == "is_null":
        return py_eval(args[0], row) is None
    if node.get("op") in ("and", "or"):
        a, b = (py_eval(x, row) for x in args)
        decisive = node["op"] == "or"  # True decides `or`, False decides `and`
        if decisive in (a, b):
            return decisive
        return None if None in (a, b) else not decisive
    if node.get("op") == "in":
        v = py_eval(args[0], row)
        return None if v is None else v in args[1]["lit"]
    vals = [py_eval(a, row) for a in args]
    if node.get("fn") == "matches":
        return None if vals[0] is None else bool(re.search(args[1]["lit"], vals[0]))
    if None in vals:
        return None
    name = node.get("fn") or node["op"]
    if name == "-" and len(vals) == 1:
        return -vals[0]
    if name == "/":
        return None if vals[1] == 0 else vals[0] / vals[1]
    return {
        "len": lambda s: len(s), "words": lambda s: len(s.split()),
        "lines": lambda s: 0 if s == "" else s.count("\n") + 1 - s.endswith("\n"),
        "lower": str.lower, "upper": str.upper, "strip": str.strip, "abs": abs,
        "contains": lambda s, t: t in s, "startswith": str.startswith,
        "endswith": str.endswith, "not": lambda a: not a,
        "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
        "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
    }[name](*vals)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=rows_strategy(), tree=st.one_of(tree_of("str", 3), tree_of("num", 3),
                                            tree_of("bool", 3)))
def test_vectorized_agrees_with_python(rows: list[dict[str, Any]], tree: dict[str, Any]) -> None:
    df = pl.DataFrame(rows, schema={"s": pl.String, "t": pl.String, "i": pl.Int64,
                                    "j": pl.Int64, "f": pl.Float64, "b": pl.Boolean})
    got = df.with_columns(to_polars(tree).alias("v"))["v"].to_list()
    want = [py_eval(tree, row) for row in rows]
    assert got == want, (tree, rows)
    assert len(preorder(tree)) >= 1
