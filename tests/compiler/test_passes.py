"""Optimizer passes: each pass's rewrite, each refusal, and the property that optimizing never
changes a build's exports (hypothesis over random recipes and random data)."""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dcc.cache.store import DiskStore
from dcc.compiler import compile_recipe
from dcc.compiler.passes.dedupe_nodes import dedupe_nodes
from dcc.compiler.passes.fuse_rowwise import fuse_rowwise
from dcc.compiler.passes.prune_dead import prune_dead
from dcc.compiler.passes.push_filters import push_filters
from dcc.compiler.passes.reorder_filters import reorder_filters
from dcc.engine.build import build

ROWS = [
    {"t": "alpha beta gamma", "u": "x"},
    {"t": "a", "u": "yy"},
    {"t": "alpha beta gamma", "u": "zzz"},
    {"t": "delta epsilon zeta eta theta", "u": "x"},
    {"t": "  spaced\t\tout  ", "u": "x"},
]


def program(tmp_path: Path, text: str, optimize: bool = False, **kw):  # noqa: ANN201
    (tmp_path / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    path = tmp_path / "r.recipe"
    path.write_text(text)
    return compile_recipe(str(path), optimize=optimize, **kw)


def ops_of(p, binding: str) -> list[str]:  # noqa: ANN001
    """Operator names from the source down to a binding's node."""
    out, cur = [], p.bindings[binding]
    while True:
        node = p.node(cur)
        out.append(node.op_name)
        if not node.inputs:
            return list(reversed(out))
        cur = node.inputs[0]


# -- prune_dead ---------------------------------------------------------------------------------
def test_prune_dead_drops_what_no_export_needs(tmp_path: Path) -> None:
    p = program(tmp_path, 'a = load.jsonl("d.jsonl")\nb = a | select.length(field="t", min=1)\n'
                          'c = a | select.words(field="t", min=1)\nexport b to "o.jsonl"\n')
    journal = prune_dead(p)
    assert journal == ["removed c (select.words)"]
    assert {p.node(n).name for n in p.graph} == {"a", "b"}


def test_prune_dead_keeps_the_target_and_its_inputs(tmp_path: Path) -> None:
    p = program(tmp_path, 'a = load.jsonl("d.jsonl")\nb = a | select.length(field="t", min=1)\n'
                          'c = a | select.words(field="t", min=1)\nexport b to "o.jsonl"\n')
    prune_dead(p, target="c")
    assert {p.node(n).name for n in p.graph} == {"a", "c"}


# -- dedupe_nodes -------------------------------------------------------------------------------
def test_dedupe_merges_equal_chains_across_pipelines_and_imports(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "l.recipe").write_text(
        'pipeline p(f) = select.length(field=f, min=2)\n')
    p = program(tmp_path, 'use "lib/l.recipe" as l\n'
                          'a = load.jsonl("d.jsonl") | l.p(f="t")\n'
                          'b = load.jsonl("d.jsonl") | select.length(field="t", min=2)\n'
                          'export concat(a, b) to "o.jsonl"\n')
    journal = dedupe_nodes(p)
    assert len(journal) == 2
    assert p.bindings["a"] == p.bindings["b"]
    assert sorted(p.node(p.bindings["a"]).names) == ["a", "b"]


@pytest.mark.parametrize("b_expr", [
    'load.jsonl("d.jsonl") | select.length(field="t", min=3)',  # other params
    'load.jsonl("d.jsonl") | select.length(field="u", min=2)',  # other column
    'load.jsonl("d.jsonl") | select.words(field="t", min=2)',   # other operator
    'load.jsonl("d.jsonl") | select.sample(n=2, seed=2)',       # other seed
])
def test_dedupe_refuses_nodes_that_differ(tmp_path: Path, b_expr: str) -> None:
    a_expr = ('load.jsonl("d.jsonl") | select.sample(n=2, seed=1)' if "sample" in b_expr else
              'load.jsonl("d.jsonl") | select.length(field="t", min=2)')
    p = program(tmp_path, f'a = {a_expr}\nb = {b_expr}\nexport concat(a, b) to "o.jsonl"\n')
    dedupe_nodes(p)
    assert p.bindings["a"] != p.bindings["b"]


# -- reorder_filters ----------------------------------------------------------------------------
CHAIN = ('x = load.jsonl("d.jsonl")\n'
         '  | select.regex(field="u", pattern="x")\n'      # keeps 3/5, cost 4
         '  | select.length(field="t", min=2)\n'           # keeps 4/5, cost 1
         '  | select.words(field="t", min=3)\n'            # keeps 3/5, cost 15
         'export x to "o.jsonl"\n')


def test_reorder_puts_the_most_rows_dropped_per_cost_first(tmp_path: Path) -> None:
    p = program(tmp_path, CHAIN)
    journal = reorder_filters(p)
    assert len(journal) == 1
    # drop per cost: length 0.2/1 = 0.2, regex 0.4/4 = 0.1, words 0.4/15 = 0.027
    assert ops_of(p, "x") == ["load.jsonl", "select.length", "select.regex", "select.words"]


def test_reorder_uses_a_memo_instead_of_reading_data_again(tmp_path: Path) -> None:
    memo: dict = {}
    reorder_filters(program(tmp_path, CHAIN), memo=memo)
    assert len(memo) == 1
    (key,) = memo
    memo[key] = (0.0, 1.0, 1.0)  # pretend regex drops everything: it must now go first
    p = compile_recipe(str(tmp_path / "r.recipe"), optimize=False)  # same files, same stat
    reorder_filters(p, memo=memo)
    assert ops_of(p, "x")[1] == "select.regex"


@pytest.mark.parametrize("middle", [
    'select.dedup(fields=["t"], method="exact")',  # whole-dataset barrier
    'select.sample(n=4, seed=1)',                  # stochastic barrier
    'rewrite.normalize(fields=["t"])',             # a map: filters do not move across it
])
def test_reorder_never_moves_a_filter_across_a_barrier(tmp_path: Path, middle: str) -> None:
    p = program(tmp_path, 'x = load.jsonl("d.jsonl")\n  | select.regex(field="u", pattern="x")\n'
                          f'  | {middle}\n  | select.length(field="t", min=2)\n'
                          'export x to "o.jsonl"\n')
    assert reorder_filters(p) == []


def test_reorder_refuses_to_change_a_visible_intermediate(tmp_path: Path) -> None:
    p = program(tmp_path, 'a = load.jsonl("d.jsonl") | select.regex(field="u", pattern="x")\n'
                          'b = a | select.length(field="t", min=2)\n'
                          'export a to "a.jsonl"\nexport b to "b.jsonl"\n')
    assert reorder_filters(p) == []
    assert ops_of(p, "b") == ["load.jsonl", "select.regex", "select.length"]


# -- push_filters -------------------------------------------------------------------------------
def test_push_moves_a_filter_above_every_map_it_commutes_with(tmp_path: Path) -> None:
    p = program(tmp_path, 'x = load.jsonl("d.jsonl") | rewrite.normalize(fields=["t"])\n'
                          '  | rewrite.normalize(fields=["t"]) | select.regex(field="u", pattern="x")\n'
                          'export x to "o.jsonl"\n')
    assert push_filters(p) == ["x@3 (select.regex) now runs before rewrite.normalize"]
    assert push_filters(p) == ["x@2 (select.regex) now runs before rewrite.normalize"]
    assert push_filters(p) == []  # at the top: a fixed point
    assert ops_of(p, "x") == ["load.jsonl", "select.regex", "rewrite.normalize",
                              "rewrite.normalize"]
    assert p.node(p.bindings["x"]).schema.columns.keys() == {"t", "u"}


@pytest.mark.parametrize("chain", [
    # the map writes the column the filter reads
    'rewrite.normalize(fields=["u", "t"]) | select.length(field="t", min=2)',
    # a projection renames columns: what it writes is not a plain list of expressions
    'columns.rename(mapping={"u": "v"}) | select.length(field="t", min=2)',
    'columns.keep(names=["t", "u"]) | select.length(field="t", min=2)',
    # a whole-dataset barrier between the map and the filter
    'rewrite.normalize(fields=["t"]) | select.dedup(fields=["t"], method="exact")'
    ' | select.length(field="u", min=1)',
    # a filter over an expression reading the written column
    'rewrite.normalize(fields=["t"]) | select.where(expr=len(t) > 2)',
])
def test_push_refuses_when_the_filter_may_see_what_the_map_did(tmp_path: Path,
                                                               chain: str) -> None:
    p = program(tmp_path, f'x = load.jsonl("d.jsonl") | {chain}\nexport x to "o.jsonl"\n')
    before = ops_of(p, "x")
    assert push_filters(p) == []
    assert ops_of(p, "x") == before


def test_push_refuses_stochastic_operators(tmp_path: Path) -> None:
    text = ('x = load.jsonl("d.jsonl") | rewrite.normalize(fields=["t"])'
            ' | select.length(field="u", min=1)\nexport x to "o.jsonl"\n')
    for which in ("map", "filter"):
        p = program(tmp_path, text)
        node = next(n for n in p.nodes() if n.op.kind == which)
        node.op.stochastic = True  # type: ignore[misc]  # as a randomized operator declares
        assert push_filters(p) == []


def test_push_refuses_to_change_a_visible_map_output(tmp_path: Path) -> None:
    for text in (
        # the map's output is exported
        'a = load.jsonl("d.jsonl") | rewrite.normalize(fields=["t"])\n'
        'b = a | select.length(field="u", min=1)\nexport a to "a.jsonl"\nexport b to "b.jsonl"\n',
        # a second consumer reads it
        'a = load.jsonl("d.jsonl") | rewrite.normalize(fields=["t"])\n'
        'b = a | select.length(field="u", min=1)\nc = a | select.words(field="u", min=1)\n'
        'export concat(b, c) to "o.jsonl"\n',
    ):
        p = program(tmp_path, text)
        assert push_filters(p) == []
    p = program(tmp_path, 'a = load.jsonl("d.jsonl") | rewrite.normalize(fields=["t"])\n'
                          'b = a | select.length(field="u", min=1)\nexport b to "b.jsonl"\n')
    assert push_filters(p, target="a") == []  # a binding of its own is pinned anyway


def test_push_refuses_row_wise_python_operators(tmp_path: Path) -> None:
    from dcc.ops.base import P, RowPython

    class Upper(RowPython):  # a model-like operator: Python per row, through the row memo
        name = "test.upper"
        params = (P("field", "str", column=True),)

        def writes(self) -> list[str]:
            return ["upper"]

    p = program(tmp_path, 'x = load.jsonl("d.jsonl") | rewrite.normalize(fields=["t"])'
                          ' | select.length(field="u", min=1)\nexport x to "o.jsonl"\n')
    next(n for n in p.nodes() if n.op.kind == "map").op = Upper(field="t")
    assert push_filters(p) == []


def test_pushed_and_unpushed_builds_export_the_same_bytes(tmp_path: Path) -> None:
    text = ('x = load.jsonl("d.jsonl") | rewrite.normalize(fields=["t"])'
            ' | select.length(field="u", min=1) | rewrite.normalize(fields=["u"])'
            ' | select.words(field="t", min=2)\nexport x to "out/o.jsonl"\n')
    outs = []
    for optimize in (False, True):
        root = tmp_path / str(optimize)
        root.mkdir()
        prog = program(root, text, optimize=optimize)
        assert any("push_filters" in j for j in prog.journal) == optimize
        with DiskStore(root / ".dcc") as store:
            build(prog, store)
        outs.append((root / "out" / "o.jsonl").read_bytes())
    assert outs[0] == outs[1] and outs[0].count(b"\n") == 4


# -- fuse_rowwise -------------------------------------------------------------------------------
def test_fuse_groups_a_chain_of_row_wise_nodes(tmp_path: Path) -> None:
    p = program(tmp_path, CHAIN)
    assert fuse_rowwise(p) == ["stage x@2..x: select.regex, select.length, select.words"]
    assert fuse_rowwise(p) == []  # same stages again: no change, so the fixed point ends


@pytest.mark.parametrize("text", [
    # an exported intermediate must be materialized
    'a = load.jsonl("d.jsonl") | select.length(field="t", min=2)\n'
    'b = a | select.words(field="t", min=1)\nexport a to "a.jsonl"\nexport b to "b.jsonl"\n',
    # two consumers
    'a = load.jsonl("d.jsonl") | select.length(field="t", min=2)\n'
    'b = a | select.words(field="t", min=1)\nc = a | select.words(field="t", min=2)\n'
    'export concat(b, c) to "o.jsonl"\n',
    # a whole-dataset operator between
    'a = load.jsonl("d.jsonl") | select.length(field="t", min=2) | select.dedup(fields=["t"])'
    ' | select.words(field="t", min=1)\nexport a to "o.jsonl"\n',
])
def test_fuse_refuses_to_hide_what_must_exist(tmp_path: Path, text: str) -> None:
    p = program(tmp_path, text)
    fuse_rowwise(p)
    assert all(len(chain) < 2 or p.node(chain[0]).op.kind in ("filter", "map")
               for chain in p.stages.values())
    for chain in p.stages.values():
        for node_id in chain[:-1]:
            assert node_id not in {e.node for e in p.exports}
            assert p.graph.out_degree(node_id) == 1


def test_fuse_stops_at_the_target(tmp_path: Path) -> None:
    p = program(tmp_path, CHAIN)
    fuse_rowwise(p, target="x@2")
    assert all(p.bindings["x@2"] not in chain[:-1] for chain in p.stages.values()) \
        if "x@2" in p.bindings else True


# -- the optimizer never changes a build's exports ---------------------------------------------
TEXT = st.text(alphabet=string.ascii_lowercase[:6] + " \t\n.!?", max_size=30)
ROW = st.fixed_dictionaries({"t": st.one_of(TEXT, st.none()), "u": TEXT})
STAGES = st.sampled_from([
    'select.length(field="t", min={n})',
    'select.length(field="u", max={n})',
    'select.words(field="t", min={k})',
    'select.words(field="u", max={k})',
    'select.regex(field="t", pattern="a|b", keep={b})',
    'select.regex(field="u", pattern="^c", keep={b})',
    'rewrite.normalize(fields=["t"])',
    'rewrite.normalize(fields=["u", "t"])',
    'rewrite.normalize(fields=["u"])',
    # a map then a filter on a column it does not write: push_filters' situation, made common
    'rewrite.normalize(fields=["t"]) | select.regex(field="u", pattern="b|c", keep={b})',
    'select.dedup(fields=["t"], method="exact")',
    'select.dedup(fields=["u", "t"], method="exact")',
    'select.sample(fraction=0.{k}, seed={n})',
    'columns.keep(names=["u", "t"])',
    'columns.rename(mapping={{"u": "u"}})',
])


@st.composite
def recipes(draw) -> tuple[str, list[dict]]:  # noqa: ANN001
    rows = draw(st.lists(ROW, max_size=25))
    lines = ['src = load.jsonl("d.jsonl")']
    names = ["src"]
    for i in range(draw(st.integers(1, 4))):
        base = draw(st.sampled_from(names))
        stages = [draw(STAGES).format(n=draw(st.integers(0, 12)), k=draw(st.integers(1, 9)),
                                      b=draw(st.sampled_from(["true", "false"])))
                  for _ in range(draw(st.integers(1, 5)))]
        if draw(st.booleans()) and len(names) > 1:
            other = draw(st.sampled_from(names))
            lines.append(f"b{i} = concat({base}, {other}) | " + " | ".join(stages))
        else:
            lines.append(f"b{i} = {base} | " + " | ".join(stages))
        names.append(f"b{i}")
    exported = draw(st.lists(st.sampled_from(names), min_size=1, max_size=3, unique=True))
    for j, name in enumerate(exported):
        lines.append(f'export {name} to "out/e{j}.jsonl"')
    return "\n".join(lines) + "\n", rows


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(case=recipes())
def test_optimizing_never_changes_the_exports(tmp_path_factory, case) -> None:  # noqa: ANN001
    text, rows = case
    outputs = []
    for optimize in (False, True):
        root = tmp_path_factory.mktemp("opt" if optimize else "plain")
        (root / "d.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) or "\n")
        (root / "r.recipe").write_text(text)
        if not rows:
            (root / "d.jsonl").write_text('{"t": "", "u": ""}\n')
        prog = compile_recipe(str(root / "r.recipe"), optimize=optimize)
        with DiskStore(root / ".dcc") as store:
            build(prog, store)
        outputs.append({p.name: p.read_bytes() for p in sorted((root / "out").iterdir())})
    assert outputs[0] == outputs[1]


# -- prune_columns ------------------------------------------------------------------------------
def _parquet(tmp_path: Path) -> None:
    import polars as pl

    pl.DataFrame({"t": ["alpha beta", "b"], "u": ["x", "y"], "big": ["z" * 50] * 2}) \
        .write_parquet(tmp_path / "d.parquet")


def test_prune_columns_tells_parquet_sources_what_to_read(tmp_path: Path) -> None:
    from dcc.compiler.passes.prune_columns import prune_columns

    _parquet(tmp_path)
    p = program(tmp_path, 'x = load.parquet("d.parquet") | select.length(field="u", min=1)'
                          ' | columns.keep(names=["t"])\nexport x to "o.jsonl"\n')
    assert prune_columns(p) == ["x@1 (load.parquet) reads only t, u"]
    assert prune_columns(p) == []  # already narrowed: a fixed point


@pytest.mark.parametrize("tail", [
    'select.length(field="u", min=1)',                 # every column reaches the export
    'columns.drop(names=["big"]) | select.dedup(fields=["t"])',  # drop needs what it drops
])
def test_prune_columns_refuses_when_every_column_is_observable(tmp_path: Path, tail: str) -> None:
    from dcc.compiler.passes.prune_columns import prune_columns

    _parquet(tmp_path)
    p = program(tmp_path, f'x = load.parquet("d.parquet") | {tail}\nexport x to "o.jsonl"\n')
    assert prune_columns(p) == []


def test_pruned_and_unpruned_builds_export_the_same_bytes(tmp_path: Path) -> None:
    _parquet(tmp_path)
    text = ('x = load.parquet("d.parquet") | columns.rename(mapping={"u": "v"})'
            ' | select.length(field="v", min=1) | columns.keep(names=["t", "v"])\n'
            'export x to "out/o.jsonl"\n')
    outs = []
    for optimize in (False, True):
        root = tmp_path / str(optimize)
        root.mkdir()
        _parquet(root)
        (root / "r.recipe").write_text(text)
        prog = compile_recipe(str(root / "r.recipe"), optimize=optimize)
        with DiskStore(root / ".dcc") as store:
            build(prog, store)
        outs.append((root / "out" / "o.jsonl").read_bytes())
    assert outs[0] == outs[1] and b'"v":"x"' in outs[0] and b"big" not in outs[0]
