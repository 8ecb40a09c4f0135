"""select.gopher_repetition (dcc/ops/gopher.py): the vectorized n-gram coverage against a
plain-Python reference of the documented definitions (shared data and random texts), and
the line and paragraph rules by hand."""

from __future__ import annotations

from collections import Counter

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dcc.errors import ParamError
from dcc.ops.base import RunContext
from dcc.ops.gopher import SelectGopherRepetition, ngram_fractions


def py_fractions(text: str | None, n: int) -> tuple[float, float]:
    """(top, dup) for one text, straight from the definitions in SelectGopherRepetition."""
    toks = (text or "").split()
    total = sum(map(len, toks))
    grams = [tuple(toks[i:i + n]) for i in range(len(toks) - n + 1)]
    counts = Counter(grams)
    if not total or not grams:
        return 0.0, 0.0

    def cover(chosen) -> float:
        hit = set()
        for i, g in enumerate(grams):
            if g in chosen:
                hit.update(range(i, i + n))
        return sum(len(toks[j]) for j in hit) / total

    dup = cover({g for g, c in counts.items() if c >= 2})
    repeated = [(c, sum(map(len, g)), g) for g, c in counts.items() if c >= 2]
    if not repeated:
        return 0.0, dup
    best = max(c for c, _, _ in repeated)
    most = max(chars for c, chars, _ in repeated if c == best)
    tops = {g for c, chars, g in repeated if c == best and chars == most}
    first = next(g for g in grams if g in tops)  # ties: the n-gram that occurs first
    return cover({first}), dup


def test_fractions_match_reference_on_gsm8k(gsm8k) -> None:
    texts = gsm8k["answer"].head(1500)
    got = ngram_fractions(texts, [2, 3, 4], [5, 7, 10])
    for n in (2, 3, 4, 5, 7, 10):
        for i, text in enumerate(texts.to_list()):
            top, dup = py_fractions(text, n)
            if n <= 4:
                assert got[("top", n)][i] == pytest.approx(top), (n, text)
            else:
                assert got[("dup", n)][i] == pytest.approx(dup), (n, text)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.one_of(st.none(), st.lists(st.sampled_from(["a", "bb", "a", "ccc", "é",
                                                               "dd"]), max_size=30)
                          .map(" ".join)), min_size=1, max_size=12),
       st.integers(1, 6))
def test_fractions_match_reference_on_random_texts(texts, n) -> None:
    got = ngram_fractions(pl.Series(texts, dtype=pl.String), [n], [n])
    for i, text in enumerate(texts):
        top, dup = py_fractions(text, n)
        assert got[("top", n)][i] == pytest.approx(top)
        assert got[("dup", n)][i] == pytest.approx(dup)


def test_chunking_gives_the_same_fractions(monkeypatch) -> None:
    from dcc.ops import gopher

    texts = pl.Series(["x y x y z w z w q"] * 50 + ["a b c a b c"] * 50)
    whole = ngram_fractions(texts, [2], [3])
    monkeypatch.setattr(gopher, "_CHUNK_TOKENS", 7)  # many small chunks
    parts = ngram_fractions(texts, [2], [3])
    for key in whole:
        assert whole[key].tolist() == parts[key].tolist()


def run(op, df: pl.DataFrame) -> list:
    return op.run([df], RunContext(node="t"))["t"].to_list()


def _only(**rules) -> SelectGopherRepetition:
    off = dict.fromkeys(("max_dup_lines", "max_dup_paragraphs", "max_dup_line_chars",
                         "max_dup_paragraph_chars", "max_top_ngram", "max_dup_ngram"))
    return SelectGopherRepetition(field="t", **{**off, **rules})


def test_lines_and_paragraphs_by_hand() -> None:
    lines = "Buy now!\nBuy now!\nBuy now!\nGreat deals on shoes today."
    # paragraphs "A b c." | "Second one." | "A b c." (the middle blank line holds spaces);
    # 1 of 3 paragraphs and 6 of 23 paragraph characters repeat
    paras = "A b c.\n\nSecond one.\n  \nA b c."
    df = pl.DataFrame({"t": [lines, paras, "", None]})
    # lines: 2 of 4 repeat (0.5); 16 of 51 characters (0.314)
    assert run(_only(max_dup_lines=0.5), df) == [lines, paras, "", None]
    assert run(_only(max_dup_lines=0.49), df) == [paras, "", None]  # paras: 1 of 3 lines
    assert run(_only(max_dup_line_chars=0.32), df) == [lines, paras, "", None]
    assert run(_only(max_dup_line_chars=0.31), df) == [paras, "", None]
    assert run(_only(max_dup_paragraphs=0.34), df) == [lines, paras, "", None]
    assert run(_only(max_dup_paragraphs=0.33), df) == [lines, "", None]
    assert run(_only(max_dup_paragraph_chars=0.27), df) == [lines, paras, "", None]
    assert run(_only(max_dup_paragraph_chars=0.26), df) == [lines, "", None]
    assert run(SelectGopherRepetition(field="t"), df) == ["", None]  # the paper's defaults


def test_ngram_rules_by_hand() -> None:
    loop = " ".join(["the cat sat on the mat"] * 4)
    fresh = ("A quick brown fox jumps over the lazy dog while seven wizards quietly judge "
             "boxing matches near the old river bank")
    df = pl.DataFrame({"t": [loop, fresh]})
    lines_off = {"max_dup_lines": None, "max_dup_paragraphs": None, "max_dup_line_chars": None,
                 "max_dup_paragraph_chars": None}
    assert run(SelectGopherRepetition(field="t", **lines_off), df) == [fresh]
    assert run(SelectGopherRepetition(field="t", max_dup_ngram=None, max_top_ngram=[1, 1, 1],
                                      **lines_off), df) == [loop, fresh]


def test_params() -> None:
    with pytest.raises(ParamError, match="'max_top_ngram' takes at most 3 values"):
        SelectGopherRepetition(field="t", max_top_ngram=[0.1] * 4)
    with pytest.raises(ParamError, match="values must be between 0 and 1"):
        SelectGopherRepetition(field="t", max_dup_ngram=[2])
    with pytest.raises(ParamError, match="every rule is off"):
        SelectGopherRepetition(field="t", max_dup_lines=None, max_dup_paragraphs=None,
                               max_dup_line_chars=None, max_dup_paragraph_chars=None,
                               max_top_ngram=None, max_dup_ngram=None)
    from dcc.ops.rules import ColumnTypeError

    with pytest.raises((ColumnTypeError, pl.exceptions.PolarsError)):
        SelectGopherRepetition(field="t").run([pl.DataFrame({"t": [1, 2]})], RunContext("t"))
