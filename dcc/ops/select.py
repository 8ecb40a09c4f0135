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
from typing import TYPE_CHECKING

from dcc.ops import register
from dcc.ops.base import CountOrFraction, DatasetOp, Filter, MinMaxBounds, P, RunContext

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    import numpy as np
    import polars as pl

# Python's str.split() whitespace: Unicode White_Space plus the separators U+001C..U+001F.
WORD = r"[^\s\x1c-\x1f]+"


class _Bounded(MinMaxBounds, Filter):
    """A filter on a count per row (`measure()`), kept when min <= count <= max."""

    def measure(self) -> pl.Expr:
        raise NotImplementedError

    def predicate(self) -> pl.Expr:
        return self.within(self.measure())


# Constructs Python's `re` accepts but the Rust regex engine (polars) does not.
_RUST_UNSUPPORTED = ("(?=", "(?!", "(?<=", "(?<!", "(?>", "(?(", "(?P=", "\\Z", "*+", "++",
                     "?+", "}+")


def regex_problem(pattern: str) -> str | None:
    """Why polars cannot compile `pattern` ("is not a valid regular expression: ..."), or
    None. Shared by select.regex and the `matches()` expression function."""
    if _plainly_valid(pattern):
        return None  # no need to import polars at compile time (a no-op rebuild stays fast)
    import polars as pl

    try:
        pl.select(pl.lit("").str.contains(pattern))
    except pl.exceptions.PolarsError as exc:
        lines = [ln.strip() for ln in str(exc).splitlines()]
        why = next((ln[len("error:"):].strip() for ln in lines if ln.startswith("error:")),
                   lines[0] if lines else "invalid")
        return f"is not a valid regular expression: {why} (got {pattern!r})"
    return None


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
    2). A null field has length 0. Give `min`, `max` or both; either may be a column
    expression, compared row by row: `max=len(instruction) * 20` (docs/language.md).

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
        P("min", "int", None, doc="fewest characters kept (inclusive)", min=0, expr=True),
        P("max", "int", None, doc="most characters kept (inclusive)", min=0, expr=True),
    )

    def measure(self) -> pl.Expr:
        import polars as pl

        return pl.col(self.p["field"]).str.len_chars().fill_null(0)


