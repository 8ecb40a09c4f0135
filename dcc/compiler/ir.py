"""The IR: operator nodes in a networkx DiGraph, plus the exports and bindings that name them.

A `Node` is one operator application with its bound parameters and ordered inputs. Edges run
from input to consumer (the order of inputs lives on the node, since `concat(a, a)` has one
edge but two inputs). Display names never reach cache keys; they are for people.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from dcc.spans import Span

if TYPE_CHECKING:
    import networkx as nx

    from dcc.compiler.diagnostics import Diagnostic
    from dcc.ops.base import Op
    from dcc.schema import Schema


@dataclass
class Node:
    id: str
    op: Op
    inputs: list[str]
    span: Span
    names: list[str] = field(default_factory=list)
    arg_spans: dict[str, Span] = field(default_factory=dict)
    schema: Schema | None = None

    @property
    def name(self) -> str:
        return self.names[0] if self.names else self.id

    @property
    def op_name(self) -> str:
        return self.op.name

    @property
    def params(self) -> dict[str, Any]:
        return self.op.p


@dataclass
class Export:
    node: str
    path: str  # absolute
    display: str  # as written in the recipe
    span: Span
    binding: str | None = None  # the binding the statement names, when it names one


@dataclass
class Program:
    """A compiled recipe: the DAG, what it exports, and how bindings name its nodes."""

    path: str
    name: str
    graph: nx.DiGraph
    exports: list[Export]
    bindings: dict[str, str]  # binding name -> node id (every binding of the recipe)
    params: dict[str, Any]
    warnings: list[Diagnostic] = field(default_factory=list)
    journal: list[str] = field(default_factory=list)
    # Fused stages (set by the fuse_rowwise pass): last node id -> the chain's node ids.
    stages: dict[str, list[str]] = field(default_factory=dict)
    # Model groups (set by the group_model_calls pass): independent nodes on one model, in
    # plan order, whose requests the engine batches together.
    model_groups: list[list[str]] = field(default_factory=list)

    def model_group_of(self, node_id: str) -> list[str] | None:
        """The model group a node belongs to, or None."""
        return next((g for g in self.model_groups if node_id in g), None)

    def stage_of(self, node_id: str) -> list[str] | None:
        """The fused chain a node belongs to, or None."""
        for chain in self.stages.values():
            if node_id in chain:
                return chain
        return None

    def node(self, node_id: str) -> Node:
        return self.graph.nodes[node_id]["node"]

    def nodes(self) -> list[Node]:
        """Nodes in a deterministic topological order."""
        import networkx as nx

        return [self.node(n) for n in nx.lexicographical_topological_sort(
            self.graph, key=lambda n: (len(n), n))]

    def roots_for(self, target: str | None) -> set[str]:
        """Nodes a build must produce: the exports', or the target binding's."""
        if target is not None:
            return {self.bindings[target]}
        return {e.node for e in self.exports}

    def needed(self, target: str | None = None) -> set[str]:
        import networkx as nx

        roots = self.roots_for(target)
        out = set(roots)
        for r in roots:
            out |= nx.ancestors(self.graph, r)
        return out
