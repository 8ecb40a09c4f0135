"""`select.gopher_repetition`: Gopher's repetition rules (Rae et al. 2021, appendix A.1.1,
table A1), next to the vectorized n-gram coverage they need.

Line and paragraph duplicates are polars list expressions. The n-gram rules hash every
window of n tokens with numpy over the whole column (the hashing of `select.repetition` in
dcc/ops/rules.py), find repeated windows per row by sorting (row, hash) keys, and mark the
tokens those windows cover with a difference array: no Python per row. Windows are compared
by a 48-bit hash; two different n-grams of one row collide with probability below k^2/2^49
for k windows, which can only raise a fraction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from dcc.ops import register
from dcc.ops.base import Filter, P
from dcc.ops.quality import (
    TOKEN,
    _count,
    _field_param,
    _rules,
    _share,
    _some_rule,
    lines_of,
)
from dcc.ops.rules import _mix, _window_hashes

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

TOP_NS = (2, 3, 4)
DUP_NS = (5, 6, 7, 8, 9, 10)
_ROW_BITS = 16
_CHUNK_TOKENS = 1 << 18


def _tokens(values: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a uint64 hash per token, its length in characters, tokens per row)."""
    import numpy as np

    toks = values.str.extract_all(TOKEN)
    counts = toks.list.len().fill_null(0).to_numpy().astype(np.int64)
    flat = toks.explode().drop_nulls()
    hashes = _mix(flat.hash(seed=0x5EED).to_numpy().astype(np.uint64))
    return hashes, flat.str.len_chars().to_numpy().astype(np.int64), counts


def _covered(starts: np.ndarray, n: int, size: int) -> np.ndarray:
    """Which of `size` tokens lie inside at least one window [s, s + n)."""
    import numpy as np

    diff = np.bincount(starts, minlength=size + 1) - np.bincount(starts + n, minlength=size + 1)
    return np.cumsum(diff[:size]) > 0


def _chunk_fractions(values: pl.Series, top: list[int], dup: list[int]
                     ) -> dict[tuple[str, int], np.ndarray]:
    import numpy as np

    u = np.uint64
    hashes, lens, counts = _tokens(values)
    rows = counts.size
    row_of = np.repeat(np.arange(rows, dtype=np.int64), counts)
    total = np.bincount(row_of, weights=lens, minlength=rows)
    prefix = np.concatenate([[0], np.cumsum(lens)])
    out: dict[tuple[str, int], np.ndarray] = {}
    for kind, n in [("top", n) for n in top] + [("dup", n) for n in dup]:
        frac = np.zeros(rows)
        out[(kind, n)] = frac
        windows = hashes.size - n + 1
        if windows <= 0:
            continue
        valid = row_of[:windows] == row_of[n - 1:]  # the window stays inside one row
        starts = np.flatnonzero(valid)
        if not starts.size:
            continue
        keys = (row_of[starts].astype(u) << u(64 - _ROW_BITS)) | \
            (_window_hashes(hashes, n)[starts] >> u(_ROW_BITS))
        uniq, inv, cnt = np.unique(keys, return_inverse=True, return_counts=True)
        if kind == "dup":
            chosen = cnt[inv] >= 2
        else:
            first = np.full(uniq.size, starts.size, dtype=np.int64)
            np.minimum.at(first, inv, np.arange(starts.size))
            chars = prefix[starts[first] + n] - prefix[starts[first]]
            urow = (uniq >> u(64 - _ROW_BITS)).astype(np.int64)
            ok = np.flatnonzero(cnt >= 2)
            # most frequent, then most characters, then the one that occurs first
            order = ok[np.lexsort((-first[ok], chars[ok], cnt[ok], urow[ok]))]
            last = np.r_[urow[order][1:] != urow[order][:-1], True] if order.size else order
            best = np.zeros(uniq.size, dtype=bool)
            best[order[last.astype(bool)]] = True
            chosen = best[inv]
        cover = _covered(starts[chosen], n, hashes.size)
        hit = np.bincount(row_of, weights=lens * cover, minlength=rows)
        np.divide(hit, total, out=frac, where=total > 0)
    return out


