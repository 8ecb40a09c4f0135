"""The recipe AST: frozen dataclasses, each carrying the Span it came from.

Expressions and statements are plain values so that the formatter, resolver and tests can
compare and walk them without lark. `to_ast.py` builds them from the lark tree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Union

from dcc.spans import Span


@dataclass(frozen=True)
class Str:
    value: str
    span: Span
    raw: bool = False


@dataclass(frozen=True)
class Num:
    value: int | float
    span: Span
    text: str = ""


@dataclass(frozen=True)
class Bool:
    value: bool
    span: Span


@dataclass(frozen=True)
class Null:
    span: Span

    @property
    def value(self) -> None:
        return None


@dataclass(frozen=True)
class ListLit:
    items: tuple[Expr, ...]
    span: Span


@dataclass(frozen=True)
class DictLit:
    items: tuple[tuple[str, Expr], ...]
    span: Span


@dataclass(frozen=True)
class Ref:
    """A (possibly dotted) name: a binding, a param, or `alias.name` from an import."""

    name: str
    span: Span


@dataclass(frozen=True)
class Arg:
    name: str | None  # None for positional arguments
    value: Expr
    span: Span


@dataclass(frozen=True)
class Call:
    """An operator, combinator or pipeline applied to arguments."""

    name: str
    name_span: Span
    args: tuple[Arg, ...]
    span: Span


@dataclass(frozen=True)
class Evolve:
    args: tuple[Arg, ...]
    body: Expr
    span: Span


@dataclass(frozen=True)
class BinOp:
    """`a op b` in a column expression: op is one of or and == != < <= > >= in + - * /."""

    op: str
    left: Expr
    right: Expr
    span: Span


@dataclass(frozen=True)
class UnOp:
    """`not a` or `-a` in a column expression (a minus before a number literal is folded
    into the number)."""

    op: str
    operand: Expr
    span: Span


@dataclass(frozen=True)
class Pipe:
    stages: tuple[Expr, ...]
    span: Span


Literal = Union[Str, Num, Bool, Null, ListLit, DictLit]
Expr = Union[Str, Num, Bool, Null, ListLit, DictLit, Ref, Call, Evolve, Pipe, BinOp, UnOp]


@dataclass(frozen=True)
class RecipeDecl:
    name: str
    span: Span


@dataclass(frozen=True)
class ParamDecl:
    name: str
    name_span: Span
    value: Expr
    span: Span


@dataclass(frozen=True)
class UseDecl:
    path: Str
    alias: str
    alias_span: Span
    span: Span


@dataclass(frozen=True)
class PipelineDecl:
    name: str
    name_span: Span
    params: tuple[tuple[str, Span], ...]
    body: Expr
    span: Span


@dataclass(frozen=True)
class ExportStmt:
    value: Expr
    path: Str
    span: Span


@dataclass(frozen=True)
class Binding:
    name: str
    name_span: Span
    value: Expr
    span: Span


Stmt = Union[RecipeDecl, ParamDecl, UseDecl, PipelineDecl, ExportStmt, Binding]


@dataclass
class Recipe:
    path: str
    stmts: list[Stmt] = field(default_factory=list)

    @property
    def name(self) -> str | None:
        return next((s.name for s in self.stmts if isinstance(s, RecipeDecl)), None)


def literal_value(expr: Expr) -> Any:
    """The Python value of a literal expression (lists and dicts recursively)."""
    if isinstance(expr, ListLit):
        return [literal_value(e) for e in expr.items]
    if isinstance(expr, DictLit):
        return {k: literal_value(v) for k, v in expr.items}
    if isinstance(expr, (Str, Num, Bool, Null)):
        return expr.value
    raise TypeError(f"not a literal: {type(expr).__name__}")


def is_literal(expr: Expr) -> bool:
    if isinstance(expr, ListLit):
        return all(is_literal(e) for e in expr.items)
    if isinstance(expr, DictLit):
        return all(is_literal(v) for _, v in expr.items)
    return isinstance(expr, (Str, Num, Bool, Null))
