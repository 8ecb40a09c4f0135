"""`dcc lock` and `dcc build --locked`: pin what a build read, refuse to build on drift.

The lockfile records the content hash of every source file, every operator's version and code
fingerprint, model identities where operators use them, and the dcc version. `--locked`
recomputes the same facts and names each one that differs.
"""

from __future__ import annotations

import json
import os
from typing import Any

from dcc import __version__
from dcc.cache.store import DiskStore
from dcc.compiler.ir import Program
from dcc.engine.keys import op_code, source_contents
from dcc.errors import LockedError


def lock_data(program: Program, store: DiskStore) -> dict[str, Any]:
    base = os.path.dirname(program.path)
    sources: dict[str, str] = {}
    operators: dict[str, dict[str, Any]] = {}
    models: dict[str, str] = {}
    for node in program.nodes():
        op = node.op
        operators[op.name] = {"version": op.version, "code": op_code(type(op), store.plan_memo)}
        if op.n_inputs == 0:
            for path, content in zip(op.files(), source_contents(node, store)):  # type: ignore
                sources[os.path.relpath(path, base)] = content
        identity = op.model_identity(store.stat_cache)
        if identity is not None:
            models[node.name] = identity
    return {"dcc": __version__, "recipe": program.name, "sources": dict(sorted(sources.items())),
            "operators": dict(sorted(operators.items())), "models": models}


def lock_path(recipe: str) -> str:
    return recipe + ".lock"


def write_lock(program: Program, store: DiskStore, recipe: str) -> str:
    from dcc.cache.atomic import atomic_file

    path = lock_path(recipe)
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(lock_data(program, store), indent=2) + "\n")
    return path


def check_lock(program: Program, store: DiskStore, recipe: str) -> None:
    path = lock_path(recipe)
    try:
        locked = json.loads(open(path, encoding="utf-8").read())
    except FileNotFoundError:
        raise LockedError(f"--locked: {path} does not exist; run `dcc lock {recipe}`") from None
    except json.JSONDecodeError as e:
        raise LockedError(f"--locked: {path} is not valid JSON ({e})") from None
    now = lock_data(program, store)
    drift = []
    if locked.get("dcc") != now["dcc"]:
        drift.append(f"dcc version {locked.get('dcc')} -> {now['dcc']}")
    for section in ("sources", "operators", "models"):
        old, new = locked.get(section, {}), now[section]
        for name in sorted(set(old) | set(new)):
            if old.get(name) != new.get(name):
                what = {"sources": "source file", "operators": "operator",
                        "models": "model of"}[section]
                state = "added" if name not in old else "removed" if name not in new else "changed"
                drift.append(f"{what} {name} {state}")
    if drift:
        raise LockedError("--locked: the build differs from " + path + ": " + "; ".join(drift)
                          + f" (run `dcc lock {recipe}` to accept)")
