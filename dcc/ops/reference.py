"""`dcc ops`: the operator reference, generated from the registry so it cannot drift."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from dcc import ops as registry
from dcc.errors import UsageError
from dcc.ops.params import REQUIRED


def overview() -> Table:
    table = Table(title="dcc operators", title_justify="left")
    for col in ("operator", "kind", "summary"):
        table.add_column(col)
    for name in registry.names():
        cls = registry.get(name)
        assert cls is not None
        first = cls.doc().split("\n\n")[0].replace("\n", " ")
        table.add_row(name, _kind(cls), first)
    table.add_row("evolve", "block", "Run a chain round after round, growing a pool "
                  "(`dcc ops evolve`).")
    return table


def _evolve_block() -> Group:
    """`evolve` is syntax, not an operator, but users look it up the same way."""
    import inspect

    from dcc.ops import evolve

    head = Text("evolve(seed, ...) { chain }  [block]", style="dcc.name")
    return Group(head, Text(""), Text(inspect.cleandoc(evolve.__doc__ or "")), Text(""),
                 _params_table(evolve.BLOCK_PARAMS))


def describe(name: str) -> Group:
    cls = registry.get(name)
    if cls is None and name == "evolve":
        return _evolve_block()
    if cls is None:
        from dcc.compiler.diagnostics import did_you_mean

        hint = did_you_mean(name, registry.names()) or "run `dcc ops` to list operators"
        raise UsageError(f"unknown operator '{name}'; {hint}")
    head = Text(f"{cls.name}  v{cls.version}  [{_kind(cls)}]", style="dcc.name")
    return Group(head, Text(""), Text(cls.doc()), Text(""), _params_table(cls.params))


def _params_table(specs: tuple) -> Table:
    params = Table("parameter", "type", "default", "description", title="parameters",
                   title_justify="left")
    for p in specs:
        default = "required" if p.default is REQUIRED else repr(p.default)
        bounds = []
        if p.min is not None:
            bounds.append(f">= {p.min:g}")
        if p.max is not None:
            bounds.append(f"<= {p.max:g}")
        if p.choices:
            bounds.append("one of " + ", ".join(repr(c) for c in p.choices))
        doc = p.doc + (f" ({'; '.join(bounds)})" if bounds else "")
        params.add_row(p.name + (" (positional)" if p.positional else ""), p.describe_type(),
                       default, doc)
    return params


def _kind(cls: type) -> str:
    bits = [cls.kind]
    if cls.rowwise:
        bits.append("row-wise")
    if cls.stochastic:
        bits.append("seeded")
    if cls.expensive:  # every model reply is memoized by request; row-wise ones per row too
        bits.append("row-memoized" if cls.kind == "rowpython" else "model-memoized")
    return ", ".join(bits)
