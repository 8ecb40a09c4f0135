"""Text renderings of a compiled Program for `dcc graph`: dot, mermaid and JSON.

The JSON form is the machine-readable description of the DAG: operators, parameters, edges
and the binding names of each node.
"""

from __future__ import annotations

import json
from typing import Any

from dcc.compiler.ir import Program


def graph_json(program: Program) -> dict[str, Any]:
    nodes = []
    for node in program.nodes():
        nodes.append({
            "id": node.id,
            "name": node.name,
            "names": node.names,
            "op": node.op_name,
            "params": node.params,
            "inputs": node.inputs,
            "span": str(node.span),
            "columns": sorted(node.schema.columns) if node.schema else None,
        })
    edges = [{"from": a, "to": b} for a, b in sorted(program.graph.edges)]
    exports = [{"node": e.node, "path": e.display} for e in program.exports]
    return {"recipe": program.name, "nodes": nodes, "edges": edges, "exports": exports,
            "bindings": {k: v for k, v in program.bindings.items() if v in program.graph}}


def graph_dot(program: Program) -> str:
    lines = [f'digraph "{program.name}" {{', "  rankdir=LR;", "  node [shape=box];"]
    for node in program.nodes():
        label = f"{_esc(node.name)}\\n{_esc(node.op_name)}"  # dot's \n: a line break
        lines.append(f'  {node.id} [label="{label}"];')
    for a, b in sorted(program.graph.edges):
        lines.append(f"  {a} -> {b};")
    for i, e in enumerate(program.exports):
        lines.append(f'  export{i} [shape=note, label="{_esc(e.display)}"];')
        lines.append(f"  {e.node} -> export{i};")
    lines.append("}")
    return "\n".join(lines)


def graph_mermaid(program: Program) -> str:
    lines = ["flowchart LR"]
    for node in program.nodes():
        lines.append(f'  {node.id}["{_mm(node.name)}<br/>{_mm(node.op_name)}"]')
    for a, b in sorted(program.graph.edges):
        lines.append(f"  {a} --> {b}")
    for i, e in enumerate(program.exports):
        lines.append(f'  export{i}[/"{_mm(e.display)}"/]')
        lines.append(f"  {e.node} --> export{i}")
    return "\n".join(lines)


def _esc(s: str) -> str:
    """Text inside a dot string: a backslash or quote is literal, a newline breaks the line.
    (A path like 'dir\\new.jsonl' must not turn into a line break.)"""
    return s.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _mm(s: str) -> str:
    return s.replace('"', "#quot;").replace("\n", "<br/>")


def dumps(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=False, default=str)
