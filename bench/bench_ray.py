"""The Ray executor against the local one on this machine (issue 7): a report, no target.

    .venv/bin/python bench/bench_ray.py [--rows 1000000] [--dedup-rows 200000] [--repeat 1]

(1) reference: the reference recipe of shared/bench/README.md (three filters and an exact
    dedup) over --rows rows, as a cold `dcc build` process on each executor;
(2) minhash: select.dedup(method="minhash") (128 permutations, threshold 0.8, 5-word
    shingles) over the first --dedup-rows rows of the same data, cold, on each executor.

Ray runs with 2 workers: a head started once here (`ray start --head --num-cpus 2`, in its
own process group, stopped by its pid at the end) that every Ray build joins with
--ray-address, so Ray's start-up (reported on its own line) is not in the build times. Each
pair of builds must export the same bytes; the row counts are printed. Two shared cores are
not a cluster: the ratio shows what the executor costs here, not what it gains on many
machines (docs/executors.md has the scaling model).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
DCC = [sys.executable, "-m", "dcc"]

sys.path.insert(0, str(HERE))
from bench_optimizer import REFERENCE, data_file  # noqa: E402  (one reference recipe)

MINHASH = """recipe minhash
rows = load.jsonl("{data}")
kept = rows | select.dedup(fields=["output"], method="minhash", threshold=0.8)
export kept to "out/kept.jsonl"
"""


def head_of(data: Path, rows: int) -> Path:
    """The first `rows` lines of `data` (the dedup input), written once beside it."""
    path = data.with_name(f"{data.stem}.head{rows}.jsonl")
    if not path.exists():
        with open(data, encoding="utf-8") as src, open(path, "w", encoding="utf-8") as dst:
            for i, line in enumerate(src):
                if i == rows:
                    break
                dst.write(line)
    return path


@contextlib.contextmanager
def timed_head(cpus: int) -> Iterator[tuple[str, float]]:
    """(address, seconds to start) of a local Ray head with `cpus` CPUs, stopped on exit."""
    from dcc.testing.ray_head import RayHeadError, ray_head

    t0 = time.perf_counter()
    try:
        with ray_head(cpus, pythonpath=(str(ROOT),)) as address:
            yield address, time.perf_counter() - t0
    except RayHeadError as e:
        raise SystemExit(str(e)) from None


def cold_build(recipe_text: str, data: Path, *extra: str) -> tuple[float, dict, bytes]:
    work = Path(tempfile.mkdtemp(prefix="dcc-bench-"))
    try:
        (work / "r.recipe").write_text(recipe_text.format(data=data))
        env = dict(os.environ)  # with the head's token (ray_head)
        t0 = time.perf_counter()
        r = subprocess.run([*DCC, "build", "r.recipe", "--json", "--cache-dir",
                            str(work / "cache"), *extra], cwd=work, capture_output=True,
                           text=True, env=env)
        dt = time.perf_counter() - t0
        if r.returncode != 0:
            raise SystemExit(f"dcc build {' '.join(extra)} failed:\n{r.stderr[-2000:]}")
        report = json.loads(r.stdout)
        return dt, report, (work / report["exports"][0]["path"]).read_bytes()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def compare(name: str, recipe: str, data: Path, address: str, repeat: int) -> None:
    times: dict[str, list[float]] = {"local": [], "ray": []}
    outputs: dict[str, bytes] = {}
    rows: dict[str, int] = {}
    for _ in range(repeat):
        for executor, extra in (("local", ()), ("ray", ("--executor", "ray",
                                                        "--ray-address", address))):
            dt, report, data_out = cold_build(recipe, data, *extra)
            times[executor].append(dt)
            outputs[executor] = data_out
            rows[executor] = report["exports"][0]["rows"]
    same = outputs["local"] == outputs["ray"]
    local, ray = statistics.median(times["local"]), statistics.median(times["ray"])
    print(f"{name}: local {local:.1f} s, ray (2 workers) {ray:.1f} s, ray/local "
          f"{ray / local:.2f}x; rows out {rows['local']} / {rows['ray']}; exports identical: "
          f"{same}")
    if not same:
        raise SystemExit(f"{name}: the executors' exports differ")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--dedup-rows", type=int, default=200_000)
    ap.add_argument("--repeat", type=int, default=1)
    args = ap.parse_args()
    data = data_file(args.rows)
    dedup = head_of(data, args.dedup_rows)
    with timed_head(2) as (address, started):
        print(f"ray head (2 CPUs) started in {started:.1f} s (not in the times below)")
        compare(f"reference, {args.rows:,} rows", REFERENCE, data, address, args.repeat)
        compare(f"minhash dedup, {args.dedup_rows:,} rows", MINHASH, dedup, address,
                args.repeat)


if __name__ == "__main__":
    main()
