"""select.*: keep a subset of the rows, never changing a kept row.

Text filters (`length`, `words`, `regex`) share one null rule: a null field counts as the
empty string (length 0, no words, the pattern is tried against ""). A field that is not a
string column is an error at run time (polars raises; the engine names the node), and at
compile time when the schema knows the column's type.

Every filter here is a polars expression, so the engine can fuse and push them; `dedup` and
`sample` need the whole dataset and are barriers.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import TYPE_CHECKING

from dcc.ops import register
from dcc.ops.base import DatasetOp, Filter, P, RunContext

if TYPE_CHECKING:
    import polars as pl

# Python's str.split() whitespace: Unicode White_Space plus the separators U+001C..U+001F.
WORD = r"[^\s\x1c-\x1f]+"


class _Bounded(Filter):
    """A filter on a count per row (`measure()`), kept when min <= count <= max."""

    def validate(self) -> list[tuple[str | None, str]]:
        lo, hi = self.p["min"], self.p["max"]
        if lo is None and hi is None:
            return [(None, "give 'min', 'max' or both (with neither every row is kept)")]
        if lo is not None and hi is not None and lo > hi:
            return [("max", f"'max' must be >= 'min' (got min={lo}, max={hi})")]
        return []

    def measure(self) -> pl.Expr:
        raise NotImplementedError

    def predicate(self) -> pl.Expr:
        import polars as pl

        value, lo, hi = self.measure(), self.p["min"], self.p["max"]
        cond = pl.lit(True)
        if lo is not None:
            cond = cond & (value >= lo)
        if hi is not None:
            cond = cond & (value <= hi)
        return cond


# Constructs Python's `re` accepts but the Rust regex engine (polars) does not.
_RUST_UNSUPPORTED = ("(?=", "(?!", "(?<=", "(?<!", "(?>", "(?(", "(?P=", "\\Z", "*+", "++",
                     "?+", "}+")


def _plainly_valid(pattern: str) -> bool:
    """True when a pattern compiles under Python's `re` and uses nothing the Rust engine lacks;
    anything else is checked by polars itself, which is authoritative but slow to import."""
    import re

    if any(tok in pattern for tok in _RUST_UNSUPPORTED) or re.search(r"\\[1-9]", pattern):
        return False
    try:
        re.compile(pattern)
    except re.error:
        return False
    return True


@register
class SelectLength(_Bounded):
    """Keep rows whose `field` has between `min` and `max` characters, both inclusive.

    Characters are Unicode code points (Python's len(); "é" written as e + combining accent is
    2). A null field has length 0. Give `min`, `max` or both.

    Example:  select.length(field="output", min=20, max=2000)

    >>> import polars as pl
    >>> df = pl.DataFrame({"t": ["", "ab", "abc", None]})
    >>> SelectLength(field="t", min=1, max=2).run([df], RunContext("t"))["t"].to_list()
    ['ab']
    """

    name = "select.length"
    cost = 1.0  # relative per-row cost, measured on the 1M-row bench set
    version = 1
    params = (
        P("field", "str", doc="the text column to measure", column=True, col_type="str"),
        P("min", "int", None, doc="fewest characters kept (inclusive)", min=0),
        P("max", "int", None, doc="most characters kept (inclusive)", min=0),
    )

    def measure(self) -> pl.Expr:
        import polars as pl

        return pl.col(self.p["field"]).str.len_chars().fill_null(0)


@register
class SelectWords(_Bounded):
    """Keep rows whose `field` has between `min` and `max` words, both inclusive.

    A word is a maximal run of non-whitespace characters, exactly Python's len(text.split()):
    whitespace is Unicode White_Space plus U+001C..U+001F. A null or empty field has 0 words.
    Give `min`, `max` or both.

    Example:  select.words(field="instruction", min=3)

    >>> import polars as pl
    >>> df = pl.DataFrame({"t": ["one", " two  words\\n", "a b c", None]})
    >>> SelectWords(field="t", min=2, max=2).run([df], RunContext("t"))["t"].to_list()
    [' two  words\\n']
    """

    name = "select.words"
    cost = 3.0  # relative per-row cost, measured on the 1M-row bench set
    version = 1
    params = (
        P("field", "str", doc="the text column to count", column=True, col_type="str"),
        P("min", "int", None, doc="fewest words kept (inclusive)", min=0),
        P("max", "int", None, doc="most words kept (inclusive)", min=0),
    )

    def measure(self) -> pl.Expr:
        import polars as pl

        return pl.col(self.p["field"]).str.count_matches(WORD).fill_null(0)


@register
class SelectRegex(Filter):
    """Keep the rows where `pattern` matches somewhere in `field` (keep=true), or drop them
    (keep=false).

    The pattern uses Rust regex syntax (https://docs.rs/regex): Perl-like classes, Unicode
    aware (`\\w`, `\\d`, `\\s` are Unicode), inline flags such as `(?i)` for case-insensitive
    and `(?m)` for ^/$ at line ends, and no look-around or backreferences. Anchor with ^ and $
    to match the whole field. A pattern that does not compile is a compile-time error. A null
    field is matched as the empty string. Write patterns as raw strings: r"\\d+".

    Example:  select.regex(field="output", pattern=r"(?i)as an ai", keep=false)

    >>> import polars as pl
    >>> df = pl.DataFrame({"t": ["As an AI, no", "Sure", None]})
    >>> op = SelectRegex(field="t", pattern="(?i)as an ai", keep=False)
    >>> op.run([df], RunContext("t"))["t"].to_list()
    ['Sure', None]
    """

    name = "select.regex"
    cost = 4.0  # relative per-row cost, measured on the 1M-row bench set
    version = 1
    params = (
        P("field", "str", doc="the text column to search", column=True, col_type="str"),
        P("pattern", "str", doc="Rust-syntax regular expression, searched anywhere"),
        P("keep", "bool", True, doc="true: keep matching rows; false: drop them"),
    )

    def validate(self) -> list[tuple[str | None, str]]:
        if _plainly_valid(self.p["pattern"]):
            return []  # no need to import polars at compile time (a no-op rebuild stays fast)
        import polars as pl

        try:
            pl.select(pl.lit("").str.contains(self.p["pattern"]))
        except pl.exceptions.PolarsError as exc:
            lines = [ln.strip() for ln in str(exc).splitlines()]
            why = next((ln[len("error:"):].strip() for ln in lines if ln.startswith("error:")),
                       lines[0] if lines else "invalid")
            message = (f"'pattern' is not a valid regular expression: {why} "
                       f"(got {self.p['pattern']!r})")
            return [("pattern", message)]
        return []

    def predicate(self) -> pl.Expr:
        import polars as pl

        pattern = self.p["pattern"]
        found = pl.col(self.p["field"]).str.contains(pattern)
        found = found.fill_null(pl.lit("").str.contains(pattern))
        return found if self.p["keep"] else ~found


@register
class SelectDedup(DatasetOp):
    """Exact deduplication: keep the first row of each distinct key, in the original order.

    The key is the tuple of the listed `fields`; two rows are duplicates when every listed
    field is equal. Values are compared exactly as stored: case, whitespace and Unicode form
    all count, null equals null, and null differs from "". With normalize=true each string
    field of the key is compared after NFKC, lowercasing, collapsing every run of whitespace
    to one space and stripping the ends ("Hello  World" == "hello world"); the kept row is
    still unchanged. Non-string fields (numbers, lists, structs) are always compared exactly.
    Only method="exact" exists so far.

    Example:  select.dedup(fields=["instruction", "input"])

    >>> import polars as pl
    >>> df = pl.DataFrame({"q": ["a", "b", "a", "A "], "n": [1, 2, 3, 4]})
    >>> SelectDedup(fields=["q"]).run([df], RunContext("t"))["n"].to_list()
    [1, 2, 4]
    >>> SelectDedup(fields=["q"], normalize=True).run([df], RunContext("t"))["n"].to_list()
    [1, 2]
    """

    name = "select.dedup"
    version = 1
    params = (
        P("fields", "list[str]", doc="columns whose values together form the key",
          column=True),
        P("method", "str", "exact", doc="how duplicates are found", choices=("exact",)),
        P("normalize", "bool", False,
          doc="compare strings after NFKC, lowercase and whitespace collapsing"),
    )

    def _key(self, df: pl.DataFrame) -> list[pl.Expr]:
        import polars as pl

        keys = []
        for name in self.p["fields"]:
            col = pl.col(name)
            if self.p["normalize"] and df.schema.get(name) == pl.String:
                col = (col.str.normalize("NFKC").str.to_lowercase()
                       .str.replace_all(r"\s+", " ").str.strip_chars())
            keys.append(col)
        return keys

    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        import polars as pl

        df = inputs[0]
        keys = self._key(df)
        first = keys[0].is_first_distinct() if len(keys) == 1 else \
            pl.struct(keys).is_first_distinct()
        out = df.filter(first)
        ctx.stats["duplicates"] = df.height - out.height
        return out


@register
class SelectSample(DatasetOp):
    """Keep a seeded random subset of the rows, without replacement, in their original order.

    Give exactly one of `n` (keep min(n, rows) rows) or `fraction` (keep floor(fraction x
    rows) rows, computed exactly from the decimal you wrote, so 0.29 of 100 rows is 29). Which
    rows: numpy's default_rng(seed).choice(rows, size, replace=False), then sorted, so the same
    seed, input and size always keep the same rows.

    Example:  select.sample(fraction=0.1, seed=7)

    >>> import polars as pl
    >>> df = pl.DataFrame({"i": list(range(10))})
    >>> SelectSample(n=3, seed=1).run([df], RunContext("t")).height
    3
    """

    name = "select.sample"
    version = 1
    stochastic = True
    params = (
        P("n", "int", None, doc="number of rows to keep", min=0),
        P("fraction", "float", None, doc="share of rows to keep (floor)", min=0.0, max=1.0),
        P("seed", "int", 0, doc="random seed"),
    )

    def validate(self) -> list[tuple[str | None, str]]:
        if (self.p["n"] is None) == (self.p["fraction"] is None):
            return [(None, "give exactly one of 'n' and 'fraction'")]
        return []

    def size(self, rows: int) -> int:
        if self.p["n"] is not None:
            return min(self.p["n"], rows)
        return math.floor(Fraction(repr(self.p["fraction"])) * rows)

    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        import numpy as np
        import polars as pl

        df = inputs[0]
        rng = np.random.default_rng(self.p["seed"])
        keep = np.zeros(df.height, dtype=bool)
        keep[rng.choice(df.height, size=self.size(df.height), replace=False)] = True
        return df.filter(pl.Series(keep))
