"""select.*, rule-based: character-class ratios, n-gram repetition, language, field predicates
and top-k.

The text rules share the null rule of `select.py`: a null field counts as "" (ratio 0, no
n-grams, no language). Every ratio is a float in [0, 1]; `min` and `max` are inclusive.

Scores. Each scoring filter computes one number per row and keeps the rows within bounds.
With keep_score=false (the default) it is a pure `Filter`: the optimizer may fuse it into a
one-pass stage and reorder it among other filters by cost. With keep_score=true it also writes
its score column (`_alnum_ratio`, `_special_ratio`, `_rep_ratio`, or `_lang` and
`_lang_score`), which a Filter cannot do, so such an instance runs as a step of its own
(kind "dataset" on the instance: never fused, never reordered).

Cost hints are per-row times relative to select.length (1.0), measured on the `output`
column of the 1M-row bench set: field 0.2, special_chars_ratio 4, alnum_ratio 10 (the engine
pays per regex match), repetition 40, lang 2000.

Why this module is longer than the house 300 lines: `select.repetition` carries its own
vectorized n-gram hashing (numpy over the Arrow buffers, no Python per row), and it belongs
next to the operator whose exact semantics it implements.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, ClassVar

from dcc.errors import DccError
from dcc.ops import register
from dcc.ops.base import CountOrFraction, DatasetOp, Filter, MinMaxBounds, P, RunContext
from dcc.ops.select import WORD  # select.words' word: a run of non-whitespace
from dcc.schema import Schema

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

# Not a Unicode letter or number (general categories L* and N*: Python's str.isalnum()).
NOT_ALNUM = r"[^\p{L}\p{N}]"
# Neither a letter, a number nor whitespace; whitespace is Python's str.isspace() (Unicode
# White_Space plus the separators U+001C..U+001F).
SPECIAL = r"[^\p{L}\p{N}\s\x1c-\x1f]"


class ColumnTypeError(DccError, TypeError):
    """An operator was given a column of the wrong type; the message names the column."""

    exit_code = 3


def require_dtype(op: str, schema: Any, column: str, want: str) -> None:
    """Raise ColumnTypeError unless `column` of a polars schema has the wanted kind of type:
    "str" (String, or Null: an all-null column), "number" (integers and floats) or "list"."""
    import polars as pl

    dtype = schema.get(column)
    if dtype is None:
        have = ", ".join(schema.names()) if hasattr(schema, "names") else ""
        raise ColumnTypeError(f"{op}: no column '{column}' (have: {have or 'none'})")
    ok = {"str": dtype in (pl.String, pl.Null),
          "number": dtype.is_numeric() or dtype == pl.Null,
          "list": isinstance(dtype, pl.List) or dtype == pl.Null}[want]
    if not ok:
        raise ColumnTypeError(f"{op}: column '{column}' must be {want} (got {dtype})")


# -- scoring filters ---------------------------------------------------------------------------
class _Scored(MinMaxBounds, Filter):
    """A filter on a per-row score kept when min <= score <= max. Subclasses give `score()`
    (a polars expression) and the `columns` it is kept in when keep_score=true, or with
    keep="none" (annotate only: the score columns are written and no row is dropped)."""

    columns: ClassVar[tuple[str, ...]] = ()

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)
        if self.scores_kept():
            self.kind = "dataset"  # type: ignore[misc]  # writes columns: not a fusable Filter

    def scores_kept(self) -> bool:
        """True when the score columns are written: keep_score=true or keep="none"."""
        return bool(self.p.get("keep_score")) or self.annotates()

    def score(self) -> pl.Expr:
        raise NotImplementedError

    def keep(self, score: pl.Expr) -> pl.Expr:
        return self.within(score)

    def predicate(self) -> pl.Expr:
        return self.keep(self.score())

    def writes(self) -> list[str]:
        return list(self.columns) if self.scores_kept() else []

    def output_schema(self, inputs: list[Schema]) -> Schema:
        base = inputs[0] if inputs else Schema.unknown()
        return base.with_columns(**{c: "float" for c in self.writes()})

    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        df = inputs[0]
        casts = self.null_text_casts(df.schema)
        df = df.with_columns(casts) if casts else df
        require_dtype(self.name, df.schema, self.p["field"], "str")
        if not self.scores_kept():
            return df.filter(self.predicate())
        import polars as pl

        (col,) = self.columns
        return df.with_columns(self.score().alias(col)).filter(self.keep(pl.col(col)))


def _ratio_params(what: str) -> tuple[P, ...]:
    return (
        P("field", "str", doc="the text column to measure", column=True, col_type="str"),
        P("min", "float", None, doc=f"lowest {what} kept (inclusive)", min=0.0, max=1.0),
        P("max", "float", None, doc=f"highest {what} kept (inclusive)", min=0.0, max=1.0),
        P("keep_score", "bool", False, doc="also write the ratio to a column"),
        MinMaxBounds.annotate_param(),
    )


def _share(field: str, pattern: str, *, complement: bool = False) -> pl.Expr:
    """Characters of `field` matching the one-character class `pattern` (with complement:
    not matching it), divided by all its characters; 0.0 for "" and null. Counting the rarer
    side is faster: the engine's cost grows with the number of matches. (No fill_null(""):
    on a non-text column that would cast the numbers to text instead of failing.)"""
    import polars as pl

    col = pl.col(field)
    total = col.str.len_chars()
    hits = col.str.count_matches(pattern)
    if complement:
        hits = total - hits
    return pl.when(total.fill_null(0) == 0).then(pl.lit(0.0)).otherwise(hits / total)


def _text(op: str, values: pl.Series) -> pl.Series:
    """`values` as a String Series with nulls as ""; a non-text column is an error naming it."""
    import polars as pl

    require_dtype(op, values.to_frame().schema, values.name, "str")
    return values.cast(pl.String).fill_null("")


@register
class SelectAlnumRatio(_Scored):
    """Keep rows whose share of alphanumeric characters in `field` is between `min` and `max`.

    ratio = (letters and digits) / (all characters), counted in Unicode code points.
    Alphanumeric means Unicode general category L* or N* (letters of every script, decimal
    digits, other numbers such as ² or Ⅻ): Python's str.isalnum() per character, with the
    Unicode tables of polars' regex engine (newer than Python 3.11's Unicode 14: characters
    assigned since count by their new category). Combining marks, punctuation, symbols,
    emoji and whitespace are not alphanumeric. The
    empty string and a null field have ratio 0. With keep_score=true the ratio is also kept
    in the column `_alnum_ratio` (float); keep="none" writes it and drops no row. `select.alnum_ratio(field="output", min=0.5)` is
    the bench's F3, `alnum / len(output) >= 0.5`.

    Example:  select.alnum_ratio(field="output", min=0.5)

    >>> import polars as pl
    >>> df = pl.DataFrame({"t": ["ab12", "a b!", "#!", "", None]})
    >>> SelectAlnumRatio(field="t", min=0.5).run([df], RunContext("t"))["t"].to_list()
    ['ab12', 'a b!']
    >>> op = SelectAlnumRatio(field="t", max=0.5, keep_score=True)
    >>> op.run([df], RunContext("t"))["_alnum_ratio"].to_list()
    [0.5, 0.0, 0.0, 0.0]
    """

    name = "select.alnum_ratio"
    cost = 10.0  # relative per-row cost, measured on the 1M-row bench set
    version = 1
    params = _ratio_params("alphanumeric ratio")
    columns = ("_alnum_ratio",)

    def score(self) -> pl.Expr:
        return _share(self.p["field"], NOT_ALNUM, complement=True)


@register
class SelectSpecialCharsRatio(_Scored):
    """Keep rows whose share of special characters in `field` is between `min` and `max`.

    ratio = (characters that are neither alphanumeric nor whitespace) / (all characters), in
    Unicode code points. Alphanumeric is Unicode category L* or N* (str.isalnum()); whitespace
    is Python's str.isspace() (Unicode White_Space, including no-break and ideographic spaces,
    plus U+001C..U+001F). So punctuation, symbols, emoji, control and format characters
    (zero-width space) and combining marks (the accent of a decomposed "é") count as special.
    "" and null have ratio 0. With keep_score=true the ratio is also kept in `_special_ratio`;
    keep="none" writes it and drops no row.

    Unlike Data-Juicer's special_characters_filter, which counts the characters of a fixed
    list (ASCII punctuation, digits, whitespace, about 200 listed symbols, and emoji), digits
    and whitespace are not special here, and every symbol or mark is, listed or not.

    Example:  select.special_chars_ratio(field="output", max=0.25)

    >>> import polars as pl
    >>> df = pl.DataFrame({"t": ["a b", "a, b!", "{}[]();", "", None]})
    >>> op = SelectSpecialCharsRatio(field="t", max=0.5)
    >>> op.run([df], RunContext("t"))["t"].to_list()
    ['a b', 'a, b!', '', None]
    """

    name = "select.special_chars_ratio"
    cost = 4.0  # relative per-row cost, measured on the 1M-row bench set
    version = 1
    params = _ratio_params("special-character ratio")
    columns = ("_special_ratio",)

    def score(self) -> pl.Expr:
        return _share(self.p["field"], SPECIAL)


@register
class SelectRepetition(_Scored):
    """Keep rows whose n-gram repetition ratio in `field` is between `min` and `max`.

    The units are characters (unit="char", Unicode code points) or words (unit="word": maximal
    runs of non-whitespace, exactly Python's text.split(), compared case- and punctuation-
    sensitively). The text's n-grams are its len(units) - n + 1 runs of n consecutive units;
    ratio = (n-grams whose text occurs more than once among them) / (all n-grams), counting
    every occurrence: "abab" with n=2 has grams ab, ba, ab, so 2/3. A text with fewer than n
    units (and "", and null) has ratio 0. With keep_score=true the ratio is kept in
    `_rep_ratio`; keep="none" writes it and drops no row.

    This is Data-Juicer's word_repetition_filter rule (share of n-grams occurring more than
    once) applied to both units; Data-Juicer's character_repetition_filter instead sums only
    the floor(sqrt(distinct n-grams)) most frequent repeated n-grams, and its word filter
    first lowercases words and strips punctuation from them. Here nothing is normalized:
    compose rewrite.normalize first if wanted.

    n-grams are compared by a 48-bit hash computed with numpy over the Arrow buffers (no
    Python per row); two different n-grams of one row collide with probability below
    k^2 / 2^49 for a row of k n-grams (1e-9 for 1,000), which can only raise a ratio.

    Example:  select.repetition(field="output", n=10, unit="char", max=0.5)

    >>> import polars as pl
    >>> df = pl.DataFrame({"t": ["abab", "abcd", "a", None]})
    >>> op = SelectRepetition(field="t", n=2, max=0.5, keep_score=True)
    >>> op.run([df], RunContext("t")).rows()
    [('abcd', 0.0), ('a', 0.0), (None, 0.0)]
    """

    name = "select.repetition"
    cost = 40.0  # relative per-row cost, measured on the 1M-row bench set (char n=10, word n=3)
    version = 1
    params = (
        P("field", "str", doc="the text column to measure", column=True, col_type="str"),
        P("n", "int", 10, doc="n-gram length in units", min=1),
        P("unit", "str", "char", doc="what an n-gram is made of", choices=("char", "word")),
        P("min", "float", None, doc="lowest repetition ratio kept (inclusive)", min=0.0,
          max=1.0),
        P("max", "float", None, doc="highest repetition ratio kept (inclusive)", min=0.0,
          max=1.0),
        P("keep_score", "bool", False, doc="also write the ratio to `_rep_ratio`"),
        MinMaxBounds.annotate_param(),
    )
    columns = ("_rep_ratio",)

    def score(self) -> pl.Expr:
        import polars as pl

        n, unit = self.p["n"], self.p["unit"]
        return pl.col(self.p["field"]).map_batches(
            lambda s: repetition_ratio(_text(self.name, s), n, unit), return_dtype=pl.Float64)


# -- n-gram repetition, vectorized ----------------------------------------------------------
_ROW_BITS = 16          # a chunk holds at most 2^16 rows; their index sits in a key's top bits
_CHUNK_UNITS = 1 << 18  # units per chunk: small arrays stay in cache and reuse freed memory
_P = 0x9E3779B97F4A7C15  # odd multiplier of the polynomial window hash (mod 2^64)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finalizer on a uint64 array (a bijection that spreads every input bit)."""
    import numpy as np

    u = np.uint64
    x = x ^ (x >> u(30))
    x *= u(0xBF58476D1CE4E5B9)
    x ^= x >> u(27)
    x *= u(0x94D049BB133111EB)
    x ^= x >> u(31)
    return x


