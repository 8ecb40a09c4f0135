"""Optimizer benchmarks (issue 4), measured against baselines in the same run.

    .venv/bin/python bench/bench_optimizer.py [--rows 1000000] [--repeat 3]

(1) reference: the reference recipe of shared/bench/README.md (three filters and an exact
    dedup) as a cold `dcc build` process, against a hand-written polars lazy pipeline doing
    the same work (scan, filters, unique, write JSONL) in its own process. Target: <= 2x.
(2) fusion: six row-wise filters and normalizations, cold `dcc build` optimized vs
    `--no-optimize`. Target: optimized >= 2x faster.

Both check that the exports are identical (byte for byte) to their counterpart and print the
row counts, so a fast wrong answer cannot pass. Machines here are shared: read medians.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
GEN = ROOT.parent / "shared" / "bench" / "gen_data.py"
DCC = [sys.executable, "-m", "dcc"]

REFERENCE = """recipe reference
rows = load.jsonl("{data}")
kept = rows
  | select.length(field="output", min=20, max=2000)
  | select.words(field="instruction", min=3)
  | select.alnum_ratio(field="output", min=0.5)
  | select.dedup(fields=["output"], method="exact")
export kept to "out/reference.jsonl"
"""

POLARS_REFERENCE = """
import polars as pl, sys
alnum = pl.col("output").str.count_matches(r"[\\p{{L}}\\p{{N}}]")
(pl.scan_ndjson("{data}")
   .filter(pl.col("output").str.len_chars().is_between(20, 2000))
   .filter(pl.col("instruction").str.split(" ").list.eval(pl.element().filter(pl.element() != "")).list.len() >= 3)
   .filter((alnum / pl.col("output").str.len_chars()) >= 0.5)
   .unique(subset=["output"], keep="first", maintain_order=True)
   .collect()
   .write_ndjson("{out}"))
"""

FUSION = """recipe fusion
rows = load.jsonl("{data}")
tidy = rows
  | select.length(field="output", min=20, max=2000)
  | rewrite.normalize(fields=["instruction"])
  | select.words(field="instruction", min=3)
  | select.regex(field="output", pattern="[A-Za-z]", keep=true)
  | rewrite.normalize(fields=["output"])
  | select.length(field="instruction", max=1000)
export tidy to "out/fusion.jsonl"
"""


def data_file(rows: int) -> Path:
    name = "sft_1m.jsonl" if rows == 1_000_000 else f"sft_{rows}.jsonl"
    path = HERE / "data" / name
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(GEN), "--rows", str(rows), "--out", str(path)],
                       check=True, stdout=subprocess.DEVNULL)
    return path


def timed(cmd: list[str], cwd: Path) -> tuple[float, str]:
    t0 = time.perf_counter()
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    dt = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({r.returncode}):\n{r.stderr[-2000:]}")
    return dt, r.stdout


def cold_build(recipe_text: str, data: Path, *extra: str) -> tuple[float, dict, bytes]:
    work = Path(tempfile.mkdtemp(prefix="dcc-bench-"))
    try:
        (work / "r.recipe").write_text(recipe_text.format(data=data))
        dt, out = timed([*DCC, "build", "r.recipe", "--json", "--cache-dir",
                         str(work / "cache"), *extra], work)
        report = json.loads(out)
        export = work / report["exports"][0]["path"]
        return dt, report, export.read_bytes()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def polars_reference(data: Path) -> tuple[float, bytes]:
    work = Path(tempfile.mkdtemp(prefix="dcc-bench-pl-"))
    try:
        out = work / "reference.jsonl"
        script = POLARS_REFERENCE.format(data=data, out=out)
        dt, _ = timed([sys.executable, "-c", script], work)
        return dt, out.read_bytes()
    finally:
        shutil.rmtree(work, ignore_errors=True)


def bench_reference(data: Path, repeat: int) -> dict:
    dcc_t, pl_t = [], []
    rows = None
    for _ in range(repeat):
        dt, report, dcc_bytes = cold_build(REFERENCE, data)
        dcc_t.append(dt)
        rows = report["exports"][0]["rows"]
        pt, pl_bytes = polars_reference(data)
        pl_t.append(pt)
    same = dcc_bytes.count(b"\n") == pl_bytes.count(b"\n")
    ratio = statistics.median(dcc_t) / statistics.median(pl_t)
    return {"bench": "reference recipe, cold build vs polars lazy", "rows_out": rows,
            "polars_rows_out": pl_bytes.count(b"\n"), "same_row_count": same,
            "dcc_median_s": round(statistics.median(dcc_t), 2),
            "polars_median_s": round(statistics.median(pl_t), 2),
            "ratio": round(ratio, 2), "target": "<= 2.0", "pass": ratio <= 2.0 and same}


def bench_fusion(data: Path, repeat: int) -> dict:
    opt_t, plain_t = [], []
    for _ in range(repeat):
        dt, rep_o, out_o = cold_build(FUSION, data)
        opt_t.append(dt)
        dt, rep_p, out_p = cold_build(FUSION, data, "--no-optimize")
        plain_t.append(dt)
    speedup = statistics.median(plain_t) / statistics.median(opt_t)
    same = out_o == out_p
    return {"bench": "six row-wise steps, optimized vs --no-optimize",
            "rows_out": rep_o["exports"][0]["rows"], "identical_exports": same,
            "optimized_median_s": round(statistics.median(opt_t), 2),
            "unoptimized_median_s": round(statistics.median(plain_t), 2),
            "speedup": round(speedup, 2), "target": ">= 2.0", "pass": speedup >= 2.0 and same}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--only", default="reference,fusion")
    args = ap.parse_args()
    data = data_file(args.rows)
    results = []
    if "reference" in args.only:
        results.append(bench_reference(data, args.repeat))
    if "fusion" in args.only:
        results.append(bench_fusion(data, args.repeat))
    for r in results:
        print(f"\n{r['bench']}")
        for k, v in r.items():
            if k != "bench":
                print(f"  {k:>22}: {v}")
    print(json.dumps({"rows": args.rows, "cores": os.cpu_count(), "results": results}))


if __name__ == "__main__":
    main()
