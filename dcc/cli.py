"""The `dcc` command: argument parsing, exit codes and output streams, nothing else.

Exit codes: 0 ok; 1 an error in the recipe (diagnostics on stderr); 2 usage; 3 an operator
failed at run time (the node is named); 4 a bug in dcc itself. Results go to stdout (`--json`
writes exactly one JSON object there), everything else to stderr. Heavy modules are imported
inside commands so that `dcc --help` and a no-op rebuild stay fast.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from dcc import __version__
from dcc.errors import DccError, RecipeError, UsageError

INTERNAL_ERROR = 4


def _parse_sets(values: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in values:
        if "=" not in item:
            raise UsageError(f"--set expects NAME=VALUE (got {item!r})")
        name, value = item.split("=", 1)
        out[name.strip()] = value
    return out


def _cache_dir(recipe: str | None, cache_dir: str | None) -> Path:
    if cache_dir:
        return Path(cache_dir)
    if os.environ.get("DCC_CACHE_DIR"):
        return Path(os.environ["DCC_CACHE_DIR"])
    if recipe is None:
        return Path(".dcc")
    return Path(os.path.dirname(os.path.abspath(recipe))) / ".dcc"


def _open_store(recipe: str | None, cache_dir: str | None):  # noqa: ANN202
    from dcc.cache.store import DiskStore

    return DiskStore(_cache_dir(recipe, cache_dir))


def _compile(recipe: str, sets: tuple[str, ...], **kwargs: Any):  # noqa: ANN202
    from dcc.compiler import compile_recipe

    if not os.path.exists(recipe):
        raise UsageError(f"no such recipe file: {recipe}")
    program = compile_recipe(recipe, _parse_sets(sets), **kwargs)
    _print_warnings(program.warnings)
    return program


def _check_names(program, names: tuple[str, ...], option: str) -> None:  # noqa: ANN001
    """Every NAME given to `option` must be a binding: a typo must not silently do nothing."""
    for name in names:
        if name not in program.bindings:
            from dcc.compiler.diagnostics import did_you_mean

            hint = did_you_mean(name, program.bindings) or "name a binding of the recipe"
            raise UsageError(f"{option}: no binding named '{name}'; {hint}")


def _print_warnings(warnings: list) -> None:  # noqa: ANN001
    if warnings:
        from dcc.console import err

        for w in warnings:
            err().print(w)


recipe_arg = click.argument("recipe", type=click.Path(dir_okay=False))
set_opt = click.option("--set", "sets", multiple=True, metavar="NAME=VALUE",
                       help="Override a param (parsed as the type of its default).")
cache_opt = click.option("--cache-dir", default=None, metavar="DIR",
                         help="Cache folder (default: DCC_CACHE_DIR or .dcc/ beside the recipe).")
remote_opt = click.option("--remote-cache", "remote_cache", default=None, metavar="URL",
                          envvar="DCC_REMOTE_CACHE",
                          help="Team cache on any fsspec filesystem (file://, s3://, gs://, "
                               "...), read and written through (or DCC_REMOTE_CACHE).")


def _open_remote(url: str | None, required: bool = False):  # noqa: ANN202
    """The team cache of --remote-cache/DCC_REMOTE_CACHE, checked once. A bad URL or a
    missing driver is an error; an unreachable remote is one too for push and pull
    (`required`), while a build or plan warns and carries on with the local cache."""
    from dcc.cache.remote import RemoteCache, RemoteError

    if not url:
        if required:
            raise UsageError("no remote cache: pass --remote-cache URL or set DCC_REMOTE_CACHE")
        return None
    remote = RemoteCache(url)
    try:
        remote.check()
    except RemoteError as e:
        if required:
            raise
        from dcc.console import err

        err().print(f"warning: {e}; using the local cache only", style="dcc.warning",
                    markup=False)
        return None
    return remote


def _print_remote_warnings(remote) -> None:  # noqa: ANN001
    if remote is not None and remote.transfers.warnings:
        from dcc.console import err

        for w in remote.transfers.warnings:
            err().print(f"warning: {w}", style="dcc.warning", markup=False)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="dcc")
def cli() -> None:
    """dcc: compile dataset recipes into cached, reproducible builds."""


@cli.command()
@recipe_arg
@set_opt
@cache_opt
@remote_opt
@click.option("--target", default=None, help="Build one binding and what it needs.")
@click.option("--no-optimize", is_flag=True, help="Skip the optimizer passes.")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local",
              help="Where the work runs: this process, or a Ray cluster (docs/executors.md).")
@click.option("--ray-address", default=None, metavar="HOST:PORT",
              help="With --executor ray: the cluster to use (default: start a local Ray).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object on stdout.")
@click.option("--resample", multiple=True, metavar="NAME",
              help="Re-draw a stochastic node instead of replaying its recorded output.")
@click.option("--locked", is_flag=True, help="Refuse to build if anything drifted from RECIPE.lock.")
@click.option("--out-dir", default=None, help="Write exports under this folder.")
@click.option("--allow-write-outside", is_flag=True, help="Let exports leave the recipe's folder.")
@click.option("--trust-remote-code", is_flag=True, help="Allow models that ship their own code.")
def build(recipe: str, sets: tuple[str, ...], cache_dir: str | None, remote_cache: str | None,
          target: str | None, no_optimize: bool, executor: str, ray_address: str | None,
          as_json: bool, resample: tuple[str, ...], locked: bool, out_dir: str | None,
          allow_write_outside: bool, trust_remote_code: bool) -> None:
    """Build RECIPE's exports (or --target), recomputing only what changed."""
    if ray_address and executor != "ray":
        raise UsageError("--ray-address applies to --executor ray only")
    store = _open_store(recipe, cache_dir)
    remote = _open_remote(remote_cache)
    program = _compile(recipe, sets, target=target, optimize=not no_optimize, out_dir=out_dir,
                       allow_outside=allow_write_outside, memo=store.plan_memo)
    from dcc.engine.build import build as run_build

    _check_names(program, resample, "--resample")
    check_bounds = None
    if locked:
        from dcc.engine.lockfile import check_lock

        check_bounds = check_lock(program, store, recipe)
    from dcc.engine.progress import Progress

    with contextlib.ExitStack() as stack:
        factory = None
        if executor == "ray":  # Ray is imported (and started) only here
            from dcc.engine.ray_executor import RaySession

            factory = stack.enter_context(RaySession(ray_address)).executor
        progress = stack.enter_context(Progress(enabled=not as_json))
        result = run_build(program, store, target=target, resample=resample,
                           on_event=progress.on_event,
                           options={"trust_remote_code": trust_remote_code}, remote=remote,
                           on_result=check_bounds, executor=factory)
    _print_remote_warnings(remote)
    if as_json:
        click.echo(json.dumps(result.to_json()))
    else:
        from dcc.engine.progress import summary_table
        from dcc.console import out

        out().print(summary_table(result))