@functools.lru_cache(maxsize=1)
def _byte_table() -> np.ndarray:
    import numpy as np

    return _mix(np.arange(256, dtype=np.uint64) + np.uint64(0x5EED))


def _char_units(values: pl.Series) -> np.ndarray:
    """One uint64 per code point of the concatenated (non-null) strings: a hash of the
    character's UTF-8 bytes. Pure-ASCII chunks take a table look-up per byte."""
    import numpy as np
    import pyarrow as pa

    arr = values.to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if not pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.large_string())
    offsets = np.frombuffer(arr.buffers()[1], dtype=np.int64)[arr.offset:arr.offset + len(arr) + 1]
    data = np.frombuffer(arr.buffers()[2], dtype=np.uint8)[offsets[0]:offsets[-1]]
    if not (data >= 0x80).any():
        return _byte_table()[data]
    u = np.uint64
    starts = np.flatnonzero((data & 0xC0) != 0x80)  # lead bytes: one per code point
    pad = np.concatenate([data, np.zeros(3, np.uint8)]).astype(u)
    word = (pad[starts] | (pad[starts + 1] << u(8)) | (pad[starts + 2] << u(16))
            | (pad[starts + 3] << u(24)))
    nbytes = np.diff(starts, append=data.size).astype(u)
    return _mix(word & ((u(1) << (u(8) * nbytes)) - u(1)))


