"""Column expressions: `len(instruction) > 10 and not contains(output, "sorry")`.

Parsed by the recipe grammar (recipe.lark's `value` rules), lowered by the resolver into a
plain JSON tree (so it can go into node keys as canonical bytes), type-checked against the
input's column schema at compile time, and compiled to one vectorized polars expression at
run time. Nothing is ever evaluated as Python: the tree can only name the columns, literals,
operators and functions below.

Tree nodes (each a one-key dict): `{"col": NAME}`, `{"lit": VALUE}`, `{"op": OP, "args":
[...]}` and `{"fn": NAME, "args": [...]}`. Nodes are numbered in preorder; the resolver keeps
node i's source span as `arg_spans[f"{param}#{i}"]` so a type error points at the exact
sub-expression.

Semantics (docs/language.md "Expressions" has them with examples):

* names are columns, unless a param or pipeline argument of that name is in scope (then its
  value); `col("name")` names a column explicitly, also through a pipeline argument;
* `and`, `or`, `not` use three-valued logic: null and false is false, null or true is true,
  otherwise a null operand gives null; comparisons with null give null; `select.where` keeps
  a row only where its condition is true;
* `+ - * /` on numbers (`/` always gives a float, and x / 0 is null); `+` also joins strings;
* `x in [..]` tests membership in a literal list; comparisons do not chain;
* functions: see FUNCTIONS; each returns null for a null text argument, except `is_null`
  and `coalesce`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import polars as pl

    from dcc.schema import Schema

Tree = dict[str, Any]
NUMERIC = {"int", "float"}
COMPARE = ("==", "!=", "<", "<=", ">", ">=")


@dataclass(frozen=True)
class Fn:
    args: tuple[str, ...]  # argument types: "str", "number", "str|list", "any", "*any"
    returns: str  # a type, or "same" for coalesce
    doc: str


FUNCTIONS: dict[str, Fn] = {
    "len": Fn(("str|list",), "int", "characters in a string, items in a list"),
    "words": Fn(("str",), "int", "words, as Python's len(s.split())"),
    "lines": Fn(("str",), "int", "lines separated by \\n, a final newline ending the last "
                                 "line (0 for the empty string)"),
    "lower": Fn(("str",), "str", "lowercase"),
    "upper": Fn(("str",), "str", "uppercase"),
    "strip": Fn(("str",), "str", "without leading and trailing white space"),
    "contains": Fn(("str", "str"), "bool", "whether the text holds the substring"),
    "startswith": Fn(("str", "str"), "bool", "whether the text starts with the prefix"),
    "endswith": Fn(("str", "str"), "bool", "whether the text ends with the suffix"),
    "matches": Fn(("str", "regex"), "bool", "whether a Rust-syntax regular expression (a "
                                            "literal) matches anywhere in the text"),
    "is_null": Fn(("any",), "bool", "whether the value is null (never null itself)"),
    "coalesce": Fn(("*any",), "same", "the first of its arguments that is not null"),
    "abs": Fn(("number",), "same", "absolute value"),
}


class ExprError(Exception):
    """A problem with one node of a tree: `index` is its preorder number."""

    def __init__(self, index: int, message: str) -> None:
        super().__init__(message)
        self.index = index
        self.message = message


# -- walking -------------------------------------------------------------------------------------
def preorder(tree: Tree) -> list[Tree]:
    """The nodes in preorder: node i here is the one whose span is `#i`."""
    out = [tree]
    for child in tree.get("args", []):
        out.extend(preorder(child))
    return out


def columns(tree: Tree) -> list[str]:
    """The columns an expression reads, in first-use order.

    >>> columns({"op": ">", "args": [{"fn": "len", "args": [{"col": "a"}]}, {"col": "b"}]})
    ['a', 'b']
    """
    return list(dict.fromkeys(n["col"] for n in preorder(tree) if "col" in n))


def is_tree(value: Any) -> bool:
    """Whether a parameter value is an expression tree rather than a plain literal."""
    return isinstance(value, dict) and len(value) in (1, 2) and \
        bool({"col", "lit", "op", "fn"} & value.keys())


# -- types ---------------------------------------------------------------------------------------
def _lit_type(value: Any) -> str:
    """A literal's type, named as parameter values are (literals are never dicts)."""
    from dcc.ops.params import type_name

    return type_name(value)


def _fits(have: str, want: str) -> bool:
    if have in ("any", "null") or want == "any":
        return True
    if want == "number":
        return have in NUMERIC
    return have in want.split("|")