@register
class SelectWords(_Bounded):
    """Keep rows whose `field` has between `min` and `max` words, both inclusive.

    A word is a maximal run of non-whitespace characters, exactly Python's len(text.split()):
    whitespace is Unicode White_Space plus U+001C..U+001F. A null or empty field has 0 words.
    Give `min`, `max` or both; either may be a column expression, compared row by row
    (`max=words(instruction) * 10`, docs/language.md).

    Example:  select.words(field="instruction", min=3)

    >>> import polars as pl
    >>> df = pl.DataFrame({"t": ["one", " two  words\\n", "a b c", None]})
    >>> SelectWords(field="t", min=2, max=2).run([df], RunContext("t"))["t"].to_list()
    [' two  words\\n']
    """

    name = "select.words"
    cost = 15.0  # relative per-row cost, measured on the 1M-row bench set
    version = 1
    params = (
        P("field", "str", doc="the text column to count", column=True, col_type="str"),
        P("min", "int", None, doc="fewest words kept (inclusive)", min=0, expr=True),
        P("max", "int", None, doc="most words kept (inclusive)", min=0, expr=True),
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
        problem = regex_problem(self.p["pattern"])
        return [("pattern", f"'pattern' {problem}")] if problem else []

    def predicate(self) -> pl.Expr:
        import polars as pl

        pattern = self.p["pattern"]
        found = pl.col(self.p["field"]).str.contains(pattern)
        found = found.fill_null(pl.lit("").str.contains(pattern))
        return found if self.p["keep"] else ~found


# Two seeds of polars' row hash: a 128-bit key per row for streamed exact dedup.
_HASH_SEEDS = (0x6463632D65786163, 0x9E3779B97F4A7C15)


def _keep_rows(df: pl.DataFrame, rows: np.ndarray) -> pl.DataFrame:
    """The rows at sorted positions `rows`, by a mask (cheaper than a gather for text)."""
    import numpy as np
    import polars as pl

    keep = np.zeros(df.height, dtype=bool)
    keep[rows] = True
    return df.filter(pl.Series(keep))


@register
class SelectDedup(DatasetOp):
    """Drop duplicate rows, keeping the first of each group in the original order.

    method="exact" (default): the key is the tuple of the listed `fields`; two rows are
    duplicates when every listed field is equal. Values are compared exactly as stored: case,
    whitespace and Unicode form all count, null equals null, and null differs from "". With
    normalize=true each string field of the key is compared after NFKC, lowercasing,
    collapsing every run of whitespace to one space and stripping the ends ("Hello  World" ==
    "hello world"); the kept row is still unchanged. Non-string fields (numbers, lists,
    structs) are always compared exactly.

    method="minhash" | "simhash" (near-duplicates; details and formulas in dcc/ops/neardup.py):
    the text of a row is its string `fields` joined with a newline, a null field read as ""
    (normalize=true: NFKC and lowercase first). Shingles are `ngram` consecutive words (as
    Python's str.split(); unit="char": code points). minhash: rows whose shingle sets have
    Jaccard >= `threshold` are duplicates, found by MinHash-LSH with `num_perm` permutations
    and bands chosen for recall (pairs at 7/8 of the threshold still collide with probability
    >= 0.95), then every candidate verified by its exact Jaccard (verify="signature": by the
    signature estimate). simhash: 64-bit SimHash fingerprints within `max_hamming` bits are
    duplicates. Duplicates link transitively: each connected cluster keeps exactly one row,
    its first, so a~b~c keeps a even when a and c alone are below the threshold. Rows with
    no words at all (null, "", whitespace) count as identical to each other. `seed` picks the
    hash functions: the same seed and input give the same rows.

    method="semantic": SemDeDup (dcc/ops/semantic.py) on embeddings from `model`: within each
    of `n_clusters` k-means clusters, a row whose cosine similarity to a kept row exceeds
    `threshold` is dropped, keep-first; needs the models extra (pip install
    'dcc-recipes[models]'), and `dcc check` reports a model reference that names nothing.

    Stats: exact records `duplicates` (rows dropped); minhash and simhash also record
    `candidate_pairs`, `verified_pairs`, `clusters` (clusters of two or more rows) and
    `identical_rows` (rows whose text repeats an earlier row's, merged before hashing).
    A parameter of another method is an error: 'num_perm' applies to method="minhash" only.

    Example:  select.dedup(fields=["output"], method="minhash", threshold=0.8)

    >>> import polars as pl
    >>> df = pl.DataFrame({"q": ["a", "b", "a", "A "], "n": [1, 2, 3, 4]})
    >>> SelectDedup(fields=["q"]).run([df], RunContext("t"))["n"].to_list()
    [1, 2, 4]
    >>> SelectDedup(fields=["q"], normalize=True).run([df], RunContext("t"))["n"].to_list()
    [1, 2]
    >>> df = pl.DataFrame({"t": ["one two three four five six seven eight nine ten",
    ...                          "one two three four five six seven eight nine TEN",
    ...                          "something else entirely, with its own words"]})
    >>> op = SelectDedup(fields=["t"], method="minhash", ngram=2, threshold=0.7)
    >>> ctx = RunContext("t")
    >>> op.run([df], ctx)["t"].str.slice(0, 9).to_list(), ctx.stats["duplicates"]
    (['one two t', 'something'], 1)
    """

    name = "select.dedup"
    version = 2
    params = (
        P("fields", "list[str]", doc="columns whose values together form the key (near-dup "
          "methods: string columns, joined with a newline)", column=True),
        P("method", "str", "exact", doc="how duplicates are found",
          choices=("exact", "minhash", "simhash", "semantic")),
        P("normalize", "bool", False, doc="compare strings after NFKC and lowercasing (exact "
          "also collapses whitespace)"),
        P("threshold", "float", None, doc="minhash: Jaccard at or above which rows are "
          "duplicates (default 0.8); semantic: cosine similarity (default 0.95); in (0, 1]"),
        P("ngram", "int", None, doc="minhash, simhash: units per shingle (default 5)", min=1),
        P("unit", "str", None, doc="minhash, simhash: shingles of \"word\" (default) or "
          "\"char\"", choices=("word", "char")),
        P("num_perm", "int", None, doc="minhash: permutations per signature (default 128)",
          min=16),
        P("bands", "int", None, doc="minhash: LSH bands (default: chosen for the threshold; "
          "give with rows_per_band)", min=1),
        P("rows_per_band", "int", None, doc="minhash: signature values per band (default: "
          "chosen for the threshold)", min=1),
        P("verify", "str", None, doc="minhash: check candidates by exact \"jaccard\" (default) "
          "or the \"signature\" estimate", choices=("jaccard", "signature")),
        P("max_hamming", "int", None, doc="simhash: most differing bits between duplicates "
          "(default 3)", min=0, max=8),
        P("seed", "int", 1, doc="seed of the hash functions (minhash, simhash, semantic)"),
        P("model", "str", None, path=True, doc="semantic: embedding model: folder beside the "
          "recipe, hub id 'org/name' or 'openai:URL#model' (default: packaged "
          "all-MiniLM-L6-v2)"),
        P("n_clusters", "int", None, doc="semantic: k-means clusters (default: the square root "
          "of the row count)", min=1),
    )
    # Which methods each method-specific parameter applies to (null means "not given"), and
    # the value it takes when not given.
    ONLY = (("threshold", ("minhash", "semantic")), ("ngram", ("minhash", "simhash")),
            ("unit", ("minhash", "simhash")), ("num_perm", ("minhash",)),
            ("bands", ("minhash",)), ("rows_per_band", ("minhash",)), ("verify", ("minhash",)),
            ("max_hamming", ("simhash",)), ("model", ("semantic",)),
            ("n_clusters", ("semantic",)))
    DEFAULTS = (("threshold", 0.8), ("ngram", 5), ("unit", "word"), ("num_perm", 128),
                ("verify", "jaccard"), ("max_hamming", 3))
    SEMANTIC_THRESHOLD = 0.95

    def validate(self) -> list[tuple[str | None, str]]:
        p, method = self.p, self.p["method"]
        for name, methods in self.ONLY:
            if p[name] is not None and method not in methods:
                which = " or ".join(f"method=\"{m}\"" for m in methods)
                return [(name, f"'{name}' applies to {which} only (got method=\"{method}\")")]
        if method == "semantic" and p["normalize"]:
            return [("normalize", "'normalize' does not apply to method=\"semantic\"")]
        if method == "semantic":
            try:
                from dcc.ops.models.resolve import ModelNotFound, parse_ref
            except ImportError:
                pass
            else:
                try:  # a reference that cannot name anything is a compile-time error
                    parse_ref(p["model"])
                except ModelNotFound as e:
                    return [("model", str(e))]
        t = p["threshold"]
        if t is not None and not 0 < t <= 1:
            return [("threshold", f"'threshold' must be in (0, 1] (got {t!r})")]
        if (p["bands"] is None) != (p["rows_per_band"] is None):
            return [("rows_per_band" if p["bands"] is None else "bands",
                     "give 'bands' and 'rows_per_band' together (or neither)")]
        num_perm = self._near_options()["num_perm"]
        if p["bands"] is not None and p["bands"] * p["rows_per_band"] > num_perm:
            return [("bands", (f"bands x rows_per_band must be <= num_perm ({p['bands']} x "
                               f"{p['rows_per_band']} > {num_perm})"))]
        return []

    def _near_options(self) -> dict:
        """minhash/simhash keyword arguments of dcc.ops.neardup.near_duplicates, defaults in."""
        opts = {name: self.p[name] for name in ("threshold", "ngram", "unit", "num_perm",
                                                 "bands", "rows_per_band", "verify",
                                                 "max_hamming", "seed")}
        return {**opts, **{k: v for k, v in self.DEFAULTS if opts[k] is None}}

    def model_identity(self, stat_cache: object = None) -> str | None:
        """semantic: the identity of `model` (resolved revision or weight-file hashes), None
        for the other methods."""
        if self.p["method"] != "semantic":
            return None
        try:
            from dcc.ops.models.resolve import model_identity
        except ImportError:  # no model backends here: run() fails before anything is cached
            return None
        return model_identity(self.p["model"], stat_cache)

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

    def _text(self, df: pl.DataFrame) -> pl.Series:
        """The near-dup text of each row: the fields joined with a newline, null as ""."""
        import polars as pl

        from dcc.errors import DataError

        parts = []
        for name in self.p["fields"]:
            dtype = df.schema.get(name)
            if dtype not in (pl.String, pl.Null):
                raise DataError(f"select.dedup(method=\"{self.p['method']}\") reads text, but "
                                f"column '{name}' is {dtype}; list string columns only")
            col = pl.col(name).cast(pl.String).fill_null("")
            if self.p["normalize"]:
                col = col.str.normalize("NFKC").str.to_lowercase()
            parts.append(col)
        return df.select(pl.concat_str(parts, separator="\n").alias("text"))["text"]

    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        df = inputs[0]
        if self.p["method"] == "semantic":
            return self._semantic(df, ctx)
        return _keep_rows(df, self.select_rows(df, ctx))

    def select_rows(self, df: pl.DataFrame, ctx: RunContext) -> np.ndarray | None:
        """The kept rows' positions (exact, minhash, simhash), so the engine stores a small
        row selection instead of a copy; None for semantic (its run() decides)."""
        import numpy as np

        method = self.p["method"]
        if method == "semantic":
            return None
        if method in ("minhash", "simhash"):
            from dcc.ops.neardup import near_duplicates

            res = near_duplicates(self._text(df), method, **self._near_options())
            ctx.stats.update(res.stats)
            return np.flatnonzero(np.asarray(res.keep, dtype=bool))
        keys = self._key(df)
        rows = np.flatnonzero(self._first_distinct(df.select(
            [k.alias(f"k{i}") for i, k in enumerate(keys)])).to_numpy())
        ctx.stats["duplicates"] = df.height - len(rows)
        return rows

    def streams_selection(self) -> bool:
        return self.p["method"] == "exact"

    def select_rows_streamed(self, batches: Callable[[], Iterator[pl.DataFrame]], rows: int,
                             ctx: RunContext) -> np.ndarray:
        """exact, on an input larger than memory: 16 bytes a row instead of the rows. Each
        row's key (normalized as in select_rows) is hashed twice with independent seeds by
        polars, batch by batch; a row is kept when its 128-bit pair is the first of its
        kind. Unlike the in-memory path, equal hashes are not re-checked value by value (that
        would need the keys of every repeated row): two different keys are merged only if
        both 64-bit hashes collide, odds below n^2 / 2^129 (about 1e-21 for a billion rows).
        Near-duplicate methods load the input whole."""
        import numpy as np

        parts = []
        for df in batches():
            keys = df.select([k.alias(f"k{i}") for i, k in enumerate(self._key(df))])
            pair = np.empty((keys.height, 2), dtype=np.uint64)
            for j, seed in enumerate(_HASH_SEEDS):
                pair[:, j] = keys.hash_rows(seed).to_numpy()
            parts.append(pair)
        hashes = np.concatenate(parts) if parts else np.zeros((0, 2), dtype=np.uint64)
        if len(hashes) != rows:
            raise ValueError(f"select.dedup read {len(hashes)} rows of an input of {rows}")
        _, first = np.unique(np.ascontiguousarray(hashes).view("V16").ravel(),
                             return_index=True)
        kept = np.sort(first)
        ctx.stats["duplicates"] = rows - len(kept)
        return kept

    @staticmethod
    def _first_distinct(keys: pl.DataFrame) -> pl.Series:
        """True where a row's key tuple is the first of its kind: grouped by a row hash, then
        checked value by value (dcc.ops.neardup.first_of_kind); on a hash collision, polars
        compares the values themselves."""
        import numpy as np
        import polars as pl

        from dcc.ops.neardup import first_of_kind

        first = first_of_kind(keys)
        if first is None:
            return keys.select(pl.struct(pl.all()).is_first_distinct()).to_series()
        return pl.Series(first == np.arange(keys.height))

    def _semantic(self, df: pl.DataFrame, ctx: RunContext) -> pl.DataFrame:
        from dcc.errors import DataError

        hint = ("select.dedup(method=\"semantic\") needs embeddings, which come with the "
                "models extra: pip install 'dcc-recipes[models]'")
        try:
            from dcc.ops.semantic import semdedup
        except ImportError as exc:
            raise DataError(f"{hint} (could not import dcc.ops.semantic: {exc})") from None
        threshold = self.p["threshold"] or self.SEMANTIC_THRESHOLD
        n_clusters = self.p["n_clusters"] or max(1, math.isqrt(df.height))
        try:
            return semdedup(df, self.p["fields"], threshold, self.p["model"], n_clusters,
                            self.p["seed"], ctx)
        except ImportError as exc:  # torch or transformers missing underneath
            raise DataError(f"{hint} ({exc})") from None


@register
class SelectSample(CountOrFraction, DatasetOp):
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

    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        return _keep_rows(inputs[0], self.select_rows(inputs[0], ctx))

    def select_rows(self, df: pl.DataFrame, ctx: RunContext) -> np.ndarray:
        """The kept rows' positions, sorted (the engine stores them, not a copy)."""
        return self._positions(df.height)

    def select_rows_streamed(self, batches: Callable[[], Iterator[pl.DataFrame]], rows: int,
                             ctx: RunContext) -> np.ndarray:
        """Which rows depends on the row count alone: the input is never read."""
        return self._positions(rows)

    def _positions(self, rows: int) -> np.ndarray:
        import numpy as np

        rng = np.random.default_rng(self.p["seed"])
        return np.sort(rng.choice(rows, size=self.size(rows), replace=False))
