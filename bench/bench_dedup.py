#!/usr/bin/env python3
"""Dedup benchmarks of dcc (issue 5): two targets, each against a baseline measured in the same
run, on data already loaded in memory (loading is not timed).

    .venv/bin/python bench/bench_dedup.py [--rows 100000] [--exact-rows 1000000] [--repeat 3]
                                          [--only near,exact]

(near) MinHash near-dedup of --rows rows: dcc's `select.dedup(method="minhash")` against
    datasketch MinHash + MinHashLSH at the same parameters: 128 permutations, threshold 0.8,
    5-word shingles, keep the first row of each cluster. Both read the text
    `instruction\\ninput\\noutput` (the generator plants its near-duplicates in `output` and
    reports the true 5-word-shingle Jaccard over that joined text, so that is the text both
    tools must compare). datasketch runs as it is usually used: one MinHash per row
    (update_batch of the UTF-8 shingles), query the LSH, then insert; every query hit is a
    duplicate link (datasketch does not verify candidates), clusters by union-find.
    Targets: throughput >= 3x datasketch's; recall >= 0.95 over planted near-duplicate pairs
    whose true Jaccard is >= 0.8 (a pair counts when both rows end in one cluster); precision
    >= 0.95 (a dropped row counts as correct when the generator's truth puts it in the same
    family, its source and the source's copies, as the row kept for it). Also shown: the
    share of planted pairs below the threshold that were merged anyway.
(exact) exact dedup on `output` of --exact-rows rows: `select.dedup(fields=["output"])` against
    a bare Python loop that puts the xxh3-64 digest of each value into a set. Target: dcc
    takes <= 1.5x the loop's time. Both must find the same number of distinct values.

Times are medians of --repeat runs (datasketch runs --ds-repeat times: it is slow); wall clock
decides, CPU seconds are shown beside it because the benchmark machine is shared. Prints a
table and a final JSON line. Exit status 0 when everything ran and the correctness checks held
(a missed target is reported as MISS, not an error), 1 otherwise. Data files are generated
under bench/data/ (git-ignored) when missing.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT / "bench" / "data"
GEN_DATA = ROOT.parent / "shared" / "bench" / "gen_data.py"
FIELDS = ["instruction", "input", "output"]
NUM_PERM, THRESHOLD, NGRAM = 128, 0.8, 5
TARGET_SPEEDUP, TARGET_RECALL, TARGET_PRECISION, TARGET_EXACT_RATIO = 3.0, 0.95, 0.95, 1.5


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def label(n: int) -> str:
    for div, suffix in ((1_000_000, "m"), (1_000, "k")):
        if n >= div and n % div == 0:
            return f"{n // div}{suffix}"
    return str(n)


def ensure_data(rows: int) -> Path:
    path = DATA / f"sft_{label(rows)}.jsonl"
    if not path.exists() or not Path(f"{path}.truth.tsv").exists():
        log(f"generating {path.relative_to(ROOT)} ({rows:,} rows) ...")
        DATA.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, str(GEN_DATA), "--rows", str(rows), "--out", str(path)],
                       check=True, stdout=subprocess.DEVNULL)
    return path


def timed(fn: Callable[[], Any], repeat: int) -> tuple[Any, float, float]:
    """(last result, median wall seconds, median CPU seconds of this process)."""
    walls, cpus, result = [], [], None
    for _ in range(repeat):
        result = None
        gc.collect()
        c0, t0 = time.process_time(), time.perf_counter()
        result = fn()
        walls.append(time.perf_counter() - t0)
        cpus.append(time.process_time() - c0)
    return result, statistics.median(walls), statistics.median(cpus)


# -- near-dedup ---------------------------------------------------------------------------------
def shingles(text: str) -> set[str]:
    """The generator's definition: 5-word shingles of str.split(), one shingle if shorter."""
    w = text.split()
    if len(w) < NGRAM:
        return {" ".join(w)}
    return {" ".join(w[i:i + NGRAM]) for i in range(len(w) - NGRAM + 1)}


def find(parent: list[int], x: int) -> int:
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


def datasketch_clusters(rows: list[dict[str, str]]) -> list[int]:
    """Each row's cluster (its smallest row number) by datasketch MinHash + MinHashLSH."""
    from datasketch import MinHash, MinHashLSH

    lsh = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    parent = list(range(len(rows)))
    for i, r in enumerate(rows):
        text = "\n".join(r[f] or "" for f in FIELDS)
        m = MinHash(num_perm=NUM_PERM, seed=1)
        m.update_batch([s.encode("utf-8") for s in shingles(text)])
        for j in lsh.query(m):
            a, b = find(parent, i), find(parent, j)
            parent[max(a, b)] = min(a, b)
        lsh.insert(i, m, check_duplication=False)
    return [find(parent, i) for i in range(len(rows))]


