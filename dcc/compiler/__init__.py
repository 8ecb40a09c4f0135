"""The compiler's one entry point: recipe file -> checked, optimized `Program`.

    text --parser--> AST --resolve--> IR graph --schema--> checked --passes--> optimized

All diagnostics of a run are collected; if any is an error, `compile_recipe` raises one
`RecipeError` holding them all (sorted by position), so users fix a file in one go.
"""

from __future__ import annotations

import os
from collections.abc import MutableMapping

from dcc.compiler.diagnostics import Diagnostic
from dcc.compiler.ir import Program
from dcc.errors import RecipeError


def compile_recipe(path: str, overrides: dict[str, str] | None = None, *,
                   out_dir: str | None = None, allow_outside: bool = False,
                   target: str | None = None, optimize: bool = True,
                   memo: MutableMapping[str, tuple] | None = None) -> Program:
    from dcc.compiler import schema
    from dcc.compiler.resolve import Resolver, apply_overrides, load_module

    diags: list[Diagnostic] = []
    main = load_module(path, "", diags, [])
    if main is None:
        raise RecipeError(diags)
    syntax_ok = not any(d.is_error for d in diags)
    apply_overrides(main, overrides or {}, diags)
    resolver = Resolver(out_dir=out_dir, allow_outside=allow_outside)
    resolver.resolve(main)
    diags.extend(resolver.diags)
    program = Program(path=os.path.abspath(path), name=main.recipe.name or _stem(path),
                      graph=resolver.graph, exports=resolver.exports,
                      bindings=resolver.bindings,
                      params={k: v for k, (v, _) in main.params.items()})
    if target is not None and target not in program.bindings:
        from dcc.compiler.diagnostics import did_you_mean, error

        diags.append(error(None, f"--target: no binding named '{target}'",
                           did_you_mean(target, program.bindings)))
    # Column checks run over every node that resolved, so a missing column is reported in the
    # same run as, say, an unknown operator elsewhere in the file (but not on top of syntax
    # errors, where the file is not yet what its author means).
    if syntax_ok:
        schema.propagate(program.nodes(), diags)
    # An evolve block's chain is lowered once per round: report each problem once.
    diags = list({(_pos(d), d.message): d for d in diags}.values())
    errors = [d for d in diags if d.is_error]
    if errors:
        raise RecipeError(sorted(errors, key=_pos))
    program.warnings = sorted((d for d in diags if not d.is_error), key=_pos)
    if optimize:
        from dcc.compiler.passes import optimize as run_passes

        run_passes(program, target=target, memo=memo)
    return program


def _pos(d: Diagnostic) -> tuple:
    s = d.span
    return (s.file, s.line, s.col) if s else ("", 0, 0)


def _stem(path: str) -> str:
    return os.path.splitext(os.path.basename(path))[0]
