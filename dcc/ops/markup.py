"""rewrite.strip_markup and rewrite.truncate: text clean-ups that change a field in place.

Both are `Map`s: polars expressions, fused with neighbouring row-wise steps. Two parts call
Python, on purpose and not per row: HTML entities are decoded once per *distinct* entity of
a batch (html.unescape, then one vectorized replace), and token truncation runs the
tokenizer's batch encoder (Rust) over a batch and cuts each text at its n-th token's end.
"""

from __future__ import annotations

import functools
import os
from typing import TYPE_CHECKING, Any

from dcc.errors import DccError
from dcc.ops import register
from dcc.ops.base import Map, P
from dcc.ops.quality import TOKEN
from dcc.schema import Schema

if TYPE_CHECKING:
    import polars as pl

_HIDDEN = ("script", "style", "noscript", "template")
_BLOCK = ("address", "article", "aside", "blockquote", "br", "dd", "div", "dl", "dt",
          "figcaption", "figure", "footer", "h[1-6]", "header", "hr", "li", "main", "nav", "ol",
          "p", "pre", "section", "table", "tbody", "tfoot", "thead", "tr", "ul")
ENTITY = r"&(?:[A-Za-z][A-Za-z0-9]*|#[0-9]+|#[xX][0-9A-Fa-f]+);"


def decode_entities(values: pl.Series) -> pl.Series:
    """Decode every `&name;`, `&#NNN;` and `&#xHH;` as html.unescape does; one Python call per
    distinct entity of the batch, then one vectorized replace. Unknown names stay.

    >>> import polars as pl
    >>> decode_entities(pl.Series(["a &amp; b &lt;i&gt; &#233;&#x41; &bogus;", None])).to_list()
    ['a & b <i> éA &bogus;', None]
    """
    import html

    found = values.str.extract_all(ENTITY).explode().drop_nulls().unique().to_list()
    table = {e: html.unescape(e) for e in found}
    table = {k: v for k, v in table.items() if k != v}
    if not table:
        return values
    return values.str.replace_many(list(table), list(table.values()))


@register
class RewriteStripMarkup(Map):
    """Turn HTML (or XML) in each listed field into plain text.

    In this order: (1) comments <!-- ... --> are removed; (2) script, style, noscript and
    template elements are removed with their content; (3) block-level tags (p, div, br, li,
    h1-h6, tr, table, ul, ol, blockquote, pre, section, ...) become a newline, and td/th a
    space; (4) every other tag is removed: "<" followed by a letter, "/" and a letter, "!" or
    "?", up to the next ">" (so "a < b" and "x<3" stay, but "x<y and z>w" loses its middle);
    (5) character references are decoded as html.unescape does (&amp; &lt; &nbsp; &#233;
    &#xE9; ...; only ones ending in ";", unknown names stay), after the tags are gone, so an
    escaped "&lt;b&gt;" stays as the text "<b>"; (6) whitespace: runs of spaces and tabs
    (and no-break spaces) become one space, spaces at line ends and starts go, three or more
    newlines become two, and the text is stripped. A null stays null. Markdown is left as it
    is.

    Example:  rewrite.strip_markup(fields=["text"])

    >>> import polars as pl
    >>> from dcc.ops.base import RunContext
    >>> html = "<html><head><style>p {x}</style></head><body><h1>Title</h1>" \\
    ...        "<p>Fish &amp; chips<br>are <b>good</b>.</p><!-- note --></body></html>"
    >>> df = pl.DataFrame({"t": [html, "5 < 6 &nbsp;ok", None]})
    >>> RewriteStripMarkup(fields=["t"]).run([df], RunContext("t"))["t"].to_list()
    ['Title\\n\\nFish & chips\\nare good.', '5 < 6 ok', None]
    """

    name = "rewrite.strip_markup"
    cost = 20.0
    version = 1
    params = (P("fields", "list[str]", doc="text columns to clean in place", column=True,
                col_type="str"),)

    def writes(self) -> list[str]:
        return list(self.p["fields"])

    def output_schema(self, inputs: list[Schema]) -> Schema:
        base = inputs[0] if inputs else Schema.unknown()
        return base.with_columns(**{f: "str" for f in self.p["fields"]})

    def exprs(self) -> list[pl.Expr]:
        import polars as pl

        hidden = "|".join(rf"<{t}\b[^>]*>.*?</{t}\s*>" for t in _HIDDEN)
        block = r"(?i)</?(?:" + "|".join(_BLOCK) + r")\b[^>]*>"
        return [
            pl.col(f).str.replace_all(r"(?s)<!--.*?-->", "")
            .str.replace_all(rf"(?is){hidden}", "")
            .str.replace_all(block, "\n")
            .str.replace_all(r"(?i)</?t[dh]\b[^>]*>", " ")
            .str.replace_all(r"</?[A-Za-z][^>]*>|<[!?][^>]*>", "")
            .map_batches(decode_entities, return_dtype=pl.String)
            .str.replace_all(r"[^\S\n]+", " ")
            .str.replace_all(r" ?\n ?", "\n")
            .str.replace_all(r"\n{3,}", "\n\n")
            .str.strip_chars()
            .alias(f)
            for f in self.p["fields"]
        ]


# -- rewrite.truncate -------------------------------------------------------------------------
class TokenizerNotFound(DccError):
    exit_code = 1


def tokenizer_file(ref: str) -> str:
    """The tokenizer.json a `tokenizer` reference names: the file itself or a folder that
    holds one (a Hugging Face model or tokenizer folder)."""
    path = os.path.join(ref, "tokenizer.json") if os.path.isdir(ref) else ref
    if not os.path.isfile(path):
        raise TokenizerNotFound(f"no tokenizer at {ref!r}: give a tokenizer.json file or a "
                                f"folder holding one (a Hugging Face model folder)")
    return path


