"""The operator interface: a small subclass overrides one method, the base owns the rest.

An operator is a typed, documented unit: a `name`, a `version`, typed `params`, the columns it
reads and writes, and what kind of work it does. The kind decides how executors and the
optimizer may treat it:

* `Source`      — no inputs; reads files. Keyed by file *content*, not by path.
* `Filter`      — row-wise predicate as a polars expression; pure, fusable, reorderable.
* `Map`         — row-wise column rewrite as polars expressions; pure, fusable.
* `RowPython`   — row-wise work that truly needs Python per row (model calls); row-memoized
                  when `expensive`.
* `DatasetOp`   — needs the whole dataset (dedup, sampling, diversity): a barrier.
* `Combinator`  — several dataset inputs (concat, mix).

Operators never know where they run: executors hand them polars DataFrames and a
`RunContext`, and they return a DataFrame. Heavy libraries are imported inside methods so that
the registry (and `dcc --help`) stays cheap.
"""

from __future__ import annotations

import functools
import inspect
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar

from dcc.errors import ParamError
from dcc.ops.params import REQUIRED, P, check_value, coerce
from dcc.schema import Schema

if TYPE_CHECKING:
    from collections.abc import Iterator

    import numpy as np
    import polars as pl


@dataclass
class RunContext:
    """What an executor gives an operator besides its inputs."""

    node: str
    seed: int = 0
    stats: dict[str, Any] = field(default_factory=dict)
    model_calls: int = 0
    memo: Any = None  # dcc.cache.rowmemo.RowMemo for expensive row-wise operators
    requests: Any = None  # the model-request memo (dcc.ops.models.memo), when there is a store
    calls_counted: bool = False  # set once the operator counts its own model calls
    options: dict[str, Any] = field(default_factory=dict)
    progress: Callable[[int, int | None], None] = lambda done, total: None


