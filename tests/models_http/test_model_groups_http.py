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