@cli.command()
@recipe_arg
@set_opt
@cache_opt
@remote_opt
@click.option("--target", default=None)
@click.option("--json", "as_json", is_flag=True)
@click.option("--explain", is_flag=True, help="Show what each optimizer pass did.")
@click.option("--no-optimize", is_flag=True)
def plan(recipe: str, sets: tuple[str, ...], cache_dir: str | None, remote_cache: str | None,
         target: str | None, as_json: bool, explain: bool, no_optimize: bool) -> None:
    """Say what a build would run and what is cached, and why, without running anything."""
    store = _open_store(recipe, cache_dir)
    remote = _open_remote(remote_cache)
    program = _compile(recipe, sets, target=target, optimize=not no_optimize,
                       memo=store.plan_memo)
    from dcc.engine.build import plan as run_plan

    result = run_plan(program, store, target=target, remote=remote)
    _print_remote_warnings(remote)
    if as_json:
        data = result.to_json()
        data["journal"] = program.journal
        click.echo(json.dumps(data))
        return
    from dcc.console import out
    from dcc.engine.progress import plan_table

    out().print(plan_table(result))
    if explain:
        out().print("optimizer passes:" if program.journal else "optimizer passes: no changes")
        for line in program.journal:
            out().print(f"  {line}")


@cli.command()
@recipe_arg
@set_opt
def check(recipe: str, sets: tuple[str, ...]) -> None:
    """Run every compile-time check; reads only what schema inference needs."""
    program = _compile(recipe, sets, optimize=False)
    from dcc.console import err

    n = len(program.graph)
    err().print(f"{recipe}: ok ({n} nodes, {len(program.exports)} exports, "
                f"{len(program.warnings)} warnings)")