class Op:
    """Base class of every operator. Subclasses set the class attributes and one method."""

    name: ClassVar[str] = ""
    version: ClassVar[int] = 1
    params: ClassVar[tuple[P, ...]] = ()
    kind: ClassVar[str] = "dataset"
    # Number of dataset inputs: 0 for sources, 1 for most, None for "one or more".
    n_inputs: ClassVar[int | None] = 1
    rowwise: ClassVar[bool] = False
    stochastic: ClassVar[bool] = False
    expensive: ClassVar[bool] = False
    # Relative cost of one row, for the optimizer (a regex is ~1, a model call ~1000).
    cost: ClassVar[float] = 1.0
    # The name of a dict parameter that collects named arguments the operator does not
    # declare (rewrite.derive(n_words=words(output), ...)); None: such arguments are errors.
    extra_args: ClassVar[str | None] = None
    # Python modules this operator needs beyond the core, with the pip extra that brings them.
    requires: ClassVar[tuple[tuple[str, str], ...]] = ()

    def __init__(self, **values: Any) -> None:
        self.p: dict[str, Any] = self.bind(values)
        problems = self.validate()
        if problems:
            raise ParamError(f"{self.name}: {problems[0][1]}")

    # -- signature -------------------------------------------------------------------------
    @classmethod
    def spec(cls, name: str) -> P | None:
        return next((p for p in cls.params if p.name == name), None)

    @classmethod
    def bind(cls, values: dict[str, Any]) -> dict[str, Any]:
        """Check values against the specs and fill defaults; raise ParamError on misuse."""
        out: dict[str, Any] = {}
        for name in values:
            if cls.spec(name) is None:
                raise ParamError(f"{cls.name} has no parameter '{name}'")
        for spec in cls.params:
            if spec.name in values:
                msg = check_value(spec, values[spec.name])
                if msg:
                    raise ParamError(f"{cls.name}: {msg}")
                out[spec.name] = coerce(spec, values[spec.name])
            elif spec.required:
                raise ParamError(f"{cls.name}: missing required parameter '{spec.name}'")
            else:
                out[spec.name] = spec.default
        return out

    def validate(self) -> list[tuple[str | None, str]]:
        """Cross-parameter checks: (parameter or None, message) pairs. Override to add."""
        return []

    @classmethod
    def doc(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")

    @classmethod
    def family(cls) -> str:
        return cls.name.split(".")[0] if "." in cls.name else "combine"

    @classmethod
    def code_source(cls) -> str:
        """The source of this class and its dcc bases: part of every node key."""
        parts = []
        for klass in cls.__mro__:
            if klass is object or not klass.__module__.startswith(("dcc", cls.__module__)):
                continue
            try:
                parts.append(class_source(klass))
            except (OSError, TypeError):
                parts.append(f"{klass.__module__}.{klass.__qualname__}")
        return "\n".join(parts)

    # -- columns ---------------------------------------------------------------------------
    def reads(self) -> list[str]:
        """Columns this operator reads; by default the values of its column parameters and
        the columns its expressions name."""
        from dcc.compiler.expr import columns, is_tree

        cols: list[str] = []
        for spec in self.params:
            v = self.p.get(spec.name)
            if spec.column and v is not None:
                cols.extend(v if isinstance(v, list) else [v])
            elif (spec.expr or spec.type == "expr") and v is not None:
                trees = v.values() if spec.type == "dict" else [v]
                cols.extend(c for t in trees if is_tree(t) for c in columns(t))
        return list(dict.fromkeys(cols))

    def writes(self) -> list[str]:
        return []

    def output_schema(self, inputs: list[Schema]) -> Schema:
        base = inputs[0] if inputs else Schema.unknown()
        return base.with_columns(**{c: "any" for c in self.writes()})

    def model_identity(self, stat_cache: Any = None) -> str | None:
        """What identifies the model this operator calls (resolved revision or a hash of its
        weight files), for the node key; None when it calls no model. `stat_cache` lets a
        local model's files be hashed once and trusted while their stat is unchanged."""
        return None

    def input_columns(self, needed: set[str] | None) -> set[str] | None:
        """Columns this operator needs from its input(s) when its consumers need `needed`
        of its output (None: all). Projection pruning walks this backwards from the exports.
        By default: what is needed, minus what it writes itself, plus what it reads."""
        if needed is None:
            return None
        return (set(needed) - set(self.writes())) | set(self.reads())

    def key_params(self) -> dict[str, Any]:
        """Parameters that go into the node key: all but file paths (keyed by content)."""
        return {k: v for k, v in self.p.items() if not (self.spec(k) and self.spec(k).path)}

    # -- execution -------------------------------------------------------------------------
    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        raise NotImplementedError(f"{type(self).__name__} must implement run()")

    def null_text_casts(self, schema: Any) -> list[pl.Expr]:
        """Casts that let text operators read a column whose every value is null (polars
        types it Null, not String): such a column is read as text, all nulls. Executors
        apply them before a row-wise operator (or a fused stage) reads the column."""
        import polars as pl

        cols = [c for spec in self.params if spec.column and spec.col_type == "str"
                for c in _as_list(self.p.get(spec.name))]
        return [pl.col(c).cast(pl.String) for c in dict.fromkeys(cols)
                if schema.get(c) == pl.Null]

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.p.items())
        return f"{self.name}({args})"


class Source(Op):
    """Reads a dataset from files; keyed by the content of `files()`."""

    kind = "source"
    n_inputs = 0

    def files(self) -> list[str]:
        return [self.p["path"]]

    def infer_schema(self) -> Schema:
        return Schema.unknown()

    def load(self, ctx: RunContext) -> pl.DataFrame:
        raise NotImplementedError

    def head(self, n: int) -> pl.DataFrame | None:
        """The first `n` rows, read cheaply, for the optimizer's selectivity sampling; None
        when this source cannot read a prefix without reading everything."""
        return None

    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        return self.load(ctx)

    def output_schema(self, inputs: list[Schema]) -> Schema:
        return self.infer_schema()


