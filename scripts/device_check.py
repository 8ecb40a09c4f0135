"""Check the transformers backend on a CUDA machine against its own CPU run; print one JSON.

What it checks, on the same model and GSM8K text on both sides:

* order: results come back in input order on the device: greedy generations of the prompts
  reversed are the generations of the prompts, reversed; scores of the texts shuffled are
  the scores of the texts, shuffled (each compared within bf16's error, since a shuffle
  can change which rows share a batch); batched scores match one-at-a-time scores;
* agreement with CPU fp32: greedy generations compared string by string (bf16 may
  legitimately diverge after a near-tie: reported, not failed), and per-token log-probs
  (the largest and mean absolute differences);
* agreement with transformers itself: the backend's own decode loop against
  `model.generate(do_sample=False)` on the same token ids, on each side (a failure here is
  a bug in the loop on this transformers version, and fails the check), both timed on a
  second run (the first meets every new shape: kernel selection and allocation);
* speed: scoring tokens per second with length-sorted batches against input-order batches
  (`HFBackend.score(sort=False)`), best of `--repeat` timed runs after a warm-up, with the
  batches and padding each makes; plus greedy generation tokens per second (after a
  warm-up). A 0.2M-parameter model is launch-bound on a GPU, where padding costs nothing,
  so by default on CUDA the timing uses a randomly initialised model of GPT-2 small's shape
  (12 layers, width 768, the same tokenizer; `--bench-model same` times the checked model).

The model is `--model DIR` (for instance a copy of the tiny test model) or, without it, a
tiny GPT-2 trained here on `recipes/data/gsm8k_1k.jsonl` (dcc.testing.tiny_model.build;
about a minute on one core, `--train-steps` shortens it). It needs torch, transformers and
tokenizers only: the rest of dcc's dependencies (polars, lark, diskcache, xxhash) may be
absent, and `xxhash`, which the backend uses only to derive sampling seeds, is then replaced
by a blake2b stand-in (greedy decoding never uses it; the JSON says so).

    PYTHONPATH=. python3 scripts/device_check.py --model DIR
    PYTHONPATH=. python3 scripts/device_check.py --device cpu    # both sides on CPU

Exit status: 0 when the order and transformers checks pass, 1 when one fails, 2 when the
device is missing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "recipes" / "data" / "gsm8k_1k.jsonl"


def ensure_xxhash() -> str:
    """"xxhash", or "blake2b stand-in" after installing one (see the module doc)."""
    try:
        import xxhash  # noqa: F401
        return "xxhash"
    except ImportError:
        pass
    shim = types.ModuleType("xxhash")

    def xxh3_128_hexdigest(data: Any) -> str:
        return hashlib.blake2b(bytes(data), digest_size=16).hexdigest()

    shim.xxh3_128_hexdigest = xxh3_128_hexdigest  # type: ignore[attr-defined]
    sys.modules["xxhash"] = shim
    return "blake2b stand-in"


def load_rows(limit: int) -> list[dict[str, str]]:
    with open(DATA, encoding="utf-8") as f:
        return [json.loads(line) for line, _ in zip(f, range(limit))]


def model_folder(args: argparse.Namespace, rows: list[dict[str, str]]) -> tuple[str, Any]:
    if args.model:
        if not (Path(args.model) / "config.json").is_file():
            raise SystemExit(f"--model {args.model}: no config.json there")
        return args.model, None
    from dcc.testing import tiny_model

    tiny_model.STEPS = args.train_steps
    out = Path(tempfile.mkdtemp(prefix="dcc-device-check-"))
    info = tiny_model.build([f"{r['question']}\n{r['answer']}" for r in rows], out)
    return str(out), info


def backend(folder: str, device: str) -> Any:
    from dcc.ops.models.hf import HFBackend

    return HFBackend(folder, identity="device-check", device=device, local_files_only=True)


def generations(b: Any, prompts: list[str], tokens: int) -> tuple[list[str], float]:
    from dcc.ops.models import GenerationConfig

    sync(b)
    t0 = time.perf_counter()
    out = [o[0] for o in b.generate(prompts, GenerationConfig(max_new_tokens=tokens))]
    sync(b)
    return out, time.perf_counter() - t0


def sync(b: Any) -> None:
    import torch

    if str(getattr(b, "device", "cpu")).startswith("cuda"):
        torch.cuda.synchronize()


def diff(a: list[list[float]], b: list[list[float]]) -> dict[str, float]:
    flat = [abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb)]
    lengths_equal = all(len(ra) == len(rb) for ra, rb in zip(a, b))
    return {"max_abs": round(max(flat, default=0.0), 5),
            "mean_abs": round(sum(flat) / max(len(flat), 1), 6), "lengths_equal": lengths_equal}


def first_difference(a: str, b: str) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


def reference_generate(b: Any, prompts: list[str], tokens: int) -> tuple[list[str], float]:
    """Greedy completions from transformers' own `generate`, on the backend's token ids."""
    import torch

    b._load()
    seqs = [b._encode([p], special=True)[0] for p in prompts]
    ids, mask = b._padded(seqs, left=True)
    sync(b)
    t0 = time.perf_counter()
    with torch.inference_mode():
        out = b.model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=tokens,
                               do_sample=False, pad_token_id=b.pad_id)
    sync(b)
    seconds = time.perf_counter() - t0
    return [b.tokenizer.decode(row[ids.shape[1]:], skip_special_tokens=True)
            for row in out.tolist()], seconds


def check_order(dev: Any, prompts: list[str], texts: list[str], greedy: list[str],
                scores: list[list[float]], tokens: int, tol: float) -> dict[str, Any]:
    back, _ = generations(dev, list(reversed(prompts)), tokens)
    rng = random.Random(0)
    perm = list(range(len(texts)))
    rng.shuffle(perm)
    shuffled = [s.logprobs for s in dev.score([""] * len(texts), [texts[i] for i in perm])]
    one_by_one = [dev.score([""], [t])[0].logprobs for t in texts[:16]]
    reordered = diff([scores[i] for i in perm], shuffled)
    single = diff(scores[:16], one_by_one)
    gen_same = sum(a == b for a, b in zip(greedy, reversed(back)))
    ok = reordered["lengths_equal"] and reordered["max_abs"] <= tol and \
        single["lengths_equal"] and single["max_abs"] <= tol
    return {"ok": bool(ok), "score_shuffled_vs_ordered": reordered,
            "score_batched_vs_one_at_a_time": single,
            "greedy_reversed_same": f"{gen_same}/{len(prompts)}", "tolerance": tol}


def bench_folder(folder: str, device: str) -> tuple[str, dict[str, Any]]:
    """A GPT-2-small-shaped model with random (seeded) weights and `folder`'s tokenizer."""
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2LMHeadModel

    tok = AutoTokenizer.from_pretrained(folder)
    out = tempfile.mkdtemp(prefix="dcc-device-bench-")
    tok.save_pretrained(out)
    torch.manual_seed(0)
    positions = min(tok.model_max_length, 1024)
    config = GPT2Config(vocab_size=len(tok), n_positions=positions, n_embd=768, n_layer=12,
                        n_head=12, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                        pad_token_id=tok.pad_token_id)
    model = GPT2LMHeadModel(config)
    model.save_pretrained(out)
    params = sum(p.numel() for p in model.parameters())
    return out, {"shape": "gpt2-small (random weights)", "parameters": params,
                 "positions": positions}


