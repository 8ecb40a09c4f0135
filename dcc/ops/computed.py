"""Operators over column expressions: `select.where` (a condition across columns) and
`rewrite.derive` (computed columns). The expression language is in dcc/compiler/expr.py and
docs/language.md; both operators compile to one vectorized polars expression, so they fuse
with the other row-wise operators and never run Python per row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dcc.ops import register
from dcc.ops.base import Filter, Map, P
from dcc.schema import Schema

if TYPE_CHECKING:
    import polars as pl


class _UsesExpressions:
    """Keeps the expression trees annotated with the input's column types (which `len` needs
    to tell text from lists); the annotation is derived, never part of the key."""

    p: dict[str, Any]

    def typed(self, key: str, tree: dict[str, Any]) -> dict[str, Any]:
        return self.__dict__.get("_typed", {}).get(key, tree)

    def remember_types(self, trees: dict[str, dict[str, Any]], schema: Schema) -> None:
        from dcc.compiler.expr import annotate

        self.__dict__["_typed"] = {k: annotate(t, schema) for k, t in trees.items()}


@register
class SelectWhere(_UsesExpressions, Filter):
    """Keep the rows where a condition over their columns is true.

    The condition is an expression (docs/language.md, "Expressions"): columns by name,
    literals, `== != < <= > >=`, `x in [..]`, `and or not`, `+ - * /`, and the functions
    len, words, lines, lower, upper, strip, contains, startswith, endswith, matches, is_null,
    coalesce, abs; `col("name")` names a column explicitly (also through a pipeline
    argument). Logic is three-valued: a comparison with a null is null, and a row whose
    condition is null or false is dropped. Types and column names are checked at compile
    time, at the sub-expression at fault.

    Example:  select.where(len(output) >= 2 * len(instruction) and not contains(lower(output),
                           "as an ai"))

    >>> import polars as pl
    >>> from dcc.ops.base import RunContext
    >>> df = pl.DataFrame({"q": ["hi", "hello", None], "n": [1, 5, 3]})
    >>> tree = {"op": "and", "args": [{"op": ">", "args": [{"fn": "len", "args": [{"col": "q"}]},
    ...         {"lit": 2}]}, {"op": "<", "args": [{"col": "n"}, {"lit": 9}]}]}
    >>> SelectWhere(expr=tree).run([df], RunContext("t"))["q"].to_list()
    ['hello']
    """

    name = "select.where"
    version = 1
    cost = 2.0
    params = (P("expr", "expr", doc="the condition rows must meet", positional=True),)

    def output_schema(self, inputs: list[Schema]) -> Schema:
        base = inputs[0] if inputs else Schema.unknown()
        self.remember_types({"expr": self.p["expr"]}, base)
        return base

    def predicate(self) -> pl.Expr:
        from dcc.compiler.expr import to_polars

        return to_polars(self.typed("expr", self.p["expr"])).fill_null(False)


@register
class RewriteDerive(_UsesExpressions, Map):
    """Add or replace columns computed from each row: `rewrite.derive(NAME=EXPR, ...)`.

    Each named argument is a column to write and an expression (docs/language.md,
    "Expressions"), computed from the input row: the expressions of one call do not see each
    other's results (chain two calls for that). An existing column of the same name is
    replaced. Types follow the expression (`len` gives int, `/` float, comparisons bool); a
    null input gives null unless the expression handles it (`coalesce`, `is_null`).

    Example:  rewrite.derive(n_words=words(output), ratio=len(output) / len(instruction),
                             short=len(output) < 200)

    >>> import polars as pl
    >>> from dcc.ops.base import RunContext
    >>> df = pl.DataFrame({"q": ["hi", "hello"]})
    >>> op = RewriteDerive(columns={"n": {"fn": "len", "args": [{"col": "q"}]}})
    >>> op.run([df], RunContext("t"))["n"].to_list()
    [2, 5]
    """

    name = "rewrite.derive"
    version = 1
    cost = 2.0
    extra_args = "columns"
    params = (P("columns", "dict", doc="new column name -> expression (write them as named "
                                       "arguments)", expr=True),)

    def validate(self) -> list[tuple[str | None, str]]:
        if not self.p["columns"]:
            return [(None, "give at least one column: rewrite.derive(name=expression)")]
        return []

    def writes(self) -> list[str]:
        return list(self.p["columns"])

    def output_schema(self, inputs: list[Schema]) -> Schema:
        from dcc.compiler.expr import ExprError, infer

        base = inputs[0] if inputs else Schema.unknown()
        self.remember_types(self.p["columns"], base)
        types = {}
        for name, tree in self.p["columns"].items():
            try:
                kind = infer(tree, base)
            except ExprError:
                kind = "any"  # reported by the compiler's expression check
            types[name] = "any" if kind == "null" else kind
        return base.with_columns(**types)

    def exprs(self) -> list[pl.Expr]:
        from dcc.compiler.expr import to_polars

        return [to_polars(self.typed(name, tree)).alias(name)
                for name, tree in self.p["columns"].items()]


__all__ = ["RewriteDerive", "SelectWhere"]
