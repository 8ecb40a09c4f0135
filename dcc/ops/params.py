"""Typed operator parameters: the one place that says what a value may be.

The compiler checks recipe arguments against these specs (with spans) and the operator
constructor checks them again for Python callers, using the same messages, which follow the
form "'min' must be int (got 'abc')".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


class _Required:
    def __repr__(self) -> str:
        return "<required>"


REQUIRED: Any = _Required()

# Type names a parameter may declare; "number" accepts int or float.
TYPES = ("str", "int", "float", "number", "bool", "list[str]", "list[number]", "list[int]",
         "list", "dict", "any", "str|list[str]", "dataset", "expr")


@dataclass(frozen=True)
class P:
    """One parameter of an operator.

    `column` marks a parameter whose value names input columns the operator reads (str or
    list of str); the schema check uses it. `path` marks a file path, resolved against the
    folder of the recipe that names it. `positional` lets a source take it without a name.
    """

    name: str
    type: str
    default: Any = REQUIRED
    doc: str = ""
    min: float | None = None
    max: float | None = None
    choices: tuple[Any, ...] | None = None
    column: bool = False
    # For column parameters: the column type the operator needs ("str", "number", "list"),
    # checked at compile time when the input schema knows the column's type.
    col_type: str | None = None
    path: bool = False
    positional: bool = False
    # null is accepted even though the default is not (a rule on by default that null turns off)
    null: bool = False
    # The value may be a column expression (dcc.compiler.expr) instead of a literal: a bound
    # that depends on the row. Type "expr" means it must be one (select.where's condition).
    expr: bool = False

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def nullable(self) -> bool:
        return self.default is None or self.null

    def describe_type(self) -> str:
        return self.type + (" | null" if self.nullable else "")


def type_name(value: Any) -> str:
    """The recipe-language name of a Python value's type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "str"
    if isinstance(value, list):
        return "list"
    if isinstance(value, dict):
        return "dict"
    return type(value).__name__


def _matches(type_: str, value: Any) -> bool:
    if type_ == "any":
        return True
    if "|" in type_ and not type_.startswith("list["):
        return any(_matches(t, value) for t in type_.split("|"))
    if type_.startswith("list[") and isinstance(value, list):
        inner = type_[5:-1]
        return all(_matches(inner, v) for v in value)
    is_bool = isinstance(value, bool)
    return {
        "str": isinstance(value, str),
        "int": isinstance(value, int) and not is_bool,
        "float": isinstance(value, (int, float)) and not is_bool,
        "number": isinstance(value, (int, float)) and not is_bool,
        "bool": is_bool,
        "list": isinstance(value, list),
        "dict": isinstance(value, dict),
    }.get(type_, False)


def check_value(spec: P, value: Any) -> str | None:
    """Return an error message if `value` does not fit `spec`, else None."""
    if value is None:
        return None if spec.nullable else (
            f"'{spec.name}' must be {spec.type} (got null)")
    if spec.expr or spec.type == "expr":
        from dcc.compiler.expr import is_tree

        if is_tree(value):
            return None  # type-checked against the input's columns by the compiler
        if spec.type == "expr":
            return f"'{spec.name}' must be an expression (got {type_name(value)} {value!r})"
    if not _matches(spec.type, value):
        shown = repr(value) if not isinstance(value, (list, dict)) else type_name(value)
        return f"'{spec.name}' must be {spec.type} (got {type_name(value)} {shown})"
    if spec.choices is not None and value not in spec.choices:
        opts = ", ".join(repr(c) for c in spec.choices)
        return f"'{spec.name}' must be one of {opts} (got {value!r})"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if spec.min is not None and value < spec.min:
            return f"'{spec.name}' must be >= {spec.min:g} (got {value!r})"
        if spec.max is not None and value > spec.max:
            return f"'{spec.name}' must be <= {spec.max:g} (got {value!r})"
    if spec.column and isinstance(value, list) and not value:
        return f"'{spec.name}' must name at least one column (got [])"
    return None


def coerce(spec: P, value: Any) -> Any:
    """Normalise a checked value: ints given for float params become floats."""
    if spec.type == "float" and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value
