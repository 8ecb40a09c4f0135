"""prune_dead: drop nodes that reach no export (or no `--target`).

Safe because a build only materializes exports (or the target); a node none of them depends
on cannot change any output. Bindings that lose their node stay listed in `dcc check`
warnings, not in the build.
"""

from __future__ import annotations

from dcc.compiler.ir import Program


def prune_dead(program: Program, *, target: str | None = None) -> list[str]:
    keep = program.needed(target)
    dead = [n for n in program.graph.nodes if n not in keep]
    journal = [f"removed {program.node(n).name} ({program.node(n).op_name})" for n in dead]
    program.graph.remove_nodes_from(dead)
    return journal
