"""Length-sorted batching vs input-order batching: tokens/s of `score()` on GSM8K answers;
and model groups: several nodes on one model built with shared batches vs one node at a time.

    .venv/bin/python bench/bench_batching.py [--rows 1000] [--repeat 5] [--max-tokens 4096]
                                             [--device cpu|cuda] [--threads N]
                                             [--only sorting,groups] [--branches 3]
                                             [--branch-rows 24]

One command, one process: the tiny test model (`dcc.testing.tiny_model`, built on first use)
scores the first `--rows` GSM8K answers with the backend's length-sorted batching and with the
same token budget in input order, alternating the two `--repeat` times. It prints the median
tokens/s of each (real tokens, not padding), the ratio of medians (the verdict, target >= 1.5x)
and of best runs, the share of padding each plan computes, and one JSON line with every
figure. The two runs' scores are compared:
batching must not change a result.

Groups: a recipe with `--branches` branches, each loading its own `--branch-rows` GSM8K
questions and asking the tiny model to rewrite them (`rewrite.llm`, greedy, 16 new tokens),
built in this process with a fresh cache, once with the optimizer's model groups (the
branches' requests go to the model together, `dcc.ops.models.pool`) and once with the groups
removed from the same optimized plan (each node sends its own batches), alternating
`--repeat` times. The model is loaded before the timers. It prints the median build time of
each, the ratio, and how many times each asked the backend; the exports must be identical.

Exit status 0 when every comparison agrees (a missed target is reported as MISS), 1 when
one does not.
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

GROUP_RECIPE_BRANCH = """\
b{i} = load.jsonl("q{i}.jsonl")
  | rewrite.llm(field="question", model="./tiny", instruction="Say it in fewer words.",
                max_tokens=16, into="short")
export b{i} to "out/b{i}.jsonl"
"""


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
    ap.add_argument("--only", default="sorting,groups")
    ap.add_argument("--branches", type=int, default=3)
    ap.add_argument("--branch-rows", type=int, default=24)
    args = ap.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    status = 0
    if "sorting" in args.only:
        status |= bench_sorting(args)
    if "groups" in args.only:
        status |= bench_groups(args)
    return status


def bench_groups(args: argparse.Namespace) -> int:
    import shutil
    import tempfile

    from dcc.cache.store import DiskStore
    from dcc.compiler import compile_recipe
    from dcc.engine.build import build
    from dcc.ops.models import GenerationConfig
    from dcc.ops.models.hf import HFBackend
    from dcc.testing.tiny_model import shared_data_dir, tiny_model

    data = shared_data_dir()
    if data is None:
        print("shared/data/gsm8k_train.jsonl not found (set DCC_SHARED_DATA)", file=sys.stderr)
        return 1
    if args.device:
        os.environ["DCC_DEVICE"] = args.device
    folder = tiny_model(data)
    with open(data / "gsm8k_train.jsonl", encoding="utf-8") as f:
        questions = [json.loads(line)["question"] for line, _ in
                     zip(f, range(args.branches * args.branch_rows))]
    work = Path(tempfile.mkdtemp(prefix="dcc-bench-groups-"))
    asked: list[int] = []
    in_model: list[float] = []
    generate = HFBackend.generate

    def counting(backend: HFBackend, prompts: list, config: object) -> list:
        asked.append(len(prompts))
        t = time.perf_counter()
        try:
            return generate(backend, prompts, config)
        finally:
            in_model.append(time.perf_counter() - t)

    HFBackend.generate = counting  # type: ignore[method-assign]
    try:
        shutil.copytree(folder, work / "tiny")
        for i in range(args.branches):
            rows = questions[i * args.branch_rows:(i + 1) * args.branch_rows]
            (work / f"q{i}.jsonl").write_text("".join(json.dumps({"question": q}) + "\n"
                                                      for q in rows))
        (work / "r.recipe").write_text("".join(GROUP_RECIPE_BRANCH.format(i=i)
                                               for i in range(args.branches)))
        times: dict[str, list[float]] = {"grouped": [], "one at a time": []}
        model_s: dict[str, list[float]] = {"grouped": [], "one at a time": []}
        asks: dict[str, list[int]] = {}
        exports: dict[str, dict[str, bytes]] = {}
        warm = compile_recipe(str(work / "r.recipe"))  # load the model outside the timers
        llm = next(n for n in warm.nodes() if n.op_name == "rewrite.llm").op
        llm.backend({}).generate(["warm up"], GenerationConfig(max_new_tokens=2))
        for run in range(args.repeat):
            for mode in ("grouped", "one at a time"):
                cache, out = work / f"cache-{mode}-{run}", work / "out"
                shutil.rmtree(out, ignore_errors=True)
                asked.clear()
                in_model.clear()
                t = time.perf_counter()
                prog = compile_recipe(str(work / "r.recipe"))
                if mode != "grouped":
                    prog.model_groups = []
                with DiskStore(cache) as store:
                    build(prog, store)
                times[mode].append(time.perf_counter() - t)
                model_s[mode].append(sum(in_model))
                asks[mode] = list(asked)
                exports[mode] = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
                shutil.rmtree(cache, ignore_errors=True)
    finally:
        HFBackend.generate = generate  # type: ignore[method-assign]
        shutil.rmtree(work, ignore_errors=True)
    same = exports["grouped"] == exports["one at a time"]
    med = {m: statistics.median(ts) for m, ts in times.items()}
    ratio = med["one at a time"] / med["grouped"]
    med_model = {m: statistics.median(ts) for m, ts in model_s.items()}
    model_ratio = med_model["one at a time"] / med_model["grouped"]
    print(f"\nmodel groups: {args.branches} rewrite.llm nodes x {args.branch_rows} rows on the "
          f"tiny model (16 new tokens, greedy), whole in-process build, model loaded before")
    for m in times:
        runs = ", ".join(f"{t:.2f}" for t in times[m])
        print(f"{m:<14} build median {med[m]:6.2f} s, in the model {med_model[m]:6.2f} s   "
              f"backend.generate calls (prompts each): {asks[m]}   builds (s): {runs}")
    print(f"speedup grouped vs one at a time: {ratio:.2f}x of whole builds, {model_ratio:.2f}x "
          f"of the time in the model; exports identical: {same}")
    print(json.dumps({"bench": "model groups", "branches": args.branches,
                      "branch_rows": args.branch_rows, "seconds": times, "median": med,
                      "speedup": ratio, "model_seconds": model_s, "model_speedup": model_ratio, "generate_calls": asks, "identical": same}))
    return 0 if same else 1


def bench_sorting(args: argparse.Namespace) -> int:
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
