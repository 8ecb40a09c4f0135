"""The Ray executor: the same plan, with its row-wise work, model calls and dedup on Ray.

The build engine (dcc.engine.build) does what it does for every executor: keys, cache
lookups, records, views and exports, in this (the driver) process. This executor only moves
computation, through the interface of `dcc.engine.executor.LocalExecutor`:

* a fused stage of filters and maps (or one of them) runs as Ray Data `map_batches` over
  Arrow blocks of its input, each block through the very function the local executor calls
  (`dcc.engine.stages.run_stage`); blocks come back tagged with their first row and are put
  together in input order, their row counts summed and their kept rows offset;
* a row-wise Python operator (model calls) sends the rows its row memo lacks to an actor
  pool (`ActorPoolStrategy`): each actor builds the operator once and so loads its model once
  (with a GPU per actor where the cluster has GPUs); the memo is read before dispatch and each
  batch committed as it comes back, in the driver; model requests inside an actor go through
  the driver's request memo by a small actor pinned to the driver's node;
* `select.dedup` (exact, minhash, simhash) runs distributed (dcc.engine.ray_dedup).

Everything else (sources, other dataset operators, combinators, tables larger than memory)
runs in the driver as locally: docs/executors.md says what is distributed and why.

Why the outputs are byte-identical: every row-wise function is applied to whole rows and
depends on nothing but the row (and the schema, which every block shares), the blocks are
reassembled in order, and the stored artifact is written from the reassembled table by the
same code as locally. Keys never depend on the executor.
"""

from __future__ import annotations

import contextlib
import io
import logging
import math
import os
import pickle
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Callable

from dcc.cache.store import DiskStore
from dcc.compiler.ir import Node
from dcc.engine import events as ev
from dcc.engine.executor import LocalExecutor
from dcc.engine.rowwise import MEMO_BATCH
from dcc.errors import UsageError
from dcc.ops.base import RowPython, RunContext

if TYPE_CHECKING:
    import numpy as np
    import polars as pl
    import pyarrow as pa

    from dcc.engine.artifacts import Derivation

INSTALL_HINT = "pip install 'dcc-recipes[ray]'"
# Rows per block of a stage's input (at least one block per CPU of the cluster).
BLOCK_ROWS = int(os.environ.get("DCC_RAY_BLOCK_ROWS") or 100_000)
_AT = "__dcc_at"  # a block's rows' positions in the whole table


class RaySession:
    """A connection to a Ray cluster for one dcc command: `address` None starts a local Ray
    instance (shut down again on close), else connects to the cluster there."""

    def __init__(self, address: str | None = None) -> None:
        try:
            import ray
        except ImportError:
            raise UsageError("--executor ray needs Ray, an optional extra: "
                             f"{INSTALL_HINT}") from None
        self.ray = ray
        if address:
            _check_address(address)
        _quiet()
        # Workers import this dcc: the folder holding the package goes first on their path
        # (a worker on another machine without it imports its installed dcc; _check_code
        # refuses to build when that is not the same code).
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
            __file__))))
        env = {"PYTHONPATH": os.pathsep.join(
            p for p in (package_root, os.environ.get("PYTHONPATH")) if p)}
        kwargs: dict[str, Any] = dict(include_dashboard=False, log_to_driver=False,
                                      logging_level=logging.ERROR,
                                      runtime_env={"env_vars": env})
        try:
            if address:
                ray.init(address=address, **kwargs)
            else:
                ray.init(address="local", **kwargs)
        except Exception as e:  # ConnectionError, ValueError, RuntimeError from Ray
            where = f"the Ray cluster at '{address}'" if address else "a local Ray instance"
            hint = ("; a cluster with token authentication needs RAY_AUTH_MODE=token here "
                    "too (and its token: RAY_AUTH_TOKEN or ~/.ray/auth_token)"
                    if address and os.environ.get("RAY_AUTH_MODE") != "token" else "")
            raise UsageError(f"--executor ray: cannot connect to {where}: "
                             f"{type(e).__name__}: {_first_line(e)}{hint}") from None
        import ray.data

        _quiet()  # again: importing ray.data configures its own loggers
        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True
        ctx.enable_progress_bars = False
        if hasattr(ctx, "print_on_execution_start"):
            ctx.print_on_execution_start = False
        resources = ray.cluster_resources()
        self.cpus = max(1, int(resources.get("CPU", 1)))
        self.gpus = int(resources.get("GPU", 0))
        try:
            _check_code(ray)
        except UsageError:
            self.close()
            raise

    def executor(self, store: DiskStore, emit: Callable[[ev.Event], None],
                 options: dict[str, Any]) -> RayExecutor:
        """An executor for one build (a `dcc.engine.build.ExecutorFactory`)."""
        return RayExecutor(self, store, emit, options)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.ray.shutdown()

    def __enter__(self) -> RaySession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else "no details"