class Filter(Op):
    """A pure row predicate. Rows where it is false or null are dropped."""

    kind = "filter"
    rowwise = True

    def predicate(self) -> pl.Expr:
        raise NotImplementedError

    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        df = inputs[0]
        casts = self.null_text_casts(df.schema)
        return (df.with_columns(casts) if casts else df).filter(self.predicate())


class Map(Op):
    """A pure row-wise rewrite of columns, as polars expressions aliased to column names."""

    kind = "map"
    rowwise = True

    def exprs(self) -> list[pl.Expr]:
        raise NotImplementedError

    def transform(self, frame: Any, carry: tuple[str, ...] = ()) -> Any:
        """Apply to a DataFrame or a LazyFrame (same API); column projections override it
        and must keep the `carry` columns (an executor's bookkeeping) untouched."""
        return frame.with_columns(self.exprs())

    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        df = inputs[0]
        casts = self.null_text_casts(df.schema)
        return self.transform(df.with_columns(casts) if casts else df)


class RowPython(Op):
    """Row-wise work that needs Python per row (model calls). `process` maps a batch of rows
    to a batch of results of the same length; the engine memoizes rows when `expensive`."""

    kind = "rowpython"
    rowwise = True

    def process(self, rows: list[dict[str, Any]], ctx: RunContext) -> list[dict[str, Any]]:
        raise NotImplementedError


class DatasetOp(Op):
    """Needs the whole dataset (dedup, sampling): nothing is reordered across it."""

    kind = "dataset"

    def select_rows(self, df: pl.DataFrame, ctx: RunContext) -> np.ndarray | None:
        """Optional: when this operator's output is always a subset of its input's rows, in
        the same order, with the same columns and types, return the kept row positions
        (strictly increasing) instead; the engine then takes those rows itself and stores a
        small row-selection artifact. None (the default): the engine calls run()."""
        return None

    def streams_selection(self) -> bool:
        """Whether select_rows_streamed answers for these parameters."""
        return type(self).select_rows_streamed is not DatasetOp.select_rows_streamed

    def select_rows_streamed(self, batches: Callable[[], Iterator[pl.DataFrame]], rows: int,
                             ctx: RunContext) -> np.ndarray:
        """Optional, for an input larger than memory: the same positions as select_rows,
        from `batches()` (each call starts a new pass over the input's batches, in order)
        and the row count, holding far less than the rows themselves. Operators that do not
        define it (or whose streams_selection() is false) get their input loaded whole."""
        raise NotImplementedError(f"{self.name} does not select rows from batches")


ANNOTATE = "none"  # keep="none": a scorer writes its score column and drops no row


