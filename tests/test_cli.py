"""The `dcc` command as a user meets it: real recipe folders, real child processes.

Exit codes, what goes to stdout (results: one JSON object with --json, tables otherwise) and
to stderr (progress as plain lines when not a terminal, diagnostics), `--target`, and that
`dcc --help` and a no-op rebuild stay light (no torch, transformers or datasets imported).
The engine's own behaviours (keys, cache, crashes) are tested in tests/engine/.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

HEAVY = ("torch", "transformers", "datasets")
HEX32 = re.compile(r"[0-9a-f]{32}")
ANSI = re.compile(r"\x1b\[")

ROWS = [
    {"instruction": "Name three primary colors.", "output": "Red, yellow and blue."},
    {"instruction": "Give a synonym for happy.", "output": "Joyful is a common synonym."},
    {"instruction": "Name three primary colors.", "output": "Red, yellow and blue."},
    {"instruction": "Say hi.", "output": "Hi"},
    {"instruction": "What is 2 + 2?", "output": "Two plus two equals four."},
]

RECIPE = """recipe cli_check
param shortest = 5
src = load.jsonl("data/rows.jsonl")
long = src | select.length(field="output", min=shortest)
distinct = long | select.dedup(fields=["instruction"])
tidy = distinct | rewrite.normalize(fields=["output"]) | select.words(field="output", min=1)
twin = distinct | rewrite.normalize(fields=["output"]) | select.words(field="output", min=1)
spare = src | select.words(field="instruction", max=3)
export tidy to "out/tidy.jsonl"
export twin to "out/twin.jsonl"
"""


def env(**extra: str) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if k not in ("DCC_CACHE_DIR", "DCC_DEBUG")}
    return {**base, **extra}


def dcc(cwd: Path, *args: str, **extra_env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dcc", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env=env(**extra_env))


def build_json(cwd: Path, *args: str, **extra_env: str) -> dict[str, Any]:
    r = dcc(cwd, "build", "r.recipe", "--json", *args, **extra_env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def statuses(report: dict[str, Any]) -> dict[str, str]:
    return {n["name"]: n["status"] for n in report["nodes"]}


@pytest.fixture
def proj(tmp_path: Path) -> Path:
    root = tmp_path / "proj"
    (root / "data").mkdir(parents=True)
    (root / "data/rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    (root / "r.recipe").write_text(RECIPE)
    return root


# -- staying light -----------------------------------------------------------------------------
IMPORTS_PROBE = """
import json, os, sys
from dcc.cli import main
try:
    main(sys.argv[1:])
except SystemExit as e:
    code = e.code
else:
    code = 0
heavy = sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY))
with open(os.environ["PROBE_OUT"], "w") as f:
    json.dump({"code": code, "heavy": heavy}, f)
