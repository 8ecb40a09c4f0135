"""Column-schema propagation: catch "reads a column its input cannot have" before any run.

Sources infer their schema from at most their first 100 rows; every other operator derives
its output schema from its inputs. An operator that reads a column absent from a closed input
schema, or reads it as the wrong type, is an error at the argument that names the column.
"""

from __future__ import annotations

from dcc.compiler.diagnostics import Diagnostic, did_you_mean, error
from dcc.compiler.ir import Node
from dcc.errors import DccError
from dcc.schema import Schema

_COMPATIBLE = {
    "str": {"str"},
    "number": {"int", "float"},
    "int": {"int"},
    "float": {"int", "float"},
    "list": {"list"},
    "bool": {"bool"},
}


def propagate(nodes: list[Node], diags: list[Diagnostic]) -> None:
    """Set `node.schema` for every node (in topological order) and record column errors."""
    by_id = {n.id: n for n in nodes}
    for node in nodes:
        inputs = [by_id[i].schema or Schema.unknown() for i in node.inputs]
        if node.op.n_inputs == 0:
            node.schema = _source_schema(node, diags)
            continue
        if node.op.n_inputs == 1 and inputs:
            _check_reads(node, inputs[0], diags)
            if not _check_exprs(node, inputs[0], diags):
                node.schema = Schema.unknown()
                continue
        try:
            node.schema = node.op.output_schema(inputs)
        except DccError as e:
            diags.append(error(node.span, str(e)))
            node.schema = Schema.unknown()


def _source_schema(node: Node, diags: list[Diagnostic]) -> Schema:
    try:
        return node.op.infer_schema()  # type: ignore[attr-defined]
    except DccError as e:
        span = node.arg_spans.get("path", node.span)
        diags.append(error(span, str(e)))
    except OSError as e:
        span = node.arg_spans.get("path", node.span)
        diags.append(error(span, f"cannot read source: {e.strerror or e}"))
    return Schema.unknown()


def _check_reads(node: Node, schema: Schema, diags: list[Diagnostic]) -> None:
    for spec in node.op.params:
        if not spec.column:
            continue
        value = node.op.p.get(spec.name)
        cols = value if isinstance(value, list) else [value] if value is not None else []
        whole = node.arg_spans.get(spec.name, node.span)
        for i, col in enumerate(cols):
            if not isinstance(col, str):
                continue
            span = node.arg_spans.get(f"{spec.name}[{i}]", whole) if isinstance(value, list) \
                else whole
            if not schema.has(col):
                have = ", ".join(sorted(schema.columns)) or "none"
                diags.append(error(span, f"{node.op.name} reads column '{col}', which its input "
                                   "does not have", did_you_mean(col, schema.columns)
                                   or f"the input's columns: {have}"))
                continue
            have_type = schema.columns.get(col)
            want = spec.col_type
            if want and have_type and have_type not in ("any", "null") and \
                    have_type not in _COMPATIBLE.get(want, {want}):
                diags.append(error(span, f"{node.op.name} reads column '{col}' as {want}, "
                                   f"but it is {have_type}"))


def expression_params(node: Node) -> list[tuple[str, dict]]:
    """(span key, tree) for every column expression among the node's parameters."""
    from dcc.compiler.expr import is_tree

    out: list[tuple[str, dict]] = []
    for spec in node.op.params:
        value = node.op.p.get(spec.name)
        if not (spec.expr or spec.type == "expr") or value is None:
            continue
        if spec.type == "dict":
            out += [(f"{spec.name}.{k}", v) for k, v in value.items() if is_tree(v)]
        elif is_tree(value):
            out.append((spec.name, value))
    return out


def _check_exprs(node: Node, schema: Schema, diags: list[Diagnostic]) -> bool:
    """Type-check the node's expressions against its input; False when one is wrong (its
    diagnostic points at the sub-expression at fault)."""
    from dcc.compiler.expr import NUMERIC, ExprError, infer

    ok = True
    for key, tree in expression_params(node):
        spec = node.op.spec(key.split(".")[0])
        want = "bool" if spec and spec.type == "expr" else \
            "number" if spec and spec.type in ("int", "float", "number") else None
        try:
            got = infer(tree, schema)
            if want == "bool" and got not in ("bool", "any", "null"):
                raise ExprError(0, f"the condition must be true/false, but it is {got}")
            if want == "number" and got not in (*NUMERIC, "any", "null"):
                raise ExprError(0, f"'{key}' must be a number, but the expression is {got}")
        except ExprError as e:
            ok = False
            span = node.arg_spans.get(f"{key}#{e.index}", node.arg_spans.get(key, node.span))
            hint = None
            if e.message.startswith("no column"):
                hint = did_you_mean(e.message.split("'")[1], schema.columns) or \
                    f"the input's columns: {', '.join(sorted(schema.columns)) or 'none'}"
            diags.append(error(span, f"{node.op.name}: {e.message}", hint))
    return ok