class MinMaxBounds:
    """For operators that keep rows whose value lies within `min` and `max` (both inclusive,
    either may be null but not both).

    A scorer (an operator that writes its score to a column) can annotate only: with
    `keep="none"` it keeps every row and drops nothing, so the cut can happen later (a
    `select.where` on the score, or a ranked `keep` elsewhere). An operator whose bounds are
    optional (`annotate_without_bounds`: perplexity and IFD without `min`/`max`) annotates
    when neither bound is given, instead of asking for one."""

    p: dict[str, Any]
    annotate_without_bounds: ClassVar[bool] = False

    @staticmethod
    def annotate_param() -> P:
        """The `keep` parameter of a bounded scorer: only "none" (annotate only)."""
        return P("keep", "str", None, choices=(ANNOTATE,),
                 doc='"none": write the score column and drop no row (annotate only)')

    def annotates(self) -> bool:
        """True when the bounds keep every row: `keep="none"`, or no bound where none is
        needed (a ranked `keep` of a KeepBest operator may still cut)."""
        if self.p.get("keep") == ANNOTATE:
            return True
        return (self.annotate_without_bounds and self.p.get("min") is None
                and self.p.get("max") is None)

    def validate(self) -> list[tuple[str | None, str]]:
        lo, hi = self.p.get("min"), self.p.get("max")
        if self.p.get("keep") == ANNOTATE and (lo is not None or hi is not None):
            given = "min" if lo is not None else "max"
            return [("keep", f"give keep=\"none\" (annotate only) or '{given}', not both")]
        if lo is None and hi is None and not self.annotates():
            scorer = self.spec("keep") is not None  # type: ignore[attr-defined]
            return [(None, "give 'min', 'max' or both (with neither every row is kept)"
                           + (", or keep=\"none\" to only write the score" if scorer else ""))]
        plain = not isinstance(lo, dict) and not isinstance(hi, dict)
        if lo is not None and hi is not None and plain and lo > hi:
            return [("max", f"'max' must be >= 'min' (got min={lo}, max={hi})")]
        return []

    def within(self, value: pl.Expr) -> pl.Expr:
        """A bound may be a column expression (`max=len(instruction) * 4`): compared row by
        row; where it is null the row is dropped, as a failed comparison."""
        import polars as pl

        from dcc.compiler.expr import is_tree, to_polars

        lo, hi = self.p.get("min"), self.p.get("max")
        cond = pl.lit(True)
        if self.annotates():
            return cond
        if lo is not None:
            cond = cond & (value >= (to_polars(lo) if is_tree(lo) else lo))
        if hi is not None:
            cond = cond & (value <= (to_polars(hi) if is_tree(hi) else hi))
        return cond

    def within_value(self, value: float | None) -> bool:
        """`within` for one Python score (plain bounds only): a null or NaN score is out of
        any bound, and kept only when the operator annotates."""
        if self.annotates():
            return True
        if value is None or value != value:
            return False
        lo, hi = self.p.get("min"), self.p.get("max")
        return (lo is None or value >= lo) and (hi is None or value <= hi)


class CountOrFraction:
    """For operators that keep `n` rows or a `fraction` of them: exactly one must be given;
    a fraction keeps floor(fraction x rows), computed exactly from the decimal written (0.29
    of 100 is 29, not 28 as binary floating point would give)."""

    p: dict[str, Any]

    def validate(self) -> list[tuple[str | None, str]]:
        if (self.p["n"] is None) == (self.p["fraction"] is None):
            return [(None, "give exactly one of 'n' and 'fraction'")]
        return []

    def size(self, rows: int) -> int:
        import math
        from fractions import Fraction

        if self.p["n"] is not None:
            return min(self.p["n"], rows)
        return math.floor(Fraction(repr(self.p["fraction"])) * rows)


