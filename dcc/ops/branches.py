"""Bringing branches back together: `interleave` alternates their rows, `merge` puts them
side by side on the same rows.

Both take datasets positionally, like `concat`. `interleave` follows Hugging Face
`datasets.interleave_datasets` exactly (the same rows in the same order for the same seed,
checked by a test), so a mixture written for `datasets` keeps its meaning here. `merge` is
what brings several teachers' answers, computed on parallel branches of one prompt set,
back onto one row per prompt.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from dcc.errors import DataError, ParamError
from dcc.ops import register
from dcc.ops.base import Combinator, P, RunContext
from dcc.ops.combinators import _union
from dcc.schema import Schema

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

_STOPS = ("first_exhausted", "all_exhausted", "all_exhausted_without_replacement")


def interleave_indices(lengths: list[int], probs: list[float] | None, seed: int,
                       stop: str) -> np.ndarray:
    """Positions into the inputs concatenated in order, as interleave takes them (see
    Interleave; the same indices `datasets.interleave_datasets` selects).

    >>> interleave_indices([3, 4, 5], None, 0, "first_exhausted").tolist()
    [0, 3, 7, 1, 4, 8, 2, 5, 9]
    >>> interleave_indices([3, 4, 3], None, 0, "all_exhausted_without_replacement").tolist()
    [0, 3, 7, 1, 4, 8, 2, 5, 9, 6]
    """
    import numpy as np

    lens = np.asarray(lengths, dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(lens)[:-1]]).astype(np.int64)
    if probs is None:
        if stop == "first_exhausted":
            return (offsets[None, :] + np.arange(lens.min())[:, None]).ravel()
        if stop == "all_exhausted":
            return (np.mod(np.arange(lens.max())[:, None], lens[None, :]) + offsets).ravel()
        # without replacement: cycle, skipping the inputs already exhausted
        k = np.arange(lens.max())[:, None]
        grid = offsets[None, :] + k
        return grid[k < lens[None, :]]
    p = np.asarray(probs, dtype=np.float64)
    rng = np.random.default_rng(seed)
    drawable = p > 0
    if stop == "all_exhausted_without_replacement":
        return _draw_without_replacement(rng, p, lens, offsets)
    counts = np.zeros(len(lens), dtype=np.int64)
    blocks = []
    reached = counts >= lens
    while not (reached[drawable].all() if stop == "all_exhausted" else reached[drawable].any()):
        block = rng.choice(len(lens), size=1000, p=p)
        blocks.append(block)
        counts += np.bincount(block, minlength=len(lens))
        reached = counts >= lens
    draws = np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.int64)
    ends = [np.flatnonzero(draws == s)[lens[s] - 1] for s in range(len(lens))
            if drawable[s] and counts[s] >= lens[s]]
    used = draws[:(max(ends) if stop == "all_exhausted" else min(ends)) + 1]
    out = np.empty(len(used), dtype=np.int64)
    for s in np.flatnonzero(drawable):
        pos = np.flatnonzero(used == s)
        out[pos] = np.arange(len(pos)) % lens[s] + offsets[s]
    return out


def _draw_without_replacement(rng: Any, p: np.ndarray, lens: np.ndarray,
                              offsets: np.ndarray) -> np.ndarray:
    """HF's without-replacement walk, a block at a time: inputs are drawn in blocks of
    1000; a draw of an input that still has rows takes its next row, any other draw is
    skipped, until every input with weight > 0 has given all its rows."""
    import numpy as np

    live = np.flatnonzero(p > 0)
    taken = np.zeros(len(lens), dtype=np.int64)
    where, rows = [], []  # (block, position in block) and the row taken there
    block_no = 0
    while (taken[live] < lens[live]).any():
        block = rng.choice(len(lens), size=1000, p=p)
        for s in live:
            pos = np.flatnonzero(block == s)[:max(int(lens[s] - taken[s]), 0)]
            where.append(block_no * 1000 + pos)
            rows.append(offsets[s] + taken[s] + np.arange(len(pos)))
            taken[s] += len(pos)
        block_no += 1
    if not rows:
        return np.zeros(0, dtype=np.int64)
    order = np.argsort(np.concatenate(where), kind="stable")
    return np.concatenate(rows)[order]


@register
class Interleave(Combinator):
    """The rows of several datasets alternated, or drawn at random with weights `probs`,
    exactly as Hugging Face `datasets.interleave_datasets(..., probabilities=probs,
    seed=seed, stopping_strategy=stop)` selects them.

    Without `probs`: one row from each input in turn (a, b, c, a, b, c, ...). stop=
    "first_exhausted" (default) stops once the shortest input has given all its rows (so
    each input gives that many); "all_exhausted" continues until the longest one has, going
    round the shorter inputs again from their first row (each gives max(rows) rows);
    "all_exhausted_without_replacement" continues until every input has given every row
    once, skipping the exhausted ones.

    With `probs` (relative weights, one per input, normalized to sum 1): each next row
    comes from an input drawn at random with those probabilities, numpy's
    default_rng(seed).choice(inputs, size=1000, p=probs) drawn in blocks of 1000 as HF does,
    each input giving its rows in order. "first_exhausted" stops right after the draw that
    takes the last row of some input; "all_exhausted" stops once every input has given all
    its rows at least once, restarting an exhausted input from its first row; the
    without-replacement strategy skips draws of exhausted inputs. An input with weight 0 is
    never drawn and cannot be exhausted, so with either "all_exhausted" strategy it is an
    error (HF loops forever there); an empty input with weight > 0 is an error.

    Columns are unioned as in `concat`. Example:
    mixed = interleave(code, math, chat, probs=[0.5, 0.3, 0.2], seed=1)

    >>> import polars as pl
    >>> a, b = pl.DataFrame({"x": [0, 1, 2]}), pl.DataFrame({"x": [10, 11]})
    >>> Interleave().run([a, b], RunContext("t"))["x"].to_list()
    [0, 10, 1, 11]
    >>> Interleave(stop="all_exhausted").run([a, b], RunContext("t"))["x"].to_list()
    [0, 10, 1, 11, 2, 10]
    """

    name = "interleave"
    version = 1
    stochastic = True
    params = (
        P("probs", "list[number]", None, doc="relative weight of each input (null: alternate)"),
        P("seed", "int", 0, doc="random seed for the draws (used with probs)"),
        P("stop", "str", "first_exhausted", doc="when to stop (HF stopping_strategy)",
          choices=_STOPS),
    )

    def validate(self) -> list[tuple[str | None, str]]:
        w = self.p["probs"]
        if w is not None and (any(x < 0 for x in w) or not any(x > 0 for x in w)):
            return [("probs", f"'probs' must be >= 0 with at least one > 0 (got {w})")]
        return []

    def _probs(self, k: int) -> list[float] | None:
        w = self.p["probs"]
        if w is None:
            return None
        if len(w) != k:
            raise ParamError(f"interleave: 'probs' has {len(w)} values for {k} inputs; give "
                             f"one per input")
        total = float(sum(w))
        # already normalized: pass as written, so the draws match HF bit for bit
        return [float(x) for x in w] if abs(total - 1.0) < 1e-9 else [x / total for x in w]

    def output_schema(self, inputs: list[Schema]) -> Schema:
        self._probs(len(inputs))
        return Schema.union(inputs)

    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        probs = self._probs(len(inputs))
        lengths = [df.height for df in inputs]
        self._check(lengths, probs)
        idx = interleave_indices(lengths, probs, self.p["seed"], self.p["stop"])
        return _union(inputs)[idx]

    def _check(self, lengths: list[int], probs: list[float] | None) -> None:
        stop = self.p["stop"]
        live = [i for i, n in enumerate(lengths) if probs is None or probs[i] > 0]
        empty = [i + 1 for i in live if lengths[i] == 0]
        if empty and (probs is not None or stop == "all_exhausted"):
            raise DataError(f"interleave: input {empty[0]} is empty; it cannot be "
                            f"{'drawn from' if probs else 'gone round again'} (drop it, or "
                            f"give it weight 0)")
        if probs is not None and stop != "first_exhausted" and len(live) < len(lengths):
            zero = next(i + 1 for i in range(len(lengths)) if i not in live)
            raise DataError(f"interleave: input {zero} has weight 0, so stop=\"{stop}\" "
                            f"would never end; give it a weight or use \"first_exhausted\"")


# -- merge ------------------------------------------------------------------------------------
_TMP = "__dcc_merge_{}_{}"
_ROW = "__dcc_merge_row"


@register
class Merge(Combinator):
    """Put several datasets side by side: each row of the first gets the columns of its
    matching row in each of the others.

    With `on` (key column(s), in every input): a row of the first input matches the row of
    input k with equal keys. Keys must be unique in inputs 2, 3, ... (a repeated key there is
    an error naming it; dedup first), and may repeat in the first input. A null key matches
    nothing. how="inner" (default) keeps the rows of the first input that match in every
    other input; how="left" keeps all of them, with nulls where an input has no match. Rows
    keep the first input's order. Keys must have the same type in every input.

    With on=null: rows are matched by position (a zip): row i of every input goes on output
    row i, and every input must have the same number of rows.

    Columns: the first input's, then each next input's new ones in order; the key columns
    once. A non-key column that several inputs have is, with overlap="check" (default), kept
    once, and must hold equal values (null equals null) on every output row where those
    inputs matched, else the build fails naming the column and row: two teachers' answers
    both called "response" must be renamed (columns.rename) or merged with overlap="suffix",
    which keeps input k's copy as "NAME_k" (k = 2, 3, ...); overlap="first" keeps the
    first input's copy without checking.

    Example:  both = merge(answers_a, answers_b, on="id", overlap="suffix")

    >>> import polars as pl
    >>> a = pl.DataFrame({"id": [1, 2, 3], "q": ["x", "y", "z"]})
    >>> b = pl.DataFrame({"id": [3, 1], "r": ["R3", "R1"]})
    >>> Merge(on="id").run([a, b], RunContext("t")).rows()
    [(1, 'x', 'R1'), (3, 'z', 'R3')]
    >>> Merge(on="id", how="left").run([a, b], RunContext("t"))["r"].to_list()
    ['R1', None, 'R3']
    """

    name = "merge"
    version = 1
    params = (
        P("on", "str|list[str]", None, doc="key column(s); null: match rows by position",
          column=True),
        P("how", "str", "inner", doc="inner: rows matched in every input; left: all rows "
          "of the first input", choices=("inner", "left")),
        P("overlap", "str", "check", doc="a non-key column in several inputs: check equal, "
          "keep the first, or suffix later copies", choices=("check", "first", "suffix")),
    )

    def _keys(self) -> list[str]:
        on = self.p["on"]
        return [] if on is None else [on] if isinstance(on, str) else list(on)

    def _plan(self, columns: list[list[str]]) -> list[dict[str, str | None]]:
        """For each input, its non-key columns -> output name (None: a shared copy that is
        checked or dropped)."""
        keys, seen = set(self._keys()), set()
        plans = []
        for k, cols in enumerate(columns, 1):
            plan: dict[str, str | None] = {}
            for c in cols:
                if c in keys:
                    continue
                if c not in seen:
                    plan[c] = c
                elif self.p["overlap"] == "suffix":
                    plan[c] = f"{c}_{k}"
                else:
                    plan[c] = None
            seen |= set(cols)
            plans.append(plan)
        return plans

    def output_schema(self, inputs: list[Schema]) -> Schema:
        plans = self._plan([list(s.columns) for s in inputs])
        cols: dict[str, str] = {k: inputs[0].columns.get(k, "any") for k in self._keys()}
        for schema, plan in zip(inputs, plans):
            for c, out in plan.items():
                if out is not None:
                    cols[out] = schema.columns[c]
        first = list(inputs[0].columns) if inputs else []
        ordered = {c: cols[c] for c in first if c in cols}
        ordered.update(cols)
        return Schema(ordered, open=any(s.open for s in inputs))

    def input_columns(self, needed: set[str] | None) -> set[str] | None:
        if needed is None:
            return None
        base = {m.group(1) for c in needed if (m := re.fullmatch(r"(.+)_\d+", c))}
        return set(needed) | base | set(self._keys())

    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        import polars as pl

        if len(inputs) < 2:
            raise DataError(f"merge needs at least two datasets (got {len(inputs)})")
        keys = self._keys()
        plans = self._plan([df.columns for df in inputs])
        for k, df in enumerate(inputs, 1):
            missing = [c for c in keys if c not in df.columns]
            if missing:
                raise DataError(f"merge: input {k} has no key column '{missing[0]}' (have: "
                                f"{', '.join(df.columns) or 'none'})")
        out = inputs[0].with_row_index(_ROW)
        hits = []
        for k, (df, plan) in enumerate(zip(inputs[1:], plans[1:]), 2):
            right = df.rename({c: _TMP.format(k, c) for c in plan}).with_columns(
                pl.lit(True).alias(_TMP.format(k, "")))
            hits.append(_TMP.format(k, ""))
            out = self._attach(out, right, k, keys, inputs[0])
        if self.p["how"] == "inner" and keys:
            out = out.filter(pl.all_horizontal([pl.col(h).is_not_null() for h in hits]))
        out = out.sort(_ROW)
        self._check_overlaps(out, plans, inputs)
        renames, drops = {}, [*hits, _ROW]
        for k, plan in enumerate(plans[1:], 2):
            for c, name in plan.items():
                if name is None:
                    drops.append(_TMP.format(k, c))
                else:
                    renames[_TMP.format(k, c)] = name
        clash = [n for n in renames.values() if n in out.columns]
        if clash:
            raise DataError(f"merge: the suffixed column '{clash[0]}' already exists; rename "
                            f"one of them first")
        return out.drop(drops).rename(renames)

    def _attach(self, out: pl.DataFrame, right: pl.DataFrame, k: int, keys: list[str],
                first: pl.DataFrame) -> pl.DataFrame:
        import polars as pl

        if not keys:
            if right.height != first.height:
                raise DataError(f"merge: input {k} has {right.height} rows but input 1 has "
                                f"{first.height}; merging by position (on=null) needs equal "
                                f"row counts")
            return pl.concat([out, right], how="horizontal")
        for c in keys:
            a, b = first.schema[c], right.schema[c]
            if a != b and pl.Null not in (a, b):
                raise DataError(f"merge: key '{c}' is {a} in input 1 but {b} in input {k}")
        dup = right.filter(pl.struct(keys).is_duplicated() & pl.all_horizontal(
            [pl.col(c).is_not_null() for c in keys]))
        if dup.height:
            shown = ", ".join(f"{c}={dup[c][0]!r}" for c in keys)
            raise DataError(f"merge: input {k} has key {shown} more than once; keys must be "
                            f"unique in every input after the first (select.dedup(fields="
                            f"{keys!r}) keeps the first)".replace("'", '"'))
        right = right.with_columns(pl.col(c).cast(first.schema[c]) for c in keys
                                   if right.schema[c] == pl.Null)
        return out.join(right, on=keys, how="left")  # null keys match nothing

    def _check_overlaps(self, out: pl.DataFrame, plans: list[dict[str, str | None]],
                        inputs: list[pl.DataFrame]) -> None:
        import polars as pl

        if self.p["overlap"] != "check":
            return
        owner = {c: 1 for c in plans[0]}
        for k, plan in enumerate(plans[1:], 2):
            for c, name in plan.items():
                if name is not None:
                    owner[c] = k
                    continue
                first_k = owner[c]
                hit = pl.col(_TMP.format(k, "")).is_not_null()
                if first_k > 1:
                    hit = hit & pl.col(_TMP.format(first_k, "")).is_not_null()
                mine = pl.col(c) if first_k == 1 else pl.col(_TMP.format(first_k, c))
                theirs = pl.col(_TMP.format(k, c))
                try:
                    bad = out.with_row_index("__n").filter(
                        hit & mine.ne_missing(theirs))
                except pl.exceptions.PolarsError:
                    raise DataError(f"merge: column '{c}' has different types in input "
                                    f"{first_k} and input {k}; rename one (columns.rename) "
                                    f"or use overlap=\"suffix\"") from None
                if bad.height:
                    row = bad.row(0, named=True)
                    a = row[c if first_k == 1 else _TMP.format(first_k, c)]
                    b = row[_TMP.format(k, c)]
                    raise DataError(
                        f"merge: column '{c}' differs between input {first_k} and input {k} "
                        f"on output row {row['__n'] + 1} ({_short(a)} vs {_short(b)}); rename "
                        f"it in one input (columns.rename), or use overlap=\"suffix\" or "
                        f"\"first\"")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
