"""The executor contract: every executor builds the same bytes under the same keys.

For example recipes, a recipe with every distributed operator (fused stages, exact and
near-dup dedup, a model-style operator on an actor pool) and recipes drawn by the
optimizer's property-test generator, a build on each executor must give byte-identical
exports, the same key for every node, and a build on one executor after the other must be
all cache hits with zero model calls. The Ray side runs on a real local Ray instance with 2
CPUs, started once for this module (`ray start --head --block` in its own process group,
stopped by its pid) and shared by every build: in this process and in `dcc` children.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import engine_ops  # noqa: F401  (registers test.shout, the model-style operator)
from engine_helpers import child_env, rows_jsonl

from dcc.ops import register
from dcc.ops.base import P, RowPython, RunContext

ROOT = Path(__file__).resolve().parents[2]
RECIPES = ROOT / "recipes"
EXECUTORS = ["local", "ray"]


# -- the Ray instance ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    """host:port of a 2-CPU Ray head started for this module (skips without Ray); its workers
    import this checkout and this folder's test operators."""
    if importlib.util.find_spec("ray") is None:
        pytest.skip("ray is not installed (pip install 'dcc-recipes[ray]')")
    from dcc.testing.ray_head import RayHeadError, ray_head

    try:
        with ray_head(2, pythonpath=(str(ROOT), str(Path(__file__).parent)),
                      env=child_env()) as address:
            yield address
    except RayHeadError as e:
        pytest.skip(str(e))


@pytest.fixture(scope="module")
def session(ray_address: str) -> Iterator[Any]:
    """This process's connection to the module's Ray instance (for in-process builds); its
    workers import test.shout from this folder (their path is the driver's PYTHONPATH)."""
    from dcc.engine.ray_executor import RaySession

    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(Path(__file__).parent), old) if p)
    try:
        s = RaySession(ray_address)
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = old
    yield s
    s.close()


# -- builds ------------------------------------------------------------------------------------
def build_here(folder: Path, executor: str, session: Any, events: list | None = None
               ) -> dict[str, Any]:
    """Build folder/r.recipe in this process on `executor`; the --json object."""
    from dcc.cache.store import DiskStore
    from dcc.compiler import compile_recipe
    from dcc.engine.build import build

    prog = compile_recipe(str(folder / "r.recipe"))
    with DiskStore(folder / ".dcc") as store:
        result = build(prog, store, executor=session.executor if executor == "ray" else None,
                       on_event=events.append if events is not None else None)
    return result.to_json()


