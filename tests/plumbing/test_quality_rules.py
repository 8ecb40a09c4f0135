"""select.lines, select.gopher and select.flagged_words (dcc/ops/quality.py): every rule
cross-checked on the whole shared GSM8K file against a plain-Python reference written from
the documented definitions, plus hand-checked rows and edge cases."""

from __future__ import annotations

import re

import polars as pl
import pytest

from dcc.errors import ParamError
from dcc.ops.base import RunContext
from dcc.ops.quality import (
    SelectFlaggedWords,
    SelectGopher,
    SelectLines,
    shipped_list,
)


def run(op, df: pl.DataFrame) -> pl.DataFrame:
    return op.run([df], RunContext(node="t"))


def kept(op, df: pl.DataFrame, field: str) -> list[str]:
    return run(op, df)[field].to_list()


# -- plain-Python references, one line per documented definition -------------------------------
def py_lines(text: str | None) -> list[str]:
    return [s.strip() for s in (text or "").split("\n") if s.strip()]


def py_tokens(text: str | None) -> list[str]:
    return (text or "").split()


def py_word(token: str) -> str | None:
    """The token from its first to its last letter or number (None: not a word)."""
    idx = [i for i, c in enumerate(token) if c.isalpha() or c.isnumeric()]
    return token[idx[0]:idx[-1] + 1] if idx else None


