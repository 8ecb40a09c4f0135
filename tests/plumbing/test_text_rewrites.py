"""rewrite.c4_lines, rewrite.strip_markup and rewrite.truncate (dcc/ops/c4.py, markup.py):
a plain-Python C4 reference on pages built from the shared data, hand-checked HTML, and
truncation by characters, words and a real tokenizer."""

from __future__ import annotations

import html
import random
import re

import polars as pl
import pytest

from dcc.errors import ParamError
from dcc.ops.base import RunContext
from dcc.ops.c4 import POLICY, RewriteC4Lines
from dcc.ops.markup import RewriteStripMarkup, RewriteTruncate, TokenizerNotFound


def run(op, df: pl.DataFrame) -> pl.DataFrame:
    return op.run([df], RunContext(node="t"))


# -- rewrite.c4_lines ------------------------------------------------------------------------
def py_c4(text: str | None, min_words=5, min_sentences=3, max_word_length=1000):
    """(cleaned text, page kept) following TFDS c4_utils.clean_page step by step."""
    if text is None:
        return None, False
    kept, sentences = [], 0
    for line in text.splitlines():
        line = line.strip()
        if any(len(w) > max_word_length for w in line.split()):
            continue
        line = re.sub(r"\[\d*\]|\[edit\]|\[citation needed\]", "", line)
        if not line.endswith((".", "?", "!", '"')) or line.endswith("..."):
            continue
        if len(line.split()) < min_words:
            continue
        low = line.lower()
        if "lorem ipsum" in low:
            return "", False
        if "javascript" in low:
            continue
        if "{" in line:
            return "", False
        if any(p in low for p in POLICY):
            continue
        sentences += max(1, len(re.findall(r"[.!?]+[\"'”’)\]]*(?:\s+|$)", line)))
        kept.append(line)
    return "\n".join(kept), sentences >= min_sentences


NOISE = ["Please enable JavaScript to see the comments below.", "Home | News | Contact",
         "We use cookies. Read our privacy policy for more details.", "Read more...",
         "Lorem ipsum dolor sit amet, consectetur adipiscing elit.", "var x = {a: 1};",
         "The reference count is growing every single day.[12]", "x" * 1001 + " is long.",
         "Short one.", "\u2028A line after a line separator, ending well."]


@pytest.fixture
def pages(gsm8k: pl.DataFrame) -> pl.DataFrame:
    """400 pages: GSM8K questions and answers as prose lines, with boilerplate mixed in."""
    rng = random.Random(5)
    out = []
    for q, a in zip(gsm8k["question"].head(400), gsm8k["answer"].head(400)):
        lines = [q, *a.split("\n")]
        for _ in range(rng.randint(0, 2)):
            lines.insert(rng.randint(0, len(lines)), rng.choice(NOISE))
        out.append(("\r\n" if rng.random() < 0.2 else "\n").join(lines))
    return pl.DataFrame({"text": out, "i": list(range(len(out)))})


@pytest.mark.parametrize("params", [{}, {"min_words": 3, "min_sentences": 5},
                                    {"max_word_length": 20, "min_sentences": 1}])
def test_c4_matches_reference(pages: pl.DataFrame, params: dict) -> None:
    ref = [py_c4(t, **params) for t in pages["text"]]
    got = run(RewriteC4Lines(field="text", **params), pages)
    assert got["text"].to_list() == [t for t, keep in ref if keep]
    assert got["i"].to_list() == [i for i, (_, keep) in enumerate(ref) if keep]
    assert 0 < got.height < pages.height
    rewritten = run(RewriteC4Lines(field="text", drop_pages=False, **params), pages)
    assert rewritten["text"].to_list() == [t for t, _ in ref_lines(pages, params)]


def ref_lines(pages: pl.DataFrame, params: dict) -> list[tuple[str, bool]]:
    """Without page rules: every line step, lorem ipsum and "{" lines kept."""
    out = []
    for text in pages["text"]:
        safe = text.replace("Lorem ipsum", "Lorem_ipsum").replace("{", "\x00")
        cleaned, _ = py_c4(safe, **params)
        out.append((cleaned.replace("Lorem_ipsum", "Lorem ipsum").replace("\x00", "{"), True))
    return out


def test_c4_by_hand_and_nulls() -> None:
    page = ("Home | About\nThis page is about cats and dogs.\n"
            "Please enable JavaScript to view this site properly.\n"
            "Cats sleep a lot. Dogs like to walk![1]")
    df = pl.DataFrame({"text": [page, "", None]})
    out = run(RewriteC4Lines(field="text"), df)
    assert out["text"].to_list() == [
        "This page is about cats and dogs.\nCats sleep a lot. Dogs like to walk!"]
    kept = run(RewriteC4Lines(field="text", drop_pages=False), df)["text"].to_list()
    assert kept[1:] == ["", None]
    assert RewriteC4Lines(field="text", drop_pages=False).kind == "map"
    assert RewriteC4Lines(field="text").kind == "dataset"


