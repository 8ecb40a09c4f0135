"""Node keys seen from the command line: what re-runs a node and what must not.

A key uses the content of the source files (through a stat cache that an edit keeping size
and mtime cannot fool), never display names, and only the params a node reads.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from engine_helpers import Project, node, statuses

from dcc.cache.fingerprint import RACY_NS
from dcc.cache.store import DiskStore

ROWS = [{"instruction": f"task {i}", "output": "abcdef"[: 3 + i % 4]} for i in range(12)]

RECIPE = """recipe keys
param shortest = 4
src = load.jsonl("data/rows.jsonl")
long = src | select.length(field="output", min=shortest)
distinct = long | select.dedup(fields=["instruction"])
export distinct to "out/distinct.jsonl"
"""


@pytest.fixture
def keys_project(project: Project) -> Project:
    project.write_jsonl("data/rows.jsonl", ROWS)
    project.write("r.recipe", RECIPE)
    return project


def _edit_same_size_keep_mtime(path: str, old: bytes, new: bytes, restore: str) -> None:
    """Replace `old` by `new` (same length) in place, then put the mtime back as it was."""
    assert len(old) == len(new)
    st = os.stat(path)
    with open(path, "r+b") as f:
        data = f.read()
        assert old in data
        f.seek(data.index(old))
        f.write(new)
    if restore == "utime":
        os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    else:  # the shell way: touch -d @SECONDS.NANOSECONDS
        stamp = f"@{st.st_mtime_ns // 10**9}.{st.st_mtime_ns % 10**9:09d}"
        subprocess.run(["touch", "-m", "-d", stamp, path], check=True)
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == \
        (st.st_size, st.st_mtime_ns, st.st_ino)


def test_same_size_edit_with_restored_mtime_is_noticed(project: Project) -> None:
    project.write_jsonl("data/a.jsonl", ROWS)
    project.write_jsonl("data/b.jsonl", [{**r, "source": "b"} for r in ROWS])
    project.write("r.recipe", """a = load.jsonl("data/a.jsonl")
b = load.jsonl("data/b.jsonl")
export a to "out/a.jsonl"
export b to "out/b.jsonl"
""")
    files = {n: str(project.path(f"data/{n}.jsonl")) for n in "ab"}
    # Step out of the racy window so the first build records both files in the stat cache:
    # the edits below must get past a stat cache that holds the file, not an empty one.
    time.sleep(RACY_NS / 1e9 + 0.2)
    first = project.build()
    with DiskStore(project.cache) as store:
        assert all(store.stat_cache.get(os.path.abspath(f)) is not None
                   for f in files.values())
    before = project.snapshot("out/a.jsonl", "out/b.jsonl")

    for name, restore in (("a", "utime"), ("b", "touch")):
        _edit_same_size_keep_mtime(files[name], b'"task 3"', b'"TASK 3"', restore)
        rep = project.build()
        other = "b" if name == "a" else "a"
        assert node(rep, name)["status"] == "ran", restore
        assert node(rep, other)["status"] == "cached"
        assert node(rep, name)["content"] != node(first, name)["content"]
        after = project.path(f"out/{name}.jsonl").read_bytes()
        assert after != before[f"out/{name}.jsonl"]
        assert b'"TASK 3"' in after and b'"task 3"' not in after


def test_renaming_a_binding_keeps_it_cached(keys_project: Project) -> None:
    first = keys_project.build()
    renamed = RECIPE.replace("long", "lengthy").replace("distinct", "unique")
    keys_project.write("r.recipe", renamed.replace("out/unique", "out/distinct"))
    second = keys_project.build()
    assert statuses(second) == {"src": "cached", "lengthy": "cached", "unique": "cached"}
    assert node(second, "lengthy")["key"] == node(first, "long")["key"]
    assert node(second, "unique")["key"] == node(first, "distinct")["key"]


def test_recipe_name_and_comments_are_not_part_of_keys(keys_project: Project) -> None:
    keys_project.build()
    keys_project.write("r.recipe", "# a comment\n" + RECIPE.replace("recipe keys", "recipe other"))
    assert set(statuses(keys_project.build()).values()) == {"cached"}


def test_set_param_reruns_only_its_dependants(project: Project) -> None:
    project.write_jsonl("data/rows.jsonl", ROWS)
    project.write("r.recipe", """param shortest = 4
param fewest_words = 1
src = load.jsonl("data/rows.jsonl")
long = src | select.length(field="output", min=shortest)
wordy = src | select.words(field="instruction", min=fewest_words)
both = concat(long, wordy)
export both to "out/both.jsonl"
""")
    project.build()
    rep = project.build("--set", "shortest=5")
    assert statuses(rep) == {"src": "cached", "long": "ran", "wordy": "cached", "both": "ran"}
    rep = project.build("--set", "shortest=5", "--set", "fewest_words=2")
    assert statuses(rep) == {"src": "cached", "long": "cached", "wordy": "ran",
                             "both": "cached"}  # every instruction has 2 words: same content
    rep = project.build("--set", "shortest=5", "--set", "fewest_words=2")
    assert set(statuses(rep).values()) == {"cached"}