def dcc_clusters(op: Any, df: Any) -> tuple[list[int], dict[str, Any]]:
    """Each row's cluster (the row kept for it) from the function behind `op.run`, which
    itself returns only the kept rows, and the stats it records."""
    from dcc.ops.neardup import near_duplicates

    res = near_duplicates(op._text(df), op.p["method"], **op._near_options())
    return res.cluster.tolist(), res.stats


def truth_families(path: Path) -> tuple[list[int], list[tuple[int, int, float]]]:
    """Each row's true family (smallest row of it) and the planted near pairs (row, source, J)."""
    lines = Path(f"{path}.truth.tsv").read_text().splitlines()[1:]
    n = len(lines)
    parent, near = list(range(n)), []
    for line in lines:
        row, kind, src, jac = line.split("\t")
        if kind == "base":
            continue
        a, b = find(parent, int(row)), find(parent, int(src))
        parent[max(a, b)] = min(a, b)
        if kind == "near":
            near.append((int(row), int(src), float(jac)))
    return [find(parent, i) for i in range(n)], near


def quality(cluster: list[int], family: list[int], near: list[tuple[int, int, float]]
            ) -> dict[str, float]:
    above = [(r, s) for r, s, j in near if j >= THRESHOLD]
    below = [(r, s) for r, s, j in near if j < THRESHOLD]
    dropped = [i for i, c in enumerate(cluster) if c != i]
    return {
        "recall": sum(cluster[r] == cluster[s] for r, s in above) / max(len(above), 1),
        "precision": sum(family[i] == family[cluster[i]] for i in dropped) / max(len(dropped), 1),
        "merged_below_threshold": sum(cluster[r] == cluster[s] for r, s in below)
        / max(len(below), 1),
        "dropped": len(dropped), "pairs_above": len(above), "pairs_below": len(below),
    }


def bench_near(rows: int, repeat: int, ds_repeat: int) -> dict[str, Any]:
    import polars as pl

    from dcc.ops.base import RunContext
    from dcc.ops.select import SelectDedup

    path = ensure_data(rows)
    df = pl.read_ndjson(path)
    records = df.select(FIELDS).to_dicts()
    family, near = truth_families(path)
    op = SelectDedup(fields=FIELDS, method="minhash", threshold=THRESHOLD, num_perm=NUM_PERM,
                     ngram=NGRAM, seed=1)
    log(f"near: dcc minhash on {rows:,} rows x{repeat} ...")
    out, dcc_wall, dcc_cpu = timed(lambda: op.run([df], RunContext("bench")), repeat)
    cluster, stats = dcc_clusters(op, df)
    assert out.height == sum(c == i for i, c in enumerate(cluster)), "clusters disagree with run()"
    log(f"near: datasketch on {rows:,} rows x{ds_repeat} (slow) ...")
    ds_cluster, ds_wall, ds_cpu = timed(lambda: datasketch_clusters(records), ds_repeat)
    q_dcc, q_ds = quality(cluster, family, near), quality(ds_cluster, family, near)
    from datasketch import MinHashLSH

    ref = MinHashLSH(threshold=THRESHOLD, num_perm=NUM_PERM)
    return {
        "rows": rows, "dcc_s": dcc_wall, "dcc_cpu_s": dcc_cpu, "datasketch_s": ds_wall,
        "datasketch_cpu_s": ds_cpu, "speedup": ds_wall / dcc_wall, "dcc": q_dcc,
        "datasketch": q_ds, "dcc_stats": stats, "datasketch_bands": [ref.b, ref.r],
        "rows_kept": out.height,
    }


# -- exact dedup --------------------------------------------------------------------------------
def bench_exact(rows: int, repeat: int) -> dict[str, Any]:
    import polars as pl
    import xxhash

    from dcc.ops.base import RunContext
    from dcc.ops.select import SelectDedup

    path = ensure_data(rows)
    df = pl.read_ndjson(path)
    values = df["output"].to_list()
    op = SelectDedup(fields=["output"])

    def loop() -> int:
        seen: set[int] = set()
        digest = xxhash.xxh3_64_intdigest
        for v in values:
            seen.add(digest(v.encode("utf-8")))
        return len(seen)

    log(f"exact: python loop and dcc on {rows:,} rows x{repeat} ...")
    distinct, loop_wall, loop_cpu = timed(loop, repeat)
    out, dcc_wall, dcc_cpu = timed(lambda: op.run([df], RunContext("bench")), repeat)
    return {"rows": rows, "dcc_s": dcc_wall, "dcc_cpu_s": dcc_cpu, "loop_s": loop_wall,
            "loop_cpu_s": loop_cpu, "ratio": dcc_wall / loop_wall, "distinct": distinct,
            "rows_kept": out.height, "same_count": distinct == out.height}