def _word_units(values: pl.Series) -> tuple[np.ndarray, np.ndarray]:
    """(one uint64 hash per word of the concatenated strings, words per row)."""
    import numpy as np

    words = values.str.extract_all(WORD)
    counts = words.list.len().fill_null(0).to_numpy().astype(np.int64)
    hashes = words.explode().drop_nulls().hash(seed=0x5EED).to_numpy()
    return _mix(hashes.astype(np.uint64)), counts


def _window_hashes(m: np.ndarray, n: int) -> np.ndarray:
    """h[i] = sum_k m[i+k] * P^(n-1-k) mod 2^64 for every window of n units, built by
    doubling (about log2(n) passes instead of n), each pass writing into a fresh buffer
    with out= (numpy's operators on uint64 scalars are several times slower)."""
    import numpy as np

    u = np.uint64

    def shift_add(left: np.ndarray, right: np.ndarray, size: int) -> np.ndarray:
        out = np.empty(right.size, dtype=u)
        np.multiply(left[:right.size], u(pow(_P, size, 1 << 64)), out=out)
        np.add(out, right, out=out)
        return out

    spans = {1: m}
    length = 1
    while length * 2 <= n:
        spans[2 * length] = shift_add(spans[length], spans[length][length:], length)
        length *= 2
    out, done = None, 0
    for size in sorted(spans, reverse=True):
        if n - done < size:
            continue
        if out is None:
            out, done = spans[size], size
            continue
        out = shift_add(out, spans[size][done:done + m.size - (done + size) + 1], size)
        done += size
    assert out is not None  # n >= 1, so spans[1] always applies
    return out


