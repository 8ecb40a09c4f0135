"""Early cutoff: a node that re-runs but yields the same content stops the rebuild there.

Downstream keys use their inputs' content, not upstream keys, so everything below such a
node is `cached` (checked through the statuses in `dcc build --json`).
"""

from __future__ import annotations

import json

from engine_helpers import Project, node, statuses

# Every output has at least 3 characters, so min=1 and min=2 keep the same rows.
ROWS = [{"instruction": f"task {i % 7}", "output": "abc" + "d" * (i % 5)} for i in range(25)]

RECIPE = """param shortest = 1
src = load.jsonl("data/rows.jsonl")
long = src | select.length(field="output", min=shortest)
distinct = long | select.dedup(fields=["instruction"])
tidy = distinct | rewrite.normalize(fields=["output"])
export tidy to "out/tidy.jsonl"
"""


def test_a_param_change_with_identical_output_stops_the_rebuild(project: Project) -> None:
    project.write_jsonl("data/rows.jsonl", ROWS)
    project.write("r.recipe", RECIPE)
    first = project.build()
    before = project.snapshot("out/tidy.jsonl")

    second = project.build("--set", "shortest=2")
    assert statuses(second) == {"src": "cached", "long": "ran", "distinct": "cached",
                                "tidy": "cached"}
    assert node(second, "long")["key"] != node(first, "long")["key"]
    assert node(second, "long")["content"] == node(first, "long")["content"]
    assert node(second, "distinct")["key"] == node(first, "distinct")["key"]
    assert project.snapshot("out/tidy.jsonl") == before
    assert second["exports"][0]["written"] is False

    third = project.build("--set", "shortest=5")  # now rows are dropped: everything re-runs
    assert statuses(third) == {"src": "cached", "long": "ran", "distinct": "ran", "tidy": "ran"}


def test_a_reformatted_source_with_the_same_rows_stops_at_the_source(project: Project) -> None:
    project.write_jsonl("data/rows.jsonl", ROWS)
    project.write("r.recipe", RECIPE)
    first = project.build()
    # Same rows, different bytes: no spaces after separators, a blank line at the end.
    project.write("data/rows.jsonl", "".join(json.dumps(r, separators=(",", ":")) + "\n"
                                             for r in ROWS) + "\n")
    second = project.build()
    assert statuses(second) == {"src": "ran", "long": "cached", "distinct": "cached",
                                "tidy": "cached"}
    assert node(second, "src")["content"] == node(first, "src")["content"]
