"""fuse_rowwise: run chains of row-wise operators as one pass, materializing only the end.

Rewrite: a maximal chain of consecutive pure row-wise nodes (`Filter` and `Map`: polars
expressions, no state, no randomness), in which every node but the last feeds only the next
one, becomes one *stage*. The engine runs a stage as a single lazy polars query over its input
(one scan, no intermediate table written) and stores only the last node's output. Every node
keeps its own key, status and row counts; a node inside a stage is keyed on its predecessor's
key instead of its content, since that content is never materialized.

Safe because a chain of pure row functions composed in one query computes exactly the rows
the nodes would compute one after another. The pass refuses to fuse across a node whose output
someone else can see or needs stored: an export, a `--target`, or a node with several
consumers; whole-dataset operators, stochastic ones and row-wise Python operators (model calls,
which go through the row memo) end a chain.

>>> from dcc.compiler.passes.testing import program_from
>>> p = program_from('''
... a = load.jsonl("d.jsonl") | select.length(field="t", min=2) | rewrite.normalize(fields=["t"])
... b = a | select.words(field="t", min=1)
... export b to "o.jsonl"
... ''', optimize=False)
>>> fuse_rowwise(p)
['stage a@2..b: select.length, rewrite.normalize, select.words']
>>> [p.node(i).name for i in p.stages[p.bindings["b"]]]
['a@2', 'a', 'b']
"""

from __future__ import annotations

from dcc.compiler.ir import Node, Program


def fuse_rowwise(program: Program, *, target: str | None = None) -> list[str]:
    g = program.graph
    pinned = {e.node for e in program.exports}
    if target is not None and target in program.bindings:
        pinned.add(program.bindings[target])
    stages: dict[str, list[str]] = {}
    journal: list[str] = []
    taken: set[str] = set()
    for node in program.nodes():
        if node.id in taken or not _fusable(node):
            continue
        chain = [node]
        cur = node
        while cur.id not in pinned and g.out_degree(cur.id) == 1:
            nxt = program.node(next(iter(g.successors(cur.id))))
            if not _fusable(nxt) or nxt.inputs != [cur.id]:
                break
            chain.append(nxt)
            cur = nxt
        taken |= {n.id for n in chain}
        if len(chain) > 1:
            stages[chain[-1].id] = [n.id for n in chain]
            ops = ", ".join(n.op_name for n in chain)
            journal.append(f"stage {chain[0].name}..{chain[-1].name}: {ops}")
    if stages == program.stages:
        return []  # already fused this way: nothing changed (keeps the fixed point finite)
    program.stages = stages
    return journal


def _fusable(node: Node) -> bool:
    return node.op.kind in ("filter", "map") and not node.op.stochastic
