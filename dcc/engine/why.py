"""`dcc why`: the parts of a node's key, and which of them changed since the last build.

The key of a node depends on its inputs' content, which depends on upstream nodes; so `why`
walks the plan (a dry run) to learn what it can, then compares the node's parts with the
parts recorded by the newest build of the recipe in this cache.
"""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from dcc.cache.keys import diff_parts
from dcc.cache.store import DiskStore
from dcc.compiler.diagnostics import did_you_mean
from dcc.compiler.ir import Program
from dcc.engine.build import input_label, plan
from dcc.errors import UsageError


def explain_node(program: Program, store: DiskStore, name: str) -> Group:
    if name not in program.bindings and not any(name in n.names for n in program.nodes()):
        hint = did_you_mean(name, program.bindings) or "name a binding of the recipe"
        raise UsageError(f"no node named '{name}'; {hint}")
    result = plan(program, store, target=name if name in program.bindings else None)
    res = next(r for r in result.nodes if name in r.names)
    lines: list = [Text(f"{name} ({res.op}): {res.status}", style="dcc.name")]
    if res.parts is None:
        lines.append(Text(f"its key is not known yet: {res.reason}"))
        return Group(*lines)
    table = Table("part", "value", title=f"key {res.key}", title_justify="left")
    for part, value in res.parts.to_dict().items():
        table.add_row(part, _short(value))
    lines.append(table)
    last = (store.last_build(program.path) or {}).get(name)
    if last is None:
        lines.append(Text("no earlier build of this node in this cache"))
    elif last.get("key") == res.key:
        lines.append(Text("unchanged since the last build", style="dcc.cached"))
    else:
        changes = diff_parts(last["parts"], res.parts)
        lines.append(Text("changed since the last build:", style="dcc.warning"))
        for part, old, new in changes:
            what = _describe(part, program, name)
            lines.append(Text(f"  {part}{what}: {_short(old)} -> {_short(new)}"))
    return Group(*lines)


def _describe(part: str, program: Program, name: str) -> str:
    if part == "code":
        return " (the operator's code)"
    node = next(n for n in program.nodes() if name in n.names)
    label = input_label(program, node, part)
    return f" ({label})" if label else ""


def _short(value: object) -> str:
    text = str(value)
    return text if len(text) <= 80 else text[:77] + "..."
