"""scripts/device_check.py on CPU: the path a GPU machine runs, minus the GPU, and without
the dcc dependencies such a machine may lack (polars, lark, diskcache, xxhash, datasets)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ABSENT = ("polars", "lark", "diskcache", "xxhash", "datasets", "pyarrow", "networkx")


def run_script(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    """Run the script as `PYTHONPATH=. python3 scripts/device_check.py ARGS` would, with
    the packages in ABSENT made unimportable."""
    blocked = tmp_path / "blocked"
    blocked.mkdir(exist_ok=True)
    for name in ABSENT:
        (blocked / f"{name}.py").write_text(f"raise ImportError('{name} is absent here', "
                                            f"name='{name}')\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocked), str(REPO)]),
           "DCC_TEST_MODELS": str(tmp_path / "models")}
    proc = subprocess.run([sys.executable, "scripts/device_check.py", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        report = {}
    return proc.returncode, report, proc.stderr


def test_cpu_run_with_a_model_folder(tmp_path: Path, tiny_dir: Path) -> None:
    code, rep, err = run_script(tmp_path, "--device", "cpu", "--model", str(tiny_dir),
                                "--prompts", "4", "--texts", "24", "--new-tokens", "8",
                                "--repeat", "1")
    assert code == 0, err
    assert rep["seed_hash"] == "blake2b stand-in" and rep["device"]["dtype"] == "float32"
    assert rep["greedy_vs_cpu_fp32"]["identical"] == "4/4"  # the same run on both sides
    assert rep["scores_vs_cpu_fp32"]["max_abs"] == 0.0
    assert rep["order"]["ok"] and rep["order"]["greedy_reversed_same"] == "4/4"
    batching = rep["score_batching"]
    assert batching["texts"] == 24 and batching["sorted_tokens_per_s"] > 0
    assert batching["unsorted_tokens_per_s"] > 0


def test_cpu_run_training_its_own_model(tmp_path: Path) -> None:
    code, rep, err = run_script(tmp_path, "--device", "cpu", "--train-steps", "3",
                                "--prompts", "2", "--texts", "8", "--new-tokens", "4",
                                "--repeat", "1")
    assert code == 0, err
    assert rep["model"]["trained_here"]["settings"]["vocab"] == 1024
    assert rep["order"]["ok"]


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="this machine has CUDA")
def test_no_cuda_is_reported_not_crashed(tmp_path: Path, tiny_dir: Path) -> None:
    code, rep, err = run_script(tmp_path, "--model", str(tiny_dir))
    assert code == 2 and "sees no CUDA device" in rep["error"] and "Traceback" not in err
