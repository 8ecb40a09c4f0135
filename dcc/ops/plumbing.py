"""Row plumbing: `rows.explode`, `rows.group`, `rows.shuffle`, `rows.sort`, and the inline
source `load.rows`.

These reshape a dataset's rows the way `columns.*` reshapes its columns. Every "generate N
items per row" step needs `rows.explode` after it, and `rows.group` puts the items back on
their row; `load.rows` lets a recipe carry its own topic lists and seed prompts.

Each of the four row operators depends on more than one row or on row order, so each is a
`DatasetOp`: the optimizer never fuses or reorders filters across it. `rows.shuffle` is
seeded (numpy's default_rng), so a build gives the same order every time.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from dcc.errors import DataError
from dcc.ops import register
from dcc.ops.base import DatasetOp, P, RunContext, Source
from dcc.ops.rules import require_dtype
from dcc.schema import Schema

if TYPE_CHECKING:
    import polars as pl


def _names(value: str | list[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _require_columns(op: str, df: pl.DataFrame, cols: list[str]) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        have = ", ".join(df.columns) or "none"
        raise DataError(f"{op}: no column '{missing[0]}' (have: {have})")


# -- load.rows --------------------------------------------------------------------------------
@register
class LoadRows(Source):
    """Rows written in the recipe itself: topic lists, seed prompts, few-shot examples.

    The rows are a list of objects; they load exactly as a JSON Lines file holding one object
    per line would with load.jsonl: columns are the union of all keys in first-seen order, a
    row without a key gets null there, int and float mix to float, scalars of different
    kinds (int and str) become str, and values that cannot be combined (an object in one row,
    a list in another) are an error naming the row. `[]` gives an empty dataset with no
    columns. The node is keyed by the rows themselves, so editing one rebuilds what depends
    on it and nothing else.

    Example:  topics = load.rows([{"topic": "algebra"}, {"topic": "geometry"}])

    >>> LoadRows(rows=[{"a": 1}, {"a": 2.5, "b": "x"}]).load(RunContext("t")).rows()
    [(1.0, None), (2.5, 'x')]
    """

    name = "load.rows"
    version = 1
    params = (P("rows", "list", doc="the rows, a list of objects ({...})", positional=True),)

    def files(self) -> list[str]:
        return []

    def validate(self) -> list[tuple[str | None, str]]:
        for i, row in enumerate(self.p["rows"], 1):
            if not isinstance(row, dict):
                kind = type(row).__name__ if not isinstance(row, (str, int, float, list)) \
                    else {str: "str", int: "int", float: "float", list: "list"}[type(row)]
                return [("rows", f"'rows' must hold objects ({{...}}); row {i} is {kind}")]
            try:
                json.dumps(row, allow_nan=False)
            except (TypeError, ValueError) as e:
                return [("rows", f"'rows': row {i} is not JSON data ({e})")]
        return []

    def infer_schema(self) -> Schema:
        from dcc.ops.sources import _schema_of_rows

        return _schema_of_rows(self.p["rows"])

    def load(self, ctx: RunContext) -> pl.DataFrame:
        import polars as pl

        from dcc.ops.sources import _read_ndjson

        lines = [json.dumps(row, ensure_ascii=False).encode() for row in self.p["rows"]]
        try:
            return _read_ndjson(b"\n".join(lines))
        except pl.exceptions.PolarsError as exc:
            for k in range(1, len(lines) + 1):  # rows written in a recipe are few
                try:
                    _read_ndjson(b"\n".join(lines[:k]))
                except pl.exceptions.PolarsError:
                    raise DataError(f"load.rows: row {k}'s types do not fit the rows before "
                                    f"it ({str(exc).splitlines()[0]})") from None
            raise

    def head(self, n: int) -> pl.DataFrame | None:
        return self.load(RunContext(node=self.name)).head(n)


# -- rows.explode -----------------------------------------------------------------------------
@register
class RowsExplode(DatasetOp):
    """One row per element of the list column `field`; the other columns are repeated.

    Rows keep their order and each row's elements keep theirs. A row whose list is empty or
    null gives no row (keep_empty=false, the default) or one row with null in `field`
    (keep_empty=true). With several fields (`field=["q", "a"]`) the lists of one row are
    exploded together, element i of each on the i-th new row; they must have equal lengths
    (null counts as empty), else the build fails naming the row. `index` names a new column
    holding each element's 0-based position in its list (null for a kept empty row), which
    lets `rows.group` restore the order later. With unnest=true the elements must be
    objects (structs): their keys become columns in place of `field` (a key that clashes with
    another column is an error). A `field` that is not a list column is an error.

    Example:  items = generated | rows.explode(field="questions", index="k")

    >>> import polars as pl
    >>> df = pl.DataFrame({"id": [1, 2, 3], "xs": [["a", "b"], [], None]})
    >>> RowsExplode(field="xs", index="k").run([df], RunContext("t")).rows()
    [(1, 'a', 0), (1, 'b', 1)]
    >>> RowsExplode(field="xs", keep_empty=True).run([df], RunContext("t")).rows()
    [(1, 'a'), (1, 'b'), (2, None), (3, None)]
    """

    name = "rows.explode"
    version = 1
    params = (
        P("field", "str|list[str]", doc="the list column(s) to explode", column=True,
          col_type="list"),
        P("index", "str", None, doc="new column for each element's 0-based position"),
        P("keep_empty", "bool", False, doc="keep a row whose list is empty or null, once"),
        P("unnest", "bool", False, doc="spread object elements into columns"),
    )

    def validate(self) -> list[tuple[str | None, str]]:
        fields = _names(self.p["field"])
        if self.p["index"] in fields:
            return [("index", f"'index' must be a new column (got {self.p['index']!r})")]
        if self.p["unnest"] and len(fields) != 1:
            return [("unnest", "unnest=true takes exactly one field")]
        return []

    def writes(self) -> list[str]:
        return [self.p["index"]] if self.p["index"] else []

    def output_schema(self, inputs: list[Schema]) -> Schema:
        base = inputs[0] if inputs else Schema.unknown()
        fields = _names(self.p["field"])
        if self.p["unnest"]:
            return Schema(base.without(*fields).columns, open=True)
        out = base.with_columns(**{f: "any" for f in fields})
        return out.with_columns(**{c: "int" for c in self.writes()})

    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        import polars as pl

        df = inputs[0]
        fields = _names(self.p["field"])
        for f in fields:
            require_dtype(self.name, df.schema, f, "list")
        # an all-null column (type Null) holds no elements: read it as a list of nulls
        df = df.with_columns(pl.col(f).cast(pl.List(pl.Null)) for f in fields
                             if df.schema[f] == pl.Null)
        lens = [pl.col(f).list.len().fill_null(0) for f in fields]
        if len(fields) > 1:
            self._check_lengths(df, fields)
        index = self.p["index"]
        if index is not None:
            if index in df.columns:
                raise DataError(f"{self.name}: 'index' column '{index}' already exists; "
                                f"choose another name")
            df = df.with_columns(pl.int_ranges(0, lens[0], dtype=pl.Int64).alias(index))
        cols = fields + ([index] if index else [])
        if self.p["keep_empty"]:  # an empty or null list stands for one row of nulls
            df = df.with_columns(pl.when(lens[0] > 0).then(pl.col(c))
                                 .otherwise(pl.lit([None], dtype=df.schema[c])).alias(c)
                                 for c in cols)
        else:
            df = df.filter(lens[0] > 0)
        out = df.explode(cols)
        if self.p["unnest"]:
            out = self._unnest(out, fields[0])
        return out

    def _check_lengths(self, df: pl.DataFrame, fields: list[str]) -> None:
        import polars as pl

        lens = df.select([pl.col(f).list.len().fill_null(0).alias(f) for f in fields])
        bad = lens.with_row_index("row").filter(
            pl.any_horizontal([pl.col(f) != pl.col(fields[0]) for f in fields[1:]]))
        if bad.height:
            r = bad.row(0, named=True)
            sizes = ", ".join(f"'{f}' has {r[f]}" for f in fields)
            raise DataError(f"{self.name}: row {r['row'] + 1}: {sizes} elements; lists "
                            f"exploded together must have equal lengths")

    def _unnest(self, df: pl.DataFrame, field: str) -> pl.DataFrame:
        import polars as pl

        dtype = df.schema[field]
        if dtype == pl.Null:
            return df.drop(field)
        if not isinstance(dtype, pl.Struct):
            raise DataError(f"{self.name}: unnest=true needs object elements in '{field}' "
                            f"(got {dtype})")
        clash = [f.name for f in dtype.fields if f.name in df.columns and f.name != field]
        if clash:
            raise DataError(f"{self.name}: the elements' key '{clash[0]}' clashes with the "
                            f"column '{clash[0]}'; rename or drop that column first")
        return df.unnest(field)


# -- rows.group -------------------------------------------------------------------------------
@register
class RowsGroup(DatasetOp):
    """One row per distinct value of the `by` column(s): the inverse of rows.explode.

    Groups come out in the order of their first row. Each `collect` column becomes a list
    of the group's values in row order (nulls kept as null elements); collect=null collects
    every column that is not in `by`. A column in neither `by` nor `collect` keeps the value
    of the group's first row (so grouping back what rows.explode spread restores the other
    columns as they were). Null keys form one group of their own (null equals null). With
    `count` set, that new column holds each group's number of rows. Columns keep their input
    order, `count` last.

    Example:  per_topic = questions | rows.group(by="topic", collect=["question"])

    >>> import polars as pl
    >>> df = pl.DataFrame({"id": [1, 1, 2], "x": ["a", "b", "c"], "src": ["s", "t", "u"]})
    >>> RowsGroup(by="id", collect=["x"], count="n").run([df], RunContext("t")).rows()
    [(1, ['a', 'b'], 's', 2), (2, ['c'], 'u', 1)]
    """

    name = "rows.group"
    version = 1
    params = (
        P("by", "str|list[str]", doc="key column(s): one output row per distinct key",
          column=True),
        P("collect", "list[str]", None, doc="columns gathered into lists (null: all others)",
          column=True),
        P("count", "str", None, doc="new column holding each group's number of rows"),
    )

    def validate(self) -> list[tuple[str | None, str]]:
        by, collect = _names(self.p["by"]), self.p["collect"] or []
        both = [c for c in collect if c in by]
        if both:
            return [("collect", f"'{both[0]}' is a key (in 'by') and cannot be collected")]
        if self.p["count"] in by + collect:
            return [("count", f"'count' must be a new column (got {self.p['count']!r})")]
        return []

    def writes(self) -> list[str]:
        return [self.p["count"]] if self.p["count"] else []

    def _collected(self, columns: list[str]) -> list[str]:
        by = _names(self.p["by"])
        if self.p["collect"] is None:
            return [c for c in columns if c not in by]
        return list(self.p["collect"])

    def output_schema(self, inputs: list[Schema]) -> Schema:
        base = inputs[0] if inputs else Schema.unknown()
        lists = {c: "list" for c in self._collected(list(base.columns))}
        return base.with_columns(**lists, **{c: "int" for c in self.writes()})

    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        import polars as pl

        df = inputs[0]
        by = _names(self.p["by"])
        collect = self._collected(df.columns)
        _require_columns(self.name, df, by + collect)
        count = self.p["count"]
        if count is not None and count in df.columns:
            raise DataError(f"{self.name}: 'count' column '{count}' already exists; choose "
                            f"another name")
        aggs = [pl.col(c) if c in collect else pl.col(c).first()
                for c in df.columns if c not in by]
        if count is not None:
            aggs.append(pl.len().cast(pl.Int64).alias(count))
        out = df.group_by(by, maintain_order=True).agg(aggs)
        return out.select([*df.columns, *([count] if count else [])])


# -- rows.shuffle -----------------------------------------------------------------------------
@register
class RowsShuffle(DatasetOp):
    """All rows in a seeded random order: numpy's default_rng(seed).permutation(rows).

    The same seed and input give the same order on every machine; columns are unchanged.

    Example:  mixed = concat(a, b) | rows.shuffle(seed=7)

    >>> import polars as pl
    >>> df = pl.DataFrame({"i": list(range(5))})
    >>> RowsShuffle(seed=1).run([df], RunContext("t"))["i"].to_list()
    [4, 0, 1, 2, 3]
    """

    name = "rows.shuffle"
    version = 1
    stochastic = True
    params = (P("seed", "int", 0, doc="random seed"),)

    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        import numpy as np

        df = inputs[0]
        return df[np.random.default_rng(self.p["seed"]).permutation(df.height)]


# -- rows.sort --------------------------------------------------------------------------------
@register
class RowsSort(DatasetOp):
    """All rows sorted by the `by` column(s), stably: rows with equal keys keep their order.

    `descending` is one bool for every key or one per key. Numbers compare by value (int
    and float alike), strings by Unicode code point ("B" < "a"), false < true. Nulls come
    last in both directions (nulls_last=false: first); a float NaN sorts as larger than
    every number (last ascending, first descending, always before nulls that come last).
    Sorting by a list or object column is an error.

    Example:  longest_first = data | rows.sort(by="n_tokens", descending=true)

    >>> import polars as pl
    >>> df = pl.DataFrame({"k": [2, None, 1, 2], "v": ["a", "b", "c", "d"]})
    >>> RowsSort(by="k").run([df], RunContext("t"))["v"].to_list()
    ['c', 'a', 'd', 'b']
    >>> RowsSort(by="k", descending=True).run([df], RunContext("t"))["v"].to_list()
    ['a', 'd', 'c', 'b']
    """

    name = "rows.sort"
    version = 1
    params = (
        P("by", "str|list[str]", doc="the key column(s), most significant first",
          column=True),
        P("descending", "bool|list[bool]", False, doc="one bool, or one per key"),
        P("nulls_last", "bool", True, doc="nulls after every value (false: before)"),
    )

    def validate(self) -> list[tuple[str | None, str]]:
        desc, by = self.p["descending"], _names(self.p["by"])
        if isinstance(desc, list) and len(desc) != len(by):
            why = f"'descending' has {len(desc)} values for {len(by)} keys; give one or one per key"
            return [("descending", why)]
        return []

    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        import polars as pl

        df = inputs[0]
        by = _names(self.p["by"])
        _require_columns(self.name, df, by)
        for c in by:
            dtype = df.schema[c]
            if isinstance(dtype, (pl.List, pl.Array, pl.Struct)):
                raise DataError(f"{self.name}: cannot sort by '{c}', a {dtype} column; sort "
                                f"by str, number or bool columns")
        return df.sort(by, descending=self.p["descending"], nulls_last=self.p["nulls_last"],
                       maintain_order=True)