def infer(tree: Tree, schema: Schema) -> str:
    """The type of `tree` over rows of `schema`; ExprError at the first problem.

    Types are the schema's: "str", "int", "float", "bool", "list", "struct", "any"; "null"
    for the null literal.
    """
    counter = iter(range(1 << 30))
    return _infer(tree, schema, counter)


def _infer(node: Tree, schema: Schema, counter: Any) -> str:
    index = next(counter)
    if "lit" in node:
        return _lit_type(node["lit"])
    if "col" in node:
        name = node["col"]
        if not schema.has(name):
            raise ExprError(index, f"no column '{name}' in the input")
        return schema.columns.get(name, "any")
    args = [(_infer(a, schema, counter)) for a in node["args"]]
    if "fn" in node:
        return _infer_fn(index, node, args)
    return _infer_op(index, node["op"], args, node["args"])


def _infer_op(index: int, op: str, args: list[str], nodes: list[Tree]) -> str:
    if op in ("and", "or", "not"):
        for t in args:
            if not _fits(t, "bool"):
                raise ExprError(index, f"'{op}' needs true/false operands, got {t}")
        return "bool"
    if op == "-" and len(args) == 1:
        if not _fits(args[0], "number"):
            raise ExprError(index, f"'-' needs a number, got {args[0]}")
        return args[0]
    left, right = args
    if op == "in":
        if "lit" not in nodes[1] or not isinstance(nodes[1]["lit"], list):
            raise ExprError(index, "'in' needs a literal list on its right: x in [\"a\", \"b\"]")
        kinds = {"number" if t in NUMERIC else t for t in map(_lit_type, nodes[1]["lit"])}
        mine = "number" if left in NUMERIC else left
        if len(kinds) > 1 or (kinds and mine not in ("any", "null") and kinds != {mine}):
            raise ExprError(index, f"'in' compares {left} with a list of "
                                   f"{' and '.join(sorted(kinds))}")
        return "bool"
    if op in COMPARE:
        same = left == right or {left, right} <= NUMERIC or "any" in (left, right) or \
            "null" in (left, right)
        if not same:
            raise ExprError(index, f"cannot compare {left} with {right}")
        if op not in ("==", "!=") and left in ("bool", "list", "struct"):
            raise ExprError(index, f"'{op}' needs numbers or strings, got {left}")
        return "bool"
    if op == "+" and (left == right == "str" or (left == "str" and right in ("any", "null"))
                      or (right == "str" and left in ("any", "null"))):
        return "str"
    for t in (left, right):
        if not _fits(t, "number"):
            raise ExprError(index, f"'{op}' needs numbers{' or two strings' if op == '+' else ''}"
                                   f", got {left} and {right}")
    if op == "/":
        return "float"
    return "int" if left == right == "int" else "float" if "any" not in (left, right) else "any"


def _infer_fn(index: int, node: Tree, args: list[str]) -> str:
    name = node["fn"]
    fn = FUNCTIONS[name]
    variadic = fn.args == ("*any",)
    if (variadic and not args) or (not variadic and len(args) != len(fn.args)):
        want = "at least 1 argument" if variadic else \
            f"{len(fn.args)} argument{'s' if len(fn.args) != 1 else ''}"
        raise ExprError(index, f"{name}() takes {want}, got {len(args)}")
    if not variadic:
        for i, (have, want) in enumerate(zip(args, fn.args)):
            if want == "regex":
                _check_regex(index, node["args"][i])
                continue
            if not _fits(have, want):
                raise ExprError(index, f"{name}() argument {i + 1} must be "
                                       f"{want.replace('|', ' or ')}, got {have}")
    if fn.returns == "same":
        known = [t for t in args if t not in ("null", "any")]
        return known[0] if known and all(t == known[0] for t in known) else "any"
    return fn.returns


def _check_regex(index: int, node: Tree) -> None:
    from dcc.ops.select import regex_problem

    if "lit" not in node or not isinstance(node["lit"], str):
        raise ExprError(index, "matches() takes its pattern as a string literal")
    problem = regex_problem(node["lit"])
    if problem:
        raise ExprError(index, f"matches(): {problem}")


