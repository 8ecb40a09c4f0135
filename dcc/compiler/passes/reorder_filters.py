"""reorder_filters: run commuting row predicates cheapest-and-most-selective first.

Rewrite: in a chain of consecutive `Filter` nodes, reorder the predicates by the rows each
drops per unit of cost, `(1 - kept) / cost`, highest first. `cost` is the operator's cost
hint; `kept` is the fraction of rows the predicate keeps on the first `SAMPLE_ROWS` rows of
the data, when the chain's input comes from a source through row-wise operators only (then
the sample is that source's prefix pushed through those operators); otherwise 0.5.

Safe when every node in the chain is a pure row predicate (a `Filter`: no state, no
randomness, no dependence on other rows): a conjunction of such predicates keeps the same
rows in the same order whatever the order of its terms. Only the chain's *intermediate* nodes
change meaning, so the pass refuses to move a node that an export, a `--target`, a binding of
its own or a second consumer can see; dedup, sampling and every other whole-dataset operator
end a chain (a barrier nothing moves across).

Sampled selectivities are memoized (`memo`, keyed by the chain and the source files' stat
signatures) so that a no-op rebuild does not read data or import polars to re-plan.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from typing import Any

from dcc.compiler.ir import Node, Program

SAMPLE_ROWS = 2000
UNKNOWN_KEEP = 0.5


def reorder_filters(program: Program, *, target: str | None = None,
                    memo: MutableMapping[str, tuple] | None = None) -> list[str]:
    journal: list[str] = []
    pinned = pinned_nodes(program, target)
    for chain in filter_chains(program, pinned):
        keeps = _selectivities(program, chain, memo)
        ops = [(node.op, node.arg_spans, node.span) for node in chain]
        ranked = sorted(range(len(chain)), key=lambda i: (-_rank(ops[i][0], keeps[i]), i))
        if ranked == list(range(len(chain))):
            continue
        for node, i in zip(chain, ranked):
            node.op, node.arg_spans, node.span = ops[i]
        order = ", ".join(f"{ops[i][0].name} (keeps {keeps[i]:.0%}, cost {ops[i][0].cost:g})"
                          for i in ranked)
        journal.append(f"{chain[0].name}..{chain[-1].name}: {order}")
    return journal


def _rank(op: Any, keep: float) -> float:
    return (1.0 - keep) / max(op.cost, 1e-9)


def pinned_nodes(program: Program, target: str | None) -> set[str]:
    """Nodes whose own output someone can see: exported, targeted, or named by a binding."""
    pinned = {e.node for e in program.exports}
    if target is not None and target in program.bindings:
        pinned.add(program.bindings[target])
    pinned |= {n.id for n in program.nodes() if any("@" not in name for name in n.names)}
    return pinned


def filter_chains(program: Program, pinned: set[str]) -> list[list[Node]]:
    """Maximal chains of pure Filter nodes whose intermediate outputs nobody else sees."""
    g = program.graph
    chains: list[list[Node]] = []
    in_chain: set[str] = set()
    for node in program.nodes():
        if node.id in in_chain or not _is_filter(node):
            continue
        chain = [node]
        cur = node
        while cur.id not in pinned and g.out_degree(cur.id) == 1:
            nxt = program.node(next(iter(g.successors(cur.id))))
            if not _is_filter(nxt) or nxt.inputs != [cur.id]:
                break
            chain.append(nxt)
            cur = nxt
        in_chain |= {n.id for n in chain}
        if len(chain) > 1:
            chains.append(chain)
    return chains


def _is_filter(node: Node) -> bool:
    return node.op.kind == "filter" and not node.op.stochastic


def _selectivities(program: Program, chain: list[Node],
                   memo: MutableMapping[str, tuple] | None) -> list[float]:
    upstream = _rowwise_path_to_source(program, chain[0])
    if upstream is None:
        return [UNKNOWN_KEEP] * len(chain)
    key = _memo_key(upstream, chain)
    if memo is not None and key is not None and key in memo:
        return [float(x) for x in memo[key]]
    keeps = _sample(upstream, chain)
    if memo is not None and key is not None and keeps is not None:
        memo[key] = tuple(keeps)
    return keeps or [UNKNOWN_KEEP] * len(chain)


def _rowwise_path_to_source(program: Program, first: Node) -> list[Node] | None:
    """[source, rowwise ops...] feeding `first`, or None if a non-row-wise node intervenes."""
    path: list[Node] = []
    cur = first
    while True:
        if len(cur.inputs) != 1:
            return None
        cur = program.node(cur.inputs[0])
        path.append(cur)
        if cur.op.n_inputs == 0:
            return list(reversed(path))
        if cur.op.kind not in ("filter", "map"):
            return None


def _memo_key(upstream: list[Node], chain: list[Node]) -> str | None:
    from dcc.cache.hashing import canonical_bytes, digest

    try:
        stats = []
        for path in upstream[0].op.files():  # type: ignore[attr-defined]
            st = os.stat(path)
            stats.append([path, st.st_size, st.st_mtime_ns, st.st_ino])
        ops = [[n.op.name, n.op.version, n.op.p] for n in upstream + chain]
        return "sel:" + digest(canonical_bytes({"files": stats, "ops": ops,
                                                "rows": SAMPLE_ROWS}))
    except (OSError, TypeError, ValueError):
        return None


def _sample(upstream: list[Node], chain: list[Node]) -> list[float] | None:
    try:
        df = upstream[0].op.head(SAMPLE_ROWS)  # type: ignore[attr-defined]
        if df is None or df.height == 0:
            return None
        for node in upstream[1:]:
            df = node.op.run([df], _ctx(node))
            if df.height == 0:
                return None
        flags = df.select([n.op.predicate().fill_null(False).alias(str(i))  # type: ignore
                           for i, n in enumerate(chain)])
        return [float(flags[str(i)].mean()) for i in range(len(chain))]
    except Exception:  # sampling is advice: any failure here only means "no estimate"
        return None


def _ctx(node: Node) -> Any:
    from dcc.ops.base import RunContext

    return RunContext(node=node.name)