@functools.lru_cache(maxsize=8)
def _load_tokenizer(path: str, stamp: tuple[int, int]) -> Any:
    from tokenizers import Tokenizer

    return Tokenizer.from_file(path)


def cut_at_tokens(values: pl.Series, path: str, n: int) -> pl.Series:
    """Each text cut after the end of its n-th token (as the tokenizer at `path` splits it,
    without special tokens); texts of at most n tokens are unchanged."""
    import polars as pl

    st = os.stat(path)
    tok = _load_tokenizer(path, (st.st_size, st.st_mtime_ns))
    texts = values.to_list()
    present = [t for t in texts if t]
    encodings = iter(tok.encode_batch(present, add_special_tokens=False))
    out = []
    for text in texts:  # one cut per row: the offsets come back as Python lists
        if not text:
            out.append(text)
            continue
        offsets = next(encodings).offsets
        out.append(text if len(offsets) <= n else text[:offsets[n - 1][1]] if n else "")
    return pl.Series(values.name, out, dtype=pl.String)


@register
class RewriteTruncate(Map):
    """Cut each listed text field to at most `max_chars` characters, `max_words` words or
    `max_tokens` tokens (give exactly one).

    max_chars: the first max_chars code points; with whole_words=true, a cut inside a token
    moves back to the end of the last whole token before it (when there is one; else the
    hard cut stays). max_words: the text up to the end of its max_words-th token (tokens as
    in select.words); whitespace before that end is kept as written. max_tokens: the text
    up to the end of the max_tokens-th token of `tokenizer` (a tokenizer.json file or a
    model folder holding one, relative to the recipe; special tokens not counted), through
    the tokenizers library's batch encoder (needs the models extra). A text within the limit
    is unchanged, trailing whitespace and all; a null stays null. The tokenizer file's
    content is part of the node key.

    Example:  rewrite.truncate(fields=["output"], max_words=512)

    >>> import polars as pl
    >>> from dcc.ops.base import RunContext
    >>> df = pl.DataFrame({"t": ["one two  three four", "short", None]})
    >>> RewriteTruncate(fields=["t"], max_words=3).run([df], RunContext("t"))["t"].to_list()
    ['one two  three', 'short', None]
    >>> op = RewriteTruncate(fields=["t"], max_chars=10, whole_words=True)
    >>> op.run([df], RunContext("t"))["t"].to_list()
    ['one two', 'short', None]
    """

    name = "rewrite.truncate"
    cost = 2.0
    version = 1
    params = (
        P("fields", "list[str]", doc="text columns to cut in place", column=True,
          col_type="str"),
        P("max_chars", "int", None, doc="most characters kept", min=0),
        P("max_words", "int", None, doc="most words (whitespace tokens) kept", min=0),
        P("max_tokens", "int", None, doc="most tokenizer tokens kept", min=0),
        P("tokenizer", "str", None, doc="tokenizer.json or a model folder (for max_tokens)",
          path=True),
        P("whole_words", "bool", False, doc="with max_chars: do not cut inside a word"),
    )

    def validate(self) -> list[tuple[str | None, str]]:
        given = [k for k in ("max_chars", "max_words", "max_tokens") if self.p[k] is not None]
        if len(given) != 1:
            return [(None, "give exactly one of max_chars, max_words, max_tokens")]
        if (self.p["max_tokens"] is None) != (self.p["tokenizer"] is None):
            return [("tokenizer", "'tokenizer' goes with max_tokens, and max_tokens needs it")]
        if self.p["whole_words"] and self.p["max_chars"] is None:
            return [("whole_words", "whole_words applies to max_chars only")]
        return []

    def model_identity(self, stat_cache: Any = None) -> str | None:
        if self.p["tokenizer"] is None:
            return None
        from dcc.cache.fingerprint import file_content

        return "tokenizer:" + file_content(tokenizer_file(self.p["tokenizer"]), stat_cache)

    def writes(self) -> list[str]:
        return list(self.p["fields"])

    def output_schema(self, inputs: list[Schema]) -> Schema:
        base = inputs[0] if inputs else Schema.unknown()
        return base.with_columns(**{f: "str" for f in self.p["fields"]})

    def _cut(self, text: pl.Expr) -> pl.Expr:
        import polars as pl

        if self.p["max_tokens"] is not None:
            path, n = tokenizer_file(self.p["tokenizer"]), self.p["max_tokens"]
            return text.map_batches(lambda s: cut_at_tokens(s, path, n),
                                    return_dtype=pl.String)
        if self.p["max_words"] is not None:
            n = self.p["max_words"]
            head = text.str.extract_all(rf"[\s\x1c-\x1f]*{TOKEN}").list.head(n).list.join("")
            return pl.when(text.str.count_matches(TOKEN) <= n).then(text).otherwise(head)
        n = self.p["max_chars"]
        cut = text.str.slice(0, n)
        if not self.p["whole_words"]:
            return cut
        split = text.str.slice(n, 1).str.contains(rf"^{TOKEN}") & \
            cut.str.contains(rf"{TOKEN}$")
        back = cut.str.replace(rf"[\s\x1c-\x1f]*{TOKEN}$", "")
        return (pl.when(split & (back.str.strip_chars() != "")).then(back)
                .otherwise(cut))

    def exprs(self) -> list[pl.Expr]:
        import polars as pl

        return [self._cut(pl.col(f)).alias(f) for f in self.p["fields"]]
