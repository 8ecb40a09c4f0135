"""`synthesize.template`: templated generation, no model — a Jinja2 template over a grid or table.

It is a source (it starts a chain, like `load.*`): what it expands is written in the recipe
(`grid`, an inline `table`) or read from a data file beside it (`table="personas.jsonl"`),
so it needs no input dataset, and keying a file by its content works as for any source.
Rendering each row of a dataset that a recipe already has is `rewrite.template`.
Registered by importing `dcc.ops.synthesize`.
"""

from __future__ import annotations

import itertools
import os
from typing import TYPE_CHECKING, Any

from dcc.errors import ParamError
from dcc.ops import register
from dcc.ops.base import HelperCode, P, RunContext, Source
from dcc.ops.prompted import compile_template, render
from dcc.schema import Schema

if TYPE_CHECKING:
    import polars as pl

MAX_ROWS = 10_000_000
TABLE_FORMATS = {".jsonl": "load.jsonl", ".ndjson": "load.jsonl", ".json": "load.json",
                 ".csv": "load.csv", ".parquet": "load.parquet"}


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return {str: "str", list: "list", dict: "struct"}.get(type(value), "any")


def _column_type(values: list[Any]) -> str:
    kinds = {_kind(v) for v in values} - {"null"}
    if not kinds:
        return "null"
    if kinds == {"number"}:
        return "float" if any(isinstance(v, float) for v in values) else "int"
    return kinds.pop() if len(kinds) == 1 else "mixed"


