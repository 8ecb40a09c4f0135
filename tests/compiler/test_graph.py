"""Lowering a recipe to its DAG, and `dcc graph` printing it as JSON, dot and Mermaid.

Pipelines are inlined at each use; each binding names its last stage, the stages before it
are `binding@1`, `binding@2`, ...; a binding that is just another binding's name adds a
name to that node instead of a node of its own.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dcc.compiler import compile_recipe
from dcc.compiler.ir import Program

ROWS = [{"text": "hello world", "id": 1}, {"text": "bye", "id": 2}]
RECIPE = """\
recipe demo
param n = 2
raw = load.jsonl("data.jsonl")
pipeline tidy(f) =
    rewrite.normalize(fields=[f])
  | select.length(field=f, min=n)
clean = raw | tidy(f="text") | select.dedup(fields=["text"])
same = clean
again = same
short = clean | select.words(field="text", max=3)
spare = raw | select.sample(n=1)
export concat(short, again, raw | tidy(f="text")) to "out/all.jsonl"
export short to "out/short.jsonl"
"""


@pytest.fixture
def folder(recipe_dir) -> Path:
    return recipe_dir({"data.jsonl": ROWS, "r.recipe": RECIPE})


@pytest.fixture
def program(folder: Path) -> Program:
    return compile_recipe(str(folder / "r.recipe"), optimize=False)


def by_name(program: Program) -> dict[str, object]:
    return {name: program.node(node_id) for node_id in program.graph
            for name in program.node(node_id).names}


def test_pipelines_are_inlined_and_stages_are_named(program: Program) -> None:
    assert [(n.name, n.op_name, [program.node(i).name for i in n.inputs])
            for n in program.nodes()] == [
        ("raw", "load.jsonl", []),
        ("clean@1", "rewrite.normalize", ["raw"]),
        ("clean@2", "select.length", ["clean@1"]),
        ("clean", "select.dedup", ["clean@2"]),
        ("short", "select.words", ["clean"]),
        ("spare", "select.sample", ["raw"]),
        ("export#1@1", "rewrite.normalize", ["raw"]),
        ("export#1@2", "select.length", ["export#1@1"]),
        ("export#1@3", "concat", ["short", "clean", "export#1@2"]),
    ]
    length = by_name(program)["clean@2"]
    assert length.params == {"field": "text", "min": 2, "max": None}


def test_alias_bindings_share_their_node(program: Program) -> None:
    clean = program.bindings["clean"]
    assert program.bindings["same"] == program.bindings["again"] == clean
    assert program.node(clean).names == ["clean", "same", "again"]
    assert program.node(clean).name == "clean"


def test_every_binding_is_listed_and_node_names_are_unique(program: Program) -> None:
    assert set(program.bindings) == {"raw", "clean", "same", "again", "short", "spare"}
    names = [name for n in program.nodes() for name in n.names]
    assert len(names) == len(set(names))
    for binding, node_id in program.bindings.items():
        assert binding in program.node(node_id).names


def test_edges_follow_inputs(program: Program) -> None:
    edges = {(a, b) for a, b in program.graph.edges}
    assert edges == {(i, n.id) for n in program.nodes() for i in n.inputs}


def test_an_input_used_twice_is_one_edge_and_two_inputs(recipe_dir) -> None:
    root = recipe_dir({"data.jsonl": ROWS,
                       "r.recipe": 'a = load.jsonl("data.jsonl")\nb = concat(a, a)\n'
                                   'export b to "o.jsonl"\n'})
    program = compile_recipe(str(root / "r.recipe"), optimize=False)
    a, b = program.bindings["a"], program.bindings["b"]
    assert program.node(b).inputs == [a, a]
    assert list(program.graph.edges) == [(a, b)]


def test_node_spans_point_at_the_operator_name(program: Program, folder: Path) -> None:
    spans = {n.name: (n.span.line, n.span.col) for n in program.nodes()}
    assert spans["raw"] == (3, 7)
    assert spans["clean@1"] == (5, 5)  # inside the pipeline's body
    assert spans["short"] == (10, 17)
    assert all(n.span.file == str(folder / "r.recipe") for n in program.nodes())


def test_exports_name_their_nodes(program: Program, folder: Path) -> None:
    assert [(program.node(e.node).name, e.display, e.path) for e in program.exports] == [
        ("export#1@3", "out/all.jsonl", str(folder / "out" / "all.jsonl")),
        ("short", "out/short.jsonl", str(folder / "out" / "short.jsonl")),
    ]


def test_imported_bindings_are_named_with_their_alias(recipe_dir) -> None:
    root = recipe_dir({"data.jsonl": ROWS,
                       "lib/l.recipe": 'src = load.jsonl("../data.jsonl")\n'
                                       'pipeline p() = select.length(field="text", min=1)\n',
                       "r.recipe": 'use "lib/l.recipe" as lib\nx = lib.src | lib.p()\n'
                                   'y = lib.src\nexport concat(x, y) to "o.jsonl"\n'})
    program = compile_recipe(str(root / "r.recipe"), optimize=False)
    assert [n.names for n in program.nodes()] == [["lib.src", "y"], ["x"], ["export#1@1"]]


def test_optimizing_prunes_what_no_export_needs(folder: Path) -> None:
    program = compile_recipe(str(folder / "r.recipe"))
    assert "spare" not in {n.name for n in program.nodes()}
    assert "spare" in program.bindings  # still a binding of the recipe


# -- dcc graph ------------------------------------------------------------------------------
def test_graph_json(folder: Path, program: Program, run_cli) -> None:
    code, out, err = run_cli("graph", "r.recipe", "--format", "json", cwd=folder)
    assert code == 0, err
    data = json.loads(out)
    assert {"recipe", "nodes", "edges", "exports", "bindings"} <= set(data)
    assert data["recipe"] == "demo"
    nodes = {n["id"]: n for n in data["nodes"]}
    assert len(nodes) == len(program.graph) == 9
    for n in data["nodes"]:
        assert {"id", "name", "names", "op", "params", "inputs", "span", "columns"} <= set(n)
        assert re.fullmatch(r"r\.recipe:\d+:\d+", n["span"])
    assert {(e["from"], e["to"]) for e in data["edges"]} == {
        (i, n["id"]) for n in data["nodes"] for i in n["inputs"]}
    assert set(data["bindings"]) == {"raw", "clean", "same", "again", "short", "spare"}
    for binding, node_id in data["bindings"].items():
        assert binding in nodes[node_id]["names"]
    assert [(nodes[e["node"]]["name"], e["path"]) for e in data["exports"]] == [
        ("export#1@3", "out/all.jsonl"), ("short", "out/short.jsonl")]
    clean = nodes[data["bindings"]["clean"]]
    assert clean["op"] == "select.dedup"
    assert {k: clean["params"][k] for k in ("fields", "method", "normalize")} == {
        "fields": ["text"], "method": "exact", "normalize": False}
    assert clean["columns"] == ["id", "text"]


def test_graph_json_optimized_leaves_out_pruned_bindings(folder: Path, run_cli) -> None:
    code, out, err = run_cli("graph", "r.recipe", "--format", "json", "--optimized",
                             cwd=folder)
    assert code == 0, err
    data = json.loads(out)
    assert "spare" not in data["bindings"]
    assert "spare" not in {n["name"] for n in data["nodes"]}
    assert any("spare" in line for line in data["journal"])


def test_graph_dot(folder: Path, program: Program, run_cli) -> None:
    code, out, err = run_cli("graph", "r.recipe", "--format", "dot", cwd=folder)
    assert code == 0, err
    assert out.startswith('digraph "demo" {\n') and out.rstrip().endswith("}")
    for n in program.nodes():
        assert f'  {n.id} [label="{n.name}\\n{n.op_name}"];' in out
    for a, b in program.graph.edges:
        assert f"  {a} -> {b};" in out
    assert '  export0 [shape=note, label="out/all.jsonl"];' in out
    assert f"  {program.exports[1].node} -> export1;" in out
    code, default, _ = run_cli("graph", "r.recipe", cwd=folder)
    assert (code, default) == (0, out)  # dot is the default


def test_graph_mermaid(folder: Path, program: Program, run_cli) -> None:
    code, out, err = run_cli("graph", "r.recipe", "--format", "mermaid", cwd=folder)
    assert code == 0, err
    assert out.splitlines()[0] == "flowchart LR"
    for n in program.nodes():
        assert f'  {n.id}["{n.name}<br/>{n.op_name}"]' in out
    for a, b in program.graph.edges:
        assert f"  {a} --> {b}" in out
    assert '  export1[/"out/short.jsonl"/]' in out


def test_labels_are_escaped(recipe_dir) -> None:
    from dcc.compiler.render import graph_dot, graph_mermaid

    root = recipe_dir({"data.jsonl": ROWS,
                       "r.recipe": 'a = load.jsonl("data.jsonl")\n'
                                   'export a to "q\\"x\\\\new\\nline.jsonl"\n'})
    program = compile_recipe(str(root / "r.recipe"), optimize=False)
    assert program.exports[0].display == 'q"x\\new\nline.jsonl'
    assert 'label="q\\"x\\\\new\\nline.jsonl"' in graph_dot(program)
    assert '[/"q#quot;x\\new<br/>line.jsonl"/]' in graph_mermaid(program)


def test_graph_of_a_broken_recipe_exits_1_with_diagnostics(recipe_dir, run_cli) -> None:
    root = recipe_dir({"r.recipe": "x = load.jsonl(\"data.jsonl\") |\n"})
    code, out, err = run_cli("graph", "r.recipe", "--format", "json", cwd=root)
    assert code == 1 and out == ""
    assert "r.recipe:1:31: error: expected an operator after '|'" in err


def test_graph_of_the_quickstart(run_cli) -> None:
    recipes = Path(__file__).resolve().parents[2] / "recipes"
    code, out, err = run_cli("graph", "quickstart.recipe", "--format", "json", cwd=recipes)
    assert code == 0, err
    data = json.loads(out)
    assert [n["name"] for n in data["nodes"]] == [
        "problems", "clean@1", "clean@2", "clean@3", "clean@4", "clean", "distinct", "concise",
        "core", "prompts", "grown@1",
        "grown.r1@1", "grown.r1@2", "grown.r1@3", "grown.r1@4",
        "grown.r2@1", "grown.r2@2", "grown.r2@3", "grown.r2@4", "grown", "eval_pick"]
    assert [n["span"] for n in data["nodes"][1:3]] == ["lib/cleaning.recipe:8:5",
                                                      "lib/cleaning.recipe:9:5"]