# -- rewrite.strip_markup --------------------------------------------------------------------
def test_strip_markup_by_hand() -> None:
    page = """<!DOCTYPE html><html><head><title>T</title><script>var a = "<p>";</script>
<style>p { color: red }</style></head><body>
<h1>Fish &amp; Chips</h1><p>Cod, <em>haddock</em> &amp; plaice&nbsp;are sold here.</p>
<ul><li>One &lt;b&gt;</li><li>Two &#8364;5 &#x263A;</li></ul><!-- hidden
comment --><table><tr><td>a</td><td>b</td></tr></table><p>5 < 6 and x<3</p></body></html>"""
    out = run(RewriteStripMarkup(fields=["t"]), pl.DataFrame({"t": [page, None, ""]}))
    assert out["t"].to_list() == [
        "T\n\nFish & Chips\n\nCod, haddock & plaice are sold here.\n\nOne <b>\n\nTwo €5 ☺\n\n"
        "a b\n\n5 < 6 and x<3", None, ""]


def test_strip_markup_decodes_entities_like_html_unescape(user_tasks: pl.DataFrame) -> None:
    texts = user_tasks["instruction"].head(100)
    escaped = pl.Series([html.escape(t) for t in texts])  # &amp; &lt; &gt; &quot; &#x27;
    out = run(RewriteStripMarkup(fields=["t"]), pl.DataFrame({"t": escaped}))["t"]
    tidy = [re.sub(r"\n{3,}", "\n\n", re.sub(r" ?\n ?", "\n", re.sub(r"[^\S\n]+", " ", t)))
            .strip() for t in texts]
    assert out.to_list() == tidy


# -- rewrite.truncate ------------------------------------------------------------------------
def test_truncate_chars_and_words_on_gsm8k(gsm8k: pl.DataFrame) -> None:
    df = gsm8k.head(300).select("answer")
    chars = run(RewriteTruncate(fields=["answer"], max_chars=50), df)["answer"]
    assert chars.to_list() == [a[:50] for a in df["answer"]]
    words = run(RewriteTruncate(fields=["answer"], max_words=12), df)["answer"]
    for a, w in zip(df["answer"], words):
        if len(a.split()) <= 12:
            assert w == a
        else:
            assert w.split() == a.split()[:12] and a.startswith(w) and not w[-1].isspace()
    whole = run(RewriteTruncate(fields=["answer"], max_chars=40, whole_words=True), df)
    for a, w in zip(df["answer"], whole["answer"]):
        assert a.startswith(w) and len(w) <= 40
        # no token is split: the text fits, or the cut falls next to whitespace
        assert len(a) <= 40 or w[-1].isspace() or a[len(w)].isspace()


def test_truncate_edge_cases() -> None:
    df = pl.DataFrame({"t": ["supercalifragilistic word", "  a  b  ", "", None]})
    assert run(RewriteTruncate(fields=["t"], max_chars=5, whole_words=True), df)["t"].to_list() \
        == ["super", "  a  ", "", None]
    assert run(RewriteTruncate(fields=["t"], max_words=1), df)["t"].to_list() == [
        "supercalifragilistic", "  a", "", None]
    assert run(RewriteTruncate(fields=["t"], max_words=0), df)["t"].to_list() == [
        "", "", "", None]
    with pytest.raises(ParamError, match="exactly one of max_chars, max_words, max_tokens"):
        RewriteTruncate(fields=["t"], max_chars=3, max_words=3)
    with pytest.raises(ParamError, match="'tokenizer' goes with max_tokens"):
        RewriteTruncate(fields=["t"], max_tokens=3)
    with pytest.raises(ParamError, match="whole_words applies to max_chars only"):
        RewriteTruncate(fields=["t"], max_words=3, whole_words=True)


@pytest.fixture
def tokenizer_dir(tmp_path, gsm8k: pl.DataFrame):
    """A word-piece tokenizer trained on GSM8K questions, saved as tokenizer.json."""
    tokenizers = pytest.importorskip("tokenizers")
    tok = tokenizers.Tokenizer(tokenizers.models.WordPiece(unk_token="[UNK]"))
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Whitespace()
    trainer = tokenizers.trainers.WordPieceTrainer(vocab_size=300, special_tokens=["[UNK]"])
    tok.train_from_iterator(gsm8k["question"].head(500).to_list(), trainer)
    tok.save(str(tmp_path / "tokenizer.json"))
    return tmp_path


def test_truncate_tokens(tokenizer_dir, gsm8k: pl.DataFrame) -> None:
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
    df = gsm8k.head(200).select("question")
    op = RewriteTruncate(fields=["question"], max_tokens=20, tokenizer=str(tokenizer_dir))
    out = run(op, df)["question"]
    for q, cut in zip(df["question"], out):
        enc = tok.encode(q, add_special_tokens=False)
        assert cut == (q if len(enc.ids) <= 20 else q[:enc.offsets[19][1]])
        assert len(tok.encode(cut, add_special_tokens=False).ids) <= 20
    assert op.model_identity().startswith("tokenizer:")
    with pytest.raises(TokenizerNotFound, match="no tokenizer at"):
        RewriteTruncate(fields=["q"], max_tokens=2, tokenizer="/nope").model_identity()