# -- report -------------------------------------------------------------------------------------
def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def report(near: dict[str, Any] | None, exact: dict[str, Any] | None) -> dict[str, Any]:
    summary: dict[str, Any] = {"bench": "dedup", "python": platform.python_version(),
                               "cpus": os.cpu_count(), "load": os.getloadavg()[0]}
    print(f"{'benchmark':44s} {'dcc':>10s} {'baseline':>10s} {'ratio':>8s} {'target':>10s}  ")
    if near:
        d, s = near["dcc"], near["datasketch"]
        rows = [
            ("near: time s (cpu s) vs datasketch", f"{near['dcc_s']:.2f} ({near['dcc_cpu_s']:.1f})",
             f"{near['datasketch_s']:.2f} ({near['datasketch_cpu_s']:.1f})",
             f"{near['speedup']:.1f}x", ">= 3x", near["speedup"] >= TARGET_SPEEDUP),
            ("near: recall, true J >= 0.8", f"{d['recall']:.4f}", f"{s['recall']:.4f}", "",
             ">= 0.95", d["recall"] >= TARGET_RECALL),
            ("near: precision", f"{d['precision']:.4f}", f"{s['precision']:.4f}", "", ">= 0.95",
             d["precision"] >= TARGET_PRECISION),
            ("near: merged pairs with true J < 0.8", f"{d['merged_below_threshold']:.4f}",
             f"{s['merged_below_threshold']:.4f}", "", "", None),
            ("near: rows dropped", str(d["dropped"]), str(s["dropped"]), "", "", None),
        ]
        for name, a, b, r, t, ok in rows:
            v = "" if ok is None else verdict(ok)
            print(f"{name:44s} {a:>10s} {b:>10s} {r:>8s} {t:>10s}  {v}")
        st = near["dcc_stats"]
        print(f"  dcc: {near['rows']:,} rows, bands x rows {st['bands']} x {st['rows_per_band']}, "
              f"{st['candidate_pairs']:,} candidate pairs, {st['verified_pairs']:,} verified, "
              f"{st['clusters']:,} clusters; datasketch bands x rows "
              f"{near['datasketch_bands'][0]} x {near['datasketch_bands'][1]}; planted pairs "
              f"above/below 0.8: {d['pairs_above']:,}/{d['pairs_below']:,}")
        summary["near"] = near
        summary["near_pass"] = (near["speedup"] >= TARGET_SPEEDUP and d["recall"] >= TARGET_RECALL
                                and d["precision"] >= TARGET_PRECISION)
    if exact:
        ok = exact["ratio"] <= TARGET_EXACT_RATIO
        a = f"{exact['dcc_s']:.3f} ({exact['dcc_cpu_s']:.2f})"
        b = f"{exact['loop_s']:.3f} ({exact['loop_cpu_s']:.2f})"
        print(f"{'exact: time s (cpu s) vs python xxh3 set':44s} {a:>10s} {b:>10s} "
              f"{exact['ratio']:>7.2f}x {'<= 1.5x':>10s}  {verdict(ok)}")
        print(f"  {exact['rows']:,} rows; distinct outputs: loop {exact['distinct']:,}, dcc kept "
              f"{exact['rows_kept']:,}")
        summary["exact"] = exact
        summary["exact_pass"] = ok
    return summary


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--exact-rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--ds-repeat", type=int, default=1)
    ap.add_argument("--only", default="near,exact")
    a = ap.parse_args(argv)
    only = set(a.only.split(","))
    ok = True
    near = exact = None
    try:
        if "near" in only:
            near = bench_near(a.rows, a.repeat, a.ds_repeat)
        if "exact" in only:
            exact = bench_exact(a.exact_rows, a.repeat)
            ok = exact["same_count"]
    except Exception as exc:  # noqa: BLE001 - report and fail
        log(f"benchmark failed: {type(exc).__name__}: {exc}")
        ok = False
    summary = report(near, exact)
    summary["ok"] = ok
    print(json.dumps(summary, default=float))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
