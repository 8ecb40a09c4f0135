"""lark parse tree -> AST dataclasses, with spans from lark's propagated positions.

A hand-written Transformer rather than `ast_utils.create_transformer`: the AST classes keep
separate spans for names (carets under `select.lenght`, not the whole call), which needs
token positions that the generic builder does not pass through.
"""

from __future__ import annotations

import json

from lark import Token, Transformer, Tree, v_args

from dcc.compiler import ast as A
from dcc.spans import Span


class ToAst(Transformer):
    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path

    # -- positions ---------------------------------------------------------------------------
    def _span(self, meta) -> Span:  # noqa: ANN001 - lark Meta
        if getattr(meta, "empty", True):
            return Span(self.path, 0, 0, 0, 0)
        return Span(self.path, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tok(self, tok: Token) -> Span:
        return Span(self.path, tok.line, tok.column, tok.end_line, tok.end_column)

    # -- literals ----------------------------------------------------------------------------
    @v_args(meta=True)
    def string(self, meta, children):  # noqa: ANN001
        tok: Token = children[0]
        if tok.type == "RAW_STRING":
            return A.Str(tok.value[2:-1], self._tok(tok), raw=True)
        return A.Str(json.loads(tok.value), self._tok(tok))

    def number(self, children):  # noqa: ANN001
        tok: Token = children[0]
        text = tok.value
        is_float = any(c in text for c in ".eE")
        value: int | float = float(text) if is_float else int(text)
        return A.Num(value, self._tok(tok), text)

    # -- column expressions ----------------------------------------------------------------
    @v_args(meta=True)
    def or_op(self, meta, children):  # noqa: ANN001
        return A.BinOp("or", children[0], children[1], self._span(meta))

    @v_args(meta=True)
    def and_op(self, meta, children):  # noqa: ANN001
        return A.BinOp("and", children[0], children[1], self._span(meta))

    @v_args(meta=True)
    def not_op(self, meta, children):  # noqa: ANN001
        return A.UnOp("not", children[0], self._span(meta))

    @v_args(meta=True)
    def cmp_op(self, meta, children):  # noqa: ANN001
        left, op, right = children
        return A.BinOp(str(op), left, right, self._span(meta))

    @v_args(meta=True)
    def in_op(self, meta, children):  # noqa: ANN001
        return A.BinOp("in", children[0], children[1], self._span(meta))

    @v_args(meta=True)
    def arith(self, meta, children):  # noqa: ANN001
        left, op, right = children
        return A.BinOp(str(op), left, right, self._span(meta))

    @v_args(meta=True)
    def neg(self, meta, children):  # noqa: ANN001
        operand = children[1]
        span = self._span(meta)
        if isinstance(operand, A.Num):  # `-3` is the number -3, written as the user wrote it
            return A.Num(-operand.value, span, "-" + operand.text)
        return A.UnOp("-", operand, span)

    @v_args(meta=True)
    def true(self, meta, _children):  # noqa: ANN001
        return A.Bool(True, self._span(meta))

    @v_args(meta=True)
    def false(self, meta, _children):  # noqa: ANN001
        return A.Bool(False, self._span(meta))

    @v_args(meta=True)
    def null(self, meta, _children):  # noqa: ANN001
        return A.Null(self._span(meta))

    @v_args(meta=True)
    def list(self, meta, children):  # noqa: ANN001
        return A.ListLit(tuple(c for c in children if c is not None), self._span(meta))

    @v_args(meta=True)
    def dict(self, meta, children):  # noqa: ANN001
        return A.DictLit(tuple(c for c in children if c is not None), self._span(meta))

    def pair(self, children):  # noqa: ANN001
        key, value = children
        return (key.value if isinstance(key, A.Str) else str(key), value)

    # -- expressions -------------------------------------------------------------------------
    @v_args(meta=True)
    def qualname(self, meta, children):  # noqa: ANN001
        return (".".join(str(c) for c in children), self._span(meta))

    def ref(self, children):  # noqa: ANN001
        name, span = children[0]
        return A.Ref(name, span)

    @v_args(meta=True)
    def kwarg(self, meta, children):  # noqa: ANN001
        name, value = children
        return A.Arg(str(name), value, self._span(meta))

    @v_args(meta=True)
    def posarg(self, meta, children):  # noqa: ANN001
        return A.Arg(None, children[0], self._span(meta))

    def args(self, children):  # noqa: ANN001
        return tuple(children)

    @v_args(meta=True)
    def call(self, meta, children):  # noqa: ANN001
        (name, name_span), args = children[0], children[1] or ()
        return A.Call(name, name_span, tuple(args), self._span(meta))

    @v_args(meta=True)
    def evolve(self, meta, children):  # noqa: ANN001
        args, body = children[0] or (), children[1]
        return A.Evolve(tuple(args), body, self._span(meta))

    @v_args(meta=True)
    def pipe(self, meta, children):  # noqa: ANN001
        stages: list[A.Expr] = []
        for c in children:  # a parenthesised pipe inside a pipe flattens: same meaning
            stages.extend(c.stages if isinstance(c, A.Pipe) else [c])
        return A.Pipe(tuple(stages), self._span(meta))

    # -- statements --------------------------------------------------------------------------
    @v_args(meta=True)
    def recipe_decl(self, meta, children):  # noqa: ANN001
        return A.RecipeDecl(str(children[0]), self._span(meta))

    @v_args(meta=True)
    def param_decl(self, meta, children):  # noqa: ANN001
        name, value = children
        return A.ParamDecl(str(name), self._tok(name), value, self._span(meta))

    @v_args(meta=True)
    def use_decl(self, meta, children):  # noqa: ANN001
        path, alias = children
        return A.UseDecl(path, str(alias), self._tok(alias), self._span(meta))

    def pipeline_args(self, children):  # noqa: ANN001
        return tuple((str(t), self._tok(t)) for t in children)

    @v_args(meta=True)
    def pipeline_decl(self, meta, children):  # noqa: ANN001
        name, params, body = children
        return A.PipelineDecl(str(name), self._tok(name), params or (), body, self._span(meta))

    @v_args(meta=True)
    def export_stmt(self, meta, children):  # noqa: ANN001
        value, path = children
        return A.ExportStmt(value, path, self._span(meta))

    @v_args(meta=True)
    def binding(self, meta, children):  # noqa: ANN001
        name, value = children
        return A.Binding(str(name), self._tok(name), value, self._span(meta))


def to_ast(tree: Tree, path: str) -> A.Stmt:
    return ToAst(path).transform(tree)
