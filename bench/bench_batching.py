"""Length-sorted batching vs input-order batching: tokens/s of `score()` on GSM8K answers;
and model groups: several nodes on one model built with shared batches vs one node at a time.

    .venv/bin/python bench/bench_batching.py [--rows 1000] [--repeat 5] [--max-tokens 4096]
                                             [--device cpu|cuda] [--threads N]
                                             [--only sorting,groups] [--branches 3]
                                             [--branch-rows 12] [--latency 0.2]
                                             [--concurrency 8]

One command, one process: the tiny test model (`dcc.testing.tiny_model`, built on first use)
scores the first `--rows` GSM8K answers with the backend's length-sorted batching and with the
same token budget in input order, alternating the two `--repeat` times. It prints the median
tokens/s of each (real tokens, not padding), the ratio of medians (the verdict, target >= 1.5x)
and of best runs, the share of padding each plan computes, and one JSON line with every
figure. The two runs' scores are compared:
batching must not change a result.

Groups: a recipe with `--branches` branches, each loading its own `--branch-rows` GSM8K
questions and asking a model to rewrite them (`rewrite.llm`), built in this process with a
fresh cache, once with the optimizer's model groups and once with the groups removed from the
same optimized plan, alternating `--repeat` times. The model is an OpenAI-compatible server
(the tests' fake, on loopback) that takes `--latency` seconds per request, as a served model
does; the client keeps `--concurrency` requests in flight. Grouped, the branches' requests go
out as one set (`dcc.ops.models.pool`), so the window is filled from every node. It prints
the median build time of each, the ratio, the requests sent and the most in flight; the
exports and the request counts must be identical. (Local models are not grouped: their
numbers depend on the batch a request is computed in; docs/optimizer.md.)

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
  | rewrite.llm(field="question", model="{model}", instruction="Say it in fewer words.",
                into="short")
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
    ap.add_argument("--branch-rows", type=int, default=12)
    ap.add_argument("--latency", type=float, default=0.2,
                    help="seconds the model server takes per request (groups)")
    ap.add_argument("--concurrency", type=int, default=8,
                    help="requests the client keeps in flight (groups)")
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

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "models_http"))
    from fake_openai import FakeOpenAI

    from dcc.cache.store import DiskStore
    from dcc.compiler import compile_recipe
    from dcc.engine.build import build
    from dcc.ops.models.resolve import clear_backends
    from dcc.testing.tiny_model import shared_data_dir

    data = shared_data_dir()
    if data is None:
        print("shared/data/gsm8k_train.jsonl not found (set DCC_SHARED_DATA)", file=sys.stderr)
        return 1
    os.environ["DCC_OPENAI_MAX_CONCURRENCY"] = str(args.concurrency)
    with open(data / "gsm8k_train.jsonl", encoding="utf-8") as f:
        questions = [json.loads(line)["question"] for line, _ in
                     zip(f, range(args.branches * args.branch_rows))]
    server = FakeOpenAI().start()
    server.delay = args.latency
    work = Path(tempfile.mkdtemp(prefix="dcc-bench-groups-"))
    try:
        for i in range(args.branches):
            rows = questions[i * args.branch_rows:(i + 1) * args.branch_rows]
            (work / f"q{i}.jsonl").write_text("".join(json.dumps({"question": q}) + "\n"
                                                      for q in rows))
        (work / "r.recipe").write_text("".join(GROUP_RECIPE_BRANCH.format(i=i, model=server.ref())
                                               for i in range(args.branches)))
        times: dict[str, list[float]] = {"grouped": [], "one at a time": []}
        posts: dict[str, int] = {}
        window: dict[str, int] = {}
        exports: dict[str, dict[str, bytes]] = {}
        for run in range(args.repeat):
            for mode in ("grouped", "one at a time"):
                cache, out = work / f"cache-{mode}-{run}", work / "out"
                shutil.rmtree(out, ignore_errors=True)
                clear_backends()
                server.requests.clear()
                server.max_in_flight = 0
                t = time.perf_counter()
                prog = compile_recipe(str(work / "r.recipe"))
                if mode != "grouped":
                    prog.model_groups = []
                with DiskStore(cache) as store:
                    build(prog, store)
                times[mode].append(time.perf_counter() - t)
                posts[mode] = sum(1 for r in server.posts() if "completions" in r["path"])
                window[mode] = server.max_in_flight
                exports[mode] = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
                shutil.rmtree(cache, ignore_errors=True)
    finally:
        server.stop()
        clear_backends()
        shutil.rmtree(work, ignore_errors=True)
    same = exports["grouped"] == exports["one at a time"]
    med = {m: statistics.median(ts) for m, ts in times.items()}
    ratio = med["one at a time"] / med["grouped"]
    print(f"\nmodel groups: {args.branches} rewrite.llm nodes x {args.branch_rows} rows, an "
          f"OpenAI-compatible server answering in {args.latency * 1000:.0f} ms, "
          f"{args.concurrency} requests in flight at most, whole in-process builds")
    for m in times:
        runs = ", ".join(f"{t:.2f}" for t in times[m])
        print(f"{m:<14} median {med[m]:6.2f} s   requests {posts[m]}, most in flight "
              f"{window[m]}   builds (s): {runs}")
    print(f"speedup grouped vs one at a time: {ratio:.2f}x; exports identical: {same}")
    print(json.dumps({"bench": "model groups", "branches": args.branches,
                      "branch_rows": args.branch_rows, "latency_s": args.latency,
                      "concurrency": args.concurrency, "seconds": times, "median": med,
                      "speedup": ratio, "requests": posts, "max_in_flight": window,
                      "identical": same}))
    return 0 if same and posts["grouped"] == posts["one at a time"] else 1


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