@cli.command()
@recipe_arg
@click.option("--check", "check_only", is_flag=True, help="Exit 1 if the file would change.")
def fmt(recipe: str, check_only: bool) -> None:
    """Rewrite RECIPE in the canonical layout (comments kept)."""
    from dcc.compiler.fmt import format_file

    if not os.path.exists(recipe):
        raise UsageError(f"no such recipe file: {recipe}")
    changed = format_file(recipe, write=not check_only)
    if check_only and changed:
        from dcc.console import err

        err().print(f"{recipe} would be reformatted")
        sys.exit(1)


@cli.command()
@recipe_arg
@set_opt
@click.option("--format", "fmt_", type=click.Choice(["dot", "mermaid", "json"]), default="dot")
@click.option("--optimized", is_flag=True, help="Show the graph after the optimizer passes.")
def graph(recipe: str, sets: tuple[str, ...], fmt_: str, optimized: bool) -> None:
    """Print the recipe's DAG as Graphviz dot, Mermaid or JSON."""
    from dcc.compiler import render

    program = _compile(recipe, sets, optimize=optimized)
    if fmt_ == "json":
        data = render.graph_json(program)
        data["journal"] = program.journal
        click.echo(render.dumps(data))
    elif fmt_ == "mermaid":
        click.echo(render.graph_mermaid(program))
    else:
        click.echo(render.graph_dot(program))


@cli.command()
@recipe_arg
@click.argument("name")
@set_opt
@cache_opt
def why(recipe: str, name: str, sets: tuple[str, ...], cache_dir: str | None) -> None:
    """Show the parts of NAME's key and which changed since the last build."""
    from dcc.console import out
    from dcc.engine.why import explain_node

    program = _compile(recipe, sets, optimize=False)
    out().print(explain_node(program, _open_store(recipe, cache_dir), name))


@cli.command()
@recipe_arg
@set_opt
@cache_opt
def lock(recipe: str, sets: tuple[str, ...], cache_dir: str | None) -> None:
    """Write RECIPE.lock: source hashes, operator versions, dcc version, and the bounds of
    statistical keeps (zscore, percentile) as the last build computed them."""
    from dcc.console import err
    from dcc.engine.lockfile import write_lock

    program = _compile(recipe, sets)
    path, unpinned = write_lock(program, _open_store(recipe, cache_dir), recipe)
    err().print(f"wrote {path}")
    for name in unpinned:
        err().print(f"note: the keep bounds of node '{name}' are not pinned: it is not built "
                    f"yet (run `dcc build {recipe}`, then `dcc lock` again)", markup=False)


@cli.command(name="ops")
@click.argument("name", required=False)
def ops_cmd(name: str | None) -> None:
    """List operators, or document one."""
    from dcc.console import out
    from dcc.ops.reference import describe, overview

    out().print(describe(name) if name else overview())


@cli.group()
def cache() -> None:
    """Inspect and maintain the cache (./.dcc unless --cache-dir or DCC_CACHE_DIR)."""


@cache.command(name="ls")
@cache_opt
def cache_ls(cache_dir: str | None) -> None:
    """List stored artifacts: size, last use, the node that made them."""
    from dcc.console import out
    from dcc.engine.progress import cache_table

    out().print(cache_table(_open_store(None, cache_dir).entries()))


@cache.command(name="verify")
@cache_opt
def cache_verify(cache_dir: str | None) -> None:
    """Re-hash every artifact; exit 1 if any does not match (it is removed)."""
    from dcc.console import err

    bad = _open_store(None, cache_dir).verify_all()
    for content in bad:
        err().print(f"corrupt artifact removed: {content}", style="dcc.error")
    if bad:
        sys.exit(1)
    err().print("all artifacts match their hashes")


