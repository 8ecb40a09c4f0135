"""Model groups against an HTTP model: requests of several nodes go out as one set.

An OpenAI-compatible server answers each request on its own, so a model group may merge its
members' requests (`OpenAIBackend.independent_requests`): the client's concurrency window is
then filled from every node at once. The same recipe built grouped and ungrouped, in separate
caches, must export the same bytes with the same key, status, rows and model calls per node,
and send each distinct request once either way.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from fake_openai import FakeOpenAI

from dcc.cache.store import DiskStore
from dcc.compiler import compile_recipe
from dcc.engine.build import build


def _build(root: Path, server: FakeOpenAI, grouped: bool) -> tuple[dict, dict]:
    from dcc.ops.models.resolve import clear_backends

    clear_backends()
    prog = compile_recipe(str(root / "r.recipe"))
    assert bool(prog.model_groups)
    if not grouped:
        prog.model_groups = []
    with DiskStore(root / ".dcc") as store:
        result = build(prog, store)
    nodes = {n.names[0]: (n.key, n.status, n.rows_in, n.rows_out, n.model_calls,
                          n.stats.get("memo_hits", 0)) for n in result.nodes}
    return {p.name: p.read_bytes() for p in sorted((root / "out").iterdir())}, nodes


def test_an_http_models_requests_are_sent_together(tmp_path: Path, fake: FakeOpenAI,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCC_OPENAI_MAX_CONCURRENCY", "8")
    fake.delay = 0.05  # a served model's latency: what a fuller window saves
    texts = [f"text number {i} " + "word " * i for i in range(15)]
    lines = []
    for b in range(3):
        lines += [f'b{b} = load.jsonl("q{b}.jsonl") | rewrite.llm(field="t", '
                  f'model="{fake.ref()}", instruction="Shorter.", into="s")',
                  f'export b{b} to "out/b{b}.jsonl"']
    seen: dict[bool, tuple[Any, ...]] = {}
    for grouped in (False, True):
        root = tmp_path / str(grouped)
        root.mkdir()
        for b in range(3):  # disjoint rows, plus one text every branch asks about
            rows = texts[b * 5:(b + 1) * 5] + [texts[0]]
            (root / f"q{b}.jsonl").write_text("".join(json.dumps({"t": t}) + "\n"
                                                      for t in rows))
        (root / "r.recipe").write_text("\n".join(lines) + "\n")
        fake.requests.clear()
        fake.max_in_flight = 0
        out, nodes = _build(root, fake, grouped)
        posts = [r for r in fake.requests if r.get("method", "POST") == "POST"
                 and "messages" in (r.get("body") or {})]
        seen[grouped] = (out, nodes, len(posts), fake.max_in_flight)
    assert seen[True][0] == seen[False][0]  # same bytes
    # same keys, statuses, rows and model calls
    assert {n: t[:5] for n, t in seen[True][1].items()} == \
        {n: t[:5] for n, t in seen[False][1].items()}
    # texts[0] is b0's call either way. One node after another, b1 and b2 (the same operator
    # and parameters, so the same row memo) find its row already done; grouped, they ask at
    # the same time as b0 and get b0's reply, counted as a memo hit
    assert [seen[False][1][b][5] for b in ("b0", "b1", "b2")] == [0, 0, 0]
    assert [seen[True][1][b][5] for b in ("b0", "b1", "b2")] == [0, 1, 1]
    assert seen[True][2] == seen[False][2] == 15  # each distinct request once
    # alone, a node has 5-6 requests in flight at most; grouped, the window of 8 fills
    assert seen[False][3] <= 6 < seen[True][3] == 8


def test_members_with_equal_keys_run_once(tmp_path: Path, fake: FakeOpenAI) -> None:
    """Two branches whose filters keep the same rows give their model nodes the same key:
    the second waits for the first's node lock without holding up the group (idle), then
    finds its record, as one after the other would."""
    (tmp_path / "q.jsonl").write_text("".join(json.dumps({"t": f"text {i} is long"}) + "\n"
                                              for i in range(4)))
    step = f'rewrite.llm(field="t", model="{fake.ref()}", instruction="Shorter.", into="s")'
    (tmp_path / "r.recipe").write_text(
        f'raw = load.jsonl("q.jsonl")\n'
        f'a = raw | select.length(field="t", min=2) | {step}\n'
        f'b = raw | select.length(field="t", min=3) | {step}\n'
        'export a to "out/a.jsonl"\nexport b to "out/b.jsonl"\n')
    prog = compile_recipe(str(tmp_path / "r.recipe"))
    assert prog.model_groups
    with DiskStore(tmp_path / ".dcc") as store:
        result = build(prog, store)
    got = {n.names[0]: n for n in result.nodes}
    assert got["a"].key == got["b"].key
    assert (got["a"].status, got["b"].status) == ("ran", "cached")
    assert len(fake.posts()) == 4  # each row asked once
    out = tmp_path / "out"
    assert (out / "a.jsonl").read_bytes() == (out / "b.jsonl").read_bytes()


BRANCH_FILTERS = ['select.length(field="t", min={n})', 'select.length(field="t", max={n})',
                  'select.words(field="t", min={k})']
STEPS = ['rewrite.llm(field="t", model="{model}", instruction="Shorter.", into="{into}")',
         'rewrite.llm(field="t", model="{model}", instruction="Longer.")',
         'select.judge(field="t", model="{model}", min_score=0)']


def test_grouped_builds_export_what_unoptimized_builds_export(tmp_path_factory: Any,
                                                             fake: FakeOpenAI) -> None:
    """hypothesis: random branches (a filter, then one or two model steps on a served model)
    built optimized, with their model groups, and with --no-optimize: identical exports."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    texts = [f"item {i}: " + "some words here " * (i % 5) for i in range(12)]
    grouped: list[bool] = []
    branch = st.tuples(st.sampled_from(BRANCH_FILTERS), st.integers(5, 60),
                       st.integers(1, 8), st.lists(st.sampled_from(STEPS), min_size=1,
                                                   max_size=2))

    @settings(max_examples=12, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow,
                                     HealthCheck.function_scoped_fixture])
    @given(rows=st.lists(st.sampled_from(texts), min_size=1, max_size=10),
           branches=st.lists(branch, min_size=2, max_size=3))
    def check(rows: list[str], branches: list[tuple]) -> None:
        lines = ['raw = load.jsonl("q.jsonl")']
        for i, (flt, n, k, steps) in enumerate(branches):
            chain = [flt.format(n=n, k=k)] + [s.format(model=fake.ref(), into=f"r{i}_{j}")
                                              for j, s in enumerate(steps)]
            lines.append(f"b{i} = raw | " + " | ".join(chain))
            lines.append(f'export b{i} to "out/b{i}.jsonl"')
        outs = []
        for optimize in (True, False):
            root = tmp_path_factory.mktemp("grp")
            (root / "q.jsonl").write_text("".join(json.dumps({"t": t}) + "\n" for t in rows))
            (root / "r.recipe").write_text("\n".join(lines) + "\n")
            prog = compile_recipe(str(root / "r.recipe"), optimize=optimize)
            grouped.append(bool(prog.model_groups))  # equal branches merge (CSE): no group
            with DiskStore(root / ".dcc") as store:
                build(prog, store)
            outs.append({p.name: p.read_bytes() for p in sorted((root / "out").iterdir())})
        assert outs[0] == outs[1]

    check()
    assert any(grouped), "no example had a model group"
