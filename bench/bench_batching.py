"""Length-sorted batching vs input-order batching: tokens/s of `score()` on GSM8K answers.

    .venv/bin/python bench/bench_batching.py [--rows 1000] [--repeat 5] [--max-tokens 4096]
                                             [--device cpu|cuda] [--threads N]

One command, one process: the tiny test model (`dcc.testing.tiny_model`, built on first use)
scores the first `--rows` GSM8K answers with the backend's length-sorted batching and with the
same token budget in input order, alternating the two `--repeat` times. It prints the median
tokens/s of each (real tokens, not padding), the ratio of medians (the verdict, target >= 1.5x)
and of best runs, the share of padding each plan computes, and one JSON line with every
figure. The two runs' scores are compared:
batching must not change a result. Exit status 0 when the scores agree (a missed target is
reported as MISS), 1 when they do not.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

TARGET = 1.5


def padding_share(lengths: list[int], max_tokens: int, sort: bool) -> float:
    from dcc.ops.models.batching import plan_batches

    computed = sum(len(b) * max(lengths[i] for i in b)
                   for b in plan_batches(lengths, max_tokens, sort=sort))
    return 1.0 - sum(lengths) / computed


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1000)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--max-tokens", type=int, default=4096)
    ap.add_argument("--device", default=None)
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads (default: torch's; 1 is steadier on a busy machine)")
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)

    from dcc.ops.models.resolve import resolve_model
    from dcc.testing.tiny_model import shared_data_dir, tiny_model

    data = shared_data_dir()
    if data is None:
        print("shared/data/gsm8k_train.jsonl not found (set DCC_SHARED_DATA)", file=sys.stderr)
        return 1
    t0 = time.perf_counter()
    folder = tiny_model(data)
    built = time.perf_counter() - t0
    with open(data / "gsm8k_train.jsonl", encoding="utf-8") as f:
        texts = [json.loads(line)["answer"] for line, _ in zip(f, range(args.rows))]
    backend = resolve_model(str(folder), options={"device": args.device,
                                                  "max_batch_tokens": args.max_tokens})
    backend.score([""], ["warm up"])
    lengths = [len(backend.start_ids) + len(ids) for ids in backend._encode(texts)]
    tokens = sum(lengths)
    times: dict[str, list[float]] = {"sorted": [], "unsorted": []}
    results = {}
    for _ in range(args.repeat):
        for mode in ("sorted", "unsorted"):
            t = time.perf_counter()
            results[mode] = backend.score([""] * len(texts), texts, sort=mode == "sorted")
            times[mode].append(time.perf_counter() - t)
    worst = max(abs(a - b) for x, y in zip(results["sorted"], results["unsorted"])
                for a, b in zip(x.logprobs, y.logprobs))
    tps = {m: tokens / statistics.median(ts) for m, ts in times.items()}
    ratio = tps["sorted"] / tps["unsorted"]
    best = min(times["unsorted"]) / min(times["sorted"])
    pad = {m: padding_share(lengths, args.max_tokens, m == "sorted") for m in times}
    verdict = "ok" if ratio >= TARGET else "MISS"
    print(f"score() of {len(texts)} GSM8K answers ({tokens} tokens, {min(lengths)}-"
          f"{max(lengths)} per row) on {backend.device}, budget {args.max_tokens} tokens/batch")
    print(f"{'plan':<10}{'tokens/s (median)':>20}{'padding':>10}   runs (s)")
    for m in ("sorted", "unsorted"):
        runs = ", ".join(f"{t:.2f}" for t in times[m])
        print(f"{m:<10}{tps[m]:>20,.0f}{pad[m]:>10.1%}   {runs}")
    print(f"ratio sorted/unsorted: {ratio:.2f}x of medians, {best:.2f}x of best runs "
          f"(target >= {TARGET}x) {verdict}")
    print(f"largest score difference between the plans: {worst:.2e}")
    print(json.dumps({"rows": len(texts), "tokens": tokens, "device": backend.device,
                      "max_tokens": args.max_tokens, "tokens_per_s": tps, "ratio": ratio, "ratio_best": best,
                      "padding": pad, "seconds": times, "target": TARGET,
                      "model_build_s": round(built, 2), "max_abs_diff": worst}))
    return 0 if worst < 1e-3 else 1


if __name__ == "__main__":
    sys.exit(main())
