"""Column plumbing: keep, drop and rename columns.

Row-wise and pure, so the optimizer fuses them with neighbouring filters and maps, and they
are what makes projection pruning pay: columns no later step reads are never loaded from
sources that can skip them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dcc.errors import DataError
from dcc.ops import register
from dcc.ops.base import Map
from dcc.ops.params import P
from dcc.schema import Schema

if TYPE_CHECKING:
    import polars as pl


class _Project(Map):
    cost = 0.1

    def exprs(self) -> list[pl.Expr]:
        return []

    def _check(self, frame: Any, cols: list[str]) -> None:
        have = frame.collect_schema().names() if hasattr(frame, "collect_schema") else []
        missing = [c for c in cols if c not in have]
        if missing:
            raise DataError(f"{self.name}: no column {missing[0]!r} (have: {', '.join(have)})")


@register
class ColumnsKeep(_Project):
    """Keep only the listed columns, in the listed order.

    A listed column the input lacks is an error (at compile time when the input's schema is
    known, else at run time).

    Example:  slim = data | columns.keep(names=["instruction", "output"])
    """

    name = "columns.keep"
    version = 1
    params = (P("names", "list[str]", doc="columns to keep, in this order", column=True),)

    def transform(self, frame: Any, carry: tuple[str, ...] = ()) -> Any:
        self._check(frame, self.p["names"])
        return frame.select([*self.p["names"], *carry])

    def output_schema(self, inputs: list[Schema]) -> Schema:
        base = inputs[0]
        return Schema({c: base.columns.get(c, "any") for c in self.p["names"]}, open=False)

    def input_columns(self, needed: set[str] | None) -> set[str] | None:
        keep = set(self.p["names"])
        return keep if needed is None else keep & set(needed)


@register
class ColumnsDrop(_Project):
    """Drop the listed columns; listing a column the input lacks is an error.

    Example:  public = data | columns.drop(names=["email"])
    """

    name = "columns.drop"
    version = 1
    params = (P("names", "list[str]", doc="columns to drop", column=True),)

    def transform(self, frame: Any, carry: tuple[str, ...] = ()) -> Any:
        self._check(frame, self.p["names"])
        return frame.drop(self.p["names"])

    def output_schema(self, inputs: list[Schema]) -> Schema:
        return inputs[0].without(*self.p["names"])

    def input_columns(self, needed: set[str] | None) -> set[str] | None:
        return None if needed is None else set(needed) | set(self.p["names"])


@register
class ColumnsRename(_Project):
    """Rename columns: `mapping={"old": "new", ...}`; other columns are unchanged.

    Renaming onto an existing column that is not itself renamed away is an error.

    Example:  alpaca = data | columns.rename(mapping={"question": "instruction"})
    """

    name = "columns.rename"
    version = 1
    params = (P("mapping", "dict", doc="old name -> new name"),)

    def validate(self) -> list[tuple[str | None, str]]:
        bad = [k for k, v in self.p["mapping"].items() if not isinstance(v, str)]
        if bad:
            return [("mapping", f"'mapping' values must be column names (got {bad[0]!r})")]
        return []

    def reads(self) -> list[str]:
        return list(self.p["mapping"])

    def transform(self, frame: Any, carry: tuple[str, ...] = ()) -> Any:
        self._check(frame, list(self.p["mapping"]))
        return frame.rename(self.p["mapping"])

    def output_schema(self, inputs: list[Schema]) -> Schema:
        base = inputs[0]
        m = self.p["mapping"]
        return Schema({m.get(c, c): t for c, t in base.columns.items()}, base.open)

    def input_columns(self, needed: set[str] | None) -> set[str] | None:
        if needed is None:
            return None
        back = {v: k for k, v in self.p["mapping"].items()}
        return {back.get(c, c) for c in needed} | set(self.p["mapping"])
