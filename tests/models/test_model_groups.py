"""Model groups: independent nodes on one model share its batches, and nothing else changes.

Built in-process with the tiny causal LM: the same recipe grouped (the optimizer's
`group_model_calls`) and ungrouped, each in its own cache, must give byte-identical exports and
the same key, status, rows, model calls and memo hits per node, and the model is loaded once.
A local model's requests keep each node's own batches (their numbers depend on the batch);
merging is tested against an HTTP model, whose requests are independent
(tests/models_http/test_model_groups_http.py).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from dcc.cache.store import DiskStore
from dcc.compiler import compile_recipe
from dcc.engine.build import build

RECIPE = """\
raw = load.jsonl("data/q.jsonl")
short = raw | select.length(field="question", max={cut})
  | rewrite.llm(field="question", model="./tiny", instruction="Shorter.", max_tokens=6,
                into="a")
long = raw | select.length(field="question", min={cut_plus})
  | rewrite.llm(field="question", model="./tiny", instruction="Shorter.", max_tokens=6,
                into="a")
both = raw | select.perplexity(field="question", model="./tiny")
  | rewrite.llm(field="question", model="./tiny", instruction="Shorter.", max_tokens=6,
                into="b")
export short to "out/short.jsonl"
export long to "out/long.jsonl"
export both to "out/both.jsonl"
"""


def _folder(root: Path, tiny_dir: Path, rows: list[dict[str, Any]]) -> Path:
    root.mkdir()
    (root / "data").mkdir()
    (root / "data" / "q.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    shutil.copytree(tiny_dir, root / "tiny")
    lengths = sorted(len(r["question"]) for r in rows)
    cut = lengths[len(lengths) // 2]
    (root / "r.recipe").write_text(RECIPE.format(cut=cut, cut_plus=cut + 1))
    return root


class _Counting:
    """Wraps HFBackend methods to record every call's size and every model load."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from dcc.ops.models.hf import HFBackend

        self.calls: list[tuple[str, int]] = []
        self.loads = 0
        gen, score, load = HFBackend.generate, HFBackend.score, HFBackend._load

        def generate(backend: Any, prompts: Any, config: Any) -> Any:
            self.calls.append(("generate", len(prompts)))
            return gen(backend, prompts, config)

        def scored(backend: Any, prefixes: Any, continuations: Any, **kw: Any) -> Any:
            self.calls.append(("score", len(prefixes)))
            return score(backend, prefixes, continuations, **kw)

        def loading(backend: Any) -> None:
            if backend._model is None:
                self.loads += 1
            load(backend)

        monkeypatch.setattr(HFBackend, "generate", generate)
        monkeypatch.setattr(HFBackend, "score", scored)
        monkeypatch.setattr(HFBackend, "_load", loading)


def _build(root: Path, grouped: bool) -> tuple[dict[str, bytes], dict[str, tuple]]:
    from dcc.ops.models.resolve import clear_backends

    clear_backends()  # each build loads its model as a fresh process would
    prog = compile_recipe(str(root / "r.recipe"))
    if not grouped:
        prog.model_groups = []
    else:
        assert prog.model_groups, prog.journal
    with DiskStore(root / ".dcc") as store:
        result = build(prog, store)
    nodes = {n.names[0]: (n.key, n.status, n.rows_in, n.rows_out, n.model_calls,
                          n.stats.get("memo_hits", 0)) for n in result.nodes}
    outs = {p.name: p.read_bytes() for p in sorted((root / "out").iterdir())}
    return outs, nodes