def _repeated_share(units: np.ndarray, counts: np.ndarray, n: int) -> np.ndarray:
    """Per row: share of its n-gram windows whose hash occurs more than once in that row."""
    import numpy as np

    u = np.uint64
    rows = counts.size
    windows = np.maximum(counts - n + 1, 0)
    out = np.zeros(rows)
    if not windows.any():
        return out
    row_of_unit = np.repeat(np.arange(rows, dtype=u) << u(64 - _ROW_BITS), counts)
    h = _window_hashes(units, n)
    row_bits = row_of_unit[:h.size]
    inside = row_bits == row_of_unit[n - 1:]  # the window ends in the row it starts in
    h >>= u(_ROW_BITS)
    h |= row_bits
    keys = np.sort(h[inside])
    same = keys[1:] == keys[:-1]
    dup = np.zeros(keys.size, dtype=bool)
    dup[1:] = same
    dup[:-1] |= same
    repeated = np.bincount((keys[dup] >> u(64 - _ROW_BITS)).astype(np.intp), minlength=rows)
    return np.divide(repeated, windows, out=out, where=windows > 0)


def repetition_ratio(values: pl.Series, n: int, unit: str) -> pl.Series:
    """The repetition ratio of every string of `values` (see select.repetition), computed in
    chunks of about 2^18 units so that memory stays bounded whatever the input size."""
    import numpy as np
    import polars as pl

    values = values.cast(pl.String).fill_null("")
    sizes = (values.str.len_chars() if unit == "char" else values.str.len_bytes() // 4)
    ends = np.cumsum(sizes.to_numpy().astype(np.int64))
    out = np.zeros(len(values))
    i = 0
    while i < len(values):
        before = int(ends[i - 1]) if i else 0
        j = int(np.searchsorted(ends, before + _CHUNK_UNITS, side="right"))
        j = min(max(j, i + 1), i + (1 << _ROW_BITS))
        part = values.slice(i, j - i)
        if unit == "char":
            units, counts = _char_units(part), part.str.len_chars().to_numpy().astype(np.int64)
        else:
            units, counts = _word_units(part)
        out[i:j] = _repeated_share(units, counts, n)
        i = j
    return pl.Series(values.name, out, dtype=pl.Float64)


# -- language ---------------------------------------------------------------------------------
# The labels of py3langid 0.4's bundled model (ISO 639 codes; zxx: no linguistic content).
LANGS = frozenset({
    "ace", "af", "am", "an", "ar", "ary", "arz", "as", "az", "ba", "bcl", "be", "bg", "bn", "br",
    "bs", "ca", "crh", "cs", "cy", "da", "de", "dz", "el", "en", "eo", "es", "et", "eu", "ext",
    "fa", "fi", "fo", "fr", "fuv", "fy", "ga", "gcf", "gcr", "gd", "gl", "gom", "grc", "gu", "gug",
    "guw", "ha", "hbo", "he", "hi", "hr", "ht", "hu", "hy", "id", "ig", "is", "it", "ja", "jv",
    "ka", "kab", "kik", "kk", "km", "kn", "ko", "ku", "ky", "la", "lb", "lg", "lij", "ln", "lo",
    "lt", "ltg", "lv", "mg", "mk", "ml", "mn", "mr", "ms", "mt", "my", "ne", "nl", "nn", "no",
    "nso", "oc", "om", "or", "pa", "pcm", "pl", "ps", "pt", "qu", "ro", "ru", "rw", "sa", "sdh",
    "se", "si", "sk", "sl", "sn", "so", "sq", "sr", "st", "sv", "sw", "ta", "te", "tg", "th", "tk",
    "tl", "tr", "tt", "ug", "uk", "ur", "uz", "uzs", "vec", "vi", "vo", "wa", "wuu", "xh", "yo",
    "yue", "zh", "zu", "zxx",
})


@functools.lru_cache(maxsize=1)
def _identifier() -> Any:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def identify(values: pl.Series) -> pl.Series:
    """A struct Series {lang, score}: py3langid's best language and its probability for each
    string; null lang and score 0.0 for "" and null. One Python call per distinct string."""
    import polars as pl

    ident = _identifier()
    seen: dict[str, tuple[str | None, float]] = {"": (None, 0.0)}
    langs, scores = [], []
    for text in values.cast(pl.String).fill_null("").to_list():
        if text not in seen:
            lang, score = ident.classify(text)
            seen[text] = (lang, float(score))
        lang, score = seen[text]
        langs.append(lang)
        scores.append(score)
    return pl.Series(values.name, [{"lang": a, "score": b} for a, b in zip(langs, scores)],
                     dtype=pl.Struct({"lang": pl.String, "score": pl.Float64}))


@register
class SelectLang(_Scored):
    """Keep rows whose `field` is identified as one of the languages `lang` with probability
    at least `min_score`.

    The identifier is py3langid (a naive Bayes model over byte n-grams shipped in the PyPI
    package, offline, 140 languages as ISO 639 codes: "en", "fr", "zh", ...; "zxx" is text
    without linguistic content). The text is classified as a whole (all of it, uppercase text
    lowercased, NFC); score is the winning language's probability, normalized over all 140
    languages, in [0, 1]. A row is kept when the best language is in `lang` and score >=
    min_score. "" and null are never kept (no language, score 0). With keep_score=true the
    language and score are kept in `_lang` (str) and `_lang_score` (float) for every kept row;
    keep="none" writes them for every row (the best language, whatever `lang` says) and drops
    none.
    Short texts get low scores: a one-line question is often below 0.9.

    This is the one operator here that calls Python per row: it classifies each distinct
    string of a batch once (polars map_batches): 0.3 ms for a 250-character GSM8K question,
    1.2 ms for a 460-character bench output (20 minutes per million such rows).

    Example:  select.lang(field="output", lang=["en", "fr"], min_score=0.8)

    >>> import polars as pl
    >>> df = pl.DataFrame({"t": ["The cat sat on the mat and looked out of the window.",
    ...                         "Le chat est assis sur le tapis et regarde par la fenêtre.",
    ...                         "", None]})
    >>> SelectLang(field="t", lang="fr").run([df], RunContext("t"))["t"].to_list()
    ['Le chat est assis sur le tapis et regarde par la fenêtre.']
    """

    name = "select.lang"
    cost = 2000.0  # relative per-row cost, measured on the 1M-row bench set
    version = 1
    params = (
        P("field", "str", doc="the text column to identify", column=True, col_type="str"),
        P("lang", "str|list[str]", "en", doc="language code(s) to keep (ISO 639, e.g. 'en')"),
        P("min_score", "float", 0.5, doc="lowest probability of the language kept", min=0.0,
          max=1.0),
        P("keep_score", "bool", False, doc="also write `_lang` and `_lang_score`"),
        MinMaxBounds.annotate_param(),
    )
    columns = ("_lang", "_lang_score")

    def validate(self) -> list[tuple[str | None, str]]:
        langs = self.langs()
        if not langs:
            return [("lang", "'lang' must name at least one language (got [])")]
        unknown = [x for x in langs if x not in LANGS]
        if unknown:
            import difflib

            close = difflib.get_close_matches(unknown[0], sorted(LANGS), n=1)
            hint = f"did you mean {close[0]!r}?" if close else "codes are ISO 639, like 'en'"
            return [("lang", f"'lang' has an unknown language {unknown[0]!r}; {hint}")]
        return []

    def langs(self) -> list[str]:
        lang = self.p["lang"]
        return [lang] if isinstance(lang, str) else list(lang)

    def model_identity(self, stat_cache: Any = None) -> str | None:
        return _model_identity()

    def score(self) -> pl.Expr:
        import polars as pl

        return pl.col(self.p["field"]).map_batches(
            lambda s: identify(_text(self.name, s)),
            return_dtype=pl.Struct({"lang": pl.String, "score": pl.Float64}))

    def keep(self, score: pl.Expr) -> pl.Expr:
        if self.annotates():
            import polars as pl

            return pl.lit(True)
        return (score.struct.field("lang").is_in(self.langs())
                & (score.struct.field("score") >= self.p["min_score"]))

    def output_schema(self, inputs: list[Schema]) -> Schema:
        base = inputs[0] if inputs else Schema.unknown()
        if not self.scores_kept():
            return base
        return base.with_columns(_lang="str", _lang_score="float")

    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        if not self.scores_kept():
            return super().run(inputs, ctx)
        import polars as pl

        df = inputs[0]
        casts = self.null_text_casts(df.schema)
        df = df.with_columns(casts) if casts else df
        require_dtype(self.name, df.schema, self.p["field"], "str")
        found = identify(df[self.p["field"]])
        df = df.with_columns(found.struct.field("lang").alias("_lang"),
                             found.struct.field("score").alias("_lang_score"))
        return df.filter(self.keep(pl.struct(lang=pl.col("_lang"), score=pl.col("_lang_score"))))


@functools.lru_cache(maxsize=1)
def _model_identity() -> str:
    """py3langid's version and a hash of its model file: what decides the languages found."""
    from importlib.metadata import version
    from pathlib import Path

    import xxhash
    from py3langid.langid import MODEL_DIR, MODEL_FILE

    blob = (Path(MODEL_DIR) / MODEL_FILE).read_bytes()
    return f"py3langid=={version('py3langid')} model:{xxhash.xxh3_128_hexdigest(blob)}"


# -- field predicates -------------------------------------------------------------------------
_CMP = ("eq", "ne", "lt", "le", "gt", "ge")
_SCALAR = (str, int, float, bool)


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    return "number" if isinstance(value, (int, float)) else "str"


@register
class SelectField(Filter):
    """Keep rows whose `field` value satisfies every given comparison (AND of all).

    eq/ne: equal / not equal; lt, le, gt, ge: <, <=, >, >= (numbers compare by value, int and
    float alike; strings by Unicode code point, so "B" < "a"); isin: equal to one of the
    listed values; not_in: equal to none of them. A null value never satisfies any of them,
    ne and not_in included, so nulls are always dropped. Give at least one. The values must be
    of the column's kind (number, str or bool; a mismatch is an error naming the column, at
    compile time when the schema knows the type), and only eq, ne, isin and not_in apply to
    bool.

    Example:  select.field(field="score", ge=7, not_in=[9, 10])

    >>> import polars as pl
    >>> df = pl.DataFrame({"n": [1, 5, 7, None, 10], "s": ["a", "b", "c", "d", None]})
    >>> SelectField(field="n", ge=5, not_in=[10]).run([df], RunContext("t"))["n"].to_list()
    [5, 7]
    >>> SelectField(field="s", ne="b").run([df], RunContext("t"))["s"].to_list()
    ['a', 'c', 'd']
    """

    name = "select.field"
    cost = 0.2  # relative per-row cost, measured on the 1M-row bench set
    version = 1
    params = (
        P("field", "str", doc="the column to test", column=True),
        P("eq", "any", None, doc="keep values equal to this"),
        P("ne", "any", None, doc="keep values not equal to this (nulls never kept)"),
        P("lt", "any", None, doc="keep values < this"),
        P("le", "any", None, doc="keep values <= this"),
        P("gt", "any", None, doc="keep values > this"),
        P("ge", "any", None, doc="keep values >= this"),
        P("isin", "list", None, doc="keep values equal to one of these"),
        P("not_in", "list", None, doc="keep values equal to none of these (nulls never kept)"),
    )

    def conditions(self) -> dict[str, Any]:
        return {k: self.p[k] for k in (*_CMP, "isin", "not_in") if self.p[k] is not None}

    def validate(self) -> list[tuple[str | None, str]]:
        given = self.conditions()
        if not given:
            return [(None, "give at least one of eq, ne, lt, le, gt, ge, isin, not_in")]
        kinds = set()
        for name, value in given.items():
            items = value if name in ("isin", "not_in") else [value]
            for item in items:
                if not isinstance(item, _SCALAR):
                    return [(name, (f"'{name}' must hold str, number or bool values "
                                    f"(got {type(item).__name__})"))]
                kinds.add(_kind_of(item))
            if name in ("lt", "le", "gt", "ge") and isinstance(value, bool):
                return [(name, f"'{name}' cannot compare with a bool (got {value})")]
        if len(kinds) > 1:
            return [(None, f"the values must be of one kind (got {', '.join(sorted(kinds))})")]
        return []

    def value_kind(self) -> str | None:
        """number, str or bool: the kind of the values given (None if only empty lists)."""
        for value in self.conditions().values():
            for item in value if isinstance(value, list) else [value]:
                return _kind_of(item)
        return None

    def predicate(self) -> pl.Expr:
        import polars as pl

        col = pl.col(self.p["field"])
        ops = {"eq": col.__eq__, "ne": col.__ne__, "lt": col.__lt__, "le": col.__le__,
               "gt": col.__gt__, "ge": col.__ge__}
        cond = pl.lit(True)
        for name, value in self.conditions().items():
            if name == "isin":
                term = col.is_in(value)
            elif name == "not_in":
                term = ~col.is_in(value)
            else:
                term = ops[name](pl.lit(value))
            cond = cond & term
        return cond & col.is_not_null()

    def output_schema(self, inputs: list[Schema]) -> Schema:
        base = inputs[0] if inputs else Schema.unknown()
        have, kind = base.columns.get(self.p["field"]), self.value_kind()
        want = {"number": {"int", "float"}, "str": {"str"}, "bool": {"bool"}}.get(kind or "")
        if want and have and have not in ("any", "null") and have not in want:
            raise ColumnTypeError(f"{self.name}: column '{self.p['field']}' is {have}, but the "
                                  f"values given are {self.value_kind()}")
        return base

    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        import polars as pl

        df = inputs[0]
        field = self.p["field"]
        dtype = df.schema.get(field)
        if dtype is not None and dtype != pl.Null:
            kind = ("bool" if dtype == pl.Boolean else "number" if dtype.is_numeric()
                    else "str" if dtype == pl.String else None)
            if self.value_kind() not in (None, kind):
                raise ColumnTypeError(f"{self.name}: column '{field}' is {dtype}, but the "
                                      f"values given are {self.value_kind()}")
        if dtype == pl.Null:
            return df.head(0)
        return super().run(inputs, ctx)


# -- top-k ------------------------------------------------------------------------------------
@register
class SelectTopk(CountOrFraction, DatasetOp):
    """Keep the rows with the largest (descending=true) or smallest (descending=false) values
    of the numeric column `by`, in their original order.

    Give exactly one of `n` (keep min(n, rows) rows) or `fraction` (floor(fraction x rows),
    computed exactly from the decimal written, as in select.sample). Ties are broken by
    original order: of equal values the earlier rows are kept. Null and NaN rank after every
    number in both directions, so they are kept only when k exceeds the other rows. The
    output keeps the input's order (top-k is a subset, not a sort).

    Example:  select.topk(by="score", fraction=0.1)

    >>> import polars as pl
    >>> df = pl.DataFrame({"s": [3, 9, None, 9, 1, 5]})
    >>> SelectTopk(by="s", n=3).run([df], RunContext("t"))["s"].to_list()
    [9, 9, 5]
    >>> SelectTopk(by="s", n=2, descending=False).run([df], RunContext("t"))["s"].to_list()
    [3, 1]
    """

    name = "select.topk"
    version = 1
    params = (
        P("by", "str", doc="the numeric column to rank by", column=True, col_type="number"),
        P("n", "int", None, doc="number of rows to keep", min=0),
        P("fraction", "float", None, doc="share of rows to keep (floor)", min=0.0, max=1.0),
        P("descending", "bool", True, doc="true: keep the largest values; false: smallest"),
    )

    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        import polars as pl

        df = inputs[0]
        by = self.p["by"]
        require_dtype(self.name, df.schema, by, "number")
        col = pl.col(by)
        if df.schema[by].is_float():
            col = col.fill_nan(None)
        order = df.select(pl.arg_sort_by(col, descending=self.p["descending"], nulls_last=True,
                                         maintain_order=True)).to_series()
        keep = order.head(self.size(df.height)).sort()
        ctx.stats["dropped"] = df.height - keep.len()
        return df[keep]
