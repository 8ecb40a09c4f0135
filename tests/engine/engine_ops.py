"""Operators that exist only for the engine tests, registered like a third-party operator.

`test.shout` is an expensive row-wise operator (a stand-in for a model call) that counts the
rows it is asked to process, so tests can see what the row memo saves. Importing this module
registers it; a child `dcc` process imports it before running the CLI (see SHOUT_CLI).
"""

from __future__ import annotations

from typing import Any, ClassVar

from dcc.ops import register
from dcc.ops.base import P, RowPython, RunContext


@register
class Shout(RowPython):
    """Upper-case `field` into `shout`, one "model call" per row. Test-only."""

    name = "test.shout"
    version = 1
    expensive = True
    cost = 1000.0
    params = (P("field", "str", doc="the text column to shout", column=True, col_type="str"),)

    calls: ClassVar[int] = 0
    fail_after: ClassVar[int | None] = None  # raise once this many rows were processed

    def writes(self) -> list[str]:
        return ["shout"]

    def process(self, rows: list[dict[str, Any]], ctx: RunContext) -> list[dict[str, Any]]:
        cls = type(self)
        if cls.fail_after is not None and cls.calls + len(rows) > cls.fail_after:
            raise RuntimeError("the model server went away")
        cls.calls += len(rows)
        return [{"shout": (row[self.p["field"]] or "").upper()} for row in rows]


# `python -c SHOUT_CLI build ...`: the dcc command with test.shout registered.
SHOUT_CLI = (
    "import sys; sys.path.insert(0, {here!r}); import engine_ops; "
    "from dcc.cli import main; main()"
)