def ngram_fractions(values: pl.Series, top: list[int], dup: list[int]
                    ) -> dict[tuple[str, int], np.ndarray]:
    """For each row: ("top", n) the share of token characters covered by the row's most
    frequent repeated n-gram; ("dup", n) the share covered by all repeated n-grams (see
    SelectGopherRepetition). Computed in chunks of bounded size.

    >>> import polars as pl
    >>> f = ngram_fractions(pl.Series(["a b a b a b", "x y z", None]), [2], [2])
    >>> f[("top", 2)].tolist(), f[("dup", 2)].tolist()
    ([1.0, 0.0, 0.0], [1.0, 0.0, 0.0])
    """
    import numpy as np
    import polars as pl

    values = values.cast(pl.String)
    sizes = values.str.count_matches(TOKEN).fill_null(0).to_numpy().astype(np.int64)
    ends = np.cumsum(sizes)
    out = {(k, n): np.zeros(len(values)) for k, ns in (("top", top), ("dup", dup)) for n in ns}
    i = 0
    while i < len(values):
        before = int(ends[i - 1]) if i else 0
        j = int(np.searchsorted(ends, before + _CHUNK_TOKENS, side="right"))
        j = min(max(j, i + 1), i + (1 << _ROW_BITS))
        for key, frac in _chunk_fractions(values.slice(i, j - i), top, dup).items():
            out[key][i:j] = frac
        i = j
    return out


_RULES = ("max_dup_lines", "max_dup_paragraphs", "max_dup_line_chars",
          "max_dup_paragraph_chars", "max_top_ngram", "max_dup_ngram")


