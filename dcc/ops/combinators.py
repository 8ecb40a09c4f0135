"""Combinators: `concat`, `mix` and `split` take datasets positionally, the rest by name.

All three are deterministic for a given seed: counts are computed with exact fractions from
the decimals written in the recipe, rows are chosen with numpy's default_rng, and kept rows
stay in their original order.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import TYPE_CHECKING

from dcc.errors import DataError, ParamError
from dcc.ops import register
from dcc.ops.base import Combinator, P, RunContext
from dcc.schema import Schema

if TYPE_CHECKING:
    import numpy as np
    import polars as pl


def _union(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """Rows of each frame in turn, columns unioned. A temporary row-index column keeps the
    rows of frames that have no columns (polars would drop them)."""
    import polars as pl

    if not frames:
        return pl.DataFrame()
    tmp = "__dcc_concat_row__"
    return pl.concat([f.with_row_index(tmp) for f in frames], how="diagonal_relaxed").drop(tmp)


def _take(df: pl.DataFrame, rows: np.ndarray) -> pl.DataFrame:
    """The rows at the given positions, in their original order."""
    import numpy as np
    import polars as pl

    keep = np.zeros(df.height, dtype=bool)
    keep[rows] = True
    return df.filter(pl.Series(keep))


@register
class Concat(Combinator):
    """The rows of the first dataset, then those of the second, and so on.

    Columns are the union of all inputs' columns, in first-seen order; a row from an input
    without a column gets null there. A column whose type differs between inputs takes the
    common type (int and float give float; a number and a string give string); where there is
    none (a list and a string) the build fails.

    Example:  export concat(best, grown) to "out/train.jsonl"

    >>> import polars as pl
    >>> a, b = pl.DataFrame({"x": [1]}), pl.DataFrame({"y": ["s"], "x": [2.5]})
    >>> Concat().run([a, b], RunContext("t")).rows()
    [(1.0, None), (2.5, 's')]
    """

    name = "concat"
    version = 1
    params = ()

    def output_schema(self, inputs: list[Schema]) -> Schema:
        return Schema.union(inputs)

    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        return _union(inputs)


def mix_counts(rows: list[int], weights: list[float], n: int | None) -> list[int]:
    """How many rows `mix` takes from each input (see Mix).

    >>> mix_counts([100, 100], [0.7, 0.3], None)
    [99, 43]
    >>> mix_counts([100, 100], [1, 1], 10)
    [5, 5]
    """
    share = [Fraction(str(w)) for w in weights]
    total = sum(share)
    share = [s / total for s in share]
    most = min(math.floor(r / s) for r, s in zip(rows, share) if s > 0)
    if n is None:
        n = most
    elif n > most:
        need = next(i for i, (r, s) in enumerate(zip(rows, share)) if n * s > r)
        raise DataError(f"mix: n={n} needs {math.ceil(n * share[need])} rows from input "
                        f"{need + 1}, which has {rows[need]}; at these weights the inputs "
                        f"can give at most {most} rows (set a smaller n, or n=null)")
    counts = [math.floor(n * s) for s in share]
    by_remainder = sorted(range(len(rows)), key=lambda i: (-(n * share[i] - counts[i]), i))
    for i in by_remainder[:n - sum(counts)]:
        counts[i] += 1
    return counts


@register
class Mix(Combinator):
    """A weighted, seeded sample of several datasets, without replacement.

    Input i gets the share p_i = weights[i] / sum(weights) (weights null: equal shares; a
    zero weight leaves that input out). With n null the output has the largest n that every
    input can supply at its share: n = min over inputs with p_i > 0 of floor(rows_i / p_i). A
    larger n than that is an error. Input i gives floor(n x p_i) rows; the rows still missing
    to reach n go one each to the inputs with the largest remainders n x p_i - floor(n x p_i)
    (ties: earlier input first). Shares are computed exactly from the decimals written.

    Input i's rows are chosen with numpy's default_rng([seed, i]).choice(..., replace=False).
    Output order: the rows taken from the first input, then the second, ..., each input's rows
    in their original order. Columns are unioned as in `concat`.

    Example:  mixed = mix(code, math, chat, weights=[0.5, 0.3, 0.2], n=10000, seed=1)

    >>> import polars as pl
    >>> a, b = pl.DataFrame({"x": list(range(10))}), pl.DataFrame({"x": [100, 101]})
    >>> Mix(weights=[3, 1]).run([a, b], RunContext("t")).height
    8
    """

    name = "mix"
    version = 1
    stochastic = True
    params = (
        P("weights", "list[number]", None, doc="relative share of each input (null: equal)"),
        P("n", "int", None, doc="rows in the output (null: as many as the inputs allow)",
          min=0),
        P("seed", "int", 0, doc="random seed"),
    )

    def validate(self) -> list[tuple[str | None, str]]:
        w = self.p["weights"]
        if w is not None and (any(x < 0 for x in w) or not any(x > 0 for x in w)):
            return [("weights", f"'weights' must be >= 0 with at least one > 0 (got {w})")]
        return []

    def _weights(self, k: int) -> list[float]:
        w = self.p["weights"]
        if w is None:
            return [1.0] * k
        if len(w) != k:
            raise ParamError(f"mix: 'weights' has {len(w)} values for {k} inputs; give one "
                             f"weight per input")
        return w

    def output_schema(self, inputs: list[Schema]) -> Schema:
        self._weights(len(inputs))
        return Schema.union(inputs)

    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        import numpy as np

        counts = mix_counts([df.height for df in inputs], self._weights(len(inputs)),
                            self.p["n"])
        parts = []
        for i, (df, k) in enumerate(zip(inputs, counts)):
            rng = np.random.default_rng([self.p["seed"], i])
            parts.append(_take(df, rng.choice(df.height, size=k, replace=False)))
        ctx.stats["rows_per_input"] = counts
        return _union(parts)


@register
class Split(Combinator):
    """One part of a seeded train/test partition of a dataset.

    The test part has floor(test x rows) rows (computed exactly from the decimal written): the
    first ones of numpy's default_rng(seed).permutation(rows). The train part is every other
    row. Both keep the original order, so split(d, part="train", seed=s) and
    split(d, part="test", seed=s) are disjoint and together hold every row of d once.

    Example:  held_out = split(clean, test=0.05, part="test", seed=3)

    >>> import polars as pl
    >>> df = pl.DataFrame({"i": list(range(10))})
    >>> test = Split(test=0.3, part="test").run([df], RunContext("t"))["i"].to_list()
    >>> train = Split(test=0.3).run([df], RunContext("t"))["i"].to_list()
    >>> len(test), len(train), sorted(test + train) == list(range(10))
    (3, 7, True)
    """

    name = "split"
    version = 1
    stochastic = True
    params = (
        P("test", "float", 0.1, doc="share of rows in the test part (floor)", min=0.0,
          max=1.0),
        P("part", "str", "train", doc="which part this node returns",
          choices=("train", "test")),
        P("seed", "int", 0, doc="random seed; use the same one for both parts"),
    )

    @staticmethod
    def _one(inputs: list) -> None:
        if len(inputs) != 1:
            raise ParamError(f"split takes exactly one dataset (got {len(inputs)}); write "
                             f"split(data, part=\"train\") and split(data, part=\"test\")")

    def output_schema(self, inputs: list[Schema]) -> Schema:
        self._one(inputs)
        return inputs[0]

    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        import numpy as np
        import polars as pl

        self._one(inputs)
        df = inputs[0]
        n_test = math.floor(Fraction(repr(self.p["test"])) * df.height)
        is_test = np.zeros(df.height, dtype=bool)
        is_test[np.random.default_rng(self.p["seed"]).permutation(df.height)[:n_test]] = True
        keep = is_test if self.p["part"] == "test" else ~is_test
        return df.filter(pl.Series(keep))
