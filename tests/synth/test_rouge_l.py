"""ROUGE-L as rouge_score computes it (tokens, LCS, F-measure), and the pool's pruning."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from dcc.ops.rouge import RougePool, f_measure, lcs_length, rouge_l, tokenize


def dp_lcs(a: list[str], b: list[str]) -> int:
    """rouge_score's _lcs_table, the reference."""
    table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            table[i][j] = table[i - 1][j - 1] + 1 if a[i - 1] == b[j - 1] else \
                max(table[i - 1][j], table[i][j - 1])
    return table[-1][-1]


def reference_f(a: str, b: str) -> float:
    ta, tb = tokenize(a), tokenize(b)
    if not ta or not tb:
        return 0.0
    lcs = dp_lcs(ta, tb)
    p, r = lcs / len(tb), lcs / len(ta)
    return 0.0 if p + r == 0 else 2 * p * r / (p + r)


WORDS = st.lists(st.sampled_from(["a", "b", "c", "d", "the", "x1"]), max_size=40)


@given(WORDS, WORDS)
@settings(max_examples=300, deadline=None)
def test_bit_parallel_lcs_equals_the_table(a: list[str], b: list[str]) -> None:
    assert lcs_length(a, b) == dp_lcs(a, b)
    assert lcs_length(b, a) == dp_lcs(a, b)


def test_long_sequences_past_one_machine_word() -> None:
    rng = random.Random(3)
    for _ in range(20):
        a = [rng.choice("abcdefgh") for _ in range(rng.randint(60, 200))]
        b = [rng.choice("abcdefgh") for _ in range(rng.randint(60, 200))]
        assert lcs_length(a, b) == dp_lcs(a, b)


def test_tokens_are_rouge_scores_without_stemming() -> None:
    assert tokenize("Hello, World! It's 2024.") == ["hello", "world", "it", "s", "2024"]
    assert tokenize("Écrivez un poème") == ["crivez", "un", "po", "me"]
    assert tokenize("写一首诗") == []


def test_f_measure_known_values() -> None:
    assert rouge_l("the cat sat", "the cat sat") == 1.0
    assert rouge_l("a b c d", "a c") == 2 * 2 / 6
    assert rouge_l("", "anything") == 0.0
    assert f_measure(0, 3, 3) == 0.0


def test_pool_max_score_is_exact_above_the_threshold() -> None:
    rng = random.Random(7)
    vocab = [f"w{i}" for i in range(30)]
    texts = [" ".join(rng.choices(vocab, k=rng.randint(1, 25))) for _ in range(200)]
    pool = RougePool(texts[:150])
    for cand in texts[150:]:
        exact = max(reference_f(cand, t) for t in texts[:150])
        got = pool.max_score(cand, at_least=0.5)
        if exact >= 0.5:
            assert abs(got - exact) < 1e-12
        else:
            assert got < 0.5
        assert abs(pool.max_score(cand) - exact) < 1e-12


def test_pool_grows_and_unseen_words_match_nothing() -> None:
    pool = RougePool(["Write a poem about the sea."])
    assert pool.max_score("Quantum zebra xylophone") == 0.0
    pool.add("Quantum zebra xylophone")
    assert pool.max_score("quantum zebra xylophone!") == 1.0
    assert len(pool) == 2