class KeepBest:
    """`keep=`: one argument for which scored rows stay, on operators that write a score.

    The forms, for an operator whose best rows are its `keep_best` end ("top": the highest
    scores, "bottom": the lowest):

      keep=0.3                      the best 30%: floor(0.3 x candidates), exact decimal
      keep=100                      the best 100 rows (an int is a count, a float a fraction)
      keep={"top": 0.1}             the highest-scored 10% ({"top": 500}: 500 rows)
      keep={"bottom": 500}          the lowest-scored 500 rows
      keep={"min": 2, "max": 50}    scores from 2 to 50, both inclusive (either may be absent)
      keep={"top": 0.1, "max": 1}   the range first, then the top 10% of the rows in it
      keep={"zscore": 3}            scores within mean +- 3 x std of the scored rows
      keep={"percentile": [5, 95]}  scores from the 5th to the 95th percentile, inclusive
      keep="none"                   every row, with its score: annotate only (the same as
                                    no `keep` and no threshold parameter, but explicit)

    The score goes to `score_column` (or to the operator's `into` parameter, where it has
    one), which `keep_column`, `writes` and `output_schema` all read.

    A row without a score (null or NaN) is never kept. "Candidates" are the scored rows in
    the range: a bare number ranks the rows in the operator's `keep_eligible` range (IFD:
    scores <= 1), top/bottom rank the rows in the dict's own min/max range (all scored rows
    when it has none). Ties go to the earlier row; kept rows keep their input order. `keep`
    replaces the operator's own threshold parameters (`keep_replaces`): giving both is an
    error.

    A ranked form needs every row's score, so it cannot be decided row by row. The
    operator's per-row step applies only `keep_row` (score present and in range), which
    depends on the row alone and so stays row-memoized; the executor then hands the whole
    result to `select_kept`, which takes the top or bottom k. An operator with a ranked
    `keep` is therefore not row-wise (`rowwise` is false on that instance): no optimizer
    pass may move a filter across it or fuse it, since that would change which rows rank
    first. Scores needed only for ranking (the operator does not list the score column in
    `writes()`) are dropped after it.

    The statistical forms take their thresholds from the data, as Data-Juicer's refined
    recipes do (the 3-sigma rule): a fixed threshold on a model score is tied to one model and
    one corpus, a band relative to the node's own scores is not. They are computed on the
    scores of the node's input (every row with a score; null and NaN take no part and are not
    kept), so like a ranked form they need every row and are not row-wise:
      zscore: k    mean +- k x std, both bounds inclusive, with the POPULATION std (ddof=0,
                   numpy's default: the rows are the whole population being filtered, not a
                   sample of one). When every score is equal (std 0) every scored row stays.
      percentile: [lo, hi]  the lo-th and hi-th percentiles (0 <= lo <= hi <= 100), both
                   inclusive, by linear interpolation between the closest ranks (numpy's
                   default `method="linear"`), so [0, 100] keeps every scored row.
    A statistical form stands alone in the dict (no top/bottom/min/max beside it). The bounds
    it computed go to the node's stats as `keep_bounds: [lo, hi]` (null, null without scored
    rows), with `keep_mean`/`keep_std` for zscore and `dropped_by_bounds`, so a build's
    report says where the cut fell. `dcc lock` pins them from the last build's record and
    `dcc build --locked` stops when a build computes others (`dcc.engine.lockfile`).
    """

    p: dict[str, Any]
    name: ClassVar[str]
    rowwise: ClassVar[bool]
    keep_best: ClassVar[str] = "top"
    keep_eligible: ClassVar[dict[str, float]] = {}
    keep_replaces: ClassVar[tuple[str, ...]] = ("min", "max")
    KEYS: ClassVar[tuple[str, ...]] = ("top", "bottom", "min", "max", "zscore", "percentile")
    STAT_KEYS: ClassVar[tuple[str, ...]] = ("zscore", "percentile")
    score_column: ClassVar[str] = ""

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)  # type: ignore[call-arg]
        if self.keep_ranked():
            self.rowwise = False  # type: ignore[misc]

    @staticmethod
    def keep_param(best: str) -> P:
        """The `keep` parameter; `best` says what the operator's best rows are."""
        return P("keep", "number|dict|str", None,
                 doc=f"rows to keep: a fraction (0.3) or count (100) of the best ({best}), "
                     "{'top'|'bottom': fraction or count}, {'min': x, 'max': y}, "
                     "{'zscore': k} (mean +- k std), {'percentile': [lo, hi]}, "
                     "or \"none\" (annotate only: every row, with its score)")

    def keep_column(self) -> str:
        """The column the operator writes its score to: its `into`, else `score_column`."""
        return self.p.get("into") or self.score_column

    def writes(self) -> list[str]:
        return [self.keep_column()]

    def output_schema(self, inputs: list[Schema]) -> Schema:
        return super().output_schema(inputs).with_columns(  # type: ignore[misc]
            **{self.keep_column(): "float"})

    def keep_given(self) -> bool:
        """True when `keep` can drop rows (given, and not "none")."""
        return self.p.get("keep") not in (None, ANNOTATE)

    # -- checking ------------------------------------------------------------------------------
    def keep_problems(self) -> list[tuple[str | None, str]]:
        keep = self.p.get("keep")
        if keep is None:
            return []
        given = [n for n in self.keep_replaces if self.p.get(n) is not None]
        if given and keep == ANNOTATE:
            return [("keep", f"give keep=\"none\" (annotate only) or '{given[0]}', not both")]
        if given:
            return [("keep", f"give 'keep' or '{given[0]}', not both (a threshold in 'keep' is "
                             "keep={\"min\": ..., \"max\": ...})")]
        if isinstance(keep, str):
            if keep == ANNOTATE:
                return []
            return [("keep", f"'keep' as a string is only \"none\" (annotate only: every "
                             f"row, with its score) (got {keep!r})")]
        if not isinstance(keep, dict):
            msg = _amount_problem("keep", keep)
            return [("keep", msg)] if msg else []
        return [("keep", msg)] if (msg := _keep_dict_problem(keep)) else []

    # -- deciding ------------------------------------------------------------------------------
    def keep_form(self) -> tuple[str | None, int | float | None, float | None, float | None]:
        """(rank "top"/"bottom"/None, amount, lowest, highest score kept) of a valid `keep`."""
        keep = self.p.get("keep")
        if not self.keep_given():
            return None, None, None, None
        if not isinstance(keep, dict):
            return (self.keep_best, keep, self.keep_eligible.get("min"),
                    self.keep_eligible.get("max"))
        rank = next((k for k in ("top", "bottom") if k in keep), None)
        return rank, keep.get(rank) if rank else None, keep.get("min"), keep.get("max")

    def keep_stat(self) -> tuple[str, Any] | None:
        """("zscore", k) or ("percentile", [lo, hi]) for a statistical `keep`, else None."""
        keep = self.p.get("keep")
        if isinstance(keep, dict):
            for key in self.STAT_KEYS:
                if key in keep:
                    return key, keep[key]
        return None

    def keep_ranked(self) -> bool:
        """True when `keep` compares rows with each other (a ranked or statistical form):
        it needs the whole dataset."""
        return self.keep_form()[0] is not None or self.keep_stat() is not None

    def keep_row(self, score: float | None) -> bool:
        """The row-wise part of `keep`: the score exists and is in range (always true without
        `keep`). A ranked form's final cut is `select_kept`'s."""
        if not self.keep_given():
            return True
        if score is None or score != score:  # null or NaN
            return False
        _, _, lo, hi = self.keep_form()
        return (lo is None or score >= lo) and (hi is None or score <= hi)

    def keep_size(self, rows: int) -> int:
        import math
        from fractions import Fraction

        amount = self.keep_form()[1]
        if isinstance(amount, float):
            return math.floor(Fraction(repr(amount)) * rows)
        return min(int(amount or 0), rows)

    def select_kept(self, df: pl.DataFrame, ctx: RunContext) -> pl.DataFrame:
        """The whole-dataset part of `keep`, run by the executor after every row's step: the
        top or bottom k of the candidates, in input order."""
        import polars as pl

        col = self.keep_column()
        rank = self.keep_form()[0]
        stat = self.keep_stat()
        if stat is not None and col in df.columns:
            df = self._keep_within_bounds(df, col, *stat, ctx)
        if rank is not None and col in df.columns:
            score = pl.col(col).cast(pl.Float64).fill_nan(None)
            df = df.filter(score.is_not_null())
            order = df.select(pl.arg_sort_by(score, descending=rank == "top",
                                             maintain_order=True)).to_series()
            kept = order.head(self.keep_size(df.height)).sort()
            ctx.stats["dropped_by_rank"] = df.height - kept.len()
            df = df[kept]
        if col in df.columns and col not in self.writes():  # type: ignore[attr-defined]
            df = df.drop(col)
        return df

    @staticmethod
    def _keep_within_bounds(df: pl.DataFrame, col: str, form: str, value: Any,
                            ctx: RunContext) -> pl.DataFrame:
        """The rows whose score lies in the bounds `form` computes from the scores in `df`."""
        import numpy as np
        import polars as pl

        score = pl.col(col).cast(pl.Float64).fill_nan(None)
        df = df.filter(score.is_not_null())
        values = df[col].cast(pl.Float64).to_numpy()
        lo = hi = None
        if values.size:
            if form == "zscore":
                mean, std = float(values.mean()), float(values.std())  # population std
                if values.min() == values.max():  # one value: its mean and std may round
                    mean, std = float(values[0]), 0.0  # off it (0.1 x 3); keep it exactly
                ctx.stats["keep_mean"], ctx.stats["keep_std"] = mean, std
                lo, hi = mean - value * std, mean + value * std
            else:
                lo, hi = (float(x) for x in np.percentile(values, value))  # linear
        ctx.stats["keep_bounds"] = [lo, hi]
        if lo is None:
            return df
        kept = df.filter(score.is_between(lo, hi, closed="both"))
        ctx.stats["dropped_by_bounds"] = df.height - kept.height
        return kept


