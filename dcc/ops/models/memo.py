"""Every model generation goes through one request memo, keyed by the exact request.

A generating operator's result is the parse of a model's raw reply. Keying the reply, not the
parsed result, by the exact request (model identity, rendered messages, sampling settings and
seed) means a fix to a parser, a filter rule or a threshold re-runs no model call, and two
nodes that send the same request (a judge in two recipes, a shared pipeline) pay for it once.
Replies are committed batch by batch as they arrive, so a build killed mid-node resumes
without repeating a finished request. The memo lives in the store's row memo under its own
namespace (`dcc.cache.rowmemo.request_memo`); the executor puts it on `RunContext.requests`.

Seeds: a request's seed is part of its key, so an operator that wants a fresh sample of the
same prompt (a retry, the k-th of n samples) asks with another seed, derived from the recipe's
seed and the attempt number: the same recipe always asks the same questions.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace  # noqa: F401 - used in the doctests
from typing import Any

from dcc.cache.hashing import canonical_bytes, digest
from dcc.ops.models import GenerationConfig, Prompt
from dcc.ops.models.pool import ask_model

BATCH = 64  # requests sent (and committed to the memo) at a time


def request_seed(payload: Any) -> int:
    """The one derivation of a request's seed: a 31-bit hash of what makes the request
    distinct (the recipe's seed with a round, a row or a sample index), stable across
    processes and machines, and small enough for any server's `seed`. The generators
    (`textgen.derive_seed`) and the distill operators (`teacher.sample_seed`) both use it.

    >>> request_seed([0, "round", 1]) == request_seed([0, "round", 1])
    True
    >>> request_seed([0, "round", 1]) != request_seed([0, "round", 2])
    True
    >>> 0 <= request_seed({"seed": 0, "sample": 3}) < 2 ** 31
    True
    """
    return int(digest(canonical_bytes(payload))[:8], 16) & 0x7FFFFFFF


def request_hash(identity: str, prompt: Prompt, config: GenerationConfig) -> str:
    """The memo key of one generation request.

    >>> cfg = GenerationConfig(seed=1)
    >>> request_hash("m@1", "hi", cfg) == request_hash("m@1", "hi", cfg)
    True
    >>> hot = GenerationConfig(seed=1, temperature=0.7)
    >>> request_hash("m@1", "hi", hot) == request_hash("m@1", "hi", replace(hot, seed=2))
    False

    Greedy decoding (temperature 0) does not sample, so its seed is not part of the request:
    a judge asked again with another seed (an `evolve` round shifts seeds) costs nothing.

    >>> request_hash("m@1", "hi", cfg) == request_hash("m@1", "hi", GenerationConfig(seed=2))
    True
    """
    settings = config.as_dict()
    if config.temperature == 0:
        settings["seed"] = None
    return digest(canonical_bytes({"model": identity, "prompt": prompt, "config": settings}))


def generate(ctx: Any, backend: Any, prompts: Sequence[Prompt],
             config: GenerationConfig) -> list[list[str]]:
    """`config.n` replies per prompt, in input order, asking the model only for requests the
    memo lacks (each distinct request once; in a model group, in batches shared with the
    group's other nodes: `dcc.ops.models.pool`). Counts one model call per request sent in
    `ctx.model_calls` and the requests served from the memo in `ctx.stats['memo_hits']`."""
    if not prompts:
        return []
    ctx.calls_counted = True
    memo = getattr(ctx, "requests", None)
    identity = str(backend.identity)
    hashes = [request_hash(identity, p, config) for p in prompts]
    found: dict[str, list[str]] = {}
    if memo is not None:
        found = {h: json.loads(v) for h, v in memo.get_many(set(hashes)).items()}
    hits = sum(1 for h in hashes if h in found)
    if hits:
        ctx.stats["memo_hits"] = ctx.stats.get("memo_hits", 0) + hits
    todo: dict[str, int] = {}
    for i, h in enumerate(hashes):
        if h not in found and h not in todo:
            todo[h] = i
    pending = list(todo.items())

    def call(batch: list[Prompt]) -> list[list[str]]:
        return [[str(r) for r in reply] for reply in backend.generate(batch, config)]

    def commit(fresh: dict[str, list[str]]) -> None:
        if memo is not None:
            memo.put_many({h: json.dumps(r).encode() for h, r in fresh.items()})

    found.update(ask_model(ctx, ("generate", id(backend), config), [h for h, _ in pending],
                           [prompts[i] for _, i in pending], call, commit, BATCH,
                           backend, "generate"))
    return [list(found[h]) for h in hashes]


EMBED_BATCH = 1024  # texts embedded (and committed to the memo) at a time


def embed(ctx: Any, backend: Any, texts: Sequence[str]) -> Any:
    """An (n, d) float32 array of embeddings, in order, embedding only the distinct texts the
    memo lacks. Vectors are memoized by (model identity, text), so semantic dedup, k-center
    and coreset nodes over the same texts embed them once between them. Counts one model
    call per text embedded in `ctx.model_calls`, memo hits in `ctx.stats['memo_hits']`."""
    import numpy as np

    ctx.calls_counted = True
    if not texts:
        return np.zeros((0, 0), dtype=np.float32)
    memo = getattr(ctx, "requests", None)
    identity = str(backend.identity)
    unique = list(dict.fromkeys(texts))
    hashes = {t: digest(canonical_bytes({"model": identity, "embed": t})) for t in unique}
    found: dict[str, Any] = {}
    if memo is not None:
        by_hash = memo.get_many(set(hashes.values()))
        found = {t: np.frombuffer(by_hash[h], dtype=np.float32) for t, h in hashes.items()
                 if h in by_hash}
    if found:
        ctx.stats["memo_hits"] = ctx.stats.get("memo_hits", 0) + len(found)
    todo = [t for t in unique if t not in found]

    def call(batch: list[str]) -> list[Any]:
        return list(np.asarray(backend.embed(batch), dtype=np.float32))

    def commit(fresh: dict[str, Any]) -> None:
        if memo is not None:
            memo.put_many({h: v.tobytes() for h, v in fresh.items()})

    vecs = ask_model(ctx, ("embed", id(backend)), [hashes[t] for t in todo], todo, call, commit,
                     EMBED_BATCH, backend, "embed")
    found.update({t: vecs[hashes[t]] for t in todo})
    return np.stack([found[t] for t in texts])


__all__ = ["BATCH", "EMBED_BATCH", "embed", "generate", "request_hash", "request_seed"]
