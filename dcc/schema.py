"""The column schema of a dataset as the compiler sees it, before any data is read.

A schema is *closed* when every column is known (a JSONL source whose first rows were read)
and *open* when more columns may exist (a Hub dataset whose features were not fetched). Reading
a column that a closed schema lacks is a compile-time error; an open schema only warns nothing.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Schema:
    columns: dict[str, str] = field(default_factory=dict)
    open: bool = False

    def has(self, column: str) -> bool:
        return self.open or column in self.columns

    def with_columns(self, **types: str) -> Schema:
        return Schema({**self.columns, **types}, self.open)

    def without(self, *names: str) -> Schema:
        return Schema({k: v for k, v in self.columns.items() if k not in names}, self.open)

    @staticmethod
    def unknown() -> Schema:
        return Schema({}, open=True)

    @staticmethod
    def union(schemas: list[Schema]) -> Schema:
        cols: dict[str, str] = {}
        for s in schemas:
            for k, v in s.columns.items():
                cols[k] = v if cols.get(k, v) == v else "any"
        return Schema(cols, any(s.open for s in schemas))