def throughput(dev: Any, texts: list[str], repeat: int) -> dict[str, Any]:
    from dcc.ops.models.batching import plan_batches

    dev.score([""], [texts[0]])  # load the weights before anything is timed
    lengths = [len(ids) + len(dev.start_ids) for ids in dev._encode(texts)]
    lengths = [min(n, dev.max_length) for n in lengths]
    tokens = sum(lengths)
    shape = {}
    for sort in (True, False):
        batches = plan_batches(lengths, dev.max_batch_tokens, sort=sort)
        padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
        shape["sorted" if sort else "unsorted"] = {"batches": len(batches),
                                                   "padding": round(1 - tokens / padded, 3)}
    best: dict[str, float] = {}
    for sort in (True, False):
        dev.score([""] * len(texts), texts, sort=sort)  # warm-up (kernels, allocator)
        runs = []
        for _ in range(repeat):
            sync(dev)
            t0 = time.perf_counter()
            dev.score([""] * len(texts), texts, sort=sort)
            sync(dev)
            runs.append(time.perf_counter() - t0)
        best["sorted" if sort else "unsorted"] = min(runs)
    return {"texts": len(texts), "tokens": tokens, "max_batch_tokens": dev.max_batch_tokens,
            "sorted_tokens_per_s": round(tokens / best["sorted"]),
            "unsorted_tokens_per_s": round(tokens / best["unsorted"]),
            "speedup": round(best["unsorted"] / best["sorted"], 2),
            "seconds": {k: round(v, 4) for k, v in best.items()}, "batches": shape}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import torch
    import transformers

    report: dict[str, Any] = {"torch": torch.__version__, "transformers": transformers.__version__,
                              "seed_hash": ensure_xxhash()}
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        report["error"] = f"--device {args.device}: torch sees no CUDA device"
        return report
    if args.device.startswith("cuda"):
        report["gpu"] = torch.cuda.get_device_name(torch.device(args.device))
    rows = load_rows(max(args.texts, args.prompts, 1000 if not args.model else 0))
    folder, trained = model_folder(args, rows)
    report["model"] = folder if args.model else {"trained_here": trained}
    prompts = [f"{r['question']}\n" for r in rows[:args.prompts]]
    texts = [r["answer"] for r in rows[:args.texts]]

    cpu, dev = backend(folder, "cpu"), backend(folder, args.device)
    ref_gen, _ = generations(cpu, prompts, args.new_tokens)
    ref_scores = [s.logprobs for s in cpu.score([""] * len(texts), texts)]
    generations(dev, prompts, args.new_tokens)  # load, and meet every shape once: untimed
    dev_gen, gen_s = generations(dev, prompts, args.new_tokens)
    dev_scores = [s.logprobs for s in dev.score([""] * len(texts), texts)]
    report["device"] = {"name": dev.device, "dtype": str(dev.dtype).replace("torch.", "")}

    same = [a == b for a, b in zip(ref_gen, dev_gen)]
    report["greedy_vs_cpu_fp32"] = {
        "identical": f"{sum(same)}/{len(same)}",
        "differences": [{"prompt": i, "first_diff_char": first_difference(a, b),
                         "cpu": a[:80], "device": b[:80]}
                        for i, (a, b, s) in enumerate(zip(ref_gen, dev_gen, same)) if not s][:5]}
    report["scores_vs_cpu_fp32"] = diff(ref_scores, dev_scores)
    own_cpu, _ = reference_generate(cpu, prompts, args.new_tokens)
    reference_generate(dev, prompts, args.new_tokens)  # warm-up, as for the backend
    own_dev, own_s = reference_generate(dev, prompts, args.new_tokens)
    report["greedy_vs_transformers_generate"] = {
        "cpu": f"{sum(a == b for a, b in zip(ref_gen, own_cpu))}/{len(prompts)}",
        "device": f"{sum(a == b for a, b in zip(dev_gen, own_dev))}/{len(prompts)}",
        "ok": ref_gen == own_cpu}
    tol = 1e-4 if dev.dtype == torch.float32 else 0.1
    report["order"] = check_order(dev, prompts, texts, dev_gen, dev_scores, args.new_tokens, tol)
    new = sum(len(dev._encode([g])[0]) for g in dev_gen)
    report["generation"] = {"prompts": len(prompts), "new_tokens": new,
                            "tokens_per_s": round(new / gen_s) if gen_s else None,
                            "transformers_generate_tokens_per_s":
                                round(new / own_s) if own_s else None}
    bench = args.bench_model or ("small" if args.device.startswith("cuda") else "same")
    if bench == "small":
        folder, report["bench_model"] = bench_folder(folder, args.device)
        dev = backend(folder, args.device)
    else:
        report["bench_model"] = "the checked model"
    report["score_batching"] = throughput(dev, texts, args.repeat)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", help="model folder (default: train a tiny one here)")
    parser.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu")
    parser.add_argument("--prompts", type=int, default=16, help="prompts generated greedily")
    parser.add_argument("--new-tokens", type=int, default=32, help="tokens per generation")
    parser.add_argument("--texts", type=int, default=512, help="texts scored")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per batching")
    parser.add_argument("--train-steps", type=int, default=240,
                        help="training steps when no --model is given")
    parser.add_argument("--bench-model", choices=("same", "small"), default=None,
                        help="model timed for batching: the checked one, or a random "
                             "GPT-2-small shape (default: small on CUDA, same on CPU)")
    args = parser.parse_args(argv)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    report = run(args)
    print(json.dumps(report, indent=2))
    if "error" in report:
        return 2
    return 0 if report["order"]["ok"] and report["greedy_vs_transformers_generate"]["ok"] \
        else 1


if __name__ == "__main__":
    sys.exit(main())