@cache.command(name="gc")
@cache_opt
@click.option("--max-size", required=True, metavar="SIZE", help="e.g. 500M, 10GB.")
@click.option("--all", "drop_needed", is_flag=True,
              help="Also drop what the newest build of a recipe needs.")
def cache_gc(cache_dir: str | None, max_size: str, drop_needed: bool) -> None:
    """Delete least recently used artifacts until the cache fits in SIZE."""
    from dcc.cache.gc import format_size, parse_size
    from dcc.console import err

    try:
        limit = parse_size(max_size)
    except ValueError as e:
        raise UsageError(str(e)) from None
    removed, freed = _open_store(None, cache_dir).gc(limit, keep_needed=not drop_needed)
    err().print(f"removed {removed} artifacts, freed {format_size(freed)}")


@cache.command(name="push")
@recipe_arg
@set_opt
@cache_opt
@remote_opt
def cache_push(recipe: str, sets: tuple[str, ...], cache_dir: str | None,
               remote_cache: str | None) -> None:
    """Upload what RECIPE's newest build needs to the team cache; exit 1 if any failed."""
    from dcc.cache.gc import format_size
    from dcc.cache.remote import push
    from dcc.console import err

    remote = _open_remote(remote_cache, required=True)
    store = _open_store(recipe, cache_dir)
    program = _compile(recipe, sets, memo=store.plan_memo)
    missing = push(store, remote, program.path)
    _print_remote_warnings(remote)
    t = remote.transfers
    gone = (f"; {missing} results of the last build are no longer in the local cache"
            if missing else "")
    err().print(f"pushed {recipe} to {remote.url}: {t.uploaded} results "
                f"({t.objects_up} objects uploaded, {format_size(t.bytes_up)}; the others "
                f"were there already), {t.memo_up} memo entries{gone}",
                markup=False, highlight=False)
    if remote.down or t.warnings:
        sys.exit(1)


@cache.command(name="pull")
@recipe_arg
@set_opt
@cache_opt
@remote_opt
def cache_pull(recipe: str, sets: tuple[str, ...], cache_dir: str | None,
               remote_cache: str | None) -> None:
    """Download what the team cache has of RECIPE's nodes into the local cache."""
    from collections import Counter

    from dcc.cache.gc import format_size
    from dcc.console import err
    from dcc.engine.build import pull

    remote = _open_remote(remote_cache, required=True)
    store = _open_store(recipe, cache_dir)
    program = _compile(recipe, sets, memo=store.plan_memo)
    result = pull(program, store, remote)
    _print_remote_warnings(remote)
    t = remote.transfers
    counts = Counter(r.status for r in result.nodes if r.stage is None or r.stage in r.names)
    err().print(f"pulled {recipe} from {remote.url}: {t.downloaded} results downloaded "
                f"({t.objects_down} objects, {format_size(t.bytes_down)}), "
                f"{counts['cached']} already local, {counts['would-run']} not on the remote "
                f"(a build computes them), {t.memo_down} memo entries", markup=False,
                highlight=False)
    if remote.down:
        sys.exit(1)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and turn every user error into a message and an exit code."""
    try:
        cli.main(args=argv, prog_name="dcc", standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as e:
        e.show()
        sys.exit(2)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except RecipeError as e:
        _report_recipe_error(e)
        sys.exit(1)
    except DccError as e:
        from dcc.console import err

        err().print(f"error: {e}", style="dcc.error", markup=False)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as e:  # a bug in dcc: say so plainly, traceback only on request
        if os.environ.get("DCC_DEBUG"):
            raise
        from dcc.console import err

        err().print(f"dcc internal error: {type(e).__name__}: {e}\n"
                    "rerun with DCC_DEBUG=1 for a traceback and please report it",
                    style="dcc.error", markup=False)
        sys.exit(INTERNAL_ERROR)


def _report_recipe_error(e: RecipeError) -> None:
    from dcc.console import err

    for d in e.diagnostics:
        err().print(d)
    n = len(e.diagnostics)
    err().print(f"{n} error{'s' if n != 1 else ''}", style="dcc.error")
