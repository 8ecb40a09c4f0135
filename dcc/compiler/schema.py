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
