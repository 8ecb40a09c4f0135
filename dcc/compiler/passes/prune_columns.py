"""prune_columns: do not load columns that nothing downstream reads.

Rewrite: walking back from the exports (and the `--target`), each node learns which of its
output columns its consumers need (`Op.input_columns`: what is needed, minus what it writes,
plus what it reads; `columns.keep` and friends narrow it). A source that can skip columns
(it has a `columns` parameter, as `load.parquet` does) is then told to read only those.

Safe because an export writes every column of its node, so every column that can reach an
export is needed; a column that is dropped before any export is never observable, and
reading it or not changes no row (row-wise operators see only the columns they read).

>>> from dcc.compiler.passes.testing import program_from
>>> import polars as pl, os, tempfile
>>> folder = tempfile.mkdtemp()
>>> pl.DataFrame({"t": ["a"], "big": ["x" * 10]}).write_parquet(os.path.join(folder, "d.parquet"))
>>> p = program_from(f'''
... x = load.parquet("{folder}/d.parquet") | columns.keep(names=["t"])
... export x to "o.jsonl"
... ''', optimize=False)
>>> prune_columns(p)
['x@1 (load.parquet) reads only t']
"""

from __future__ import annotations

from dcc.compiler.ir import Program


def prune_columns(program: Program, *, target: str | None = None) -> list[str]:
    needed: dict[str, set[str] | None] = {}
    roots = {e.node for e in program.exports}
    if target is not None and target in program.bindings:
        roots.add(program.bindings[target])
    for node in reversed(program.nodes()):
        if node.id in roots:
            want: set[str] | None = None
        else:
            consumers = [program.node(c) for c in program.graph.successors(node.id)]
            want = set()
            for c in consumers:
                got = c.op.input_columns(needed.get(c.id))
                if got is None:
                    want = None
                    break
                want |= got
        needed[node.id] = want
    journal = []
    for node in program.nodes():
        want = needed.get(node.id)
        spec = node.op.spec("columns")
        if node.op.n_inputs != 0 or spec is None or want is None or node.schema is None:
            continue
        have = list(node.schema.columns)
        keep = [c for c in have if c in want]
        if node.op.p.get("columns") is not None or not keep or keep == have:
            continue
        node.op.p["columns"] = keep
        node.schema = node.op.output_schema([])
        journal.append(f"{node.name} ({node.op_name}) reads only {', '.join(keep)}")
    return journal