""".replace("HEAVY", repr(HEAVY))


def probe(cwd: Path, tmp_path: Path, *args: str) -> dict[str, Any]:
    out = tmp_path / "probe.json"
    r = subprocess.run([sys.executable, "-c", IMPORTS_PROBE, *args], cwd=cwd,
                       capture_output=True, text=True, timeout=120,
                       env=env(PROBE_OUT=str(out)))
    assert out.exists(), r.stderr
    return json.loads(out.read_text())


def test_help_imports_no_heavy_module(proj: Path, tmp_path: Path) -> None:
    assert probe(proj, tmp_path, "--help") == {"code": 0, "heavy": []}
    assert probe(proj, tmp_path, "build", "--help") == {"code": 0, "heavy": []}


def test_a_no_op_rebuild_imports_no_heavy_module(proj: Path, tmp_path: Path) -> None:
    build_json(proj)
    assert probe(proj, tmp_path, "build", "r.recipe") == {"code": 0, "heavy": []}
    assert probe(proj, tmp_path, "build", "r.recipe", "--json") == {"code": 0, "heavy": []}


def test_importtime_of_help_lists_no_heavy_module(proj: Path) -> None:
    r = subprocess.run([sys.executable, "-X", "importtime", "-m", "dcc", "--help"], cwd=proj,
                       capture_output=True, text=True, timeout=120, env=env())
    assert r.returncode == 0
    imported = {ln.split("|")[-1].strip().split(".")[0] for ln in r.stderr.splitlines()
                if ln.startswith("import time:")}
    assert "click" in imported  # the probe works
    assert imported.isdisjoint(HEAVY)


# -- dcc build ---------------------------------------------------------------------------------
def test_build_json_has_the_documented_shape(proj: Path) -> None:
    rep = build_json(proj)
    assert set(rep) >= {"recipe", "nodes", "exports"}
    assert rep["recipe"] == "cli_check"
    names = [n["name"] for n in rep["nodes"]]
    assert set(names) >= {"src", "long", "distinct", "tidy", "twin"}
    assert "spare" not in names  # feeds no export: not built
    for n in rep["nodes"]:
        assert set(n) >= {"name", "op", "status", "key", "content", "rows_in", "rows_out",
                          "seconds"}
        assert n["status"] in ("ran", "cached")
        assert HEX32.fullmatch(n["key"]) and HEX32.fullmatch(n["content"])
        assert isinstance(n["rows_in"], int) and isinstance(n["rows_out"], int)
        assert isinstance(n["seconds"], (int, float)) and n["seconds"] >= 0
    by_name = {n["name"]: n for n in rep["nodes"]}
    assert by_name["src"]["rows_in"] == by_name["src"]["rows_out"] == 5
    assert by_name["long"]["rows_in"] == 5 and by_name["long"]["rows_out"] == 4
    assert by_name["tidy"]["op"] == "select.words"  # a binding is named by its last stage
    assert by_name["tidy"]["key"] == by_name["twin"]["key"]  # same computation, one key
    assert len(rep["exports"]) == 2
    for e in rep["exports"]:
        assert set(e) >= {"node", "path", "rows", "content"}
        assert HEX32.fullmatch(e["content"]) and e["rows"] == 3
        assert e["node"] in ("tidy", "twin")
    assert {e["path"] for e in rep["exports"]} == {"out/tidy.jsonl", "out/twin.jsonl"}


def test_each_export_names_the_binding_it_exports(proj: Path) -> None:
    rep = build_json(proj)
    assert {e["path"]: e["node"] for e in rep["exports"]} == \
        {"out/tidy.jsonl": "tidy", "out/twin.jsonl": "twin"}


def test_a_rebuild_reports_cached_source_rows_like_a_cold_build(proj: Path) -> None:
    cold = {n["name"]: n for n in build_json(proj)["nodes"]}
    warm = {n["name"]: n for n in build_json(proj)["nodes"]}
    for name in cold:
        assert warm[name]["status"] == "cached"
        assert (warm[name]["rows_in"], warm[name]["rows_out"]) == \
            (cold[name]["rows_in"], cold[name]["rows_out"])


def test_target_builds_only_what_it_needs_and_writes_no_export(proj: Path) -> None:
    rep = build_json(proj, "--target", "long")
    assert statuses(rep) == {"src": "ran", "long": "ran"}
    assert rep["exports"] == []
    assert not (proj / "out").exists()
    rep = build_json(proj, "--target", "spare")  # a binding that feeds no export
    assert statuses(rep) == {"src": "cached", "spare": "ran"}
    rep = build_json(proj)
    assert statuses(rep)["long"] == "cached" and statuses(rep)["distinct"] == "ran"
    assert (proj / "out/tidy.jsonl").exists()


def test_target_of_an_unknown_binding_is_an_error_with_a_hint(proj: Path) -> None:
    r = dcc(proj, "build", "r.recipe", "--target", "lnog")
    assert r.returncode == 1
    assert "long" in r.stderr and "Traceback" not in r.stderr


def test_progress_is_plain_lines_on_stderr_when_not_a_terminal(proj: Path) -> None:
    r = dcc(proj, "build", "r.recipe")
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert "run    src (load.jsonl)" in lines
    assert any(re.fullmatch(r"ran    src: 5 -> 5 rows in \d+\.\d\ds", ln) for ln in lines)
    assert not ANSI.search(r.stderr) and "\r" not in r.stderr
    r = dcc(proj, "build", "r.recipe")
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert "cached src: 5 rows" in lines and not any(ln.startswith("run") for ln in lines)


def test_without_json_stdout_is_a_summary_table(proj: Path) -> None:
    r = dcc(proj, "build", "r.recipe", COLUMNS="200")
    assert r.returncode == 0, r.stderr
    assert not ANSI.search(r.stdout)
    assert "dcc build cli_check" in r.stdout
    rows = table_rows(r.stdout)
    assert rows["node"] == ["operator", "status", "rows in -> out", "seconds", "cache"]
    for name in ("src", "long", "distinct", "tidy, twin"):
        assert rows[name][1:3] == ["ran", {"src": "5 -> 5", "long": "5 -> 4"}.get(
            name, rows[name][2])], r.stdout
        assert rows[name][4] == "miss"
    assert rows["tidy, twin"][0] == "select.words"
    assert "export tidy -> out/tidy.jsonl (3 rows, written)" in r.stdout
    r = dcc(proj, "build", "r.recipe", COLUMNS="200")
    rows = table_rows(r.stdout)
    assert rows["long"][1] == "cached" and rows["long"][4] == "hit"
    assert rows["src"][2] == "5 -> 5"
    assert "export tidy -> out/tidy.jsonl (3 rows)" in r.stdout


def table_rows(text: str) -> dict[str, list[str]]:
    """A rich table's rows, by their first cell: {first cell: [other cells]}."""
    out = {}
    for line in text.splitlines():
        cells = [c.strip() for c in re.split(r"[│┃]", line)[1:-1]]
        if cells:
            out[cells[0]] = cells[1:]
    return out


