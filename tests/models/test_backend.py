"""The transformers backend on real models: the tiny GPT-2 trained on GSM8K and the packaged
MiniLM. Scores are checked against a by-hand forward pass, batching against one-at-a-time."""

from __future__ import annotations

import math
import random
from typing import Any

import pytest

from dcc.ops.models import GenerationConfig
from dcc.ops.models.batching import plan_batches, run_batched


def manual_logprobs(backend: Any, prefix: str, continuation: str) -> list[float]:
    """log p(continuation tokens | BOS + prefix), one forward pass of one sequence."""
    import torch

    tok, model = backend.tokenizer, backend.model
    pre = [tok.bos_token_id] + tok(prefix, add_special_tokens=False)["input_ids"]
    cont = tok(continuation, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([pre + cont])
    with torch.no_grad():
        logp = torch.log_softmax(model(input_ids=ids).logits[0].float(), dim=-1)
    return [float(logp[len(pre) + i - 1, t]) for i, t in enumerate(cont)]


# -- batching (pure) ---------------------------------------------------------------------------
def test_plan_batches_respects_budget_and_covers_every_index() -> None:
    rng = random.Random(0)
    lengths = [rng.randint(1, 300) for _ in range(500)]
    batches = plan_batches(lengths, max_tokens=1024)
    assert sorted(i for b in batches for i in b) == list(range(500))
    for b in batches:
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 1024
    flat = [lengths[i] for b in batches for i in b]
    assert flat == sorted(flat, reverse=True)  # longest first


def test_plan_batches_max_rows_and_oversized_rows() -> None:
    assert plan_batches([1] * 5, max_tokens=100, max_rows=2) == [[0, 1], [2, 3], [4]]
    assert plan_batches([50, 5], max_tokens=10) == [[0], [1]]  # too long: a batch of its own
    with pytest.raises(ValueError):
        plan_batches([1], max_tokens=0)


def test_run_batched_restores_input_order() -> None:
    items = [f"x{i}" * (i % 7 + 1) for i in range(40)]
    seen_batches: list[list[str]] = []

    def fn(batch: list[str]) -> list[str]:
        seen_batches.append(batch)
        return [s.upper() for s in batch]

    out = run_batched(items, [len(s) for s in items], fn, max_tokens=30)
    assert out == [s.upper() for s in items]
    assert len(seen_batches) > 1 and seen_batches[0] != items[:len(seen_batches[0])]


# -- score -------------------------------------------------------------------------------------
def test_score_matches_a_manual_forward_pass(tiny: Any, gsm8k: list[dict]) -> None:
    rows = gsm8k[:6]
    prefixes = [r["question"] + "\n" for r in rows[:3]] + ["", "", "Q: "]
    conts = [r["answer"] for r in rows]
    got = tiny.score(prefixes, conts)
    for p, c, s in zip(prefixes, conts, got):
        want = manual_logprobs(tiny, p, c)
        assert len(s.logprobs) == len(want) > 10
        assert s.logprobs == pytest.approx(want, abs=2e-4)
        assert s.mean_loss == pytest.approx(-sum(want) / len(want), abs=1e-4)


def test_batched_scores_come_back_in_input_order(tiny: Any, gsm8k: list[dict]) -> None:
    texts = [r["answer"] for r in gsm8k[10:40]]
    batched = tiny.score([""] * len(texts), texts)
    for i in (0, 7, 19, 29):  # scored alone, each one is its own batch
        alone = tiny.score([""], [texts[i]])[0]
        assert batched[i].logprobs == pytest.approx(alone.logprobs, abs=2e-4)


def test_sorted_and_unsorted_batching_give_equal_scores(tiny: Any, gsm8k: list[dict]) -> None:
    texts = [r["answer"] for r in gsm8k[100:160]]
    a = tiny.score([""] * len(texts), texts, sort=True)
    b = tiny.score([""] * len(texts), texts, sort=False)
    for x, y in zip(a, b):
        assert x.logprobs == pytest.approx(y.logprobs, abs=2e-4)


def test_score_edge_cases(tiny: Any) -> None:
    assert tiny.score([], []) == []
    empty = tiny.score(["a prefix"], [""])[0]
    assert empty.logprobs == [] and math.isnan(empty.mean_loss)
    long = "Natalia sold clips to her friends. " * 200  # far past the 256-token context
    s = tiny.score([long], [long])[0]
    assert 0 < len(s.logprobs) < 256
    with pytest.raises(ValueError):
        tiny.score(["a"], ["b", "c"])


# -- generate ----------------------------------------------------------------------------------
def test_greedy_generation_matches_transformers_generate(tiny: Any) -> None:
    import torch

    prompt = "Natalia sold clips to 48 of her friends in April"
    out = tiny.generate([prompt], GenerationConfig(max_new_tokens=16, temperature=0.0))
    tok = tiny.tokenizer
    ids = tok(prompt, return_tensors="pt")
    with torch.no_grad():
        ref = tiny.model.generate(**ids, max_new_tokens=16, do_sample=False,
                                  pad_token_id=tok.eos_token_id)
    assert out == [[tok.decode(ref[0][ids["input_ids"].shape[1]:], skip_special_tokens=True)]]


def test_seeded_sampling_is_reproducible_and_independent_of_the_batch(tiny: Any) -> None:
    cfg = GenerationConfig(max_new_tokens=12, temperature=1.0, n=3, seed=7)
    a = "Weng earns $12 an hour for babysitting."
    b = "Betty is saving money for a new wallet which costs $100."
    first = tiny.generate([a, b], cfg)
    assert first == tiny.generate([a, b], cfg)
    assert tiny.generate([a], cfg)[0] == first[0]  # alone or with b: the same samples
    assert len(first) == 2 and all(len(x) == 3 for x in first)
    assert len(set(first[0])) > 1  # three draws, not one repeated
    other = tiny.generate([a, b], GenerationConfig(max_new_tokens=12, temperature=1.0, n=3,
                                                   seed=8))
    assert other != first


def test_generation_stops_and_chat_prompts(tiny: Any) -> None:
    cfg = GenerationConfig(max_new_tokens=30, temperature=0.0)
    full = tiny.generate(["How many clips did Natalia sell?"], cfg)[0][0]
    word = full.split()[1]
    cut = tiny.generate(["How many clips did Natalia sell?"],
                        GenerationConfig(max_new_tokens=30, temperature=0.0, stop=(word,)))
    assert cut[0][0] == full[:full.find(word)]
    chat = tiny.generate([[{"role": "user", "content": "How many clips?"}]], cfg)
    assert chat == tiny.generate(["How many clips?"], cfg)  # no chat template: plain text
    greedy = tiny.generate(["Weng earns"], GenerationConfig(max_new_tokens=5, n=2))
    assert greedy[0][0] == greedy[0][1]


# -- embed -------------------------------------------------------------------------------------
def test_minilm_loads_offline_with_384_dims(minilm: Any) -> None:
    import numpy as np

    assert minilm.identity.startswith("files:")
    v = minilm.embed(["A man is eating food.", "", "x" * 5000])
    assert v.shape == (3, 384) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert minilm.embed([]).shape == (0, 384)


def test_minilm_similarities_are_sensible_on_real_sentences(minilm: Any) -> None:
    sents = [
        "A man is eating food.",
        "A man is eating a piece of bread.",
        "The new movie is awesome.",
        "The new movie is so great.",
        "Natalia sold clips to 48 of her friends in April.",
    ]
    v = minilm.embed(sents)
    sim = v @ v.T
    # all-MiniLM-L6-v2 (sentence-transformers' reference numbers: 0.7553, 0.8939)
    assert sim[0, 1] == pytest.approx(0.7553, abs=0.01)
    assert sim[2, 3] == pytest.approx(0.8939, abs=0.01)
    for i, j in ((0, 2), (0, 4), (2, 4), (1, 3)):
        assert sim[i, j] < 0.3
    alone = minilm.embed([sents[3]])[0]
    assert float(alone @ v[3]) == pytest.approx(1.0, abs=1e-5)  # batch padding changes nothing
