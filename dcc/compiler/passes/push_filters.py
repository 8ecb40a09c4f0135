"""push_filters: run a row predicate before a row rewrite that cannot change its answer.

Rewrite: `x | M | F`, where `M` is a pure row-wise `Map` and `F` a pure row predicate
(`Filter`) that reads no column `M` writes, becomes `x | F | M`. The map then rewrites only
the rows the filter keeps: it does strictly less work (the filter sees the same number of
rows as before, since a map drops none). Repeated to a fixed point, a filter climbs over
every map it commutes with, so chains of filters meet and `reorder_filters` can rank them.

Safe because, for every row r, `F(M(r)) = F(r)` when `F` reads only columns `M` leaves
untouched, and a row-wise map applied to a subset of rows gives those rows exactly what it
gives them in the whole table: so both orders keep the same rows, with the same values, in
the same order. The columns are taken from the operators themselves: what `M` writes is the
output name of each of its polars expressions (the same rule the engine uses for patches),
what `F` reads is its declared columns plus the columns its predicate expression names.

The pass refuses, and leaves the plan as it is, when:
  - `M` writes a column `F` reads (`rewrite.normalize(fields=["t"]) | select.length("t")`);
  - what `M` writes or what `F` reads cannot be known: a map with its own `transform`
    (`columns.keep`, `columns.rename`, `columns.drop` rename or drop columns), an expression
    with several or unnamed outputs, a predicate over a wildcard or regex column selection;
  - either is stochastic, or is not a pure `Filter`/`Map` at all: row-wise Python operators
    (model calls, through the row memo), whole-dataset operators (dedup, sampling,
    diversity, ranked or statistical `keep`) are barriers nothing moves across;
  - `M`'s own output is visible (exported, the `--target`, a binding of its own, or read by
    a second consumer): moving `F` above it would change a table someone sees.

>>> from dcc.compiler.passes.testing import program_from
>>> p = program_from('''
... x = load.jsonl("d.jsonl") | rewrite.normalize(fields=["t"])
...   | select.length(field="u", min=1)
... export x to "o.jsonl"
... ''', optimize=False)
>>> push_filters(p)
['x@2 (select.length) now runs before rewrite.normalize']
>>> [n.op_name for n in p.nodes()]
['load.jsonl', 'select.length', 'rewrite.normalize']
"""

from __future__ import annotations

from collections.abc import MutableMapping

from dcc.compiler.ir import Node, Program
from dcc.compiler.passes.reorder_filters import pinned_nodes


def push_filters(program: Program, *, target: str | None = None,
                 memo: MutableMapping[str, tuple] | None = None) -> list[str]:
    journal: list[str] = []
    pinned = pinned_nodes(program, target)
    g = program.graph
    for node in program.nodes():  # topological: an upper pair settles before a lower one
        if not _pure(node, "filter") or len(node.inputs) != 1:
            continue
        above = program.node(node.inputs[0])
        if (above.id in pinned or g.out_degree(above.id) != 1 or not _pure(above, "map")
                or not _commutes(above, node, memo)):
            continue
        map_op = above.op
        # The two nodes trade operators: ids, names and keys stay where they were, the upper
        # node now filters and the lower one maps (reorder_filters moves filters the same way).
        above.op, node.op = node.op, map_op
        above.arg_spans, node.arg_spans = node.arg_spans, above.arg_spans
        above.span, node.span = node.span, above.span
        _retype(program, above, node)
        journal.append(f"{above.name} ({above.op_name}) now runs before {node.op_name}")
    return journal


def _pure(node: Node, kind: str) -> bool:
    return node.op.kind == kind and not node.op.stochastic


def _commutes(map_node: Node, filter_node: Node,
              memo: MutableMapping[str, tuple] | None) -> bool:
    """`_commute`, memoized in the store's plan memo like reorder_filters' selectivities:
    deciding it builds polars expressions, and a no-op rebuild must not import polars to
    re-plan. The answer depends only on the two operators (name, version, code fingerprint,
    parameters), so those are the key: an edit of either operator's code decides anew."""
    from dcc.cache.hashing import canonical_bytes, digest
    from dcc.engine.keys import op_code

    try:
        key = "commute:" + digest(canonical_bytes(
            [[n.op.name, n.op.version, op_code(type(n.op), memo), n.op.p]
             for n in (map_node, filter_node)]))
    except TypeError:  # a parameter value without canonical bytes: decide without the memo
        return _commute(map_node, filter_node)
    if memo is not None and key in memo:
        return bool(memo[key][0])
    ok = _commute(map_node, filter_node)
    if memo is not None:
        memo[key] = (ok,)
    return ok


def _commute(map_node: Node, filter_node: Node) -> bool:
    """True when the filter provably reads no column the map writes."""
    from dcc.engine.stages import written_columns

    written = written_columns([map_node], [])
    read = _filter_reads(filter_node)
    return written is not None and read is not None and not (set(written) & read)


def _filter_reads(node: Node) -> set[str] | None:
    """Every column the predicate can read, or None when a selection is not by name."""
    import polars as pl

    try:
        expr = node.op.predicate()  # type: ignore[attr-defined]
        names = set(expr.meta.root_names())
        if _selects_by_pattern(expr):
            return None
    except (pl.exceptions.PolarsError, NotImplementedError, AttributeError):
        return None
    return names | set(node.op.reads())


def _selects_by_pattern(expr: object) -> bool:
    """A selection that is not by plain names (`pl.all()`, a regex or dtype selection,
    `pl.nth`) reads columns `root_names` does not list; polars prints every one of them as a
    selector (`cs.all()`, `cs.matches(...)`, ...). A literal that merely contains "cs." is
    refused too: a missed rewrite, never a wrong one."""
    return "cs." in str(expr)


def _retype(program: Program, upper: Node, lower: Node) -> None:
    """The upper node now filters (its input's columns), the lower one maps them."""
    source = program.node(upper.inputs[0]).schema
    upper.schema = upper.op.output_schema([source]) if source is not None else None
    lower.schema = lower.op.output_schema([upper.schema]) if upper.schema is not None else None
