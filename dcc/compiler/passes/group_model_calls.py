"""group_model_calls: let independent nodes on one model share its batches.

Rewrite: model nodes (operators that ask a model through the request memo: `respond`,
`select.judge`, `rewrite.llm`, `select.perplexity`, `select.ifd`, `select.reward`, the
generators, ...) that name the same model, of the same kind (causal LM, encoder, reward
head), and have no path between them in the plan, form a *model group*
(`program.model_groups`). The engine builds every input of a group first, then runs its
members together (`dcc.ops.models.pool`): the model is loaded once, and requests that a
backend answers one by one (an HTTP server's completions) go out as one set, longest first,
filling the client's concurrency window from every node. Nothing else changes: each node
keeps its key, its inputs, its outputs and its row counts.

Safe because a member never needs another member's output (no path between them, so
neither is an ancestor of the other and both can have all their inputs ready at once), and
because the pool merges only requests whose reply cannot depend on the requests sent with
them; a local model's requests, whose numbers depend on their batch (padding), keep each
node's own batches. A node that finds every reply in the memo, or is cached, simply leaves
the group.

Refuses (leaves nodes ungrouped) when the model or its kind differs, when one node depends
on the other (directly or through any chain), and for operators that call no model.

>>> from dcc.compiler.passes.testing import program_from
>>> p = program_from('''
... a = load.jsonl("d.jsonl") | select.length(field="t", min=6) | select.perplexity(field="t", model="org/lm")
... b = load.jsonl("d.jsonl") | select.length(field="t", max=5) | select.perplexity(field="t", model="org/lm")
... c = a | select.perplexity(field="u", model="org/lm")
... export concat(b, c) to "o.jsonl"
... ''', optimize=False)
>>> group_model_calls(p)  # doctest: +ELLIPSIS
['a, b share model ...org/lm (causal): select.perplexity, select.perplexity']
"""

from __future__ import annotations

from typing import Any

from dcc.compiler.ir import Node, Program


def group_model_calls(program: Program, *, target: str | None = None) -> list[str]:
    import networkx as nx

    needed = program.needed(target)
    by_model: dict[tuple[str, str], list[list[Node]]] = {}
    for node in program.nodes():
        model = model_of(node)
        if model is None or node.id not in needed:
            continue
        groups = by_model.setdefault(model, [])
        for group in groups:
            if all(not nx.has_path(program.graph, m.id, node.id) for m in group):
                group.append(node)  # plan order: nothing later reaches an earlier node
                break
        else:
            groups.append([node])
    found = [[n.id for n in g] for gs in by_model.values() for g in gs if len(g) > 1]
    if found == program.model_groups:
        return []  # the same groups again: nothing changed (keeps the fixed point finite)
    program.model_groups = found
    journal = []
    for ids in found:
        nodes = [program.node(i) for i in ids]
        ref, kind = model_of(nodes[0])  # type: ignore[misc]
        journal.append(f"{', '.join(n.name for n in nodes)} share model {ref} ({kind}): "
                       + ", ".join(n.op_name for n in nodes))
    return journal


def model_of(node: Node) -> tuple[str, str] | None:
    """(model reference, kind) of a node that asks a model through the request memo."""
    from dcc.ops.prompted import UsesModel
    from dcc.ops.scorers import ModelOp

    op: Any = node.op
    if isinstance(op, ModelOp):
        return str(op.p.get("model")), op.model_kind
    if isinstance(op, UsesModel):
        return str(op.p.get("model")), "causal"
    return None