def share(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def py_punct_end(line: str) -> bool:  # ASCII and CJK terminals: enough for the shared data
    return line.rstrip("\"')]}»”’").endswith((".", "!", "?", "。", "！", "？"))


def py_lines_keep(text: str | None, p: dict) -> bool:
    lines = py_lines(text)
    if not lines:
        return False
    n, lens = len(lines), [len(x) for x in lines]
    seen: set[str] = set()
    rep = []
    for x in lines:
        rep.append(x in seen)
        seen.add(x)
    checks = {
        "min_punct_lines": (share(sum(map(py_punct_end, lines)), n), "min"),
        "max_short_lines": (share(sum(x <= p.get("short_line", 30) for x in lens), n), "max"),
        "max_dup_lines": (share(sum(rep), n), "max"),
        "max_dup_line_chars": (share(sum(ln for ln, r in zip(lens, rep) if r), sum(lens)),
                               "max"),
        "max_line_length": (max(lens), "max"),
        "min_mean_line_length": (sum(lens) / n, "min"),
        "max_mean_line_length": (sum(lens) / n, "max"),
        "max_newlines_per_word": (share((text or "").count("\n"), len(py_tokens(text))), "max"),
    }
    return all(p.get(k) is None or (v >= p[k] if side == "min" else v <= p[k])
               for k, (v, side) in checks.items())


FINEWEB = {"min_punct_lines": 0.12, "max_short_lines": 0.67, "max_dup_line_chars": 0.01,
           "max_newlines_per_word": 0.3}


def py_gopher_keep(text: str | None, p: dict) -> bool:
    toks = py_tokens(text)
    words = [w for w in map(py_word, toks) if w is not None]
    lines = py_lines(text)
    mean = share(sum(map(len, words)), len(words))
    t = text or ""
    stops = set(p.get("stop_words", ["the", "be", "to", "of", "and", "that", "have", "with"]))
    checks = {
        "min_words": (len(words), "min"), "max_words": (len(words), "max"),
        "min_mean_word_length": (mean, "min"), "max_mean_word_length": (mean, "max"),
        "max_hash_ratio": (share(t.count("#"), len(toks)), "max"),
        "max_ellipsis_ratio": (share(len(re.findall(r"\.\.\.|…", t)), len(toks)), "max"),
        "max_bullet_lines": (share(sum(x[0] in "•‣◦⁃▪●∙·-*–" for x in lines), len(lines)),
                             "max"),
        "max_ellipsis_lines": (share(sum(x.endswith(("...", "…")) for x in lines), len(lines)),
                               "max"),
        "min_alpha_words": (share(sum(any(c.isalpha() for c in w) for w in toks), len(toks)),
                            "min"),
        "min_stop_words": (sum(w.lower() in stops for w in words), "min"),
    }
    return all(p.get(k) is None or (v >= p[k] if side == "min" else v <= p[k])
               for k, (v, side) in checks.items())


GOPHER = {"min_words": 50, "max_words": 100000, "min_mean_word_length": 3,
          "max_mean_word_length": 10, "max_hash_ratio": 0.1, "max_ellipsis_ratio": 0.1,
          "max_bullet_lines": 0.9, "max_ellipsis_lines": 0.3, "min_alpha_words": 0.8,
          "min_stop_words": 2}


# -- select.lines ----------------------------------------------------------------------------
@pytest.mark.parametrize("params", [
    {},  # FineWeb's defaults
    {"max_short_lines": None, "max_dup_lines": 0.0, "max_line_length": 120},
    {"min_punct_lines": 0.5, "short_line": 45, "min_mean_line_length": 40.0,
     "max_mean_line_length": 90.0, "max_newlines_per_word": None},
])
def test_lines_matches_reference_on_gsm8k(gsm8k: pl.DataFrame, params: dict) -> None:
    ref = {**FINEWEB, **params}
    want = [a for a in gsm8k["answer"] if py_lines_keep(a, ref)]
    got = kept(SelectLines(field="answer", **params), gsm8k, "answer")
    assert got == want
    assert 0 < len(got) < gsm8k.height  # the rules bite on real data


def test_lines_by_hand() -> None:
    prose = "A first line that is long enough.\nA second one, also long enough!"
    menu = "Home\nAbout us\nContact"
    quoted = "He said: \u201cIt is over.\u201d\nThe end came (as everyone knew it would.)"
    cjk = "这是一个很长的句子，用来测试中文的句号是否被识别。\n第二行也以句号结束，并且足够长足够长。"
    df = pl.DataFrame({"t": [prose, menu, quoted, cjk, "", "   \n  ", None]})
    assert kept(SelectLines(field="t"), df, "t") == [prose, quoted]
    # Chinese lines are short in characters and hold one whitespace token each: FineWeb's
    # length rules do not fit them, its punctuation rule does
    punct_only = SelectLines(field="t", max_short_lines=None, max_newlines_per_word=None,
                             max_dup_line_chars=None, min_punct_lines=1.0)
    assert kept(punct_only, df, "t") == [prose, quoted, cjk]
    dup = pl.DataFrame({"t": ["Same line, long enough to count.\n" * 3 + "Other line here."]})
    assert kept(SelectLines(field="t"), dup, "t") == []  # 64/112 characters are repeats
    assert len(kept(SelectLines(field="t", max_dup_line_chars=0.6), dup, "t")) == 1


def test_lines_needs_a_rule_and_a_text_column() -> None:
    off = {k: None for k in ("min_punct_lines", "max_short_lines", "max_dup_line_chars",
                             "max_newlines_per_word")}
    with pytest.raises(ParamError, match="every rule is off"):
        SelectLines(field="t", **off)
    with pytest.raises(pl.exceptions.PolarsError):
        run(SelectLines(field="n"), pl.DataFrame({"n": [1, 2]}))


# -- select.gopher ---------------------------------------------------------------------------
@pytest.mark.parametrize("params", [
    {"min_words": 10},
    {"min_words": 30, "min_alpha_words": 0.6, "max_hash_ratio": 0.05, "stop_words": ["he"]},
    {"min_words": 0, "min_alpha_words": None, "min_stop_words": 5, "max_mean_word_length": 5},
])
def test_gopher_matches_reference_on_gsm8k(gsm8k: pl.DataFrame, params: dict) -> None:
    df = gsm8k.head(2500).select((pl.col("question") + "\n" + pl.col("answer")).alias("t"))
    ref = {**GOPHER, **params}
    want = [t for t in df["t"] if py_gopher_keep(t, ref)]
    got = kept(SelectGopher(field="t", **params), df, "t")
    assert got == want
    assert 0 < len(got) < df.height


WEB_PAGE = (
    "The history of the lighthouse is a story of trade and of the people who kept the "
    "lamps burning through long winter nights. Keepers lived with their families on "
    "remote rocks, and many of them kept careful logs of the weather, the ships that "
    "passed and the repairs that had to be made to the tower and the lens.")


def test_gopher_by_hand() -> None:
    bullets = "\n".join(f"- item number {i} of the list with the words" for i in range(20))
    teaser = "\n".join(["Read the rest of the story about the keepers and the sea..."] * 3
                       + [WEB_PAGE])
    tags = WEB_PAGE + " #news #sea #light #ships #history #keepers #lamps"
    df = pl.DataFrame({"t": [WEB_PAGE, bullets, teaser, tags, "", None]})
    assert kept(SelectGopher(field="t"), df, "t") == [WEB_PAGE]
    # each rule alone, by hand: 20 of 20 lines are bullets; 3 of 4 lines end in "..."; 7 "#"
    # per 62 tokens is 0.11
    assert kept(SelectGopher(field="t", max_bullet_lines=None), df, "t") == [WEB_PAGE, bullets]
    assert kept(SelectGopher(field="t", max_ellipsis_lines=0.75), df, "t") == [WEB_PAGE, teaser]
    assert kept(SelectGopher(field="t", max_hash_ratio=0.12), df, "t") == [WEB_PAGE, tags]


def test_gopher_words_and_stop_words() -> None:
    # "(word)," is one word of length 4; "-" and "|" are tokens but not words
    text = "(word), the | - and"
    df = pl.DataFrame({"t": [text]})
    only = {k: None for k in GOPHER}
    assert kept(SelectGopher(field="t", **{**only, "min_words": 3}), df, "t") == [text]
    assert kept(SelectGopher(field="t", **{**only, "min_words": 4}), df, "t") == []
    assert kept(SelectGopher(field="t", **{**only, "min_mean_word_length": 3.3}), df, "t") \
        == [text]  # (4 + 3 + 3) / 3
    assert kept(SelectGopher(field="t", **{**only, "min_mean_word_length": 3.4}), df, "t") == []
    assert kept(SelectGopher(field="t", **{**only, "min_alpha_words": 0.6}), df, "t") == [text]
    assert kept(SelectGopher(field="t", **{**only, "min_alpha_words": 0.61}), df, "t") == []
    upper = pl.DataFrame({"t": ["The Cat AND the dog"]})
    assert kept(SelectGopher(field="t", **{**only, "min_stop_words": 3}), upper, "t") != []


# -- select.flagged_words --------------------------------------------------------------------
def test_flagged_words_on_gsm8k_by_hand(gsm8k: pl.DataFrame) -> None:
    op = SelectFlaggedWords(field="question", min=0.0001, keep_score=True)
    hits = run(op, gsm8k)
    assert hits.height == 6  # all innocent uses, as the README warns: suck, Coons, Lolita...
    vampire = hits.filter(pl.col("question").str.starts_with("A vampire"))
    # "suck", "sucks", "suck" among its 34 tokens
    assert vampire["_flagged_ratio"].to_list() == [pytest.approx(3 / 34)]
    assert run(SelectFlaggedWords(field="question"), gsm8k).height == gsm8k.height - 6


def test_flagged_words_matching_rules() -> None:
    df = pl.DataFrame({"t": ["a classic assumption", "What the FUCK", "2  girls\n1 cup here",
                             "bad s&m, x", "middle 🖕 finger", "darn it", "", None]})
    out = run(SelectFlaggedWords(field="t", max=1.0, keep_score=True, words=["Darn"]), df)
    assert out["_flagged_ratio"].to_list() == pytest.approx(
        [0.0, 1 / 3, 4 / 5, 1 / 3, 1 / 3, 1 / 2, 0.0, 0.0])
    assert kept(SelectFlaggedWords(field="t"), df, "t") == [
        "a classic assumption", "darn it", "", None]
    assert kept(SelectFlaggedWords(field="t", lists=[], words=["darn"]), df, "t") == [
        "a classic assumption", "What the FUCK", "2  girls\n1 cup here", "bad s&m, x",
        "middle 🖕 finger", "", None]


def test_flagged_words_list_and_params() -> None:
    entries = shipped_list("en")
    assert len(entries) == 377 and "2 girls 1 cup" in entries and "🖕" in entries
    with pytest.raises(ParamError, match="'lists' has 'xx', which dcc does not ship"):
        SelectFlaggedWords(field="t", lists=["xx"])
    with pytest.raises(ParamError, match="the word list is empty"):
        SelectFlaggedWords(field="t", lists=[])
    key = SelectFlaggedWords(field="t").key_params()
    assert set(key["list_contents"]) == {"en"}