# -- compiling to polars -------------------------------------------------------------------------
def to_polars(tree: Tree) -> pl.Expr:
    """One vectorized polars expression for the tree (see the module doc for semantics)."""
    import polars as pl

    if "lit" in tree:
        # a full-length column, not a scalar: polars 2.1 mis-sizes some scalar-first forms
        # (`"" == coalesce(s, "")`, `"".fill_null(s)` on a column of nulls; found by the
        # property test), and a column is always sized right
        value = tree["lit"]
        dtype = pl.Int64 if type(value) is int else None
        return pl.repeat(value, pl.len(), dtype=dtype)
    if "col" in tree:
        return pl.col(tree["col"])
    if "fn" in tree:
        return _FN_POLARS[tree["fn"]](tree["args"])
    op, args = tree["op"], tree["args"]
    if op == "in":
        items = args[1]["lit"]
        if items and all(type(v) in (int, float) for v in items):  # 1.0 in [1], as in Python
            return to_polars(args[0]).cast(pl.Float64).is_in(
                pl.Series(items, dtype=pl.Float64).implode())
        return to_polars(args[0]).is_in(pl.Series(items).implode())
    xs = [to_polars(a) for a in args]
    if op == "not":
        return ~xs[0]
    if op == "-" and len(xs) == 1:
        return -xs[0]
    a, b = xs
    if op == "/":
        return pl.when(b == 0).then(None).otherwise(a.cast(pl.Float64) / b)
    return _BINARY[op](a, b)


_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "and": lambda a, b: a & b, "or": lambda a, b: a | b,
    "==": lambda a, b: a == b, "!=": lambda a, b: a != b, "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b, ">": lambda a, b: a > b, ">=": lambda a, b: a >= b,
    "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
}


def _len(args: list[Tree]) -> pl.Expr:
    import polars as pl

    x = to_polars(args[0])
    # a list column and a string column share one tree form; the dtype decides at run time
    return pl.when(x.is_null()).then(None).otherwise(
        x.str.len_chars() if _is_text(args[0]) else x.list.len()).cast(pl.Int64)


def _is_text(node: Tree) -> bool:
    return node.get("_type", "str") == "str"


def _lines(args: list[Tree]) -> pl.Expr:
    import polars as pl

    s = to_polars(args[0])
    n = s.str.count_matches("\n", literal=True) + 1 - s.str.ends_with("\n").cast(pl.UInt32)
    return pl.when(s == "").then(0).otherwise(n).cast(pl.Int64)


def _text2(method: str) -> Callable[[list[Tree]], pl.Expr]:
    def build(args: list[Tree]) -> pl.Expr:
        s = to_polars(args[0])
        sub = args[1]["lit"] if isinstance(args[1].get("lit"), str) else to_polars(args[1])
        if method == "contains":
            return s.str.contains(sub, literal=True)
        return getattr(s.str, method)(sub)
    return build


def _fn(make: Callable[..., pl.Expr]) -> Callable[[list[Tree]], pl.Expr]:
    return lambda args: make(*(to_polars(a) for a in args))


def _words(s: pl.Expr) -> pl.Expr:
    from dcc.ops.select import WORD  # select.words' definition: Python's str.split() words

    return s.str.count_matches(WORD).cast(int)


def _coalesce(args: list[Tree]) -> pl.Expr:
    import polars as pl

    return pl.coalesce([to_polars(a) for a in args])


_FN_POLARS: dict[str, Callable[[list[Tree]], pl.Expr]] = {
    "len": _len,
    "words": lambda args: _words(to_polars(args[0])),
    "lines": _lines,
    "lower": _fn(lambda s: s.str.to_lowercase()),
    "upper": _fn(lambda s: s.str.to_uppercase()),
    "strip": _fn(lambda s: s.str.strip_chars()),
    "contains": _text2("contains"),
    "startswith": _text2("starts_with"),
    "endswith": _text2("ends_with"),
    "matches": lambda args: to_polars(args[0]).str.contains(args[1]["lit"]),
    "is_null": _fn(lambda x: x.is_null()),
    "coalesce": _coalesce,
    "abs": _fn(lambda x: x.abs()),
}


def annotate(tree: Tree, schema: Schema) -> Tree:
    """A copy of `tree` in which each `len` argument records whether it is text or a list,
    which polars needs to know and the schema knows (`_type`); used at run time with the
    input's actual schema."""
    if "args" not in tree:
        return tree
    args = [annotate(a, schema) for a in tree["args"]]
    out = {**tree, "args": args}
    if tree.get("fn") == "len":
        try:
            kind = infer(args[0], schema)
        except ExprError:
            kind = "str"
        args[0] = {**args[0], "_type": "list" if kind == "list" else "str"}
    return out


__all__ = ["COMPARE", "FUNCTIONS", "ExprError", "Tree", "annotate", "columns", "infer",
           "is_tree", "preorder", "to_polars"]
