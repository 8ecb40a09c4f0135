"""`dcc lock` and `dcc build --locked`: pin what a build read, refuse to build on drift.

The lockfile records the content hash of every source file, every operator's version and code
fingerprint, model identities where operators use them, and the dcc version. `--locked`
recomputes the same facts and names each one that differs.

Statistical `keep` bounds (`keep={"zscore": k}` or `{"percentile": [lo, hi]}`, see
`dcc.ops.base.KeepBest`) are a build result: they come from the scores of the node's input.
`dcc lock` pins them from the cache (what the last build of the recipe as it is now
computed: a dry run finds each such node's record and reads its stats), under `keep_bounds`
by node name, or `"bounds": null` for a node not built yet (said on stderr). `--locked` then
checks, before building, that the same nodes have the same statistical forms, and, as each
such node is built or found in the cache, that its bounds (and mean and std) are the pinned
ones: drift stops the build before any export is written, naming the node and both values.
Model scores can differ across hardware or library versions, so that is where it shows.
"""

from __future__ import annotations

import json
import math
import os
from typing import TYPE_CHECKING, Any, Callable

from dcc import __version__
from dcc.cache.store import DiskStore
from dcc.compiler.ir import Program
from dcc.engine.keys import op_code, source_contents
from dcc.errors import LockedError
from dcc.ops.base import KeepBest

if TYPE_CHECKING:
    from dcc.compiler.ir import Node
    from dcc.engine.build import NodeResult

BOUND_STATS = {"keep_bounds": "bounds", "keep_mean": "mean", "keep_std": "std"}


def lock_data(program: Program, store: DiskStore, bounds: bool = True) -> dict[str, Any]:
    """The lockfile's content; `bounds=False` leaves the pinned values of statistical keep
    bounds out (they need a dry run), keeping only which nodes have which form."""
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
    data = {"dcc": __version__, "recipe": program.name, "sources": dict(sorted(sources.items())),
            "operators": dict(sorted(operators.items())), "models": models}
    forms = keep_forms(program)
    if forms:
        data["keep_bounds"] = pinned_bounds(program, store, forms) if bounds else \
            {name: {"keep": form} for name, form in forms.items()}
    return data


def keep_forms(program: Program) -> dict[str, dict[str, Any]]:
    """{node name: its statistical keep, e.g. {"zscore": 3}} for the nodes that have one."""
    out = {}
    for node in program.nodes():
        stat = node.op.keep_stat() if isinstance(node.op, KeepBest) else None
        if stat is not None:
            out[node.name] = {stat[0]: stat[1]}
    return out


def bounds_of(stats: dict[str, Any]) -> dict[str, Any]:
    """The bounds a node's stats record: {"bounds": [lo, hi], "mean": .., "std": ..}."""
    return {short: stats[name] for name, short in BOUND_STATS.items() if name in stats}


def pinned_bounds(program: Program, store: DiskStore,
                  forms: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Each statistical keep with the bounds its cached record holds (a dry run of the
    recipe finds the records), or `"bounds": None` where the node is not in the cache."""
    from dcc.engine.build import plan

    results = {r.id: r for r in plan(program, store).nodes}
    out = {}
    for node in program.nodes():
        if node.name not in forms:
            continue
        res = results.get(node.id)
        found = bounds_of(res.stats) if res is not None and res.status == "cached" else {}
        out[node.name] = {"keep": forms[node.name], **(found or {"bounds": None})}
    return out


def unpinned(data: dict[str, Any]) -> list[str]:
    """Nodes whose statistical keep bounds the lockfile could not pin (not built yet)."""
    return [name for name, entry in data.get("keep_bounds", {}).items()
            if entry.get("bounds") is None]


def lock_path(recipe: str) -> str:
    return recipe + ".lock"


def write_lock(program: Program, store: DiskStore, recipe: str) -> tuple[str, list[str]]:
    """Write the lockfile; returns its path and the nodes whose keep bounds are unpinned."""
    from dcc.cache.atomic import atomic_file

    path = lock_path(recipe)
    data = lock_data(program, store)
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n")
    return path, unpinned(data)


def check_lock(program: Program, store: DiskStore, recipe: str
               ) -> Callable[[Node, NodeResult], None]:
    """Raise LockedError on drift of what can be known before building; return the check
    of each node's statistical keep bounds, for the build to call as nodes finish."""
    path = lock_path(recipe)
    try:
        locked = json.loads(open(path, encoding="utf-8").read())
    except FileNotFoundError:
        raise LockedError(f"--locked: {path} does not exist; run `dcc lock {recipe}`") from None
    except json.JSONDecodeError as e:
        raise LockedError(f"--locked: {path} is not valid JSON ({e})") from None
    now = lock_data(program, store, bounds=False)
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
    old_forms = {n: e.get("keep") for n, e in locked.get("keep_bounds", {}).items()}
    new_forms = {n: e["keep"] for n, e in now.get("keep_bounds", {}).items()}
    for name in sorted(set(old_forms) | set(new_forms)):
        if old_forms.get(name) != new_forms.get(name):
            drift.append(f"keep of {name} " + _form(old_forms.get(name)) + " -> "
                         + _form(new_forms.get(name)))
    if drift:
        raise LockedError("--locked: the build differs from " + path + ": " + "; ".join(drift)
                          + f" (run `dcc lock {recipe}` to accept)")
    pinned = {n: e for n, e in locked.get("keep_bounds", {}).items()
              if e.get("bounds") is not None}

    def check_bounds(node: Node, res: NodeResult) -> None:
        want = pinned.get(node.name)
        if want is None or res.status not in ("ran", "cached"):
            return
        got = bounds_of(res.stats)
        if not _same(want, got):
            raise LockedError(
                f"--locked: the keep bounds of node '{node.name}' ({_form(want['keep'])}) "
                f"drifted from {path}: {_describe(want)} -> {_describe(got)}; its input rows "
                f"or their scores changed (run `dcc lock {recipe}` after a build to accept)")

    return check_bounds


def _form(keep: dict[str, Any] | None) -> str:
    return "none" if keep is None else ", ".join(f"{k}={v}" for k, v in keep.items())


def _describe(entry: dict[str, Any]) -> str:
    parts = [f"bounds {entry.get('bounds')}"]
    parts += [f"{k} {entry[k]}" for k in ("mean", "std") if k in entry]
    return ", ".join(parts)


def _same(want: dict[str, Any], got: dict[str, Any]) -> bool:
    """Equal bounds, mean and std (to 1e-12 relative: the JSON round trip of a float)."""
    for key in ("bounds", "mean", "std"):
        a, b = want.get(key), got.get(key)
        if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
            if not all(_close(x, y) for x, y in zip(a, b)):
                return False
        elif not _close(a, b):
            return False
    return True


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-300)
    return a == b
