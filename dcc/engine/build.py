"""Build a compiled Program: walk its nodes in order, reuse what the cache has, run the rest.

One walk serves `dcc build` and `dcc plan` (a dry run): each node's key needs the content of
its inputs, so the walk learns contents as it goes; in a dry run a node below a miss can only
say "would run (an input will be rebuilt)". Running a node happens under a per-key lock, and
the cache is asked again after the lock is taken, so two concurrent builds compute each node
once. Tables stay in memory only until their last consumer has run.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from dcc.cache.base import CorruptObject, LockTimeout, MissingObject, Record
from dcc.cache.keys import KeyParts, diff_parts
from dcc.cache.remote import RemoteCache, Transfers, Uploader
from dcc.cache.store import DiskStore
from dcc.compiler.ir import Node, Program
from dcc.engine import events as ev
from dcc.engine.artifacts import (
    Derivation,
    Origin,
    check_rows,
    read_artifact,
    schema_of,
    table_content,
    take_rows,
    view_bytes,
    views_enabled,
    write_table,
    write_view,
)
from dcc.engine.background import Background
from dcc.engine.executor import LocalExecutor
from dcc.engine.exports import ExportResult, write_exports
from dcc.engine.keys import node_parts, source_contents
from dcc.engine.streaming import LazyTable
from dcc.errors import CacheError, DccError, OperatorError
from dcc.ops.base import DatasetOp, Filter, Map, RunContext, Source

if TYPE_CHECKING:
    import polars as pl

_ROW = "__dcc_row"
# Makes the executor of a build from its store, event callback and options.
ExecutorFactory = Callable[[DiskStore, Callable[[ev.Event], None], dict[str, Any]],
                           LocalExecutor]
# Tables at least this large (polars' estimate) are written by the background writer.
BACKGROUND_MIN = 32 << 20
# Seconds a source's file hashes may take before the source is parsed meanwhile.
SPECULATE_AFTER = 0.05


@dataclass
class NodeResult:
    id: str
    names: list[str]
    op: str
    status: str  # cached | remote-hit | ran | would-run
    key: str | None = None
    content: str | None = None
    rows_in: int | None = None
    rows_out: int | None = None
    seconds: float = 0.0
    model_calls: int = 0
    reason: str = ""
    parts: KeyParts | None = None
    stats: dict[str, Any] = field(default_factory=dict)
    expensive: bool = False
    new_rows: int | None = None  # for a dry run of an expensive node: rows the memo lacks
    stage: str | None = None  # the fused stage (named by its last node) this node ran in


@dataclass
class BuildResult:
    recipe: str
    nodes: list[NodeResult]
    exports: list[ExportResult]
    seconds: float = 0.0
    remote: Transfers | None = None  # what moved to and from --remote-cache, if one is set

    def to_json(self) -> dict[str, Any]:
        nodes = []
        for r in self.nodes:
            for name in r.names or [r.id]:
                entry = {"name": name, "op": r.op, "status": r.status, "key": r.key,
                         "content": r.content, "rows_in": r.rows_in, "rows_out": r.rows_out,
                         "seconds": round(r.seconds, 4)}
                if r.expensive or r.model_calls:
                    entry["model_calls"] = r.model_calls
                if r.reason:
                    entry["reason"] = r.reason
                if r.stage:
                    entry["stage"] = r.stage
                    entry["materialized"] = r.stage == name
                if r.stats:
                    entry["stats"] = r.stats
                nodes.append(entry)
        exports = [{"node": e.node, "path": e.path, "rows": e.rows, "content": e.content,
                    "written": e.written} for e in self.exports]
        out = {"recipe": self.recipe, "nodes": nodes, "exports": exports,
               "seconds": round(self.seconds, 4)}
        if self.remote is not None:
            out["remote"] = self.remote.to_json()
        return out


class Builder:
    def __init__(self, program: Program, store: DiskStore, *, target: str | None = None,
                 resample: tuple[str, ...] = (), dry_run: bool = False,
                 on_event: Callable[[ev.Event], None] | None = None,
                 options: dict[str, Any] | None = None, remote: RemoteCache | None = None,
                 pull: bool = False,
                 on_result: Callable[[Node, NodeResult], None] | None = None,
                 executor: ExecutorFactory | None = None) -> None:
        self.program = program
        # Called with each node's result as soon as it is known (ran or cached), before any
        # consumer runs: `--locked` checks a node's keep bounds here (dcc.engine.lockfile).
        self.on_result = on_result
        self.store = store
        self.target = target
        self.resample = set(resample)
        self.dry_run = dry_run
        self.emit = on_event or (lambda e: None)
        # Where each node's work runs (keys, records and artifacts are made here either way).
        self.executor = (executor or LocalExecutor)(store, self.emit, options or {})
        self.results: dict[str, NodeResult] = {}
        self.tables: dict[str, pl.DataFrame] = {}
        # Where each in-memory table's rows live in the store (a base table and a row
        # selection of it), so that a node selecting rows of its input is stored as a view.
        self.origins: dict[str, Origin] = {}
        self.views = views_enabled()
        # Tables larger than the memory budget stay in the store and are read batch by batch
        # by the consumers that can (dcc.engine.streaming); the others load them whole.
        self.lazy: dict[str, LazyTable] = {}
        # Sources parsed while their files were being hashed: (result or error, seconds).
        self._speculative: dict[str, tuple[Any, float]] = {}
        self.verified: set[str] = set()  # large objects this build wrote or checked
        # Large tables are hashed here and written by a background thread (their records
        # and node locks follow their commit there): dcc.engine.background.
        self.background = Background()
        self._budget: int | None = None
        self.last = store.last_build(program.path) or {}
        # The team cache (dcc.cache.remote): a local miss is looked up there. A build (or a
        # pull) downloads what it has, verified, into the local store; a plan reads only its
        # records, so nodes it has are `remote-hit` and their contents key what follows.
        self.remote = remote
        self.fetch = not dry_run or pull
        self.pull = pull
        self.remote_only: set[str] = set()  # (plan) nodes whose content is on the remote only
        self.uploader = Uploader(remote, store) if remote is not None and not dry_run else None
        if remote is not None and self.fetch:  # the row memo reads and writes through too
            store.share_memo(remote)

    # -- the walk ----------------------------------------------------------------------------
    def run(self) -> BuildResult:
        start = time.perf_counter()
        if not self.dry_run:
            self.store.remove_stale_temps()
        needed = self.program.needed(self.target)
        order = [n for n in self.program.nodes() if n.id in needed]
        self.consumers = Counter(i for n in order for i in n.inputs)
        try:
            for node in order:
                # members of a fused stage, and of a model group, arrive together
                self._visit_next(node, order)
            exports: list[ExportResult] = []
            if self.target is None:
                exports = write_exports(self.program, self.store, self.results, self._table,
                                        dry_run=self.dry_run, batches=self._export_batches)
            self.background.wait()
        finally:
            self.background.close()  # on every way out: no write outlives the build
            if self.uploader is not None:  # what was stored is published, records last
                self.uploader.wait()
                assert self.remote is not None
                if self.remote.memo_pending():
                    self.remote.flush_memo(self.store.rowmemo_db())
            if self.remote is not None and self.fetch:  # the store outlives this build
                self.store.share_memo(None)
        if not self.dry_run:
            self._record_build()
        return BuildResult(self.program.name, [self.results[n.id] for n in order], exports,
                           time.perf_counter() - start,
                           self.remote.transfers if self.remote is not None else None)

    @contextlib.contextmanager
    def _locked(self, key: str) -> Any:
        """Hold the node lock of `key` until its record is saved, which for a large table
        happens in the background after its file is committed."""
        from dcc.ops.models.pool import idle

        lock = self.store.lock(key, timeout=0)
        try:
            lock.__enter__()
        except LockTimeout:  # held: by another build, or in a model group by another member
            lock = self.store.lock(key)
            with idle():  # so wait without holding the group up
                lock.__enter__()
        try:
            yield
        finally:
            self.background.then(lambda: lock.__exit__(None, None, None))

    def _save(self, key: str, record: Record, node_id: str) -> None:
        """File a node's record, after its artifact (and a view's base) is committed."""
        origin = self.origins.get(node_id)
        self.background.after((record.content, origin.base if origin else None),
                              lambda: self._file(key, record))

    def _file(self, key: str, record: Record) -> None:
        """File a record whose objects are committed, and write it through to the team
        cache (objects first, record last, on the uploader's threads)."""
        self.store.save(key, record)
        if self.uploader is not None:
            self.uploader.submit(key, record)

    def _lookup(self, key: str) -> tuple[Record | None, bool]:
        """The record of `key` and whether it came from the team cache: the local store
        first; on a miss the remote, read through (fetched and verified) in a build or a
        pull, only its record read in a plan."""
        record = self.store.lookup(key)
        if record is not None or self.remote is None:
            return record, False
        if self.fetch:
            record = self.remote.fetch(key, self.store)
        else:
            record = self.remote.record(key)
        return record, record is not None

    def _visit_next(self, node: Node, order: list[Node]) -> None:
        if node.id in self.results:
            return
        group = self._model_group(node, order)
        if group:
            self._visit_model_group(group, order)
        else:
            self._visit_any(node)

    def _model_group(self, node: Node, order: list[Node]) -> list[Node] | None:
        """The members of `node`'s model group that this build still has to visit."""
        ids = self.program.model_group_of(node.id)
        if not ids or self.dry_run:
            return None
        needed = {n.id for n in order}
        members = [self.program.node(i) for i in ids if i in needed and i not in self.results]
        return members if len(members) > 1 else None

    def _visit_model_group(self, members: list[Node], order: list[Node]) -> None:
        """Independent nodes on one model (`group_model_calls`): every input of every member
        first, then the members together, one thread each, taking turns through a
        `RequestPool` that sends their model requests as shared batches. Each member is
        visited exactly as alone (key, lookup, lock, run, store)."""
        import threading

        import networkx as nx

        from dcc.ops.models.pool import RequestPool

        inputs = set().union(*(nx.ancestors(self.program.graph, m.id) for m in members))
        for n in order:
            if n.id in inputs:
                self._visit_next(n, order)
        pool = RequestPool([m.name for m in members])
        outcomes: dict[str, NodeResult | BaseException] = {}

        def visit(member: Node) -> None:
            with pool.member(member.name):
                try:
                    outcomes[member.id] = self._visit(member)
                except BaseException as e:  # raised on the build's thread, below
                    outcomes[member.id] = e

        threads = [threading.Thread(target=visit, args=(m,), name=f"dcc-model-{m.name}")
                   for m in members]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for m in members:  # a failure is raised as the first failing member's, in plan order
            out = outcomes[m.id]
            if isinstance(out, BaseException):
                raise out
            self.results[m.id] = out
            if self.on_result is not None:
                self.on_result(m, out)

    def _visit_any(self, node: Node) -> None:
        chain = self.program.stage_of(node.id)
        if chain and chain[0] == node.id:
            self._visit_stage([self.program.node(i) for i in chain])
        else:
            self.results[node.id] = self._visit(node)
            chain = [node.id]
        if self.on_result is not None:
            for i in chain:
                self.on_result(self.program.node(i), self.results[i])

    # -- fused stages ------------------------------------------------------------------------
    def _visit_stage(self, nodes: list[Node]) -> None:
        """A fused chain: one key per node (each keyed on its predecessor's key, since the
        intermediate tables never exist), one lookup and one run for the whole stage."""
        results = [NodeResult(n.id, list(n.names), n.op_name, "would-run", stage=nodes[-1].name)
                   for n in nodes]
        for n, r in zip(nodes, results):
            self.results[n.id] = r
        inputs = self._input_contents(nodes[0])
        if inputs is None:
            pending = self.program.node(nodes[0].inputs[0]).name
            for r in results:
                r.reason = f"an input will be rebuilt ({pending})"
            return
        prev: tuple[str, ...] = inputs
        for n, r in zip(nodes, results):
            r.parts, uncacheable = node_parts(n, prev, self.store.stat_cache, self.store.plan_memo)
            if r.parts is None:  # cannot key it: run the chain node by node instead
                for m in nodes:
                    self.results[m.id] = self._visit(m)
                return
            r.key = r.parts.key()
            prev = (r.key,)
        last = results[-1]
        forced = any(self.resample & set(n.names) for n in nodes)
        record, remote = (None, False) if forced else self._lookup(last.key)
        if record is None:
            reason = "forced by --resample" if forced else self._why_miss(nodes[-1], last.parts)
            for r in results:
                r.reason = reason
            if self.dry_run:
                results[0].rows_in = self._rows_in(nodes[0])
                return
            with self._locked(last.key):
                record = None if forced else self.store.lookup(last.key)
                if record is None:
                    self._run_stage(nodes, results)
                    return
        self._stage_cached(nodes, results, record, remote)

    def _stage_cached(self, nodes: list[Node], results: list[NodeResult],
                      record: Record, remote: bool = False) -> None:
        rows = list(record.stats.get("stage_rows") or [None] * len(nodes))
        rows_in = self._rows_in(nodes[0])
        status = "remote-hit" if remote else "cached"
        for n, r, out in zip(nodes, results, rows):
            r.status, r.rows_in, r.rows_out, r.reason = status, rows_in, out, ""
            r.content = r.key  # never materialized: its key names its content
            rows_in = out
        results[-1].content, results[-1].rows_out = record.content, record.rows
        if remote and not self.fetch:
            self.remote_only.add(nodes[-1].id)
        self.emit(ev.NodeCached(nodes[-1].name, nodes[-1].op_name, record.rows, remote))

    def _run_stage(self, nodes: list[Node], results: list[NodeResult]) -> None:
        last = results[-1]
        lazy = self._lazy_input(nodes[0])
        if lazy is not None:
            self._run_batched(nodes, results, lazy)
            return
        df_in = self._table(nodes[0].inputs[0])
        label = "+".join(n.op_name for n in nodes)
        self.emit(ev.NodeStarted(nodes[-1].name, label, df_in.height))
        t0 = time.perf_counter()
        try:
            df, counts, derivation = self.executor.run_stage(nodes, df_in, self.views)
        except Exception as e:  # name the stage's nodes: any of them may be the culprit
            names = ", ".join(n.name for n in nodes)
            msg = f"{type(e).__name__}: {e} (in the fused stage {names})"
            self.emit(ev.NodeFailed(nodes[-1].name, label, msg))
            raise OperatorError(nodes[-1].name, msg) from e
        rows_in = df_in.height
        for r, out in zip(results, counts):
            r.status, r.rows_in, r.rows_out = "ran", rows_in, out
            r.content = r.key  # never materialized: its key names its content
            rows_in = out
        last.content = self._store_output(nodes[-1].id, df, nodes[0].inputs[0], derivation)
        last.seconds = time.perf_counter() - t0
        self._save(last.key, Record(content=last.content, rows=df.height,
                                    schema=schema_of(df), stats={"stage_rows": counts},
                                    node=nodes[-1].name, recipe=self.program.path,
                                    created=time.time()), nodes[-1].id)
        self._release(nodes[0])
        self.emit(ev.NodeFinished(nodes[-1].name, label, df_in.height, df.height,
                                  last.seconds))

    def _visit(self, node: Node) -> NodeResult:
        res = NodeResult(node.id, list(node.names), node.op_name, "would-run",
                         expensive=node.op.expensive)
        try:
            inputs = self._input_contents(node)
        except DccError as e:
            raise OperatorError(node.name, str(e)) from None
        if inputs is None:
            pending = [self.program.node(i).name for i in dict.fromkeys(node.inputs)
                       if self.results[i].content is None]
            res.reason = f"an input will be rebuilt ({', '.join(pending)})"
            return res
        try:  # keying may ask a model server for its identity: failures name the node
            res.parts, uncacheable = node_parts(node, inputs, self.store.stat_cache,
                                                self.store.plan_memo)
        except DccError as e:
            raise OperatorError(node.name, str(e)) from None
        res.rows_in = self._rows_in(node)
        if res.parts is None:
            res.reason = uncacheable or "uncacheable"
            return res if self.dry_run else self._run(node, res)
        res.key = res.parts.key()
        forced = bool(self.resample & set(node.names))
        record, remote = (None, False) if forced else self._lookup(res.key)
        if record is not None:
            return self._cached(node, res, record, remote)
        res.reason = "forced by --resample" if forced else self._why_miss(node, res.parts)
        if self.dry_run:
            # An input the remote has but this machine does not cannot be counted (a pull
            # counts nothing: it only moves what the team cache has).
            if (node.op.expensive and not self.pull
                    and not any(i in self.remote_only for i in node.inputs)):
                res.new_rows = self.executor.count_new_rows(node, res.parts,
                                                            self._input_tables(node))
            return res
        with self._locked(res.key):
            record = None if forced else self.store.lookup(res.key)
            if record is not None:
                return self._cached(node, res, record)
            return self._run(node, res)

    def _input_contents(self, node: Node) -> tuple[str, ...] | None:
        if node.op.n_inputs == 0:
            return self._source_contents(node)
        contents = [self.results[i].content for i in node.inputs]
        if any(c is None for c in contents):
            return None
        return tuple(c for c in contents if c is not None)

    def _source_contents(self, node: Node) -> tuple[str, ...]:
        """A source's file hashes. When they are not back within SPECULATE_AFTER seconds, a
        file is being hashed because it changed or is new to the stat cache, and the source
        is then about sure to run: it is parsed meanwhile (on this thread; the hash on
        another), and the parse is used if the lookup misses, dropped if it hits."""
        from concurrent.futures import ThreadPoolExecutor
        from concurrent.futures import TimeoutError as Pending

        from dcc.engine.streaming import source_size

        if self.dry_run or not isinstance(node.op, Source) or \
                source_size(node.op) > self.budget:
            return source_contents(node, self.store)
        pool = ThreadPoolExecutor(1, thread_name_prefix="dcc-source-hash")
        try:
            hashing = pool.submit(source_contents, node, self.store)
            try:
                return hashing.result(timeout=SPECULATE_AFTER)
            except Pending:
                pass
            self.emit(ev.NodeStarted(node.name, node.op_name, None))
            t0 = time.perf_counter()
            try:
                ran: Any = self._execute(node, [], None)
            except Exception as e:  # raised if the node runs, as it would have been
                ran = e
            self._speculative[node.id] = (ran, time.perf_counter() - t0)
            return hashing.result()
        finally:
            pool.shutdown(wait=True)

    def _rows_in(self, node: Node) -> int | None:
        if not node.inputs:  # a source: its rows in are the rows it reads (known once read)
            return None
        rows = [self.results[i].rows_out for i in node.inputs]
        return None if any(r is None for r in rows) else sum(r for r in rows if r is not None)

    def _cached(self, node: Node, res: NodeResult, record: Record,
                remote: bool = False) -> NodeResult:
        self._speculative.pop(node.id, None)
        res.status = "remote-hit" if remote else "cached"
        res.content, res.rows_out = record.content, record.rows
        res.stats, res.reason = dict(record.stats), ""
        if res.rows_in is None and node.op.n_inputs == 0:
            res.rows_in = record.rows
        if remote and not self.fetch:
            self.remote_only.add(node.id)
        self.emit(ev.NodeCached(node.name, node.op_name, record.rows, remote))
        return res

    def _why_miss(self, node: Node, parts: KeyParts) -> str:
        old = self.last.get(node.name)
        if not old or "parts" not in old:
            return "not in the cache"
        changed = [self._label(node, name) for name, _, _ in diff_parts(old["parts"], parts)]
        return "changed: " + ", ".join(changed) if changed else "not in the cache"

    def _label(self, node: Node, part: str) -> str:
        return input_label(self.program, node, part) or part

    # -- running -----------------------------------------------------------------------------
    def _run(self, node: Node, res: NodeResult) -> NodeResult:
        from dcc.engine.streaming import source_size

        if node.op.n_inputs == 0 and source_size(node.op) > self.budget:
            self._run_batched([node], [res], None)
            return res
        lazy = self._lazy_input(node)
        if lazy is not None and (self._rowwise(node) or self._selects_streamed(node)):
            self._run_batched([node], [res], lazy)
            return res
        inputs = self._input_tables(node)
        res.rows_in = sum(t.height for t in inputs) if inputs else None
        speculated = self._speculative.pop(node.id, None)
        if speculated is None:
            self.emit(ev.NodeStarted(node.name, node.op_name, res.rows_in))
        t0 = time.perf_counter() - (speculated[1] if speculated else 0.0)
        try:
            if speculated is None:
                df, ctx, derivation = self._execute(node, inputs, res.parts)
            elif isinstance(speculated[0], BaseException):
                raise speculated[0]
            else:
                df, ctx, derivation = speculated[0]
        except DccError as e:
            self.emit(ev.NodeFailed(node.name, node.op_name, str(e)))
            raise OperatorError(node.name, str(e)) from None
        except Exception as e:  # an operator bug or bad data: name the node, keep the cache
            msg = f"{type(e).__name__}: {e}"
            self.emit(ev.NodeFailed(node.name, node.op_name, msg))
            raise OperatorError(node.name, msg) from e
        res.content = self._store_output(node.id, df, node.inputs[0] if node.inputs else None,
                                         derivation)
        res.seconds = time.perf_counter() - t0
        res.rows_out, res.status, res.stats = df.height, "ran", dict(ctx.stats)
        res.model_calls = ctx.model_calls
        if res.rows_in is None:
            res.rows_in = df.height
        if res.key is not None:
            self._save(res.key, Record(content=res.content, rows=df.height,
                                       schema=schema_of(df), stats=res.stats,
                                       node=node.name, recipe=self.program.path,
                                       created=time.time()), node.id)
        self._release(node)
        self.emit(ev.NodeFinished(node.name, node.op_name, res.rows_in or 0, df.height,
                                  res.seconds))
        return res

    def _execute(self, node: Node, inputs: list[pl.DataFrame], parts: KeyParts | None
                 ) -> tuple[pl.DataFrame, RunContext, Derivation | None]:
        """Run a node; for a node whose output the engine can derive from its one input (a
        plain Filter or Map, run as a stage of one, or a dataset operator whose select_rows
        answers), the engine does the work itself and also says how the output derives from
        the input, so it can be stored as a view or patch (None otherwise)."""
        op = node.op
        if self.views and len(inputs) == 1 and len(node.inputs) == 1:
            from dcc.engine.stages import written_columns

            df = inputs[0]
            if self._rowwise(node) and written_columns([node], []) is not None:
                ctx = self.executor.context(node)
                out, _, derivation = self.executor.run_stage([node], df, True)
                return out, ctx, derivation
            if isinstance(op, DatasetOp) and type(op).select_rows is not DatasetOp.select_rows:
                ctx = self.executor.context(node)
                rows = self.executor.select_rows(node, df, ctx)
                if rows is not None:
                    rows = check_rows(rows, df.height, op.name)
                    return take_rows(df, rows), ctx, Derivation(rows)
        df, ctx = self.executor.execute(node, inputs, parts)
        return df, ctx, None

    def _store_output(self, node_id: str, df: pl.DataFrame, input_id: str | None,
                      derivation: Derivation | None) -> str:
        """Store a node's table (a view or patch when `derivation` says how it derives from
        its input's rows) and keep it in memory for its consumers; returns its content."""
        source = self.origins.get(input_id) if input_id is not None else None
        origin = source.derive(derivation) if source and derivation else None
        # A view needs its base: if it is gone (removed as corrupt, by a concurrent gc),
        # materialize instead; so too when every column is the node's own.
        if (origin is not None and origin.fits(df)
                and (self.store.has_object(origin.base)
                     or self.background.waiting_for((origin.base,)))):
            content = self._write_view(origin, df, node_id)
        else:
            content = self._write_table(df, node_id)
            origin = Origin(content, df.height, base_schema=dict(df.schema))
        self.tables[node_id] = df
        self.origins[node_id] = origin
        return content

    # -- tables larger than memory -------------------------------------------------------------
    @property
    def budget(self) -> int:
        if self._budget is None:
            from dcc.engine.streaming import memory_budget

            self._budget = memory_budget()
        return self._budget

    def _lazy_table(self, node_id: str) -> LazyTable | None:
        """The node's table as a lazy one when it is not in memory and too large to load."""
        if node_id in self.tables:
            return None
        if node_id not in self.lazy:
            from dcc.engine.streaming import stored_lazy

            res = self.results[node_id]
            if res.content is None or res.rows_out is None:
                return None
            if self.background.waiting_for((res.content,)):
                self.background.wait()
            lazy = stored_lazy(self.store, res.content, res.rows_out, self.budget)
            if lazy is None:
                return None
            self.lazy[node_id] = lazy
        return self.lazy[node_id]

    def _lazy_input(self, node: Node) -> LazyTable | None:
        return self._lazy_table(node.inputs[0]) if len(node.inputs) == 1 else None

    @staticmethod
    def _rowwise(node: Node) -> bool:
        """A node the engine can run batch by batch: a plain Filter or Map."""
        op = node.op
        return ((isinstance(op, Filter) and type(op).run is Filter.run)
                or (isinstance(op, Map) and type(op).run is Map.run))

    def _selects_streamed(self, node: Node) -> bool:
        """A dataset operator that can pick its rows from batches (stored as a view)."""
        return (self.views and isinstance(node.op, DatasetOp)
                and node.op.streams_selection())

    def _run_batched(self, nodes: list[Node], results: list[NodeResult],
                     lazy: LazyTable | None) -> None:
        """Run a source (lazy None), a row-wise stage or a streamed row selection over a lazy
        table, batch by batch."""
        from dcc.engine import streaming

        last, node = results[-1], nodes[-1]
        label = "+".join(n.op_name for n in nodes)
        self.emit(ev.NodeStarted(node.name, label, lazy.rows if lazy else None))
        t0 = time.perf_counter()
        ctx = self.executor.context(node)
        try:
            if lazy is None:
                out = streaming.run_source(self.store, node.op, ctx, self.verified)
                counts, rows_in = [out.rows], out.rows
            elif self._selects_streamed(node):
                out = streaming.run_selection(self.store, node.op, lazy, ctx, self.verified)
                counts, rows_in = [out.rows], lazy.rows
            else:
                out, counts = streaming.run_rowwise(self.store, nodes, lazy, self.views,
                                                    self.verified)
                rows_in = lazy.rows
        except DccError as e:
            self.emit(ev.NodeFailed(node.name, label, str(e)))
            raise OperatorError(node.name, str(e)) from None
        except Exception as e:  # an operator bug or bad data: name the node, keep the cache
            names = ", ".join(n.name for n in nodes)
            msg = f"{type(e).__name__}: {e}" + (f" (in the fused stage {names})"
                                                 if len(nodes) > 1 else "")
            self.emit(ev.NodeFailed(node.name, label, msg))
            raise OperatorError(node.name, msg) from e
        for r, n_out in zip(results, counts):
            r.status, r.rows_in, r.rows_out = "ran", rows_in, n_out
            r.content = r.key  # never materialized: its key names its content
            rows_in = n_out
        last.content, last.seconds, last.stats = out.content, time.perf_counter() - t0, \
            dict(ctx.stats)
        if len(nodes) > 1:
            last.stats["stage_rows"] = counts
        self.lazy[node.id] = out
        if last.key is not None:
            self._file(last.key, Record(
                content=out.content, rows=out.rows,
                schema={c: str(t) for c, t in out.schema.items()}, stats=last.stats,
                node=node.name, recipe=self.program.path, created=time.time()))
        self._release(nodes[0])
        self.emit(ev.NodeFinished(node.name, label, results[0].rows_in or 0, out.rows,
                                  last.seconds))

    def _export_batches(self, node_id: str) -> tuple[dict[str, Any], Any] | None:
        """(schema, batches) of a node whose table is too large to load, for an export."""
        from dcc.engine.streaming import read_batches

        lazy = self._lazy_table(node_id)
        if lazy is None:
            return None
        return lazy.schema, read_batches(self.store, lazy.content, self.verified)

    def _write_view(self, origin: Origin, df: pl.DataFrame, node_id: str) -> str:
        """Store a view or patch; a patch with large own columns is serialized here and
        written by the background writer."""
        own = [c for c in df.columns if c in origin.own]
        if not own or df.select(own).estimated_size() < BACKGROUND_MIN:
            return write_view(self.store, origin, df)
        from dcc.cache.hashing import digest

        data = view_bytes(origin, df)
        content = digest(data)
        self._submit(lambda f: f.write(data), ".view", content, node_id)
        return content

    def _submit(self, write: Any, suffix: str, content: str, node_id: str) -> None:
        name = self.program.node(node_id).name

        def job() -> None:
            try:
                self.store.put_object(write, suffix, expect=content)
            except OSError as e:
                raise CacheError(f"cannot store the table of node '{name}': "
                                 f"{e.strerror or e}") from e

        self.background.submit(job, content)

    def _write_table(self, df: pl.DataFrame, node_id: str) -> str:
        """Store a table; a large one is hashed here and written by the background writer,
        and the walk carries on with its content."""
        if df.estimated_size() >= BACKGROUND_MIN:
            content, write = table_content(df)
            self._submit(write, ".arrow", content, node_id)
            return content
        return write_table(df, self.store)

    def _input_tables(self, node: Node) -> list[pl.DataFrame]:
        return [self._table(i) for i in node.inputs]

    def _table(self, node_id: str) -> pl.DataFrame:
        """An input's table: from memory, from the store, or rebuilt if the store's copy is bad."""
        if node_id in self.tables:
            return self.tables[node_id]
        self.lazy.pop(node_id, None)  # a consumer that needs it whole: load it
        res = self.results[node_id]
        if self.background.waiting_for((res.content,)):
            self.background.wait()
        assert res.content is not None
        try:
            df, origin = read_artifact(self.store, res.content)
        except (CorruptObject, MissingObject):
            # The artifact (or, for a view, its base table) is gone or bad: run the node again
            # from its inputs (read, or rebuilt the same way, in turn); deterministic
            # operators give the same content again.
            node = self.program.node(node_id)
            self._run(node, res)
            return self.tables[node_id]
        self.tables[node_id] = df
        self.origins[node_id] = origin
        return df

    def _release(self, node: Node) -> None:
        for i in node.inputs:
            self.consumers[i] -= 1
            if self.consumers[i] <= 0:
                self.tables.pop(i, None)
                self.origins.pop(i, None)
                self.lazy.pop(i, None)

    def _record_build(self) -> None:
        data = dict(self.last)
        for res in self.results.values():
            if res.key is None or res.parts is None:
                continue
            for name in res.names or [res.id]:
                data[name] = {"key": res.key, "parts": res.parts.to_dict(),
                              "content": res.content}
        if _canonical(data) != _canonical(self.last):  # a no-op rebuild writes nothing
            self.store.set_last_build(self.program.path, data)


def _canonical(data: dict[str, Any]) -> str:
    import json

    return json.dumps(data, sort_keys=True, default=str)


def input_label(program: Program, node: Node, part: str) -> str | None:
    """What a changed `inputs[i]` key part is, as a person reads it: the source file (relative
    to the recipe) or the input node's content; None for other parts."""
    if not part.startswith("inputs["):
        return None
    i = int(part[len("inputs["):-1])
    if node.op.n_inputs == 0:
        files = node.op.files()  # type: ignore[attr-defined]
        if i < len(files):
            return f"source file {os.path.relpath(files[i], os.path.dirname(program.path))}"
    elif i < len(node.inputs):
        return f"content of {program.node(node.inputs[i]).name}"
    return None


def build(program: Program, store: DiskStore, **kwargs: Any) -> BuildResult:
    return Builder(program, store, **kwargs).run()


def plan(program: Program, store: DiskStore, **kwargs: Any) -> BuildResult:
    return Builder(program, store, dry_run=True, **kwargs).run()


def pull(program: Program, store: DiskStore, remote: RemoteCache) -> BuildResult:
    """Download what the team cache has of `program` (the walk of a plan, reading through):
    nodes come back `cached` (already local), `remote-hit` (downloaded) or `would-run`."""
    from dcc.cache.rowmemo import REQUESTS_NAMESPACE

    result = Builder(program, store, dry_run=True, remote=remote, pull=True).run()
    expensive = [r.parts.memo_key() for r in result.nodes if r.expensive and r.parts]
    if expensive:  # their row memo and the model replies by request come along
        db = store.rowmemo_db()
        for namespace in sorted({REQUESTS_NAMESPACE, *expensive}):
            remote.pull_memo(db, bytes.fromhex(namespace))
    return result
