"""rewrite.*: improve rows in place, one polars expression per rewritten column.

Mojibake repair (`fix_mojibake=true`) is the one step that is not a polars expression: it
needs ftfy's tables of how UTF-8 text is garbled by Windows-1252 and Latin-1 decoders, so it
runs as a Python function over each batch of values (only on values with non-ASCII
characters, since mojibake is always non-ASCII). It is off by default, which keeps the
default pipeline fully vectorized and its output unchanged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dcc.ops import register
from dcc.ops.base import Map, P
from dcc.schema import Schema

if TYPE_CHECKING:
    import polars as pl

# Control (Cc) and format (Cf) characters except tab and newline; a Rust-regex class
# difference, so the whole step is one vectorized replace.
_CONTROL = r"[\p{Cc}\p{Cf}--[\t\n]]"
# A run of spaces and tabs that is not already one space: a tab and what follows it, or a
# space and at least one more. Same result as replacing every `[ \t]+` by " ", but a single
# space (most of them) is not matched and rewritten: 10x faster on ordinary text.
_BLANKS = r"\t[ \t]*| [ \t]+"


@register
class RewriteNormalize(Map):
    """Normalize Unicode and whitespace in each listed text field, keeping line structure.

    In this order: (1) Unicode NFKC (full-width letters, ligatures and compatibility spaces
    become plain ones); (2) control and format characters (Unicode categories Cc and Cf: \\r,
    NUL, zero-width space U+200B, BOM U+FEFF, soft hyphen, ...) are dropped, except newline
    and tab; (3) every run of spaces (U+0020) and tabs becomes one space, so indentation
    shrinks too (do not normalize code); (4) spaces at the end of a line are removed;
    (5) three or more newlines in a row become two (one blank line at most); (6) the text is
    stripped of leading and trailing whitespace (Python's str.strip()). So "\\r\\n" becomes
    "\\n". A null stays null; a field that is not a string column is an error.

    With `fix_mojibake=true`, step (0) comes first: text that was UTF-8 but got decoded as
    Windows-1252 or Latin-1 somewhere upstream ("donâ€™t", "cafÃ©") is repaired with ftfy's
    `fix_encoding` ("don’t", "café"). Only the encoding is repaired: curly quotes stay curly
    and text that is not mojibake is left as it was. Off by default: it runs Python on every
    value with a non-ASCII character (measured on 75k GSM8K rows: 1.5x the step's time when
    the text is ASCII, 10x when every value has an accent), and can misread rare legitimate
    sequences such as "Ã©" written on purpose.

    Example:  rewrite.normalize(fields=["instruction", "output"], fix_mojibake=true)

    >>> import polars as pl
    >>> from dcc.ops.base import RunContext
    >>> df = pl.DataFrame({"t": ["  Ｈｅｌｌｏ\\u200b\\t\\tworld \\r\\n\\n\\n\\nbye  ", None]})
    >>> RewriteNormalize(fields=["t"]).run([df], RunContext("t"))["t"].to_list()
    ['Hello world\\n\\nbye', None]
    >>> df = pl.DataFrame({"t": ["donâ€™t   pay the cafÃ©"]})
    >>> RewriteNormalize(fields=["t"], fix_mojibake=True).run([df], RunContext("t"))["t"][0]
    'don’t pay the café'
    """

    name = "rewrite.normalize"
    cost = 6.0  # relative per-row cost, measured on the 1M-row bench set
    version = 1
    params = (
        P("fields", "list[str]", doc="text columns to normalize in place", column=True,
          col_type="str"),
        P("fix_mojibake", "bool", False, doc="first repair text garbled by a wrong decoding "
          "('donâ€™t' -> 'don’t'), with ftfy"),
    )

    def validate(self) -> list[tuple[str | None, str]]:
        if self.p["fix_mojibake"]:
            import importlib.util

            if importlib.util.find_spec("ftfy") is None:
                return [("fix_mojibake", "fix_mojibake=true needs ftfy: pip install ftfy")]
        return []

    def writes(self) -> list[str]:
        return list(self.p["fields"])

    def output_schema(self, inputs: list[Schema]) -> Schema:
        base = inputs[0] if inputs else Schema.unknown()
        return base.with_columns(**{f: "str" for f in self.p["fields"]})

    def exprs(self) -> list[pl.Expr]:
        import polars as pl

        return [
            _nfkc(_unmojibake(pl.col(f), self.p["fix_mojibake"]))
            .str.replace_all(_CONTROL, "")
            .str.replace_all(_BLANKS, " ")
            .str.replace_all(" \n", "\n", literal=True)
            .str.replace_all(r"\n{3,}", "\n\n")
            .str.strip_chars()
            .alias(f)
            for f in self.p["fields"]
        ]


def _nfkc(col: pl.Expr) -> pl.Expr:
    """Unicode NFKC of `col`, computed only for values with a non-ASCII character: ASCII text
    is already in NFKC, and polars' NFKC costs as much on it as on any other (10x the rest of
    this step on the benchmark's English text). Vectorized: one mask and one gather per batch."""
    import polars as pl

    return col.map_batches(_nfkc_batch, return_dtype=pl.String, is_elementwise=True)


def _nfkc_batch(values: pl.Series) -> pl.Series:
    rows = values.str.contains(r"[^\x00-\x7F]").fill_null(False).arg_true()
    if rows.len() == 0:
        return values
    return values.clone().scatter(rows, values.gather(rows).str.normalize("NFKC"))


def _unmojibake(col: pl.Expr, on: bool) -> pl.Expr:
    """`col` with mojibake repaired when `on` (see the module doc), else `col` itself."""
    import polars as pl

    if not on:
        return col
    return col.map_batches(_fix_batch, return_dtype=pl.String, is_elementwise=True)


def _fix_batch(values: pl.Series) -> pl.Series:
    import polars as pl
    from ftfy import fix_encoding

    fixed = [v if v is None or v.isascii() else fix_encoding(v) for v in values.to_list()]
    return pl.Series(values.name, fixed, dtype=pl.String)