def _check_address(address: str) -> None:
    """A host:port (or ray://host:port) must answer before Ray is asked to connect: Ray
    itself retries an unreachable address for a minute or more."""
    import socket

    target = address.split("://", 1)[-1]
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise UsageError(f"--ray-address: expected HOST:PORT (or ray://HOST:PORT), got "
                         f"'{address}'")
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as e:
        raise UsageError(f"--ray-address: nothing answers at {host}:{port} "
                         f"({e.strerror or e}); start a cluster with `ray start --head` or "
                         "leave out --ray-address to start a local one") from None


def _quiet() -> None:
    """Ray Data logs every dataset's start and end at INFO; the CLI owns the terminal."""
    for name in ("ray", "ray.data", "ray._private", "ray.air"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("RAY_DATA_DISABLE_PROGRESS_BARS", "1")


def code_digest() -> str:
    """A digest of this dcc's source files: the driver and every worker must agree, or a
    worker's results would not be what the driver's keys promise."""
    import hashlib

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    h = hashlib.sha256()
    for folder, dirs, files in sorted(os.walk(root)):
        dirs.sort()
        for name in sorted(files):
            if name.endswith((".py", ".lark")):
                path = os.path.join(folder, name)
                h.update(os.path.relpath(path, root).encode() + b"\0")
                with open(path, "rb") as f:
                    h.update(f.read())
    return h.hexdigest()


def _check_code(ray: Any) -> None:
    """Refuse a cluster any of whose nodes imports another dcc: the digest is computed on
    every alive node (pinned there), not on whichever node Ray picks for one task."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    task = ray.remote(num_cpus=0)(code_digest)
    nodes = [n for n in ray.nodes() if n.get("Alive")]
    theirs = ray.get([task.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
        n["NodeID"], soft=False)).remote() for n in nodes])
    ours = code_digest()
    other = [n.get("NodeManagerAddress", n["NodeID"]) for n, d in zip(nodes, theirs)
             if d != ours]
    if other:
        raise UsageError("--executor ray: the Ray workers on " + ", ".join(other) + " import "
                         "another version of dcc than this command; install the same dcc on "
                         "every node of the cluster")


def unwrap(e: BaseException) -> BaseException:
    """The operator's own exception inside Ray's wrappers (RayTaskError, UserCodeException)."""
    seen = set()
    while id(e) not in seen:
        seen.add(id(e))
        cause = getattr(e, "cause", None)
        if isinstance(cause, BaseException):
            e = cause
            continue
        name = type(e).__name__
        if ("RayTaskError" in name or "UserCodeException" in name) and e.__cause__:
            e = e.__cause__
            continue
        break
    return e


@contextlib.contextmanager
def operator_errors() -> Iterator[None]:
    """Re-raise what failed on a worker as itself, so the engine names the node with the
    operator's message rather than Ray's traceback."""
    try:
        yield
    except Exception as e:
        inner = unwrap(e)
        if inner is e:
            raise
        raise inner from None


# -- tables <-> Ray ----------------------------------------------------------------------------
def to_arrow(df: pl.DataFrame) -> pa.Table:
    """A table as Arrow for Ray (plain large_string, which every Ray version handles)."""
    import polars as pl

    return df.to_arrow(compat_level=pl.CompatLevel.oldest())


def frame_bytes(df: pl.DataFrame) -> bytes:
    """A worker's result table as Arrow IPC (polars' own types survive the trip exactly)."""
    import polars as pl

    buf = io.BytesIO()
    df.write_ipc(buf, compression="uncompressed", compat_level=pl.CompatLevel.newest())
    return buf.getvalue()


def frame_from(data: bytes) -> pl.DataFrame:
    import polars as pl

    return pl.read_ipc(io.BytesIO(data))


def split_blocks(df: pl.DataFrame, cpus: int, block_rows: int | None = None
                 ) -> list[pa.Table]:
    """`df` as Arrow blocks of consecutive rows, each tagged with its rows' positions (_AT):
    at least one block per CPU, at most `block_rows` rows each.

    >>> import polars as pl
    >>> [b.num_rows for b in split_blocks(pl.DataFrame({"x": range(10)}), 2, block_rows=3)]
    [3, 3, 3, 1]
    >>> [b.column(_AT).to_pylist() for b in split_blocks(pl.DataFrame({"x": range(3)}), 4)]
    [[0], [1], [2]]
    """
    import polars as pl

    n = df.height
    block_rows = block_rows or BLOCK_ROWS
    blocks = max(1, min(n, max(cpus, math.ceil(n / max(block_rows, 1)))))
    size = math.ceil(n / blocks) if n else 0
    tagged = df.with_columns(pl.int_range(0, n, dtype=pl.Int64).alias(_AT)) if n else df
    return [to_arrow(tagged.slice(s, size)) for s in range(0, n, size)] if n else []


# -- fused stages ------------------------------------------------------------------------------
def stage_batch(batch: pa.Table, nodes: list[Node], with_rows: bool) -> pa.Table:
    """One block of a stage, on a worker: dcc.engine.stages.run_stage over its rows, as one
    row (first position, result as IPC, per-node counts, kept rows within the block)."""
    import numpy as np
    import polars as pl
    import pyarrow as pa

    from dcc.engine.stages import run_stage

    at0 = int(batch.column(_AT)[0].as_py())
    df = pl.from_arrow(batch.drop_columns([_AT]))
    assert isinstance(df, pl.DataFrame)
    try:
        out, counts, derivation = run_stage(nodes, df, with_rows=with_rows)
    except Exception as e:  # returned, not raised: Ray Data would keep only its own wrapper
        return failed(at0, e)
    rows = derivation.rows if derivation is not None else None
    return pa.table({
        "at0": pa.array([at0], pa.int64()),
        "frame": pa.array([frame_bytes(out)], pa.large_binary()),
        "counts": pa.array([counts], pa.list_(pa.int64())),
        "rows": pa.array([None if rows is None else
                          np.asarray(rows, dtype=np.int64).tobytes()], pa.large_binary()),
        "derived": pa.array([derivation is not None]),
        "written": pa.array([list(derivation.written) if derivation else []],
                            pa.list_(pa.string())),
        "error": pa.array([None], pa.large_binary()),
    })


def failed(at0: int, e: Exception) -> pa.Table:
    """A batch's result row that carries the exception the operator raised (pickled; one
    that cannot be pickled as a RuntimeError with its type and message)."""
    import pyarrow as pa

    try:
        data = pickle.dumps(e)
    except Exception:
        data = pickle.dumps(RuntimeError(f"{type(e).__name__}: {e}"))
    return pa.table({"at0": pa.array([at0], pa.int64()),
                     "error": pa.array([data], pa.large_binary())})


def raise_failure(row: dict[str, Any]) -> None:
    """Raise, in the driver, the exception a worker returned in a result row."""
    if row.get("error") is not None:
        raise pickle.loads(row["error"])


def map_blocks(blocks: list[pa.Table], fn: Callable[..., pa.Table], **kwargs: Any
               ) -> list[dict[str, Any]]:
    """`fn` over each block with Ray Data map_batches (one block a batch); the result rows,
    sorted by their `at0`."""
    import ray.data

    with operator_errors():
        ds = ray.data.from_arrow(blocks).map_batches(
            fn, batch_format="pyarrow", batch_size=None, zero_copy_batch=True,
            fn_kwargs=kwargs)
        out = [row for t in ds.iter_batches(batch_size=None, batch_format="pyarrow")
               for row in t.to_pylist()]
    for row in out:
        raise_failure(row)
    return sorted(out, key=lambda r: r["at0"])


def run_stage_on_ray(session: RaySession, nodes: list[Node], df: pl.DataFrame,
                     with_rows: bool) -> tuple[pl.DataFrame, list[int], Derivation | None]:
    """dcc.engine.stages.run_stage, block by block on Ray, put together in input order."""
    import numpy as np
    import polars as pl

    from dcc.engine.artifacts import Derivation
    from dcc.engine.stages import run_stage

    import pyarrow as pa

    try:
        blocks = split_blocks(df, session.cpus)
    except (pl.exceptions.PolarsError, pa.ArrowException):
        blocks = []  # a column Arrow cannot carry (a Python object): the driver runs it
    if len(blocks) < 2:  # nothing to spread: the driver runs it (same function)
        return run_stage(nodes, df, with_rows=with_rows)
    parts = map_blocks(blocks, stage_batch, nodes=nodes, with_rows=with_rows)
    frames = [frame_from(p["frame"]) for p in parts]
    try:
        out = pl.concat(frames, how="vertical", rechunk=True)
    except pl.exceptions.PolarsError:
        # A map typed its output by the data (a JSON decode): blocks disagree, and only the
        # whole table gives the local result. Run it in the driver.
        return run_stage(nodes, df, with_rows=with_rows)
    counts = [int(sum(c)) for c in zip(*(p["counts"] for p in parts))]
    derivation = None
    if parts[0]["derived"]:
        written = tuple(parts[0]["written"])
        if parts[0]["rows"] is None:
            derivation = Derivation(None, written)
        else:
            rows = [p["at0"] + np.frombuffer(p["rows"], dtype=np.int64) for p in parts]
            derivation = Derivation(np.concatenate(rows), written)
    return out, counts, derivation


# -- row-wise Python operators (model calls) -----------------------------------------------------
class RequestMemoServer:
    """The driver's model-request memo, served to actors (dcc.ops.models.memo): replies are
    shared with local builds and committed as they arrive, wherever the actor runs."""

    def __init__(self, root: str) -> None:
        from dcc.cache.rowmemo import request_memo

        self.store = DiskStore(root)
        self.memo = request_memo(self.store)

    def get_many(self, hashes: list[str]) -> dict[str, bytes]:
        return self.memo.get_many(hashes)

    def put_many(self, items: dict[str, bytes]) -> None:
        self.memo.put_many(items)


class RemoteRequestMemo:
    """What an actor puts on RunContext.requests: the memo interface, over the server."""

    def __init__(self, server: Any) -> None:
        self.server = server

    def get_many(self, hashes: Any) -> dict[str, bytes]:
        import ray

        return ray.get(self.server.get_many.remote(list(hashes)))

    def put_many(self, items: dict[str, bytes]) -> None:
        import ray

        ray.get(self.server.put_many.remote(dict(items)))


class ProcessActor:
    """One actor of a model operator's pool: the operator is built (and its model loaded,
    on first use, by the operator's own backend cache) once per actor."""

    def __init__(self, op: RowPython, node: str, seed: int, options: dict[str, Any],
                 memo: Any) -> None:
        self.op, self.node, self.seed, self.options = op, node, seed, options
        self.requests = RemoteRequestMemo(memo) if memo is not None else None

    def __call__(self, batch: pa.Table) -> pa.Table:
        import polars as pl
        import pyarrow as pa

        from dcc.engine.rowwise import process_rows

        first = int(batch.column("__dcc_i")[0].as_py())
        df = pl.from_arrow(batch.drop_columns(["__dcc_i"]))
        assert isinstance(df, pl.DataFrame)
        ctx = RunContext(node=self.node, seed=self.seed, options=self.options,
                         requests=self.requests)
        try:
            out = process_rows(self.op, df.to_dicts(), ctx)
        except Exception as e:  # returned, not raised: Ray Data would keep only its wrapper
            return failed(first, e)
        return pa.table({
            "at0": pa.array([first], pa.int64()),
            "n": pa.array([batch.num_rows], pa.int64()),
            "out": pa.array([pickle.dumps(out)], pa.large_binary()),
            "calls": pa.array([ctx.model_calls], pa.int64()),
            "counted": pa.array([ctx.calls_counted]),
            "stats": pa.array([pickle.dumps(ctx.stats)], pa.large_binary()),
            "error": pa.array([None], pa.large_binary()),
        })