def test_json_mode_prints_only_json_on_stdout(proj: Path) -> None:
    r = dcc(proj, "build", "r.recipe", "--json")
    assert r.returncode == 0
    json.loads(r.stdout)  # exactly one object
    assert r.stdout.count("\n") == 1


def test_a_terminal_gets_live_progress_and_the_same_results(proj: Path) -> None:
    master, slave = pty.openpty()
    seen = bytearray()

    def drain() -> None:  # keep the terminal's buffer from filling up and blocking the child
        try:
            while chunk := os.read(master, 4096):
                seen.extend(chunk)
        except OSError:
            pass

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        r = subprocess.run([sys.executable, "-m", "dcc", "build", "r.recipe", "--json"],
                           cwd=proj, stdout=subprocess.PIPE, stderr=slave, text=True,
                           timeout=120, env=env(TERM="xterm"))
        r2 = subprocess.run([sys.executable, "-m", "dcc", "build", "r.recipe"], cwd=proj,
                            stdout=subprocess.PIPE, stderr=slave, text=True, timeout=120,
                            env=env(TERM="xterm"))
    finally:
        os.close(slave)
        reader.join(timeout=10)
        os.close(master)
    assert r.returncode == 0 and set(statuses(json.loads(r.stdout)).values()) == {"ran"}
    assert r2.returncode == 0 and "dcc build cli_check" in r2.stdout
    assert b"cached" in seen and b"src" in seen  # progress went to the terminal


# -- the cache folder --------------------------------------------------------------------------
def test_cache_dir_option_beats_the_environment(proj: Path, tmp_path: Path) -> None:
    build_json(proj, "--cache-dir", str(tmp_path / "opt"), DCC_CACHE_DIR=str(tmp_path / "env"))
    assert (tmp_path / "opt").is_dir() and not (tmp_path / "env").exists()
    assert not (proj / ".dcc").exists()
    rep = build_json(proj, DCC_CACHE_DIR=str(tmp_path / "opt"))
    assert set(statuses(rep).values()) == {"cached"}


# -- exit codes --------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [
    ("build",),
    ("build", "missing.recipe"),
    ("build", "r.recipe", "--set", "shortest"),
    ("build", "r.recipe", "--ray-address", "127.0.0.1:6379"),  # without --executor ray
    ("build", "r.recipe", "--no-such-flag"),
    ("nope",),
])
def test_usage_errors_exit_2(proj: Path, args: tuple[str, ...]) -> None:
    r = dcc(proj, *args)
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr and r.stdout == ""


def test_a_set_of_the_wrong_type_is_a_recipe_error_naming_the_param(proj: Path) -> None:
    r = dcc(proj, "build", "r.recipe", "--set", "shortest=many")
    assert r.returncode == 1
    assert "shortest" in r.stderr and "Traceback" not in r.stderr


def test_a_recipe_error_exits_1_before_building(proj: Path) -> None:
    (proj / "r.recipe").write_text(RECIPE.replace("select.dedup", "select.dedupe"))
    r = dcc(proj, "build", "r.recipe", "--json")
    assert r.returncode == 1 and r.stdout == ""
    assert "r.recipe:5:" in r.stderr and "select.dedup" in r.stderr
    assert not (proj / "out").exists()