def _amount_problem(name: str, value: Any) -> str | None:
    """A fraction (float 0..1) or count (int >= 0), or a message saying what is wrong."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"'{name}' must be a fraction or a count (got {type(value).__name__} {value!r})"
    if value < 0:
        return f"'{name}' must be >= 0 (got {value!r})"
    if isinstance(value, float) and value > 1:
        return (f"'{name}' as a float is a fraction of the rows, from 0 to 1 (got {value!r}); "
                f"for a count write an int, for a threshold keep={{\"min\": {value!r}}}")
    return None


def _keep_dict_problem(keep: dict[str, Any]) -> str | None:
    import difflib

    for key in keep:
        if key not in KeepBest.KEYS:
            close = difflib.get_close_matches(str(key), KeepBest.KEYS, n=1)
            hint = f"did you mean '{close[0]}'? " if close else ""
            return (f"'keep' has no key '{key}'; {hint}its keys: top, bottom, min, max, "
                    "zscore, percentile")
    if not keep:
        return ("'keep' is an empty dict; give 'top', 'bottom', 'min', 'max', 'zscore' or "
                "'percentile'")
    stat = [k for k in KeepBest.STAT_KEYS if k in keep]
    if stat:
        return _keep_stat_problem(stat[0], keep)
    if "top" in keep and "bottom" in keep:
        return "'keep' takes 'top' or 'bottom', not both"
    for key in ("top", "bottom"):
        if key in keep and (msg := _amount_problem(f"keep.{key}", keep[key])):
            return msg
    for key in ("min", "max"):
        value = keep.get(key)
        if key in keep and (isinstance(value, bool) or not isinstance(value, (int, float))):
            return f"'keep.{key}' must be a number (got {type(value).__name__} {value!r})"
    if keep.get("min") is not None and keep.get("max") is not None and keep["min"] > keep["max"]:
        return f"'keep.max' must be >= 'keep.min' (got min={keep['min']}, max={keep['max']})"
    return None


def _keep_stat_problem(form: str, keep: dict[str, Any]) -> str | None:
    others = sorted(k for k in keep if k != form)
    if others:
        return (f"'keep.{form}' takes its bounds from the data and stands alone; drop "
                f"{', '.join(repr(k) for k in others)} (or filter on the score in a node "
                "before or after)")
    value = keep[form]
    if form == "zscore":
        if isinstance(value, bool) or not isinstance(value, (int, float)) or \
                not math.isfinite(value) or value <= 0:
            return ("'keep.zscore' is k in mean +- k x std: a number > 0, e.g. "
                    f"{{\"zscore\": 3}} (got {value!r})")
        return None
    ok = isinstance(value, (list, tuple)) and len(value) == 2 and all(
        not isinstance(v, bool) and isinstance(v, (int, float)) and 0 <= v <= 100
        for v in value)
    if not ok:
        return ("'keep.percentile' is [lo, hi], two percentiles from 0 to 100, e.g. "
                f"{{\"percentile\": [5, 95]}} (got {value!r})")
    if value[0] > value[1]:
        return f"'keep.percentile' needs lo <= hi (got {list(value)!r})"
    return None


def class_source(klass: type) -> str:
    """`inspect.getsource(klass)`, the same text, from one parse of each module file.

    On Python < 3.13 inspect finds a class by parsing its whole module with `ast` on every
    call: fingerprinting a cold build's operators parsed `select.py` once per class, a
    quarter of a second of a build that checks everything else in a few milliseconds. Here
    each file is parsed once per process; a class the table lacks falls back to inspect
    (tests/ops/test_class_source.py checks the two agree on every registered operator)."""
    import sys

    module = sys.modules.get(klass.__module__)
    filename = getattr(module, "__file__", None)
    span = _class_spans(filename).get(klass.__qualname__) if filename else None
    if span is None:
        return inspect.getsource(klass)
    import linecache

    first, last = span
    return "".join(linecache.getlines(filename)[first:last])


@functools.lru_cache(maxsize=None)
def _class_spans(filename: str) -> dict[str, tuple[int, int]]:
    """qualname -> (first line, 0-based, decorators included; end line) of every class in a
    file, the first of each name as inspect's class finder picks it."""
    import ast
    import linecache

    lines = linecache.getlines(filename)
    try:
        tree = ast.parse("".join(lines))
    except (SyntaxError, ValueError):
        return {}
    spans: dict[str, tuple[int, int]] = {}

    def walk(node: ast.AST, stack: tuple[str, ...]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                inner = (*stack, child.name)
                first = (child.decorator_list[0] if child.decorator_list else child).lineno
                spans.setdefault(".".join(inner), (first - 1, child.end_lineno or first))
                walk(child, inner)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                walk(child, (*stack, child.name, "<locals>"))
            else:
                walk(child, stack)

    walk(tree, ())
    return spans


class HelperCode:
    """Adds to an operator's code fingerprint the helpers that decide its output: whole
    modules (`"dcc.ops.answers"`) or objects in them (`"dcc.ops.scorers:kcenter_greedy"`).

    `Op.code_source` covers the classes of the operator's MRO only, so without this a fix to
    an answer rule, a reply parser or a prompt template kept at module level would leave old
    results cached; with the request memo such a re-run costs no model call. The helper
    modules' files are also part of the cross-process code memo's key
    (`dcc.engine.keys.op_code`), so editing one re-fingerprints the operator. `code_helpers`
    is what a family adds beyond `helpers` (the generators: their parsers and their own
    module)."""

    helpers: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def code_helpers(cls) -> tuple[str, ...]:
        return cls.helpers

    @classmethod
    def code_source(cls) -> str:
        import importlib

        parts = [super().code_source()]  # type: ignore[misc]
        for ref in cls.code_helpers():
            module, _, attr = ref.partition(":")
            try:
                obj = importlib.import_module(module)
                parts.append(inspect.getsource(getattr(obj, attr) if attr else obj))
            except (ImportError, AttributeError, OSError, TypeError):
                parts.append(ref)
        return "\n".join(parts)


class Combinator(Op):
    """Takes one or more datasets positionally."""

    kind = "combinator"
    n_inputs = None


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


__all__ = ["ANNOTATE", "HelperCode", "Op", "CountOrFraction", "KeepBest", "MinMaxBounds", "Source", "Filter", "Map", "RowPython", "DatasetOp", "Combinator",
           "RunContext", "P", "REQUIRED"]
