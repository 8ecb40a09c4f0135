"""Names, params, imports and arguments: checked AST -> IR graph, with every error collected.

Resolution and lowering are one walk: resolving a binding's expression *is* building its
nodes, so each node is created exactly where its source span is known. Pipelines are inlined
at each use, bindings are lowered once (memoized) and imports become namespaces whose
bindings and params are reached as `alias.name`.

This module is longer than the house norm because the scoping rules (params, bindings,
pipeline arguments, imports) only make sense read together.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dcc import ops as registry
from dcc.compiler import ast as A
from dcc.compiler.diagnostics import Diagnostic, did_you_mean, error, warning
from dcc.compiler.ir import Export, Node
from dcc.errors import ParamError
from dcc.ops.base import Op
from dcc.ops.params import check_value, coerce, type_name
from dcc.spans import Span


class _Failed(Exception):
    """Raised inside the walk after a diagnostic was recorded; caught per statement."""


@dataclass
class Module:
    path: str
    alias: str  # "" for the main recipe
    recipe: A.Recipe
    params: dict[str, tuple[Any, A.ParamDecl]] = field(default_factory=dict)
    bindings: dict[str, A.Binding] = field(default_factory=dict)
    pipelines: dict[str, A.PipelineDecl] = field(default_factory=dict)
    imports: dict[str, Module] = field(default_factory=dict)
    # Names whose definitions did not parse: already reported, so uses stay quiet.
    broken: set[str] = field(default_factory=set)

    @property
    def dir(self) -> str:
        return os.path.dirname(os.path.abspath(self.path))

    def qualify(self, name: str) -> str:
        return f"{self.alias}.{name}" if self.alias else name


@dataclass
class Scope:
    module: Module
    args: dict[str, Any] = field(default_factory=dict)  # pipeline arguments (values)


class Resolver:
    def __init__(self, out_dir: str | None = None, allow_outside: bool = False) -> None:
        import networkx as nx

        self.graph = nx.DiGraph()
        self.diags: list[Diagnostic] = []
        # (module alias chain, binding) -> node id. Not the module's path: one file imported
        # under two aliases is two modules, each with its own params (--set a.p / b.p).
        self.bound: dict[tuple[str, str], str] = {}
        self.failed: set[tuple[str, str]] = set()  # bindings already reported as broken
        self.resolving: list[tuple[str, str]] = []
        self.expanding: list[str] = []
        self.expanded: set[str] = set()  # pipelines whose body was lowered at least once
        self.bindings: dict[str, str] = {}
        self.exports: list[Export] = []
        self.out_dir = out_dir
        self.allow_outside = allow_outside
        self._counter = 0
        self._namer: list[tuple[str, int]] = []  # stack of (binding display name, next index)
        self._seed_shift = 0  # added to stochastic operators' seeds inside evolve round k

    # -- diagnostics -------------------------------------------------------------------------
    def fail(self, span: Span | None, message: str, help: str | None = None) -> _Failed:
        self.diags.append(error(span, message, help))
        return _Failed()

    # -- entry -------------------------------------------------------------------------------
    def resolve(self, main: Module) -> None:
        for name, b in main.bindings.items():
            self._try(lambda b=b: self.binding_node(main, b.name, b.name_span))
        for stmt in main.recipe.stmts:
            if isinstance(stmt, A.ExportStmt):
                self._try(lambda s=stmt: self.export(main, s))
        for decl in main.pipelines.values():
            if f"{main.path}:{decl.name}" not in self.expanded:
                self._check_unused_pipeline(main, decl)
        self._warn_unused(main)

    def _check_unused_pipeline(self, mod: Module, decl: A.PipelineDecl) -> None:
        """A pipeline no binding uses (a library's, typically) is still checked for what does
        not depend on its arguments: operator and pipeline names, argument names, and the
        names its values refer to. Otherwise `dcc check lib.recipe` passes any typo."""
        scope = Scope(mod, {p: None for p, _ in decl.params})
        stack: list[A.Expr] = [decl.body]
        while stack:
            expr = stack.pop()
            if isinstance(expr, A.Pipe):
                stack.extend(reversed(expr.stages))
            elif isinstance(expr, (A.ListLit, A.DictLit)):
                stack.extend(reversed([v for v in expr.items] if isinstance(expr, A.ListLit)
                                      else [v for _, v in expr.items]))
            elif isinstance(expr, A.Ref) and expr.name not in scope.args:
                sub, name = self._split(expr.name, mod, expr.span)
                if not ({name} & ({*sub.bindings, *sub.params, *sub.pipelines})):
                    self._try(lambda e=expr: self._raise(self._unknown_name(e.name, e.span,
                                                                            scope)))
            elif isinstance(expr, A.Call):
                self._check_call_names(expr, scope)
                stack.extend(reversed([a.value for a in expr.args]))

    def _check_call_names(self, call: A.Call, scope: Scope) -> None:
        sub, name = self._split(call.name, scope.module, call.name_span)
        if name in sub.pipelines and (sub is not scope.module or "." not in call.name):
            declared = [p for p, _ in sub.pipelines[name].params]
            kind, known = f"pipeline '{call.name}'", declared
        elif (cls := registry.get(call.name)) is not None:
            kind, known = cls.name, [p.name for p in cls.params]
        else:
            self._try(lambda: self._raise(self._unknown_op(call, scope)))
            return
        for arg in call.args:
            if arg.name is not None and arg.name not in known:
                self.fail(arg.span, f"{kind} has no parameter '{arg.name}'",
                          did_you_mean(arg.name, known))

    @staticmethod
    def _raise(exc: Exception) -> None:
        raise exc

    def _try(self, fn) -> Any:  # noqa: ANN001
        try:
            return fn()
        except _Failed:
            return None

    def export(self, mod: Module, stmt: A.ExportStmt) -> None:
        self._namer.append((f"export#{len(self.exports) + 1}", 1))
        try:
            node_id = self.dataset(stmt.value, Scope(mod))
        finally:
            self._namer.pop()
        target = self._export_path(mod, stmt.path)
        named = stmt.value.name if isinstance(stmt.value, A.Ref) else None
        binding = mod.qualify(named) if named and named in mod.bindings else None
        self.exports.append(Export(node_id, target, stmt.path.value, stmt.span, binding))

    def _export_path(self, mod: Module, path: A.Str) -> str:
        base = self.out_dir or mod.dir
        target = os.path.normpath(os.path.join(base, path.value))
        root = os.path.normpath(base)
        if not self.allow_outside and os.path.commonpath([root, target]) != root:
            raise self.fail(path.span, f"export path '{path.value}' is outside the recipe's folder",
                            "exports stay inside the recipe's folder (or --out-dir); "
                            "pass --allow-write-outside to write elsewhere")
        if any(os.path.normpath(e.path) == target for e in self.exports):
            raise self.fail(path.span, f"'{path.value}' is exported twice")
        return target

    def _warn_unused(self, main: Module) -> None:
        import networkx as nx

        used: set[str] = set()
        for e in self.exports:
            used |= {e.node} | nx.ancestors(self.graph, e.node)
        for name, b in main.bindings.items():
            node = self.bound.get((main.alias, name))
            if node is not None and node not in used:
                self.diags.append(warning(b.name_span, f"binding '{name}' feeds no export",
                                          "it is not built unless named with --target"))

    # -- bindings ----------------------------------------------------------------------------
    def binding_node(self, mod: Module, name: str, span: Span) -> str:
        key = (mod.alias, name)
        if key in self.bound:
            return self.bound[key]
        if key in self.failed:  # its errors are reported once, not at every use
            raise _Failed()
        if key in self.resolving:
            i = self.resolving.index(key)
            cycle = " -> ".join(n for _, n in self.resolving[i:]) + f" -> {name}"
            raise self.fail(span, f"cycle between bindings: {cycle}",
                            "a binding cannot depend on itself")
        b = mod.bindings[name]
        self.resolving.append(key)
        display = mod.qualify(name)
        self._namer.append((display, 1))
        try:
            node_id = self.dataset(b.value, Scope(mod))
        except _Failed:
            self.failed.add(key)
            raise
        finally:
            self._namer.pop()
            self.resolving.pop()
        node = self.graph.nodes[node_id]["node"]
        if self._fresh(node):  # the binding's last stage is named after the binding
            node.names = [display]
        else:  # an alias of a node another binding already named: one more name
            node.names.append(display)
        self.bound[key] = node_id
        self.bindings[display] = node_id
        return node_id

    def _fresh(self, node: Node) -> bool:
        """A node still carrying only its stage name takes the binding's name first."""
        return all("@" in n or n.startswith("export#") for n in node.names)

    # -- dataset expressions -----------------------------------------------------------------
    def dataset(self, expr: A.Expr, scope: Scope, upstream: str | None = None) -> str:
        if isinstance(expr, A.Pipe):
            cur = self.dataset(expr.stages[0], scope, upstream)
            for stage in expr.stages[1:]:
                cur = self.dataset(stage, scope, cur)
            return cur
        if isinstance(expr, A.Ref):
            return self._ref_dataset(expr, scope, upstream)
        if isinstance(expr, A.Call):
            return self._call(expr, scope, upstream)
        if isinstance(expr, A.Evolve):
            return self._evolve(expr, scope, upstream)
        raise self.fail(getattr(expr, "span", None),
                        f"expected a dataset, got a {_kind(expr)}",
                        "a dataset is a binding, a load.* source, a combinator or a pipe")

    def _ref_dataset(self, ref: A.Ref, scope: Scope, upstream: str | None) -> str:
        mod, name = self._split(ref.name, scope.module, ref.span)
        if upstream is None:
            if name in mod.bindings:
                return self.binding_node(mod, name, ref.span)
            base, dot, attr = name.rpartition(".")
            if dot and attr == "rejected" and base in mod.bindings:
                return self._rejected(mod, base, ref)
        if name in mod.pipelines:
            call = A.Call(ref.name, ref.span, (), ref.span)
            return self._pipeline(mod, mod.pipelines[name], call, scope, upstream)
        if upstream is not None and name in mod.bindings:
            raise self.fail(ref.span, f"'{ref.name}' is a dataset, not an operator",
                            "only operators and pipelines can follow '|'")
        if name in mod.params or name in scope.args:
            raise self.fail(ref.span, f"'{ref.name}' is a param, not a dataset")
        raise self._unknown_name(ref.name, ref.span, scope)

    def _rejected(self, mod: Module, base: str, ref: A.Ref) -> str:
        """`x.rejected`: the rows the last operator of binding `x` dropped from its input."""
        from dcc.ops.plumbing_rejected import RowsRejected

        kept = self.binding_node(mod, base, ref.span)
        node = self.graph.nodes[kept]["node"]
        if not node.op.name.startswith("select.") or len(node.inputs) != 1:
            raise self.fail(ref.span, f"'{base}' is made by {node.op.name}, not by a select "
                            "operator, so it has no rejected rows",
                            "`.rejected` follows a binding whose last step is a select.*")
        return self._add_node(RowsRejected(), [node.inputs[0], kept],
                              A.Call("rows.rejected", ref.span, (), ref.span), {})

    def _split(self, name: str, mod: Module, span: Span) -> tuple[Module, str]:
        """Resolve `alias.name` to (imported module, name); plain names stay in `mod`."""
        if "." in name:
            alias, rest = name.split(".", 1)
            if alias in mod.imports:
                return mod.imports[alias], rest
        return mod, name

    def _unknown_name(self, name: str, span: Span, scope: Scope) -> _Failed:
        mod = scope.module
        if self._is_broken(name, mod):
            return _Failed()
        cands = [*mod.bindings, *mod.params, *mod.pipelines, *scope.args]
        for alias, sub in mod.imports.items():
            cands += [f"{alias}.{n}" for n in [*sub.bindings, *sub.params, *sub.pipelines]]
        hint = did_you_mean(name, cands)
        if name in ("none", "None") and not hint:  # keep=none: the annotate-only form
            hint = ('recipes have no none: write keep="none" (a string) to only write a '
                    'score, or null for "not given"')
        return self.fail(span, f"unknown name '{name}'", hint)

    def _is_broken(self, name: str, mod: Module) -> bool:
        """Whether `name` (or the import it goes through) has a definition that did not parse."""
        head, _, rest = name.partition(".")
        if head in mod.broken:
            return True
        sub = mod.imports.get(head)
        return sub is not None and bool(rest) and self._is_broken(rest, sub)

    # -- calls -------------------------------------------------------------------------------
    def _call(self, call: A.Call, scope: Scope, upstream: str | None) -> str:
        mod, name = self._split(call.name, scope.module, call.name_span)
        if name in mod.pipelines and (mod is not scope.module or "." not in call.name):
            return self._pipeline(mod, mod.pipelines[name], call, scope, upstream)
        cls = registry.get(call.name)
        if cls is None:
            raise self._unknown_op(call, scope)
        return self._op_node(cls, call, scope, upstream)

    def _unknown_op(self, call: A.Call, scope: Scope) -> _Failed:
        mod = scope.module
        if self._is_broken(call.name, mod):
            return _Failed()
        cands = [*registry.names(), *mod.pipelines]
        for alias, sub in mod.imports.items():
            cands += [f"{alias}.{p}" for p in sub.pipelines]
        kind = "operator" if "." in call.name else "operator or pipeline"
        return self.fail(call.name_span, f"unknown {kind} '{call.name}'",
                         did_you_mean(call.name, cands) or "run `dcc ops` to list operators")

    def _op_node(self, cls: type[Op], call: A.Call, scope: Scope, upstream: str | None) -> str:
        inputs: list[str] = []
        values: dict[str, Any] = {}
        spans: dict[str, Span] = {}
        errors_before = len(self.diags)
        if cls.n_inputs == 0 and upstream is not None:
            raise self.fail(call.name_span, f"{cls.name} is a source and cannot follow '|'",
                            "start a chain with it instead")
        if upstream is not None:
            inputs.append(upstream)
        failed = False  # an argument that failed was reported (or stands on a broken name)
        given = {a.name for a in call.args if a.name is not None}
        for arg in call.args:
            try:
                self._bind_arg(cls, arg, scope, values, spans, inputs, upstream)
            except _Failed:
                failed = True
                if arg.name is None:  # meant for some parameter: do not call any missing
                    given |= {p.name for p in cls.params}
        if not failed:
            self._check_arity(cls, call, inputs, upstream)
        if any(a.name is None for a in call.args):
            given |= {p.name for p in cls.params if p.positional}
        for spec in cls.params:  # an argument given but wrong was reported already
            if spec.required and spec.name not in values and spec.name not in given:
                self.fail(call.name_span, f"{cls.name} is missing argument '{spec.name}'",
                          f"'{spec.name}': {spec.doc}" if spec.doc else None)
        if failed or len(self.diags) > errors_before:
            raise _Failed()
        seed = cls.spec("seed")
        if self._seed_shift and cls.stochastic and seed is not None and seed.type == "int":
            values["seed"] = int(values.get("seed", seed.default) or 0) + self._seed_shift
        try:
            op = cls(**values)
        except ParamError as e:
            raise self.fail(self._problem_span(cls, values, spans, call), str(e)) from None
        return self._add_node(op, inputs, call, spans)

    @staticmethod
    def _problem_span(op_cls: type[Op], values: dict, spans: dict[str, Span],
                      call: A.Call) -> Span:
        """Where a constructor's complaint points: the argument `validate()` names, if any
        (the bad regex, not the operator's name)."""
        bare = op_cls.__new__(op_cls)
        try:
            bare.p = op_cls.bind(values)
            problems = bare.validate()
        except Exception:  # noqa: BLE001 - only choosing a caret position
            problems = []
        pname = problems[0][0] if problems else None
        return spans.get(pname, call.name_span) if pname else call.name_span

    def _bind_arg(self, cls: type[Op], arg: A.Arg, scope: Scope, values: dict, spans: dict,
                  inputs: list[str], upstream: str | None) -> None:
        if arg.name is None:
            positional = next((p for p in cls.params if p.positional), None)
            if cls.n_inputs is None:  # stages inside share the binding's numbering
                inputs.append(self.dataset(arg.value, scope))
                return
            if positional is not None and positional.name not in values:
                self._set_value(cls, positional.name, arg, scope, values, spans)
                return
            names = ", ".join(p.name for p in cls.params) or "none"
            raise self.fail(arg.span, f"{cls.name} takes named arguments only",
                            f"write NAME=value; its parameters: {names}")
        if cls.spec(arg.name) is None and cls.extra_args is not None:
            extra = values.setdefault(cls.extra_args, {})
            if arg.name in extra:
                raise self.fail(arg.span, f"argument '{arg.name}' given twice")
            extra[arg.name] = self.expression(arg.value, scope, spans,
                                              f"{cls.extra_args}.{arg.name}", literal_ok=True)
            spans[f"{cls.extra_args}.{arg.name}"] = _value_span(arg)
            return
        if cls.spec(arg.name) is None:
            raise self.fail(arg.span, f"{cls.name} has no parameter '{arg.name}'",
                            did_you_mean(arg.name, [p.name for p in cls.params])
                            or f"its parameters: {', '.join(p.name for p in cls.params)}")
        if arg.name in values:
            raise self.fail(arg.span, f"argument '{arg.name}' given twice")
        self._set_value(cls, arg.name, arg, scope, values, spans)

    def _set_value(self, cls: type[Op], pname: str, arg: A.Arg, scope: Scope,
                   values: dict, spans: dict) -> None:
        spec = cls.spec(pname)
        assert spec is not None
        if spec.type == "expr" or (spec.expr and not _is_literal(arg.value)):
            value = self.expression(arg.value, scope, spans, pname,
                                    literal_ok=spec.type == "expr")
        else:
            value = self.value(arg.value, scope)
        msg = check_value(spec, value)
        if msg:
            raise self.fail(_value_span(arg), f"{cls.name}: {msg}")
        if spec.path and isinstance(value, str):
            value = os.path.normpath(os.path.join(scope.module.dir, value))
        values[pname] = coerce(spec, value)
        spans[pname] = _value_span(arg)
        if isinstance(arg.value, A.ListLit):  # carets under one item, e.g. one bad column
            for i, item in enumerate(arg.value.items):
                spans[f"{pname}[{i}]"] = item.span

    def _check_arity(self, cls: type[Op], call: A.Call, inputs: list[str],
                     upstream: str | None) -> None:
        if cls.n_inputs == 1 and not inputs:
            raise self.fail(call.name_span, f"{cls.name} needs an input dataset",
                            f"pipe one into it: `data | {cls.name}(...)`")
        if cls.n_inputs is None:
            if upstream is not None:
                raise self.fail(call.name_span, f"{cls.name} takes its datasets as arguments",
                                f"write {cls.name}(a, b), not a | {cls.name}(b)")
            if not inputs:
                raise self.fail(call.name_span, f"{cls.name} needs at least one dataset")

    def _add_node(self, op: Op, inputs: list[str], call: A.Call, spans: dict[str, Span]) -> str:
        self._counter += 1
        node_id = f"n{self._counter}"
        name = self._stage_name()
        node = Node(node_id, op, inputs, call.name_span, [name] if name else [], spans)
        self.graph.add_node(node_id, node=node)
        for src in inputs:
            self.graph.add_edge(src, node_id)
        return node_id

    def _stage_name(self) -> str:
        if not self._namer:
            return ""
        base, i = self._namer[-1]
        self._namer[-1] = (base, i + 1)
        return f"{base}@{i}"

    # -- pipelines ---------------------------------------------------------------------------
    def _pipeline(self, mod: Module, decl: A.PipelineDecl, call: A.Call, scope: Scope,
                  upstream: str | None) -> str:
        if upstream is None:
            raise self.fail(call.name_span, f"pipeline '{call.name}' needs an input dataset",
                            f"pipe one into it: `data | {call.name}(...)`")
        qual = f"{mod.path}:{decl.name}"
        if qual in self.expanding:
            raise self.fail(call.name_span, f"pipeline '{decl.name}' calls itself",
                            "pipelines cannot be recursive")
        declared = [p for p, _ in decl.params]
        args: dict[str, Any] = {}
        for arg in call.args:
            if arg.name is None:
                raise self.fail(arg.span, f"pipeline '{call.name}' takes named arguments only",
                                f"its parameters: {', '.join(declared) or 'none'}")
            if arg.name not in declared:
                raise self.fail(arg.span, f"pipeline '{call.name}' has no parameter "
                                f"'{arg.name}'", did_you_mean(arg.name, declared))
            args[arg.name] = self.value(arg.value, scope)
        missing = [p for p in declared if p not in args]
        if missing:
            raise self.fail(call.name_span, f"pipeline '{call.name}' is missing argument "
                            f"'{missing[0]}'")
        self.expanding.append(qual)
        self.expanded.add(qual)
        try:
            return self.dataset(decl.body, Scope(mod, args), upstream)
        finally:
            self.expanding.pop()

    # -- evolve blocks -----------------------------------------------------------------------
    def _evolve(self, expr: A.Evolve, scope: Scope, upstream: str | None) -> str:
        """Unroll `evolve(seed, rounds=N, ...) { chain }` into start, then feed -> chain ->
        collect per round, then the result (see `dcc.ops.evolve` for the semantics)."""
        from dcc.ops import evolve as E

        if upstream is not None:
            raise self.fail(expr.span, "evolve takes its seed dataset as its first argument",
                            "write `evolve(data, rounds=N) { ... }`, not `data | evolve(...)`")
        seed_args = [a for a in expr.args if a.name is None]
        if len(seed_args) != 1 or expr.args[0].name is not None:
            raise self.fail(expr.span, "evolve needs its seed dataset as its first argument, "
                            "and only that one unnamed", "write `evolve(data, rounds=N) { ... }`")
        values: dict[str, Any] = {}
        spans: dict[str, Span] = {}
        specs = {p.name: p for p in E.BLOCK_PARAMS}
        for arg in expr.args[1:]:
            spec = specs.get(arg.name or "")
            if spec is None:
                raise self.fail(arg.span, f"evolve has no parameter '{arg.name}'",
                                did_you_mean(arg.name or "", list(specs))
                                or f"its parameters: {', '.join(specs)}")
            if arg.name in values:
                raise self.fail(arg.span, f"argument '{arg.name}' given twice")
            value = self.value(arg.value, scope)
            msg = check_value(spec, value) or (E.check_until(value) if spec.name == "until"
                                                else None)
            if msg:
                raise self.fail(_value_span(arg), f"evolve: {msg}")
            values[spec.name] = coerce(spec, value)
            spans[spec.name] = _value_span(arg)
        if "rounds" not in values:
            raise self.fail(expr.span, "evolve is missing argument 'rounds'",
                            "'rounds': how many times the chain runs (0 returns the seed)")
        mode, until = values.get("mode", "accumulate"), values.get("until")
        call = A.Call("evolve", expr.span, (), expr.span)
        pool = self._add_node(E.EvolveStart(), [self.dataset(seed_args[0].value, scope)],
                              call, {})
        base = self._namer[-1][0] if self._namer else "evolve"
        for k in range(1, values["rounds"] + 1):
            self._namer.append((f"{base}.r{k}", 1))
            shift = self._seed_shift
            self._seed_shift = shift + k - 1
            try:
                feed = self._add_node(E.EvolveFeed(round=k, mode=mode, until=until), [pool],
                                      call, {"until": spans["until"]} if until else {})
                made = self.dataset(expr.body, scope, feed)
                pool = self._add_node(E.EvolveCollect(round=k), [pool, made], call, {})
            finally:
                self._seed_shift = shift
                self._namer.pop()
        return self._add_node(E.EvolveResult(mode=mode), [pool], call, spans)

    # -- column expressions ------------------------------------------------------------------
    def expression(self, expr: A.Expr, scope: Scope, spans: dict[str, Span], pname: str,
                   literal_ok: bool = False) -> Any:
        """Lower a column expression to its tree (`dcc.compiler.expr`), recording node i's
        span as `spans[f"{pname}#{i}"]`. Names are columns unless a pipeline argument or a
        param of that name is in scope; `col("x")` always names a column."""
        from dcc.compiler import expr as X

        counter = [0]  # preorder numbering, as dcc.compiler.expr.preorder

        def lower(e: A.Expr) -> dict[str, Any]:
            index = counter[0]
            counter[0] += 1
            spans[f"{pname}#{index}"] = getattr(e, "span", None) or e.name_span  # type: ignore
            if isinstance(e, (A.Str, A.Num, A.Bool, A.Null)):
                return {"lit": e.value}
            if isinstance(e, A.ListLit):
                items = [self.value(i, scope) for i in e.items]
                if any(isinstance(i, (list, dict)) for i in items):
                    raise self.fail(e.span, "a list in an expression holds plain values")
                return {"lit": items}
            if isinstance(e, A.Ref):
                return self._expr_name(e, scope)
            if isinstance(e, A.BinOp):
                return {"op": e.op, "args": [lower(e.left), lower(e.right)]}
            if isinstance(e, A.UnOp):
                return {"op": e.op, "args": [lower(e.operand)]}
            if isinstance(e, A.Call):
                if e.name == "col":
                    return self._expr_col(e, scope)
                if e.name not in X.FUNCTIONS:
                    raise self.fail(e.name_span, f"unknown function '{e.name}'",
                                    did_you_mean(e.name, [*X.FUNCTIONS, "col"])
                                    or f"functions: {', '.join(sorted(X.FUNCTIONS))}, col")
                named = next((a for a in e.args if a.name is not None), None)
                if named is not None:
                    raise self.fail(named.span, f"{e.name}() takes its arguments by position")
                return {"fn": e.name, "args": [lower(a.value) for a in e.args]}
            raise self.fail(getattr(e, "span", None), f"expected an expression, got a {_kind(e)}",
                            "expressions are made of columns, literals, operators and "
                            "functions")

        tree = lower(expr)
        if literal_ok or "lit" not in tree:
            return tree
        return tree["lit"]

    def _expr_name(self, ref: A.Ref, scope: Scope) -> dict[str, Any]:
        if ref.name in scope.args:
            return {"lit": scope.args[ref.name]}
        mod, name = self._split(ref.name, scope.module, ref.span)
        if name in mod.params:
            return {"lit": mod.params[name][0]}
        if name in mod.bindings:
            raise self.fail(ref.span, f"'{ref.name}' is a dataset; an expression reads "
                            "columns of its input", f'to name a column, write col("{ref.name}")')
        if "." in ref.name:
            raise self.fail(ref.span, f"unknown name '{ref.name}'",
                            "column names in expressions are plain names or col(\"name\")")
        return {"col": ref.name}

    def _expr_col(self, call: A.Call, scope: Scope) -> dict[str, Any]:
        if len(call.args) != 1 or call.args[0].name is not None:
            raise self.fail(call.span, 'col() takes one column name: col("name")')
        name = self.value(call.args[0].value, scope)
        if not isinstance(name, str) or not name:
            raise self.fail(_value_span(call.args[0]),
                            f"col() takes a column name, got {type_name(name)}")
        return {"col": name}

    # -- values ------------------------------------------------------------------------------
    def value(self, expr: A.Expr, scope: Scope) -> Any:
        if isinstance(expr, (A.Str, A.Num, A.Bool, A.Null)):
            return expr.value
        if isinstance(expr, A.ListLit):
            return [self.value(e, scope) for e in expr.items]
        if isinstance(expr, A.DictLit):
            return {k: self.value(v, scope) for k, v in expr.items}
        if isinstance(expr, A.Ref):
            if expr.name in scope.args:
                return scope.args[expr.name]
            mod, name = self._split(expr.name, scope.module, expr.span)
            if name in mod.params:
                return mod.params[name][0]
            if name in mod.bindings:
                raise self.fail(expr.span, f"'{expr.name}' is a dataset; this argument needs "
                                "a value")
            raise self._unknown_name(expr.name, expr.span, scope)
        if isinstance(expr, (A.BinOp, A.UnOp)):
            raise self.fail(expr.span, "this argument takes a value, not an expression",
                            "expressions go to select.where, rewrite.derive and bounds such "
                            "as min/max of select.length")
        raise self.fail(getattr(expr, "span", None),
                        f"expected a value, got a {_kind(expr)}",
                        "arguments are literals or params")


def _is_literal(expr: A.Expr) -> bool:
    """A plain value rather than a column expression. A bare name counts as a value (a
    param): `min=min_len` keeps meaning the param, and a typo in it is still "unknown name";
    a bound that is just a column is written `col("name")`."""
    if isinstance(expr, (A.Str, A.Num, A.Bool, A.Null, A.Ref)):
        return True
    if isinstance(expr, A.ListLit):
        return all(_is_literal(i) for i in expr.items)
    return False


def _value_span(arg: A.Arg) -> Span:
    return getattr(arg.value, "span", arg.span)


def _kind(expr: A.Expr) -> str:
    return {A.Str: "string", A.Num: "number", A.Bool: "bool", A.Null: "null",
            A.ListLit: "list", A.DictLit: "dict", A.Ref: "name", A.Call: "call",
            A.Evolve: "evolve block", A.Pipe: "pipe", A.BinOp: "expression",
            A.UnOp: "expression"}.get(type(expr), "expression")


# -- loading modules and params -------------------------------------------------------------
def load_module(path: str, alias: str, diags: list[Diagnostic], stack: list[str],
                span: Span | None = None) -> Module | None:
    """Parse a recipe file and, recursively, the recipes it imports."""
    from dcc.compiler.parser import parse_full

    apath = os.path.abspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        diags.append(error(span, f"no such recipe file: {path}"))
        return None
    except (OSError, UnicodeDecodeError) as e:
        diags.append(error(span, f"cannot read recipe {path}: {e}"))
        return None
    recipe, parse_diags, broken = parse_full(text, path)
    diags.extend(parse_diags)
    mod = Module(path, alias, recipe, broken=broken)
    _declare(mod, diags)
    for stmt in recipe.stmts:
        if isinstance(stmt, A.UseDecl):
            _import(mod, stmt, diags, stack + [apath])
    return mod


def _import(mod: Module, stmt: A.UseDecl, diags: list[Diagnostic], stack: list[str]) -> None:
    target = os.path.join(mod.dir, stmt.path.value)
    if os.path.abspath(target) in stack:
        chain = " -> ".join(os.path.basename(p) for p in stack + [os.path.abspath(target)])
        diags.append(error(stmt.path.span, f"import cycle: {chain}"))
        return
    if stmt.alias in mod.imports or stmt.alias in mod.bindings or stmt.alias in mod.params:
        diags.append(error(stmt.alias_span, f"'{stmt.alias}' is already defined"))
        return
    if stmt.alias in registry.families() or stmt.alias in ("concat", "mix", "split"):
        diags.append(error(stmt.alias_span, f"'{stmt.alias}' is an operator family name",
                           "pick another alias"))
        return
    if not os.path.isfile(target):
        diags.append(error(stmt.path.span, f"no such recipe file: {stmt.path.value}",
                           f"looked for {os.path.normpath(os.path.abspath(target))}; 'use' "
                           "paths are relative to the folder of the recipe that names them"))
        return
    rel = os.path.relpath(target) if not os.path.isabs(stmt.path.value) else target
    sub = load_module(rel, mod.qualify(stmt.alias), diags, stack, stmt.path.span)
    if sub is not None:
        mod.imports[stmt.alias] = sub


def _declare(mod: Module, diags: list[Diagnostic]) -> None:
    seen: dict[str, Span] = {}
    recipe_decls = 0
    for stmt in mod.recipe.stmts:
        if isinstance(stmt, A.RecipeDecl):
            recipe_decls += 1
            if recipe_decls > 1:
                diags.append(error(stmt.span, "a recipe may declare its name only once"))
            continue
        if isinstance(stmt, (A.ParamDecl, A.Binding, A.PipelineDecl)):
            span = stmt.name_span
            if stmt.name in seen:
                first = seen[stmt.name]
                diags.append(error(span, f"'{stmt.name}' is already defined at line "
                                   f"{first.line}", "each name is defined once per recipe"))
                continue
            seen[stmt.name] = span
        if isinstance(stmt, A.ParamDecl):
            if not A.is_literal(stmt.value):
                diags.append(error(getattr(stmt.value, "span", stmt.span),
                                   "a param's default must be a literal",
                                   "strings, numbers, bools, lists or null"))
                continue
            mod.params[stmt.name] = (A.literal_value(stmt.value), stmt)
        elif isinstance(stmt, A.Binding):
            mod.bindings[stmt.name] = stmt
        elif isinstance(stmt, A.PipelineDecl):
            mod.pipelines[stmt.name] = stmt


def apply_overrides(main: Module, overrides: dict[str, str], diags: list[Diagnostic]) -> None:
    """Apply `--set NAME=VALUE`, parsing VALUE as the type of the param's default."""
    for qual, raw in overrides.items():
        mod = main
        parts = qual.split(".")
        for alias in parts[:-1]:
            if alias not in mod.imports:
                diags.append(error(None, f"--set {qual}: no import named '{alias}'",
                                   did_you_mean(alias, mod.imports)))
                break
            mod = mod.imports[alias]
        else:
            name = parts[-1]
            if name not in mod.params:
                diags.append(error(None, f"--set {qual}: the recipe has no param '{name}'",
                                   did_you_mean(name, mod.params)))
                continue
            default, decl = mod.params[name]
            try:
                mod.params[name] = (parse_override(raw, default), decl)
            except ValueError:
                want = type_name(default)
                diags.append(error(decl.name_span, f"--set {qual}: '{qual}' must be {want} "
                                   f"(got {raw!r})", f"the default of '{name}' is {want}"))


def parse_override(raw: str, default: Any) -> Any:
    """Parse a --set value as the type of the param's default; ValueError on mismatch."""
    if isinstance(default, bool):
        if raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        raise ValueError(raw)
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        return float(raw)
    if isinstance(default, str):
        return raw
    if default is None:
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            return raw
    value = json.loads(raw)
    if type(value) is not type(default):
        raise ValueError(raw)
    return value


__all__ = ["Resolver", "Module", "load_module", "apply_overrides", "parse_override"]