def grid_product(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values: names in sorted order, the last varying
    fastest, each name's values in the order written.

    >>> grid_product({"topic": ["math", "code"], "level": [1, 2]})
    [{'level': 1, 'topic': 'math'}, {'level': 1, 'topic': 'code'}, \
{'level': 2, 'topic': 'math'}, {'level': 2, 'topic': 'code'}]
    """
    names = sorted(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*(grid[k] for k in names))]


@register
class SynthTemplate(HelperCode, Source):
    """Expand a Jinja2 `template` over a grid of values, a table of values, or both.

    * `grid={"topic": ["math", "code"], "level": [1, 2]}`: one row per combination of the
      values (the cartesian product). The order is deterministic: names in sorted order,
      the last name varying fastest, each name's values in the order written (the order of
      a dict's names is not part of the recipe's meaning, so a reordered dict yields the
      same rows).
    * `table`: rows of values, either written in the recipe as a list of objects
      (`table=[{"persona": "a nurse"}, {"persona": "a pilot"}]`) or a data file beside the
      recipe (`table="personas.jsonl"`; .jsonl, .json, .csv or .parquet, read as the
      matching `load.*` source and keyed by its content).
    * both: every table row crossed with every grid combination (table rows outermost).

    The template reads the values by name (`{{ topic }}`); a null renders as the empty
    string, a list or object as JSON. It is sandboxed (Jinja2's
    ImmutableSandboxedEnvironment): a recipe stays data. The result goes to the column
    `field` (default "instruction"); with `keep_values=true` (default) the values are
    columns too, after it, so later steps can select or stratify by them. No model is
    called and nothing is random: the same recipe gives the same rows. A grid or table of
    more than ten million rows is an error.

    Being a source, it starts a chain: `prompts = synthesize.template(...)`, never
    `data | synthesize.template(...)`; to render a template over each row of a dataset the
    recipe already has, use `rewrite.template`.

    Example:  prompts = synthesize.template(template="Write a {{ level }} {{ topic }} problem.",
                                            grid={"topic": ["algebra", "geometry"],
                                                  "level": ["easy", "hard"]})

    >>> op = SynthTemplate(template="{{ topic }}/{{ level }}",
    ...                    grid={"topic": ["math", "code"], "level": [1, 2]})
    >>> op.load(RunContext("t"))["instruction"].to_list()
    ['math/1', 'code/1', 'math/2', 'code/2']
    """

    name = "synthesize.template"
    version = 1
    cost = 30.0
    params = (
        P("template", "str", doc="a Jinja2 template over the grid's names and the table's "
                                 "columns"),
        P("grid", "dict", None, doc="name -> list of values; one row per combination"),
        P("table", "str|list", None, path=True,
          doc="rows of values: a list of objects, or a data file beside the recipe"),
        P("field", "str", "instruction", doc="the column that gets the rendered text"),
        P("keep_values", "bool", True, doc="also write the values as columns"),
    )

    def validate(self) -> list[tuple[str | None, str]]:
        p = self.p
        try:
            names = compile_template(p["template"])[1]
        except ParamError as e:
            return [("template", str(e))]
        if p["grid"] is None and p["table"] is None:
            return [(None, "give 'grid', 'table' or both: the values to expand the template "
                           "over")]
        problem = self._check_grid() or self._check_table()
        if problem:
            return [problem]
        size = self._grid_size() * (len(p["table"]) if isinstance(p["table"], list) else 1)
        if size > MAX_ROWS:
            return [("grid", f"the expansion has {size:,} rows; at most {MAX_ROWS:,}")]
        known = set(p["grid"] or {})
        if isinstance(p["table"], list):
            known |= {k for row in p["table"] for k in row}
        if not isinstance(p["table"], str):  # a file's columns are checked by infer_schema
            missing = sorted(names - known)
            if missing:
                return [("template", f"the template reads '{missing[0]}', which is neither a "
                                     f"grid name nor a table column ({', '.join(sorted(known))})")]
        if p["keep_values"] and p["field"] in known:
            return [("field", f"'field' ({p['field']!r}) is also a value's name; pick another "
                              "column or keep_values=false")]
        return []

    def _check_grid(self) -> tuple[str, str] | None:
        for name, values in (self.p["grid"] or {}).items():
            if not isinstance(values, list) or not values:
                return ("grid", f"grid '{name}' must be a non-empty list of values "
                                f"(got {values!r})")
            if _column_type(values) == "mixed":
                return ("grid", f"grid '{name}' mixes kinds of values "
                                f"({', '.join(sorted({_kind(v) for v in values}))})")
        return None

    def _check_table(self) -> tuple[str, str] | None:
        table = self.p["table"]
        if isinstance(table, str):
            ext = os.path.splitext(table)[1].lower()
            if ext not in TABLE_FORMATS:
                return ("table", f"'table' file must be one of {', '.join(TABLE_FORMATS)} "
                                 f"(got {os.path.basename(table)!r})")
            return None
        if table is None:
            return None
        if not table or not all(isinstance(r, dict) for r in table):
            return ("table", "'table' must be a non-empty list of objects "
                             "({\"name\": value, ...}) or a data file")
        for key in dict.fromkeys(k for row in table for k in row):
            values = [row.get(key) for row in table]
            if _column_type(values) == "mixed":
                return ("table", f"table column '{key}' mixes kinds of values "
                                 f"({', '.join(sorted({_kind(v) for v in values} - {'null'}))})")
        return None

    def _grid_size(self) -> int:
        size = 1
        for values in (self.p["grid"] or {}).values():
            size *= len(values)
        return size

    @classmethod
    def code_helpers(cls) -> tuple[str, ...]:
        return (cls.__module__,)  # its prompt tables and grid helpers live at module level

    # -- the source interface ------------------------------------------------------------
    def files(self) -> list[str]:
        return [self.p["table"]] if isinstance(self.p["table"], str) else []

    def key_params(self) -> dict[str, Any]:
        params = super().key_params()
        if isinstance(self.p["table"], list):  # written in the recipe: keyed as a value
            params["table"] = self.p["table"]
        return params

    def _table_source(self) -> Source:
        from dcc import ops as registry

        path = self.p["table"]
        cls = registry.get(TABLE_FORMATS[os.path.splitext(path)[1].lower()])
        assert cls is not None
        return cls(path=path)  # type: ignore[return-value]

    def infer_schema(self) -> Schema:
        cols: dict[str, str] = {self.p["field"]: "str"}
        if not self.p["keep_values"]:
            return Schema(cols)
        table = self.p["table"]
        if isinstance(table, str):
            found = self._table_source().infer_schema()
            names = compile_template(self.p["template"])[1]
            known = set(found.columns) | set(self.p["grid"] or {})
            missing = sorted(names - known)
            if missing and not found.open:
                raise ParamError(f"{self.name}: the template reads '{missing[0]}', which is "
                                 f"neither a grid name nor a column of {table}")
            cols.update(found.columns)
        elif table is not None:
            keys = dict.fromkeys(k for row in table for k in row)
            cols.update({k: _column_type([r.get(k) for r in table]) for k in keys})
        for name in sorted(self.p["grid"] or {}):
            cols[name] = _column_type(self.p["grid"][name])
        return Schema({k: "any" if v == "mixed" else v for k, v in cols.items()})

    def load(self, ctx: RunContext) -> pl.DataFrame:
        import polars as pl

        table = self.p["table"]
        if isinstance(table, str):
            rows = self._table_source().load(ctx).to_dicts()
        else:
            rows = list(table) if table is not None else [{}]
        combos = grid_product(self.p["grid"] or {})
        template = compile_template(self.p["template"])[0]
        field = self.p["field"]
        out = []
        for row in rows:
            for combo in combos:
                values = {**row, **combo}
                text = render(template, values, self.name)
                out.append({field: text, **values} if self.p["keep_values"] else {field: text})
        ctx.stats["rows"] = len(out)
        if not out:
            return pl.DataFrame({field: []}, schema={field: pl.String})
        return pl.DataFrame(out, infer_schema_length=None)


__all__ = ["SynthTemplate", "grid_product"]
