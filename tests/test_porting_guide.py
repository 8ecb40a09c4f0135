"""The porting guide's recipes (docs/porting.md, docs/porting/*.recipe) stay true.

Every ```recipe block in the guide is the exact text of a file in docs/porting/, and every
file there is shown; `dcc check` accepts each one; the rule-based ones build offline (in a
temp copy, with the cache and the exports in tmp) and write the exports they promise.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GUIDE = ROOT / "docs" / "porting.md"
FOLDER = ROOT / "docs" / "porting"
RECIPES = sorted(p.name for p in FOLDER.glob("*.recipe"))
# recipe -> exports it writes; the others call models and are only checked
BUILT = {
    "data_juicer.recipe": ["out/data_juicer.jsonl"],
    "nemo_curator.recipe": ["out/nemo_curator.jsonl"],
    "datatrove.recipe": ["out/datatrove.jsonl"],
    "fan_out_in.recipe": ["out/short_and_long.jsonl", "out/alternated.jsonl",
                          "out/money_annotated.jsonl"],
    "rejected.recipe": ["out/sized.jsonl", "out/sized_rejected.jsonl", "out/no_percent.jsonl",
                        "out/no_percent_rejected.jsonl", "out/alnum.jsonl",
                        "out/alnum_rejected.jsonl"],
}
CHECKED_ONLY = {"distilabel.recipe", "loop.recipe"}


def _env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("DCC_CACHE_DIR", None)
    return env


def dcc(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "dcc", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env=_env(), check=False)


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def test_every_recipe_block_is_a_file_and_every_file_is_shown() -> None:
    blocks = re.findall(r"^```recipe\n(.*?)^```$", GUIDE.read_text(), flags=re.S | re.M)
    files = {name: (FOLDER / name).read_text() for name in RECIPES}
    assert blocks, "no ```recipe blocks in docs/porting.md"
    for block in blocks:
        assert block in files.values(), f"a recipe block is no file's text:\n{block[:200]}"
    shown = {name for name, text in files.items() if text in blocks}
    assert shown == set(RECIPES)
    assert set(BUILT) | CHECKED_ONLY == set(RECIPES)


@pytest.mark.parametrize("name", RECIPES)
def test_check_accepts(name: str) -> None:
    proc = dcc("check", f"docs/porting/{name}", cwd=ROOT)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "0 warnings" in proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build every rule-based recipe once, in a copy of docs/porting beside recipes/data."""
    tmp = tmp_path_factory.mktemp("porting")
    shutil.copytree(FOLDER, tmp / "docs" / "porting",
                    ignore=shutil.ignore_patterns(".dcc", "out"))
    shutil.copytree(ROOT / "recipes" / "data", tmp / "recipes" / "data")
    for name in BUILT:
        out = tmp / "out" / name.removesuffix(".recipe")
        proc = dcc("build", f"docs/porting/{name}", "--cache-dir", str(tmp / "cache"),
                   "--out-dir", str(out), cwd=tmp)
        assert proc.returncode == 0, f"{name}: {proc.stdout}{proc.stderr}"
    return tmp / "out"


@pytest.mark.parametrize("name", sorted(BUILT))
def test_rule_based_recipes_build(built: Path, name: str) -> None:
    for export in BUILT[name]:
        path = built / name.removesuffix(".recipe") / export
        assert path.is_file(), f"{name} did not write {export}"
        assert rows(path), f"{name} wrote an empty {export}"


def test_rejected_outputs_complement_the_kept_ones(built: Path) -> None:
    out = built / "rejected" / "out"
    source = rows(ROOT / "recipes" / "data" / "gsm8k_1k.jsonl")
    for kept, rejected in (("sized", "sized_rejected"), ("no_percent", "no_percent_rejected")):
        a, b = rows(out / f"{kept}.jsonl"), rows(out / f"{rejected}.jsonl")
        assert len(a) + len(b) == len(source)
        assert not {r["question"] for r in a} & {r["question"] for r in b}
    a, b = rows(out / "alnum.jsonl"), rows(out / "alnum_rejected.jsonl")
    unique = {r["question"] for r in source}
    assert len(a) + len(b) == len(unique)
    assert {r["question"] for r in a} | {r["question"] for r in b} == unique
    assert set(b[0]) == set(source[0])  # rejected rows keep the input's columns
