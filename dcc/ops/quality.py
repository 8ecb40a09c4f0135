"""Text-quality rules of web-scale and SFT cleaning recipes: `select.lines` (FineWeb's line
statistics), `select.gopher` (Gopher's quality rules) and `select.flagged_words` (a share of
listed words, C4's bad-words rule at max=0).

Every rule is a polars expression over the whole column (string and list kernels, no Python
per row), so each operator is a `Filter` the optimizer can fuse and reorder. The repetition
rules of Gopher, which need n-gram hashing, live in `dcc/ops/gopher.py`; the C4 line filter,
which rewrites text, in `dcc/ops/c4.py`.

Shared definitions, used the same way by every operator here:

* token: a maximal run of non-whitespace characters (Python's str.split(), whitespace being
  Unicode White_Space plus U+001C..U+001F), as in select.words;
* word: a token holding at least one letter or number (Unicode L* or N*); its length is
  counted from its first to its last letter or number, so "(word)," has length 4;
* line: a piece of the text between newlines ("\\n"; "\\r" is whitespace), with whitespace
  stripped from both ends; blank lines are not lines. A line's length is in code points.

A null field counts as "" (no tokens, no lines).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dcc.ops import register
from dcc.ops.base import Filter, MinMaxBounds, P
from dcc.ops.rules import _Scored

if TYPE_CHECKING:
    import polars as pl

_WS = r"\s\x1c-\x1f"
TOKEN = rf"[^{_WS}]+"
WORD = rf"[\p{{L}}\p{{N}}](?:[^{_WS}]*[\p{{L}}\p{{N}}])?"
# A line ending in a sentence terminal (Unicode Sentence_Terminal: . ! ? and their forms in
# other scripts, such as 。 and ।), then any closing quotes and brackets.
PUNCT_END = r"\p{Sentence_Terminal}[\"'\p{Pe}\p{Pf}]*$"
BULLETS = "•‣◦⁃▪●∙·-*–"
GOPHER_STOP_WORDS = ("the", "be", "to", "of", "and", "that", "have", "with")
DATA = Path(__file__).parent / "data" / "flagged_words"


def lines_of(field: str) -> pl.Expr:
    """The lines of `field` (stripped, blank ones dropped) as a list column; null for null
    (never fill_null("") on the column: that would quietly read a number column as text)."""
    import polars as pl

    line = pl.element().str.strip_chars()
    return pl.col(field).str.split("\n").list.eval(line.filter(line != ""))


def _share(part: pl.Expr, whole: pl.Expr) -> pl.Expr:
    """part / whole as a float, 0.0 where whole is 0 or null."""
    import polars as pl

    whole = whole.fill_null(0)
    return pl.when(whole == 0).then(pl.lit(0.0)).otherwise(part.fill_null(0) / whole)


def _count(lines: pl.Expr, cond: pl.Expr) -> pl.Expr:
    """How many elements of each list satisfy `cond` (an expression of pl.element())."""
    return lines.list.eval(cond.cast(int)).list.sum()


def _rules(p: dict[str, Any], checks: dict[str, tuple[pl.Expr, str]]) -> pl.Expr:
    """AND of the enabled bounds: checks maps a parameter name to (value, "min" | "max")."""
    import polars as pl

    cond = pl.lit(True)
    for name, (value, side) in checks.items():
        bound = p.get(name)
        if bound is not None:
            value = value.fill_null(0)  # a null text has no lines, tokens or words
            cond = cond & (value >= bound if side == "min" else value <= bound)
    return cond


def _some_rule(p: dict[str, Any], names: tuple[str, ...]) -> list[tuple[str | None, str]]:
    if all(p.get(n) is None for n in names):
        return [(None, f"every rule is off; give at least one of {', '.join(names)}")]
    return []


def _field_param() -> P:
    return P("field", "str", doc="the text column to check", column=True, col_type="str")


# -- select.lines -----------------------------------------------------------------------------
_LINE_RULES = ("min_punct_lines", "max_short_lines", "max_dup_lines", "max_dup_line_chars",
               "max_line_length", "min_mean_line_length", "max_mean_line_length",
               "max_newlines_per_word")


@register
class SelectLines(Filter):
    """Keep texts whose line statistics are within bounds; the defaults are FineWeb's quality
    filter (Penedo et al. 2024), the other rules are off until given.

    Lines are the stripped, non-blank lines of `field` (see dcc/ops/quality.py). A text
    with no line at all ("", null, only whitespace) is always dropped. Each rule, in terms of
    the text's lines; a null bound turns that rule off:

    * min_punct_lines (0.12): share of lines ending in terminal punctuation must be >= this;
      a line ends in it when its last character, after any closing quotes and brackets,
      is a Unicode Sentence_Terminal (. ! ? 。 ! ? ‼ ...; not "…" nor ":").
    * max_short_lines (0.67): share of lines of at most `short_line` (30) characters <= this.
    * max_dup_line_chars (0.01): characters in lines that repeat an earlier line (the first
      copy is not counted), divided by the characters of all lines, <= this.
    * max_dup_lines (off; Gopher uses 0.3): share of lines repeating an earlier line <= this.
    * max_line_length, min_mean_line_length, max_mean_line_length (off): bounds on the
      longest line and on the mean line length, in characters.
    * max_newlines_per_word (0.3): "\\n" characters (blank lines included) per token of the
      text <= this.

    Bounds are inclusive. FineWeb's own code divides duplicated characters by the length of
    the whole text and tests unstripped lines against its own punctuation list; here both
    follow the line definition above.

    Example:  select.lines(field="text", max_line_length=1000)

    >>> import polars as pl
    >>> from dcc.ops.base import RunContext
    >>> prose = "A first line that is long enough.\\nA second one, also long enough!"
    >>> df = pl.DataFrame({"t": [prose, "Home\\nAbout us\\nContact", "", None]})
    >>> SelectLines(field="t").run([df], RunContext("t"))["t"].to_list() == [prose]
    True
    """

    name = "select.lines"
    cost = 30.0
    version = 1
    params = (
        _field_param(),
        P("min_punct_lines", "float", 0.12, doc="least share of lines ending in . ! ? etc.",
          min=0.0, max=1.0, null=True),
        P("max_short_lines", "float", 0.67, doc="most share of short lines", min=0.0, max=1.0, null=True),
        P("short_line", "int", 30, doc="a line of at most this many characters is short",
          min=0),
        P("max_dup_line_chars", "float", 0.01, doc="most share of characters in repeated lines",
          min=0.0, max=1.0, null=True),
        P("max_dup_lines", "float", None, doc="most share of lines repeating an earlier one",
          min=0.0, max=1.0),
        P("max_line_length", "int", None, doc="longest line allowed, in characters", min=0),
        P("min_mean_line_length", "float", None, doc="least mean line length", min=0.0),
        P("max_mean_line_length", "float", None, doc="most mean line length", min=0.0),
        P("max_newlines_per_word", "float", 0.3, doc="most newlines per token", min=0.0, null=True),
    )

    def validate(self) -> list[tuple[str | None, str]]:
        return _some_rule(self.p, _LINE_RULES)

    def predicate(self) -> pl.Expr:
        import polars as pl

        field = self.p["field"]
        lines = lines_of(field)
        n = lines.list.len()
        lengths = lines.list.eval(pl.element().str.len_chars())
        chars = lengths.list.sum()
        repeat = ~pl.element().is_first_distinct()
        text = pl.col(field)
        checks = {
            "min_punct_lines": (_share(_count(lines, pl.element().str.contains(PUNCT_END)), n),
                                "min"),
            "max_short_lines": (_share(_count(
                lines, pl.element().str.len_chars() <= self.p["short_line"]), n), "max"),
            "max_dup_lines": (_share(_count(lines, repeat), n), "max"),
            "max_dup_line_chars": (_share(lines.list.eval(
                pl.when(repeat).then(pl.element().str.len_chars()).otherwise(0)).list.sum(),
                chars), "max"),
            "max_line_length": (lengths.list.max().fill_null(0), "max"),
            "min_mean_line_length": (_share(chars, n), "min"),
            "max_mean_line_length": (_share(chars, n), "max"),
            "max_newlines_per_word": (_share(text.str.count_matches("\n", literal=True),
                                             text.str.count_matches(TOKEN)), "max"),
        }
        return (n.fill_null(0) > 0) & _rules(self.p, checks)


# -- select.gopher ----------------------------------------------------------------------------
_GOPHER_RULES = ("min_words", "max_words", "min_mean_word_length", "max_mean_word_length",
                 "max_hash_ratio", "max_ellipsis_ratio", "max_bullet_lines",
                 "max_ellipsis_lines", "min_alpha_words", "min_stop_words")


@register
class SelectGopher(Filter):
    """Keep texts that pass the quality rules of Gopher's MassiveText (Rae et al. 2021,
    appendix A.1.1), with the paper's thresholds as defaults (all bounds inclusive; null
    turns a rule off). Tokens, words and lines are defined in dcc/ops/quality.py.

    * min_words (50), max_words (100000): the number of words (tokens holding a letter or
      number; a lone "-" or "|" is not a word).
    * min_mean_word_length (3), max_mean_word_length (10): mean length of the words, each
      from its first to its last letter or number ("(word)," is 4); 0 with no words.
    * max_hash_ratio (0.1): "#" characters per token; max_ellipsis_ratio (0.1): ellipses
      per token, an ellipsis being "..." or "…" ("......" is two).
    * max_bullet_lines (0.9): share of lines starting with a bullet (• ‣ ◦ ⁃ ▪ ● ∙ · - * –).
    * max_ellipsis_lines (0.3): share of lines ending in "..." or "…".
    * min_alpha_words (0.8): share of tokens holding at least one letter (Unicode L*).
    * min_stop_words (2): occurrences of the `stop_words` (default: the, be, to, of, and,
      that, have, with) among the words, compared lowercased ("The" counts, "the the" is
      two).

    A text with no tokens has every share 0 (and 0 words), so it fails min_words and
    min_alpha_words. Gopher's rules were tuned for web pages: most short SFT answers (under
    50 words) fail min_words, so lower it for such data. datatrove's GopherQualityFilter
    counts words with a tokenizer that splits off punctuation; here words come from
    whitespace, which counts "don't" and "U.S." as one word each.

    Example:  select.gopher(field="text", min_words=20)

    >>> import polars as pl
    >>> from dcc.ops.base import RunContext
    >>> good = "The cat sat on the mat and looked at the birds with care."
    >>> df = pl.DataFrame({"t": [good, "# # # ## #", "the " * 9 + "end..."]})
    >>> SelectGopher(field="t", min_words=5).run([df], RunContext("t"))["t"].to_list() == [good]
    True
    """

    name = "select.gopher"
    cost = 40.0
    version = 1
    params = (
        _field_param(),
        P("min_words", "int", 50, doc="fewest words", min=0, null=True),
        P("max_words", "int", 100000, doc="most words", min=0, null=True),
        P("min_mean_word_length", "float", 3.0, doc="least mean word length", min=0.0, null=True),
        P("max_mean_word_length", "float", 10.0, doc="most mean word length", min=0.0, null=True),
        P("max_hash_ratio", "float", 0.1, doc="most '#' per token", min=0.0, null=True),
        P("max_ellipsis_ratio", "float", 0.1, doc="most ellipses per token", min=0.0, null=True),
        P("max_bullet_lines", "float", 0.9, doc="most share of lines starting with a bullet",
          min=0.0, max=1.0, null=True),
        P("max_ellipsis_lines", "float", 0.3, doc="most share of lines ending in an ellipsis",
          min=0.0, max=1.0, null=True),
        P("min_alpha_words", "float", 0.8, doc="least share of tokens with a letter",
          min=0.0, max=1.0, null=True),
        P("min_stop_words", "int", 2, doc="fewest stop-word occurrences", min=0, null=True),
        P("stop_words", "list[str]", list(GOPHER_STOP_WORDS),
          doc="the stop words (compared lowercased)"),
    )

    def validate(self) -> list[tuple[str | None, str]]:
        return _some_rule(self.p, _GOPHER_RULES)

    def predicate(self) -> pl.Expr:
        import re

        import polars as pl

        text = pl.col(self.p["field"])
        tokens = text.str.count_matches(TOKEN)
        words = text.str.extract_all(WORD)
        n_words = words.list.len()
        word_chars = words.list.eval(pl.element().str.len_chars()).list.sum()
        lines = lines_of(self.p["field"])
        n_lines = lines.list.len()
        bullet = "^[" + "".join(re.escape(c) for c in BULLETS) + "]"
        stops = [w.lower() for w in self.p["stop_words"]]
        checks = {
            "min_words": (n_words, "min"),
            "max_words": (n_words, "max"),
            "min_mean_word_length": (_share(word_chars, n_words), "min"),
            "max_mean_word_length": (_share(word_chars, n_words), "max"),
            "max_hash_ratio": (_share(text.str.count_matches("#", literal=True), tokens),
                               "max"),
            "max_ellipsis_ratio": (_share(text.str.count_matches(r"\.\.\.|…"), tokens), "max"),
            "max_bullet_lines": (_share(_count(lines, pl.element().str.contains(bullet)),
                                        n_lines), "max"),
            "max_ellipsis_lines": (_share(_count(lines, pl.element().str.contains(r"(\.\.\.|…)$")),
                                          n_lines), "max"),
            "min_alpha_words": (_share(text.str.count_matches(rf"[^{_WS}]*\p{{L}}[^{_WS}]*"),
                                       tokens), "min"),
            "min_stop_words": (_count(words, pl.element().str.to_lowercase().is_in(stops)),
                               "min"),
        }
        return _rules(self.p, checks)


# -- select.flagged_words ---------------------------------------------------------------------
@functools.cache
def shipped_list(lang: str) -> tuple[str, ...]:
    """The entries of a shipped list (dcc/ops/data/flagged_words/<lang>.txt), lowercased."""
    text = (DATA / f"{lang}.txt").read_text(encoding="utf-8")
    return tuple(dict.fromkeys(e.strip().lower() for e in text.splitlines() if e.strip()))


def shipped_langs() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in DATA.glob("*.txt")))


_RUST_META = set("\\.+*?()|[]{}^$#&-~")


def entry_pattern(entry: str) -> str:
    r"""A regex for one entry: its characters literally, any run of whitespace where it has
    a space, and a word boundary (\b) at each end that is a word character.

    >>> entry_pattern("2 girls")
    '\\b2\\s+girls\\b'
    >>> entry_pattern("s&m")
    '\\bs\\&m\\b'
    """
    body = r"\s+".join("".join("\\" + c if c in _RUST_META else c for c in part)
                       for part in entry.split())
    first, last = entry[0], entry[-1]
    return ((r"\b" if first.isalnum() or first == "_" else "") + body
            + (r"\b" if last.isalnum() or last == "_" else ""))


@register
class SelectFlaggedWords(_Scored):
    """Keep rows whose share of flagged words in `field` is between `min` and `max`; with
    neither given, max=0: drop every text holding any listed word or phrase (C4's rule).

    The list is the union of the shipped `lists` (default ["en"]: the LDNOOBW English list
    at the commit C4 used, 377 entries, CC BY 4.0; provenance in
    dcc/ops/data/flagged_words/README.md) and the recipe's own `words`. Matching ignores
    case; an entry matches where its text appears with a word boundary at each end that is
    a letter, digit or "_" (so "ass" does not match "class" or "assume", and "s&m" matches
    in "s&m,"); a space in an entry matches any run of whitespace. Longer entries are tried
    first and matches do not overlap.

    ratio = (tokens inside the matches: "2 girls 1 cup" counts 4) / (tokens of the text),
    tokens as in select.words; "" and null have ratio 0. With keep_score=true the ratio is
    also kept in `_flagged_ratio`; keep="none" writes it and drops no row. Data-Juicer's flagged_words_filter keeps ratio <= 0.045
    by default; write max=0.045 for that. The list's words are subjective and include ones
    with innocent uses: look at what it drops before trusting it.

    Example:  select.flagged_words(field="output", max=0.01, words=["darn"])

    >>> import polars as pl
    >>> from dcc.ops.base import RunContext
    >>> df = pl.DataFrame({"t": ["a classic assumption", "what the fuck", "", None]})
    >>> SelectFlaggedWords(field="t").run([df], RunContext("t"))["t"].to_list()
    ['a classic assumption', '', None]
    """

    name = "select.flagged_words"
    cost = 60.0
    version = 1
    params = (
        _field_param(),
        P("lists", "list[str]", ["en"], doc="shipped word lists to use (by language code)"),
        P("words", "list[str]", None, doc="more entries to flag (words or phrases)"),
        P("min", "float", None, doc="lowest flagged share kept (inclusive)", min=0.0, max=1.0),
        P("max", "float", None, doc="highest flagged share kept (inclusive; 0 when neither "
          "min nor max is given)", min=0.0, max=1.0),
        P("keep_score", "bool", False, doc="also write the ratio to `_flagged_ratio`"),
        MinMaxBounds.annotate_param(),
    )
    columns = ("_flagged_ratio",)

    def validate(self) -> list[tuple[str | None, str]]:
        unknown = [x for x in self.p["lists"] if x not in shipped_langs()]
        if unknown:
            why = (f"'lists' has {unknown[0]!r}, which dcc does not ship (it ships: "
                   f"{', '.join(shipped_langs())}); add your own with words=[...]")
            return [("lists", why)]
        if not self.entries():
            return [("words", "the word list is empty; give 'lists' or 'words'")]
        if self.p["min"] is None and self.p["max"] is None and not self.annotates():
            return []  # the default: max=0 (see within)
        return super().validate()

    def within(self, value: pl.Expr) -> pl.Expr:
        if self.p["min"] is None and self.p["max"] is None and not self.annotates():
            return value <= 0.0
        return super().within(value)

    def entries(self) -> list[str]:
        out = [e for lang in self.p["lists"] for e in shipped_list(lang)]
        out += [w.strip().lower() for w in self.p["words"] or [] if w.strip()]
        return sorted(dict.fromkeys(out), key=lambda e: (-len(e), e))

    def key_params(self) -> dict[str, Any]:
        """The shipped lists' content is part of the key: editing a list file rebuilds."""
        import hashlib

        lists = {lang: hashlib.sha256("\n".join(shipped_list(lang)).encode()).hexdigest()
                 for lang in self.p["lists"]}
        return {**super().key_params(), "list_contents": lists}

    def pattern(self) -> str:
        return "(?i)(?:" + "|".join(entry_pattern(e) for e in self.entries()) + ")"

    def score(self) -> pl.Expr:
        import polars as pl

        text = pl.col(self.p["field"])
        flagged = text.str.extract_all(self.pattern()).list.join(" ").str.count_matches(TOKEN)
        return _share(flagged, text.str.count_matches(TOKEN))

