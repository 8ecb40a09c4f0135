"""A tiny GPT-2-style causal LM, trained here in seconds, so model code is tested on a real model.

Nothing may be downloaded from a model hub in tests or CI, yet perplexity, IFD and batching
are only worth testing on a model whose numbers mean something. `tiny_model()` therefore
builds one from the real text in `shared/data` (GSM8K questions and answers, Self-Instruct
instructions and outputs), once per machine, and returns its folder:

* tokenizer: byte-level BPE (the GPT-2 scheme) trained with `tokenizers` to `VOCAB` tokens,
  `<|endoftext|>` as BOS, EOS and padding;
* model: `GPT2LMHeadModel` with 2 layers, width 64, 4 heads, 256 positions (about 0.2M
  parameters), trained for `STEPS` AdamW steps (one-cycle schedule) on 128-token windows that
  start at a random document's start: every window holds a question (or instruction) before
  its answer, which is what teaches the model to use one, so IFD means something;
* saved with `save_pretrained` (safetensors) beside the tokenizer and a `dcc_tiny.json` that
  records the build settings and the final training loss.

Everything is seeded (torch, numpy, a fixed document order) and training runs on one CPU
thread (the same sums in the same order whatever the machine; tiny matrices gain little from
more threads, and lose much when other processes compete for the cores), so two builds give
the same weights. It takes about 30-40 s. The folder is cached under `$DCC_TEST_MODELS` (default `~/.cache/dcc-test-models`)
in a subfolder named after a hash of the build settings and of the training text, so a change
to either builds a new model; a finished model appears by one atomic rename, so concurrent
test runs never see a half-written folder.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

VOCAB = 1024
N_LAYER = 2
N_EMBD = 64
N_HEAD = 4
N_POSITIONS = 256
SEQ = 128
BATCH = 16
STEPS = 240
LR = 3e-3
SEED = 0
EOS = "<|endoftext|>"
BUILD_VERSION = 4  # bump when the recipe below changes in a way the settings do not show

SETTINGS = {"vocab": VOCAB, "n_layer": N_LAYER, "n_embd": N_EMBD, "n_head": N_HEAD,
            "n_positions": N_POSITIONS, "seq": SEQ, "batch": BATCH, "steps": STEPS, "lr": LR,
            "seed": SEED, "version": BUILD_VERSION}


def shared_data_dir() -> Path | None:
    """The shared real data: `$DCC_SHARED_DATA`, else `shared/data` beside the repository."""
    env = os.environ.get("DCC_SHARED_DATA")
    candidates = [Path(env)] if env else []
    repo = Path(__file__).resolve().parents[2]
    candidates += [repo.parent / "shared" / "data", Path("/work/shared/data")]
    return next((c for c in candidates if (c / "gsm8k_train.jsonl").is_file()), None)


def training_texts(data: Path) -> list[str]:
    """The documents the tiny model learns from, in a fixed order."""
    texts: list[str] = []
    with open(data / "gsm8k_train.jsonl", encoding="utf-8") as f:
        for line in f:
            row = json.loads(line)
            texts.append(f"{row['question']}\n{row['answer']}")
    for name in ("self_instruct_seed_tasks.jsonl",
                 "self_instruct_user_oriented_instructions.jsonl"):
        path = data / name
        if not path.is_file():
            continue
        with open(path, encoding="utf-8") as f:
            for line in f:
                row = json.loads(line)
                for inst in row.get("instances", []):
                    texts.append("\n".join(t for t in (row["instruction"], inst.get("input"),
                                                       inst.get("output")) if t))
    return texts


def cache_root() -> Path:
    return Path(os.environ.get("DCC_TEST_MODELS")
                or Path.home() / ".cache" / "dcc-test-models")


def tiny_model(data: Path | None = None) -> Path:
    """The folder of the tiny model, built on first use; raises FileNotFoundError without data."""
    data = data or shared_data_dir()
    if data is None:
        raise FileNotFoundError("shared/data (gsm8k_train.jsonl) not found; set DCC_SHARED_DATA")
    from dcc.cache.hashing import canonical_bytes, digest, hash_file

    files = sorted(p.name for p in data.glob("*.jsonl"))
    stamp = digest(canonical_bytes({"settings": SETTINGS,
                                    "data": [[n, hash_file(data / n)] for n in files]}))
    target = cache_root() / f"tiny-gpt2-{stamp[:16]}"
    if (target / "dcc_tiny.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-dcc-tiny-{os.getpid()}-", dir=target.parent))
    try:
        info = build(training_texts(data), tmp)
        (tmp / "dcc_tiny.json").write_text(json.dumps(info, indent=2) + "\n")
        try:
            os.rename(tmp, target)
        except OSError:  # another process finished first: theirs is as good as ours
            if not (target / "dcc_tiny.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def build(texts: list[str], out: Path) -> dict[str, Any]:
    """Train the tokenizer and the model on `texts` and save both under `out`."""
    import numpy as np
    import torch
    import transformers
    from tokenizers import ByteLevelBPETokenizer
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    started = time.perf_counter()
    transformers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # the same sums in the same order on every machine
    try:
        bpe = ByteLevelBPETokenizer()
        bpe.train_from_iterator(texts, vocab_size=VOCAB, min_frequency=2, special_tokens=[EOS],
                                show_progress=False)
        tok = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token=EOS, eos_token=EOS,
                                      unk_token=EOS, pad_token=EOS)
        tok.model_max_length = N_POSITIONS
        tok.save_pretrained(out)
        eos = tok.convert_tokens_to_ids(EOS)
        docs = [[eos, *enc.ids] for enc in bpe.encode_batch(texts)]  # EOS opens each, as BOS
        ids = [i for doc in docs for i in doc]
        stream = torch.tensor(ids, dtype=torch.long)
        starts = np.cumsum([0] + [len(doc) for doc in docs[:-1]])
        starts = starts[starts < len(stream) - SEQ]

        torch.manual_seed(SEED)
        config = GPT2Config(vocab_size=len(tok), n_positions=N_POSITIONS, n_embd=N_EMBD,
                            n_layer=N_LAYER, n_head=N_HEAD, bos_token_id=eos,
                            eos_token_id=eos, pad_token_id=eos)
        model = GPT2LMHeadModel(config)
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.01)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=LR, total_steps=STEPS,
                                                    pct_start=0.1)
        rng = np.random.default_rng(SEED)
        loss = torch.tensor(float("nan"))
        for _ in range(STEPS):
            batch = torch.stack([stream[s:s + SEQ] for s in rng.choice(starts, size=BATCH)])
            loss = model(input_ids=batch, labels=batch).loss
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
        model.eval()
        model.save_pretrained(out)
    finally:
        torch.set_num_threads(threads)
    return {"settings": SETTINGS, "final_loss": round(float(loss.detach()), 4),
            "tokens": len(ids), "documents": len(texts),
            "seconds": round(time.perf_counter() - started, 1)}


def bundled_texts() -> list[str]:
    """Training text from the sample data bundled with the recipes (recipes/data), for
    machines without the shared data: 1,000 GSM8K problems and the Self-Instruct seeds."""
    data = Path(__file__).resolve().parents[2] / "recipes" / "data"
    texts = []
    with open(data / "gsm8k_1k.jsonl", encoding="utf-8") as f:
        texts += [f"{r['question']}\n{r['answer']}" for r in map(json.loads, f)]
    with open(data / "self_instruct_seed_tasks.jsonl", encoding="utf-8") as f:
        for row in map(json.loads, f):
            texts += ["\n".join(t for t in (row["instruction"], i.get("input"), i.get("output"))
                                if t) for i in row.get("instances", [])]
    return texts


def main(argv: list[str] | None = None) -> int:
    """`python -m dcc.testing.tiny_model DEST`: put a tiny model folder at DEST (for the
    example recipes' model steps, offline). Trained on the shared data when it is here (the
    cached test model), else on the bundled sample data."""
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__.split("\n\n")[0])
    parser.add_argument("dest", help="the folder to create, e.g. recipes/models/tiny")
    args = parser.parse_args(argv)
    dest = Path(args.dest)
    if (dest / "config.json").is_file():
        print(f"{dest} already holds a model")
        return 0
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-dcc-tiny-", dir=dest.parent))
    try:
        data = shared_data_dir()
        if data is not None:
            shutil.copytree(tiny_model(data), tmp, dirs_exist_ok=True)
        else:
            info = build(bundled_texts(), tmp)
            (tmp / "dcc_tiny.json").write_text(json.dumps(info, indent=2) + "\n")
        os.rename(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"tiny model ready in {dest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = ["SETTINGS", "build", "bundled_texts", "main", "shared_data_dir", "tiny_model",
           "training_texts"]