def merge_stats(into: dict[str, Any], new: dict[str, Any]) -> None:
    """Stats of one batch into the node's: counters add up (as they do when one context sees
    every batch), anything else takes the latest value.

    >>> stats = {"memo_hits": 2, "stopped": "a"}
    >>> merge_stats(stats, {"memo_hits": 3, "stopped": "b", "http_retries": 1})
    >>> stats
    {'memo_hits': 5, 'stopped': 'b', 'http_retries': 1}
    """
    for k, v in new.items():
        old = into.get(k)
        if isinstance(v, (int, float)) and not isinstance(v, bool) and \
                isinstance(old, (int, float)) and not isinstance(old, bool):
            into[k] = old + v
        else:
            into[k] = v


class RayExecutor(LocalExecutor):
    """Runs stages, model batches and dedup on Ray; the rest as the local executor does."""

    def __init__(self, session: RaySession, store: DiskStore,
                 emit: Callable[[ev.Event], None], options: dict[str, Any]) -> None:
        super().__init__(store, emit, options)
        self.session = session
        self._memo_server: Any = None

    # -- stages ---------------------------------------------------------------------------
    def run_stage(self, nodes: list[Node], df: pl.DataFrame, with_rows: bool
                  ) -> tuple[pl.DataFrame, list[int], Derivation | None]:
        return run_stage_on_ray(self.session, nodes, df, with_rows)

    # -- dedup ----------------------------------------------------------------------------
    def select_rows(self, node: Node, df: pl.DataFrame, ctx: RunContext) -> np.ndarray | None:
        from dcc.engine import ray_dedup

        if ray_dedup.distributes(node.op):
            with operator_errors():
                return ray_dedup.select_rows(self.session, node.op, df, ctx)
        return super().select_rows(node, df, ctx)

    def execute(self, node: Node, inputs: list[pl.DataFrame], parts: Any
                ) -> tuple[pl.DataFrame, RunContext]:
        from dcc.engine import ray_dedup

        if ray_dedup.distributes(node.op) and len(inputs) == 1:  # views are off: take rows
            from dcc.engine.artifacts import take_rows

            ctx = self.context(node)
            rows = self.select_rows(node, inputs[0], ctx)
            return take_rows(inputs[0], rows), ctx
        return super().execute(node, inputs, parts)

    # -- model batches ----------------------------------------------------------------------
    def _requests_server(self) -> Any:
        """The request-memo actor, on the driver's node (the memo file is there)."""
        if self._memo_server is None:
            import ray
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            here = ray.get_runtime_context().get_node_id()
            server = ray.remote(num_cpus=0)(RequestMemoServer).options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False))
            self._memo_server = server.remote(str(self.store.root))
        return self._memo_server

    def _wants_gpu(self, op: RowPython) -> bool:
        """A GPU per actor when the cluster has GPUs and the operator runs a model here
        (not one behind an HTTP endpoint)."""
        if not self.session.gpus or not op.expensive:
            return False
        from dcc.ops.prompted import openai_ref  # a path parameter: joined to the recipe folder

        return not any(openai_ref(v) is not None for v in op.p.values() if isinstance(v, str))

    def process_batches(self, op: RowPython, todo: pl.DataFrame,
                        ctx: RunContext) -> Iterator[list[Any]]:
        """Batches of MEMO_BATCH rows through an actor pool, yielded in order as they come
        back (so the driver commits each to the row memo before the next arrives)."""
        import polars as pl
        import ray.data

        blocks = [to_arrow(todo.slice(s, MEMO_BATCH).with_columns(
            pl.int_range(s, s + min(MEMO_BATCH, todo.height - s), dtype=pl.Int64)
            .alias("__dcc_i"))) for s in range(0, todo.height, MEMO_BATCH)]
        gpu = self._wants_gpu(op)
        size = max(1, min(len(blocks), self.session.gpus if gpu else self.session.cpus))
        memo = self._requests_server() if ctx.requests is not None else None
        ds = ray.data.from_arrow(blocks).map_batches(
            ProcessActor, batch_format="pyarrow", batch_size=MEMO_BATCH,
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=size),
            num_gpus=1 if gpu else 0, num_cpus=0 if gpu else 1,
            fn_constructor_kwargs={"op": op, "node": ctx.node, "seed": ctx.seed,
                                   "options": ctx.options, "memo": memo})
        results: dict[int, Any] = {}
        next_start = 0
        with operator_errors():
            for table in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
                for row in table.to_pylist():
                    raise_failure(row)
                    out = pickle.loads(row["out"])
                    if len(out) != row["n"]:
                        raise ValueError(f"{op.name}: process() returned {len(out)} results "
                                         f"for {row['n']} rows (it must return one per row)")
                    for k, r in enumerate(out):
                        results[row["at0"] + k] = r
                    ctx.model_calls += row["calls"]
                    ctx.calls_counted = ctx.calls_counted or row["counted"]
                    merge_stats(ctx.stats, pickle.loads(row["stats"]))
                while next_start < todo.height:  # every row of the next batch is back
                    end = min(next_start + MEMO_BATCH, todo.height)
                    if any(i not in results for i in range(next_start, end)):
                        break
                    yield [results.pop(i) for i in range(next_start, end)]
                    next_start = end


__all__ = ["INSTALL_HINT", "RayExecutor", "RaySession"]