def build_cli(folder: Path, recipe: str, executor: str, address: str) -> dict[str, Any]:
    args = ["--executor", "ray", "--ray-address", address] if executor == "ray" else []
    proc = subprocess.run([sys.executable, "-m", "dcc", "build", recipe, "--json", *args],
                          cwd=folder, capture_output=True, text=True, timeout=300,
                          env=child_env(OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def exports(folder: Path) -> dict[str, bytes]:
    out = folder / "out"
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def keys(result: dict[str, Any]) -> dict[str, str]:
    return {n["name"]: n["key"] for n in result["nodes"]}


def assert_same(a: dict[str, Any], b: dict[str, Any], folder_a: Path, folder_b: Path) -> None:
    assert exports(folder_a) == exports(folder_b)
    assert exports(folder_a), "the recipe exported nothing"
    assert keys(a) == keys(b)
    assert {n["name"]: n["content"] for n in a["nodes"]} == \
        {n["name"]: n["content"] for n in b["nodes"]}
    assert {n["name"]: n.get("stats") for n in a["nodes"]} == \
        {n["name"]: n.get("stats") for n in b["nodes"]}


def all_hits(result: dict[str, Any]) -> bool:
    return {n["status"] for n in result["nodes"]} == {"cached"} and \
        sum(n.get("model_calls", 0) for n in result["nodes"]) == 0


# -- the example recipes, through the dcc command ---------------------------------------------
def test_example_recipe_same_bytes_keys_and_cache_both_ways(tmp_path: Path,
                                                            ray_address: str) -> None:
    """seed_tasks.recipe (fused filters and a rewrite, two sources, a parquet export): the
    example recipe that builds in seconds; the others embed with MiniLM for a minute."""
    folders = {}
    for executor in EXECUTORS:
        folders[executor] = tmp_path / executor
        shutil.copytree(RECIPES, folders[executor],
                        ignore=shutil.ignore_patterns(".dcc", "out", "models"))
    first = {e: build_cli(folders[e], "seed_tasks.recipe", e, ray_address) for e in EXECUTORS}
    assert_same(first["local"], first["ray"], folders["local"], folders["ray"])
    # each cache, built by one executor, serves the other without running anything
    assert all_hits(build_cli(folders["ray"], "seed_tasks.recipe", "local", ray_address))
    assert all_hits(build_cli(folders["local"], "seed_tasks.recipe", "ray", ray_address))


# -- every distributed operator ------------------------------------------------------------------
WORDS = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi".split()


def dedup_rows(n: int, start: int = 0) -> list[dict[str, Any]]:
    """Rows with exact copies, case and space variants and near-duplicates (one word
    changed), and some without words: every dedup method finds something."""
    rows = []
    for i in range(start, start + n):
        base = " ".join(WORDS[(i * 7 + k) % len(WORDS)] for k in range(9 + i % 5))
        kind = i % 6
        if kind == 1:
            base = base.upper()
        elif kind == 2:
            base = base.replace(" ", "  ", 2)
        elif kind == 3:
            base = base.rsplit(" ", 1)[0] + " omega"
        elif kind == 4 and i % 4 == 0:
            base = ""
        rows.append({"t": base if i % 17 else None, "id": i % 97, "group": f"g{i % 5}"})
    return rows


DEDUP_RECIPE = """\
src = load.jsonl("d.jsonl")
ruled = src | select.length(field="t", max=200) | rewrite.normalize(fields=["group"])
exact = ruled | select.dedup(fields=["t"], method="exact", normalize=true)
keyed = ruled | select.dedup(fields=["id", "group"], method="exact")
near = ruled | select.dedup(fields=["t"], method="minhash", threshold=0.7, ngram=2)
sim = ruled | select.dedup(fields=["t", "group"], method="simhash", ngram=2, max_hamming=6)
sig = ruled | select.dedup(fields=["t"], method="minhash", ngram=1, verify="signature")
shouted = near | test.shout(field="group") | select.sample(n=20, seed=3)
export exact to "out/exact.jsonl"
export keyed to "out/keyed.parquet"
export sim to "out/sim.jsonl"
export sig to "out/sig.jsonl"
export shouted to "out/shouted.jsonl"
"""


def _dedup_folder(root: Path, rows: list[dict[str, Any]]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "d.jsonl").write_text(rows_jsonl(rows))
    (root / "r.recipe").write_text(DEDUP_RECIPE)
    return root


def test_dedup_and_model_operators_match_local(tmp_path: Path, session: Any,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from dcc.engine import ray_executor

    monkeypatch.setattr(ray_executor, "BLOCK_ROWS", 60)  # several blocks a table
    rows = dedup_rows(400)
    folders = {e: _dedup_folder(tmp_path / e, rows) for e in EXECUTORS}
    events: dict[str, list] = {e: [] for e in EXECUTORS}
    first = {e: build_here(folders[e], e, session, events[e]) for e in EXECUTORS}
    assert_same(first["local"], first["ray"], folders["local"], folders["ray"])
    stats = {n["name"]: n.get("stats", {}) for n in first["ray"]["nodes"]}
    assert stats["near"]["duplicates"] > 0 and stats["near"]["candidate_pairs"] > 0
    assert stats["sim"]["duplicates"] > 0 and stats["exact"]["duplicates"] > 0
    calls = {e: {n["name"]: n.get("model_calls") for n in first[e]["nodes"]} for e in EXECUTORS}
    assert calls["ray"] == calls["local"] and calls["ray"]["shouted@1"] > 0  # one per group
    # progress: the same events for the same nodes, in the same order
    shape = {e: [(type(x).__name__, x.node) for x in events[e]
                 if type(x).__name__ != "NodeProgress"] for e in EXECUTORS}
    assert shape["local"] == shape["ray"]
    assert all_hits(build_here(folders["ray"], "local", session))
    assert all_hits(build_here(folders["local"], "ray", session))
    # the row memo: rows added to the source cost calls for their new values only
    more = rows + [{"t": "fresh words here", "id": 1, "group": "new group"}]
    for e in EXECUTORS:
        (folders[e] / "d.jsonl").write_text(rows_jsonl(more))
    again = {e: build_here(folders[e], e, session) for e in EXECUTORS}
    assert_same(again["local"], again["ray"], folders["local"], folders["ray"])
    assert {n["name"]: n.get("model_calls") for n in again["ray"]["nodes"]}["shouted@1"] == 1


@register
class Boom(RowPython):
    """Fails on the row whose `t` is "boom", as a model server that goes away. Test-only."""

    name = "test.boom"
    expensive = True
    params = (P("field", "str", doc="text column", column=True, col_type="str"),)

    def process(self, rows: list[dict[str, Any]], ctx: RunContext) -> list[dict[str, Any]]:
        if any(r[self.p["field"]] == "boom" for r in rows):
            raise ConnectionError("the model server went away")
        return [{} for _ in rows]


def test_a_failing_operator_on_ray_names_its_node(tmp_path: Path, session: Any) -> None:
    from dcc.errors import OperatorError

    folder = tmp_path / "f"
    folder.mkdir()
    (folder / "d.jsonl").write_text(rows_jsonl([{"t": "fine"}, {"t": "boom"}]))
    (folder / "r.recipe").write_text('x = load.jsonl("d.jsonl") | test.boom(field="t")\n'
                                     'export x to "out/x.jsonl"\n')
    with pytest.raises(OperatorError) as info:
        build_here(folder, "ray", session)
    assert str(info.value) == ("node 'x' failed: ConnectionError: the model server went "
                               "away")
    assert not (folder / "out").exists()


# -- recipes of the optimizer's property-test generator ---------------------------------------
def _generator() -> Any:
    path = ROOT / "tests" / "compiler" / "test_passes.py"
    spec = importlib.util.spec_from_file_location("optimizer_property_recipes", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.recipes


def test_property_recipes_match_local(tmp_path_factory: pytest.TempPathFactory,
                                      session: Any) -> None:
    from hypothesis import HealthCheck, given, settings

    @settings(max_examples=6, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(case=_generator()())
    def check(case: tuple[str, list[dict]]) -> None:
        text, rows = case
        folders, results = {}, {}
        for e in EXECUTORS:
            folders[e] = tmp_path_factory.mktemp(e)
            (folders[e] / "d.jsonl").write_text(rows_jsonl(rows) or '{"t": "", "u": ""}\n')
            (folders[e] / "r.recipe").write_text(text)
            results[e] = build_here(folders[e], e, session)
        assert_same(results["local"], results["ray"], folders["local"], folders["ray"])
        assert all_hits(build_here(folders["ray"], "local", session))
        assert all_hits(build_here(folders["local"], "ray", session))

    check()


# -- the command line without Ray, or with a wrong address ------------------------------------
def _dcc(folder: Path, *args: str, pre: str = "") -> subprocess.CompletedProcess:
    code = f"{pre}from dcc.cli import main; main()"
    return subprocess.run([sys.executable, "-c", code, "build", "r.recipe", *args],
                          cwd=folder, capture_output=True, text=True, timeout=120,
                          env=child_env(PYTHONPATH=str(ROOT)))


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    (tmp_path / "d.jsonl").write_text(rows_jsonl([{"t": "a b"}]))
    (tmp_path / "r.recipe").write_text('x = load.jsonl("d.jsonl")\nexport x to "o.jsonl"\n')
    return tmp_path


def test_without_ray_the_message_says_how_to_install_it(tiny: Path) -> None:
    proc = _dcc(tiny, "--executor", "ray", pre="import sys; sys.modules['ray'] = None; ")
    assert proc.returncode == 2
    assert "pip install 'dcc-recipes[ray]'" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tiny / "o.jsonl").exists()


@pytest.mark.parametrize("address, says", [
    ("127.0.0.1:1", "nothing answers at 127.0.0.1:1"),
    ("no-port-here", "expected HOST:PORT"),
])
def test_a_bad_ray_address_is_a_clear_error(tiny: Path, address: str, says: str) -> None:
    if importlib.util.find_spec("ray") is None:
        pytest.skip("ray is not installed")
    proc = _dcc(tiny, "--executor", "ray", "--ray-address", address)
    assert proc.returncode == 2, proc.stderr
    assert says in proc.stderr and "Traceback" not in proc.stderr


def test_ray_address_needs_the_ray_executor(tiny: Path) -> None:
    proc = _dcc(tiny, "--ray-address", "127.0.0.1:6379")
    assert proc.returncode == 2
    assert "--ray-address applies to --executor ray only" in proc.stderr


def test_actors_share_the_drivers_request_memo(tmp_path: Path, session: Any) -> None:
    """A model reply memoized by an actor (through the memo server on the driver's node) is
    in the driver's store, where a local build would find it, and the reverse."""
    import ray

    from dcc.cache.rowmemo import request_memo
    from dcc.cache.store import DiskStore
    from dcc.engine.ray_executor import RayExecutor, RemoteRequestMemo

    def on_worker(memo: RemoteRequestMemo) -> dict[str, bytes]:
        memo.put_many({"ab" * 16: b"from an actor"})
        return memo.get_many(["cd" * 16, "ef" * 16])

    with DiskStore(tmp_path / ".dcc") as store:
        request_memo(store).put_many({"cd" * 16: b"from the driver"})
        executor = RayExecutor(session, store, lambda e: None, {})
        memo = RemoteRequestMemo(executor._requests_server())
        seen = ray.get(ray.remote(on_worker).remote(memo))
        assert seen == {"cd" * 16: b"from the driver"}
        assert request_memo(store).get_many(["ab" * 16]) == {"ab" * 16: b"from an actor"}
