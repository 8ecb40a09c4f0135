"""group_model_calls: let independent nodes on one served model fill its request window.

Rewrite: model nodes (operators that ask a model through the request memo: `respond`,
`select.judge`, `rewrite.llm`, `select.perplexity`, `select.ifd`, the generators, ...) that
name the same OpenAI-compatible endpoint (`openai:URL#MODEL`), of the same kind, and have no
path between them in the plan, form a *model group* (`program.model_groups`). The engine
builds every input of a group first, then runs its members together (`dcc.ops.models.pool`):
the requests that the backend answers one by one (completions, scores) go out as one set,
longest first, so the client's window of concurrent requests is filled from every node.
Nothing else changes: each node keeps its key, its inputs, its outputs and its row counts.

Safe because a member never needs another member's output (no path between them, so
neither is an ancestor of the other and both can have all their inputs ready at once), and
because a served model answers each request on its own: its reply depends on the request
(keyed by it in the memo), not on the requests sent with it or before it.

Refuses (leaves nodes ungrouped) when the model or its kind differs, when one node depends
on the other (directly or through any chain), for operators that call no model, and for
local models (a folder or hub id, transformers or vLLM offline): their numbers depend on the
batch a request is computed in (padding changes the order of float sums), so which node
computes a request they share first, and with what, shows in the last digits of a score;
running them in another order than the plan's could change an export. They are loaded once
per process either way.

>>> from dcc.compiler.passes.testing import program_from
>>> p = program_from('''
... param m = "openai:http://127.0.0.1:1/v1#m"
... a = load.jsonl("d.jsonl") | select.length(field="t", min=6)
...   | rewrite.llm(field="t", model=m, instruction="Shorter.")
... b = load.jsonl("d.jsonl") | select.length(field="t", max=5)
...   | rewrite.llm(field="t", model=m, instruction="Shorter.")
... c = a | rewrite.llm(field="u", model=m, instruction="Longer.")
... d = b | select.perplexity(field="t", model="org/lm")
... export concat(c, d) to "o.jsonl"
... ''', optimize=False)
>>> group_model_calls(p)
['a, b share model openai:http://127.0.0.1:1/v1#m (causal): rewrite.llm, rewrite.llm']
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
        upstream = nx.ancestors(program.graph, node.id)  # one search, not one per member
        for group in groups:
            if all(m.id not in upstream for m in group):
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
    """(endpoint, kind) of a node that asks a served model through the request memo."""
    from dcc.ops.prompted import UsesModel, openai_ref
    from dcc.ops.scorers import ModelOp

    op: Any = node.op
    if isinstance(op, ModelOp):
        kind = op.model_kind
    elif isinstance(op, UsesModel):
        kind = "causal"
    else:
        return None
    endpoint = openai_ref(str(op.p.get("model")))
    return (endpoint, kind) if endpoint is not None else None  # a local model: see above
