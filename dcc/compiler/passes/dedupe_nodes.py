"""dedupe_nodes: common-subexpression elimination.

Rewrite: two nodes with the same operator, version, parameters (all of them, file paths
included) and the same inputs in the same order become one node carrying both sets of names;
consumers, exports and bindings are pointed at the survivor. Runs in topological order, so
chains that are equal from their sources down collapse entirely -- including across imported
recipes and pipeline expansions, since those are ordinary nodes by now.

Safe because an operator's output is a function of its operator, parameters and inputs
(stochastic operators take their seed as a parameter), so equal nodes compute equal tables.

>>> from dcc.compiler.passes.testing import program_from
>>> p = program_from('''
... a = load.jsonl("d.jsonl") | select.length(field="t", min=1)
... b = load.jsonl("d.jsonl") | select.length(field="t", min=1)
... export concat(a, b) to "o.jsonl"
... ''', optimize=False)
>>> len(p.graph)
5
>>> dedupe_nodes(p)
['merged b@1 into a@1 (load.jsonl)', 'merged b into a (select.length)']
>>> len(p.graph), sorted(p.node(p.bindings["b"]).names)
(3, ['a', 'b'])
"""

from __future__ import annotations

from typing import Any

from dcc.cache.hashing import canonical_bytes
from dcc.compiler.ir import Program


def dedupe_nodes(program: Program) -> list[str]:
    seen: dict[bytes, str] = {}
    replaced: dict[str, str] = {}
    journal: list[str] = []
    for node in program.nodes():
        node.inputs = [replaced.get(i, i) for i in node.inputs]
        sig = _signature(node.op.name, node.op.version, node.op.p, node.inputs)
        if sig is None:
            continue
        survivor = seen.setdefault(sig, node.id)
        if survivor == node.id:
            continue
        keep = program.node(survivor)
        journal.append(f"merged {node.name} into {keep.name} ({node.op_name})")
        keep.names.extend(n for n in node.names if n not in keep.names)
        replaced[node.id] = survivor
        for consumer in list(program.graph.successors(node.id)):
            program.graph.add_edge(survivor, consumer)
        program.graph.remove_node(node.id)
    if replaced:
        for consumer in program.graph.nodes:
            n = program.node(consumer)
            n.inputs = [replaced.get(i, i) for i in n.inputs]
        for exp in program.exports:
            exp.node = replaced.get(exp.node, exp.node)
        program.bindings = {k: replaced.get(v, v) for k, v in program.bindings.items()}
    return journal


def _signature(op: str, version: int, params: dict[str, Any], inputs: list[str]) -> bytes | None:
    try:
        return canonical_bytes({"op": op, "v": version, "p": params, "in": inputs})
    except TypeError:  # an unhashable parameter: never merge what cannot be compared
        return None