@register
class SelectGopherRepetition(Filter):
    """Keep texts that pass Gopher's repetition rules (Rae et al. 2021, table A1), with the
    paper's thresholds as defaults (bounds inclusive; null turns a rule off).

    Lines are the stripped non-blank lines (dcc/ops/quality.py); paragraphs are the runs of
    lines between blank lines (a line of only whitespace is blank), joined by "\\n"; both are
    compared exactly. A repeat is a line (paragraph) equal to an earlier one; the first copy
    is not a repeat.

    * max_dup_lines (0.3), max_dup_paragraphs (0.3): share of lines (paragraphs) that are
      repeats.
    * max_dup_line_chars (0.2), max_dup_paragraph_chars (0.2): characters in repeats over
      the characters of all lines (paragraphs).
    * max_top_ngram ([0.20, 0.18, 0.16], for n = 2, 3, 4: value i applies to n = i + 2):
      the share of the text's token characters covered by its most frequent n-gram of
      tokens, if that one occurs at least twice (among equally frequent n-grams, the one
      with the most characters, then the one that occurs first); overlapping occurrences
      count a token once.
    * max_dup_ngram ([0.15, 0.14, 0.13, 0.12, 0.11, 0.10], for n = 5..10: value i applies to
      n = i + 5): the share of token characters covered by any n-gram that occurs at least
      twice, every occurrence included, each token counted once.

    Tokens are whitespace-separated and compared exactly (case and punctuation count);
    their characters exclude the whitespace between them. A text with no lines or fewer than
    n tokens has fraction 0 for those rules, so "" and null pass.

    How this differs from datatrove's GopherRepetitionFilter, which reads the same table:
    datatrove divides by the length of the whole text, counts only the second and later
    copies of a duplicated n-gram (skipping ahead after each), and counts a top n-gram's
    characters times its count even when the occurrences overlap; dcc follows the paper's
    wording ("characters contained within all duplicate n-grams ... not counting characters
    in overlapping n-grams more than once").

    Example:  select.gopher_repetition(field="text", max_dup_ngram=null)

    >>> import polars as pl
    >>> from dcc.ops.base import RunContext
    >>> spam = "Buy now!\\nBuy now!\\nBuy now!\\nGreat deals on shoes today."
    >>> ok = "Each line here says something new.\\nSo does this one, which is fine."
    >>> df = pl.DataFrame({"t": [spam, ok, None]})
    >>> SelectGopherRepetition(field="t").run([df], RunContext("t"))["t"].to_list() == [ok, None]
    True
    """

    name = "select.gopher_repetition"
    cost = 80.0
    version = 1
    params = (
        _field_param(),
        P("max_dup_lines", "float", 0.3, doc="most share of repeated lines", min=0.0, max=1.0, null=True),
        P("max_dup_paragraphs", "float", 0.3, doc="most share of repeated paragraphs",
          min=0.0, max=1.0, null=True),
        P("max_dup_line_chars", "float", 0.2, doc="most share of characters in repeated lines",
          min=0.0, max=1.0, null=True),
        P("max_dup_paragraph_chars", "float", 0.2,
          doc="most share of characters in repeated paragraphs", min=0.0, max=1.0, null=True),
        P("max_top_ngram", "list[number]", [0.20, 0.18, 0.16],
          doc="for n = 2, 3, 4: most share covered by the top n-gram", null=True),
        P("max_dup_ngram", "list[number]", [0.15, 0.14, 0.13, 0.12, 0.11, 0.10],
          doc="for n = 5..10: most share covered by repeated n-grams", null=True),
    )

    def validate(self) -> list[tuple[str | None, str]]:
        for name, ns in (("max_top_ngram", TOP_NS), ("max_dup_ngram", DUP_NS)):
            values = self.p[name]
            if values is not None and len(values) > len(ns):
                why = (f"'{name}' takes at most {len(ns)} values, for n = {ns[0]}..{ns[-1]} "
                       f"(got {len(values)})")
                return [(name, why)]
            if values is not None and any(v < 0 or v > 1 for v in values):
                return [(name, f"'{name}' values must be between 0 and 1 (got {values})")]
        return _some_rule(self.p, _RULES)

    def _ngram_bounds(self) -> list[tuple[str, int, float]]:
        out = []
        for kind, name, ns in (("top", "max_top_ngram", TOP_NS), ("dup", "max_dup_ngram", DUP_NS)):
            out += [(kind, n, float(v)) for n, v in zip(ns, self.p[name] or [])]
        return out

    def predicate(self) -> pl.Expr:
        import polars as pl

        field = self.p["field"]
        lines = lines_of(field)
        paras = (pl.col(field).str.replace_all(r"[^\S\n]+\n", "\n")
                 .str.replace_all(r"\n[^\S\n]+", "\n").str.strip_chars()
                 .str.extract_all(r"[^\n]+(?:\n[^\n]+)*"))
        repeat = ~pl.element().is_first_distinct()

        def repeated_chars(items: pl.Expr) -> pl.Expr:
            return items.list.eval(pl.when(repeat).then(pl.element().str.len_chars())
                                   .otherwise(0)).list.sum()

        def all_chars(items: pl.Expr) -> pl.Expr:
            return items.list.eval(pl.element().str.len_chars()).list.sum()

        checks = {
            "max_dup_lines": (_share(_count(lines, repeat), lines.list.len()), "max"),
            "max_dup_paragraphs": (_share(_count(paras, repeat), paras.list.len()), "max"),
            "max_dup_line_chars": (_share(repeated_chars(lines), all_chars(lines)), "max"),
            "max_dup_paragraph_chars": (_share(repeated_chars(paras), all_chars(paras)),
                                        "max"),
        }
        cond = _rules(self.p, checks)
        bounds = self._ngram_bounds()
        if bounds:
            cond = cond & pl.col(field).map_batches(lambda s: _ngrams_ok(s, bounds),
                                                    return_dtype=pl.Boolean)
        return cond


def _ngrams_ok(values: pl.Series, bounds: list[tuple[str, int, float]]) -> pl.Series:
    import numpy as np
    import polars as pl

    from dcc.ops.rules import _text

    values = _text("select.gopher_repetition", values)
    fracs = ngram_fractions(values, [n for k, n, _ in bounds if k == "top"],
                            [n for k, n, _ in bounds if k == "dup"])
    ok = np.ones(len(values), dtype=bool)
    for kind, n, bound in bounds:
        ok &= fracs[(kind, n)] <= bound
    return pl.Series(values.name, ok)