def test_grouped_nodes_share_batches_and_build_the_same(tmp_path: Path, tiny_dir: Path,
                                                         gsm8k: list[dict],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCC_DEVICE", "cpu")
    rows = [{"question": r["question"]} for r in gsm8k[:30]]
    seen = _Counting(monkeypatch)
    plain_out, plain_nodes = _build(_folder(tmp_path / "plain", tiny_dir, rows), grouped=False)
    plain_calls, seen.calls, seen.loads = list(seen.calls), [], 0
    group_out, group_nodes = _build(_folder(tmp_path / "grouped", tiny_dir, rows), grouped=True)

    assert group_out == plain_out and set(group_out) == {"short.jsonl", "long.jsonl",
                                                         "both.jsonl"}
    assert group_nodes == plain_nodes
    # `short` and `long` (grouped with `both@1`, which scores) ask about disjoint rows, then
    # `both` (which reads `both@1`) asks about all of them and finds every reply in the memo.
    assert group_nodes["both"][4] == 0 and group_nodes["both"][5] == 30
    # A local model's results depend on the batch they are computed in (padding changes the
    # order of float sums), so its requests are not merged: each node sends the batches it
    # sends alone, and the model is loaded once.
    alone = [n for kind, n in plain_calls if kind == "generate"]
    assert len(alone) == 2 and sum(alone) == 30
    assert [n for kind, n in seen.calls if kind == "generate"] == alone
    assert seen.loads == 1


def test_the_plan_explains_its_model_groups(tmp_path: Path, tiny_dir: Path,
                                            gsm8k: list[dict]) -> None:
    from dcc.compiler.passes.group_model_calls import group_model_calls

    root = _folder(tmp_path / "r", tiny_dir, [{"question": r["question"]} for r in gsm8k[:6]])
    prog = compile_recipe(str(root / "r.recipe"))
    lines = [j for j in prog.journal if j.startswith("group_model_calls")]
    assert len(lines) == 1 and "short, long, both@1 share model" in lines[0]
    assert group_model_calls(prog) == []  # a fixed point
    # `both` reads the output of its perplexity node `both@1`: never in a group with it
    assert [[prog.node(i).name for i in g] for g in prog.model_groups] == [
        ["short", "long", "both@1"]]


# -- the optimizer's property, over recipes with model groups ----------------------------------
BRANCH_FILTERS = ['select.length(field="question", min={n})',
                  'select.length(field="question", max={n})',
                  'select.words(field="question", min={k})']
MODEL_STEPS = ['select.perplexity(field="question", model="{model}")',
               'rewrite.llm(field="question", model="{model}", instruction="Shorter.", '
               'max_tokens=3, into="{into}")']


def test_grouped_builds_export_what_unoptimized_builds_export(tmp_path_factory: Any,
                                                             tiny_dir: Path,
                                                             gsm8k: list[dict]) -> None:
    """hypothesis: random branches (a filter, then one or two model steps on the tiny model)
    built optimized, with their model groups, and with --no-optimize: identical exports."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    questions = [r["question"] for r in gsm8k[:40]]
    grouped: list[bool] = []
    branch = st.tuples(st.sampled_from(BRANCH_FILTERS), st.integers(60, 260),
                       st.integers(5, 40),
                       st.lists(st.sampled_from(MODEL_STEPS), min_size=1, max_size=2))

    @settings(max_examples=6, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(rows=st.lists(st.sampled_from(questions), min_size=1, max_size=10),
           branches=st.lists(branch, min_size=2, max_size=3))
    def check(rows: list[str], branches: list[tuple]) -> None:
        lines = ['raw = load.jsonl("q.jsonl")']
        for i, (flt, n, k, steps) in enumerate(branches):
            chain = [flt.format(n=n, k=k)] + [s.format(model=tiny_dir, into=f"r{i}_{j}")
                                              for j, s in enumerate(steps)]
            lines.append(f"b{i} = raw | " + " | ".join(chain))
            lines.append(f'export b{i} to "out/b{i}.jsonl"')
        text = "\n".join(lines) + "\n"
        outs = []
        for optimize in (True, False):
            root = tmp_path_factory.mktemp("grp")
            (root / "q.jsonl").write_text("".join(json.dumps({"question": q}) + "\n"
                                                  for q in rows))
            (root / "r.recipe").write_text(text)
            prog = compile_recipe(str(root / "r.recipe"), optimize=optimize)
            grouped.append(bool(prog.model_groups))  # equal branches merge (CSE): no group
            with DiskStore(root / ".dcc") as store:
                build(prog, store)
            outs.append({p.name: p.read_bytes() for p in sorted((root / "out").iterdir())})
        assert outs[0] == outs[1]

    check()


def test_members_with_equal_keys_run_once(tmp_path: Path, tiny_dir: Path,
                                          gsm8k: list[dict]) -> None:
    """Two branches whose filters keep the same rows give their model nodes the same key:
    the second waits for the first's node lock without holding up the group, then finds
    its record (as one after the other would)."""
    root = tmp_path / "r"
    root.mkdir()
    (root / "q.jsonl").write_text("".join(json.dumps({"question": r["question"]}) + "\n"
                                          for r in gsm8k[:5]))
    (root / "r.recipe").write_text(
        f'raw = load.jsonl("q.jsonl")\n'
        f'a = raw | select.length(field="question", min=5)'
        f' | select.perplexity(field="question", model="{tiny_dir}")\n'
        f'b = raw | select.length(field="question", min=6)'
        f' | select.perplexity(field="question", model="{tiny_dir}")\n'
        'export a to "out/a.jsonl"\nexport b to "out/b.jsonl"\n')
    prog = compile_recipe(str(root / "r.recipe"))
    assert prog.model_groups
    with DiskStore(root / ".dcc") as store:
        result = build(prog, store)
    got = {n.names[0]: n for n in result.nodes}
    assert got["a"].key == got["b"].key
    assert (got["a"].status, got["b"].status) == ("ran", "cached")
    assert (root / "out" / "a.jsonl").read_bytes() == (root / "out" / "b.jsonl").read_bytes()
