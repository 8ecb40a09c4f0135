"""Failures at run time: exit 3, the file and line or the node named, never a traceback;
what finished before the failure stays cached."""

from __future__ import annotations

import json

from engine_helpers import Project, node, rows_jsonl, statuses

# Schema inference reads the first 100 rows; the problems below sit after them, so the recipe
# compiles and the failure happens while building.
GOOD = [{"text": f"line {i}", "k": f"k{i % 5}"} for i in range(150)]


def test_a_malformed_jsonl_line_exits_3_naming_file_and_line(project: Project) -> None:
    lines = rows_jsonl(GOOD).splitlines(keepends=True)
    lines.insert(149, '{"text": "broken", \n')  # becomes line 150
    project.write("data/rows.jsonl", "".join(lines))
    project.write("r.recipe", """src = load.jsonl("data/rows.jsonl")
export src to "out/rows.jsonl"
""")
    r = project.run("build", "r.recipe")
    assert r.returncode == 3, r.stderr
    assert "data/rows.jsonl:150" in r.stderr
    assert "Traceback" not in r.stderr
    assert not project.path("out/rows.jsonl").exists()

    r = project.run("build", "r.recipe", "--json")
    assert r.returncode == 3 and r.stdout == ""  # no half report on stdout


def test_on_error_skip_drops_bad_lines_and_counts_them(project: Project) -> None:
    lines = rows_jsonl(GOOD).splitlines(keepends=True)
    lines[120:120] = ["not json\n", "[1, 2]\n", '{"text": nan}\n']
    project.write("data/rows.jsonl", "".join(lines))
    project.write("r.recipe", """src = load.jsonl("data/rows.jsonl", on_error="skip")
export src to "out/rows.jsonl"
""")
    rep = project.build()
    src = node(rep, "src")
    assert src["rows_out"] == 150
    assert src["stats"]["skipped_lines"] == 3
    out = project.path("out/rows.jsonl").read_text().splitlines()
    assert [json.loads(ln) for ln in out] == GOOD
    assert node(project.build(), "src")["stats"]["skipped_lines"] == 3  # cached, same stats


def _typed_late(project: Project) -> None:
    """`t` is null in the first 150 rows (inferred as null) and an int after them."""
    rows = [{"t": None, "k": f"k{i % 3}"} for i in range(150)] + [{"t": 5, "k": "k9"}]
    project.write_jsonl("data/rows.jsonl", rows)


def test_an_operator_failing_at_run_time_exits_3_naming_the_node(project: Project) -> None:
    _typed_late(project)
    recipe = """src = load.jsonl("data/rows.jsonl")
few = src | select.dedup(fields=["k"])
short = few | select.length(field="t", max=3)
export short to "out/short.jsonl"
"""
    project.write("r.recipe", recipe)
    r = project.run("build", "r.recipe")
    assert r.returncode == 3, r.stderr
    assert "'short'" in r.stderr
    assert "Traceback" not in r.stderr
    assert "ran    few" in r.stderr  # the nodes before it finished
    assert not project.path("out").exists()

    # Fix the recipe: what finished before the failure is cached.
    project.write("r.recipe", recipe.replace('field="t"', 'field="k"'))
    rep = project.build()
    assert statuses(rep) == {"src": "cached", "few": "cached", "short": "ran"}


def test_regex_on_non_string_data_exits_3_naming_the_node(project: Project) -> None:
    _typed_late(project)
    project.write("r.recipe", """src = load.jsonl("data/rows.jsonl")
fives = src | select.regex(field="t", pattern="5")
export fives to "out/fives.jsonl"
""")
    r = project.run("build", "r.recipe", "--json")
    assert r.returncode == 3, r.stderr
    assert "'fives'" in r.stderr and "Traceback" not in r.stderr
    assert r.stdout == ""
    r = project.run("plan", "r.recipe", "--json")
    assert statuses(json.loads(r.stdout))["src"] == "cached"


def test_a_missing_source_is_a_diagnostic_with_its_path(project: Project) -> None:
    project.write_jsonl("data/rows.jsonl", GOOD)
    project.write("r.recipe", """src = load.jsonl("data/rows.jsonl")
export src to "out/rows.jsonl"
""")
    project.path("data/rows.jsonl").unlink()
    r = project.run("build", "r.recipe")
    assert r.returncode == 1  # a missing source is a diagnostic at its path string
    assert "rows.jsonl" in r.stderr and "Traceback" not in r.stderr
