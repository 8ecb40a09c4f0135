"""Model-based selection operators on real data, with expectations checked by hand."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from dcc.errors import ParamError
from dcc.ops import get
from dcc.ops.base import RunContext
from dcc.ops.models.resolve import model_identity, parse_ref
from dcc.ops.scorers import SelectDiverse, SelectIFD, SelectKCenter, SelectPerplexity
from dcc.ops.semantic import semdedup


def ctx() -> RunContext:
    return RunContext("test", options={"device": "cpu"})


def shuffled(text: str, seed: int) -> str:
    chars = list(text)
    random.Random(seed).shuffle(chars)
    return "".join(chars)


# -- select.perplexity -------------------------------------------------------------------------
def test_registered() -> None:
    for name in ("select.perplexity", "select.ifd", "select.diverse", "select.kcenter"):
        assert get(name) is not None


def test_perplexity_of_real_text_is_below_shuffled_characters(tiny_dir: Path,
                                                              gsm8k: list[dict]) -> None:
    op = SelectPerplexity(field="answer", model=str(tiny_dir))
    real = [r["answer"] for r in gsm8k[200:230]]
    rows = [{"answer": t} for t in real] + [{"answer": shuffled(t, i)} for i, t in
                                             enumerate(real)]
    out = op.process(rows, ctx())
    ppl = [o["_ppl"] for o in out]
    for good, bad in zip(ppl[:30], ppl[30:]):
        assert good < bad
    assert max(ppl[:30]) < min(ppl[30:])  # the model knows GSM8K: no overlap at all


def test_perplexity_value_bounds_and_nulls(tiny: Any, tiny_dir: Path) -> None:
    text = "Weng earns 12/60 = $<<12/60=0.2>>0.2 per minute."
    s = tiny.score([""], [text])[0]
    want = math.exp(-sum(s.logprobs) / len(s.logprobs))
    rows = [{"t": text}, {"t": ""}, {"t": None}, {"t": shuffled(text, 1)}]
    out = SelectPerplexity(field="t", model=str(tiny_dir)).process(rows, ctx())
    assert out[0]["_ppl"] == pytest.approx(want, rel=1e-6)
    assert out[1] == out[2] == {"_ppl": None}  # no tokens: no perplexity, kept without bounds
    bounded = SelectPerplexity(field="t", model=str(tiny_dir), max=want * 1.01)
    assert bounded.process(rows, ctx()) == [out[0], None, None, None]
    low = SelectPerplexity(field="t", model=str(tiny_dir), min=want * 0.999)
    assert low.process(rows, ctx()) == [out[0], None, None, out[3]]
    with pytest.raises(ParamError, match="'max' must be >= 'min'"):
        SelectPerplexity(field="t", model=str(tiny_dir), min=5.0, max=1.0)
    with pytest.raises(ParamError, match="missing required parameter 'model'"):
        SelectPerplexity(field="t")


def test_model_ops_share_the_resolvers_identity(tiny_dir: Path, tmp_path: Path) -> None:
    op = SelectPerplexity(field="t", model=str(tiny_dir))
    assert op.model_identity({}) == model_identity(str(tiny_dir))
    assert "model" not in op.key_params()  # the identity keys it, not the path
    hub = SelectPerplexity(field="t", model=str(tmp_path / "Qwen" / "Qwen2.5-0.5B"))
    assert parse_ref(hub.p["model"]).location == "Qwen/Qwen2.5-0.5B"  # the join undone
    assert SelectDiverse(field="t").model_identity() == model_identity(None)


# -- select.ifd --------------------------------------------------------------------------------
def test_ifd_on_gsm8k_is_finite_and_mostly_below_one(tiny_dir: Path,
                                                     gsm8k: list[dict]) -> None:
    rows = gsm8k[:60]
    out = SelectIFD(instruction="question", output="answer", model=str(tiny_dir)).process(
        rows, ctx())
    ifd = [o["_ifd"] for o in out]
    assert all(x is not None and math.isfinite(x) and 0.5 < x < 1.5 for x in ifd)
    # a model trained on GSM8K reads the question: it helps predict most answers
    assert sum(x < 1 for x in ifd) >= 0.7 * len(ifd)
    # and its own question helps more, on average, than the next row's question
    swapped = [{"question": rows[(i + 1) % len(rows)]["question"], "answer": r["answer"]}
               for i, r in enumerate(rows)]
    other = [o["_ifd"] for o in SelectIFD(instruction="question", output="answer",
                                          model=str(tiny_dir)).process(swapped, ctx())]
    assert sum(ifd) < sum(other)


def test_ifd_is_the_ratio_of_conditional_to_plain_loss(tiny: Any, tiny_dir: Path,
                                                       gsm8k: list[dict]) -> None:
    row = gsm8k[5]
    cond, alone = tiny.score([row["question"] + "\n", ""], [row["answer"], row["answer"]])
    got = SelectIFD(instruction="question", output="answer", model=str(tiny_dir)).process(
        [row], ctx())[0]["_ifd"]
    assert got == pytest.approx(cond.mean_loss / alone.mean_loss, rel=1e-6)
    alpaca = SelectIFD(instruction="question", output="answer", model=str(tiny_dir),
                       template="alpaca")
    assert alpaca.prompt(row).startswith("Below is an instruction")
    assert alpaca.prompt(row).endswith(f"{row['question']}\n\n### Response:\n")
    with_input = SelectIFD(model=str(tiny_dir), input="input")
    assert with_input.prompt({"instruction": "Sum:", "input": "2 3"}) == "Sum:\n\n2 3\n"
    assert with_input.prompt({"instruction": "Sum:", "input": ""}) == "Sum:\n"
    assert with_input.reads() == ["instruction", "output", "input"]


def test_ifd_bounds_and_empty_outputs(tiny_dir: Path, gsm8k: list[dict]) -> None:
    rows = [{"instruction": r["question"], "output": r["answer"]} for r in gsm8k[:8]]
    rows.append({"instruction": "Say nothing.", "output": ""})
    scored = SelectIFD(model=str(tiny_dir)).process(rows, ctx())
    assert scored[-1] == {"_ifd": None}
    kept = SelectIFD(model=str(tiny_dir), max=0.999).process(rows, ctx())
    assert [k is not None for k in kept] == [s["_ifd"] is not None and s["_ifd"] <= 0.999
                                             for s in scored]


# -- select.diverse ----------------------------------------------------------------------------
DIVERSE_ROWS = [
    {"q": "Give me a recipe for banana bread.", "s": 0.9},
    {"q": "Can you share a recipe to make banana bread?", "s": 0.95},
    {"q": "How do I bake banana bread at home?", "s": 0.5},
    {"q": "What is the capital of France?", "s": 0.7},
    {"q": "Which city is the capital of France?", "s": 0.8},
    {"q": "Write a Python function that reverses a string.", "s": None},
]


def test_diverse_admits_by_score_and_distance(minilm: Any) -> None:
    # MiniLM similarities: rows 0-1 0.93, 0-2 0.79, 1-2 0.78, 3-4 0.94, across topics < 0.2
    df = pl.DataFrame(DIVERSE_ROWS).with_row_index("id")
    run = lambda **kw: SelectDiverse(field="q", **kw).run([df], c)["id"].to_list()
    c = ctx()
    assert run(by="s") == [1, 2, 4, 5]  # 0 and 3 sit within distance 0.1 of a better row
    assert c.model_calls == 6
    assert run(by="s", threshold=0.3) == [1, 4, 5]  # 2 is 0.22 from row 1
    assert run(by="s", budget=2) == [1, 4]
    assert run(threshold=0.1) == [0, 2, 3, 5]  # no score: input order decides
    assert run(by="s", budget=0) == []


def test_diverse_embeds_only_as_far_as_the_walk_goes(minilm: Any, gsm8k: list[dict],
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(SelectDiverse, "CHUNK", 16)
    df = pl.DataFrame({"q": [r["question"] for r in gsm8k[:300]]})
    c = ctx()
    out = SelectDiverse(field="q", budget=5).run([df], c)
    assert out["q"].to_list() == df["q"].to_list()[:5]  # distinct questions, in order
    assert c.model_calls == 16  # one chunk of the walk
    c = ctx()
    assert SelectDiverse(field="q", budget=20).run([df], c).height == 20
    assert c.model_calls == 32


# -- select.kcenter ----------------------------------------------------------------------------
def load(path: Path, n: int) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line, _ in zip(f, range(n))]


def test_kcenter_is_farthest_first_and_within_twice_the_optimum(
        minilm: Any, data_dir: Path, gsm8k: list[dict]) -> None:
    import itertools

    import numpy as np

    texts = ([r["question"] for r in gsm8k[:8]]
             + [r["prompt"][:400] for r in load(data_dir / "humaneval.jsonl", 8)]
             + [r["instruction"] for r in load(data_dir / "self_instruct_seed_tasks.jsonl", 8)])
    df = pl.DataFrame({"i": list(range(24)), "text": texts})
    v = minilm.embed(texts)
    dist = 1.0 - v @ v.T

    def radius(centers: list[int]) -> float:
        return float(dist[:, centers].min(axis=1).max())

    best = min(radius(list(c)) for c in itertools.combinations(range(24), 3))
    for seed in (0, 1, 2):
        c = ctx()
        picked = SelectKCenter(field="text", budget=3, seed=seed).run([df], c)["i"].to_list()
        assert c.model_calls == 24 and picked == sorted(picked)  # original order
        first = int(np.random.default_rng(seed).integers(24))
        second = int(np.argmax(dist[first]))  # by hand: the farthest from the first
        third = int(np.argmax(np.minimum(dist[first], dist[second])))
        assert picked == sorted({first, second, third})
        assert radius(picked) <= 2 * best + 1e-6  # the greedy guarantee
    a = SelectKCenter(field="text", budget=12, seed=4).run([df], ctx())
    assert a.equals(SelectKCenter(field="text", budget=12, seed=4).run([df], ctx()))
    assert SelectKCenter(field="text", budget=100).run([df], ctx()).height == 24
    assert SelectKCenter(field="text", budget=0).run([df], ctx()).height == 0


# -- semantic dedup ----------------------------------------------------------------------------
def test_semdedup_drops_near_duplicates_keeping_the_first(minilm: Any,
                                                          gsm8k: list[dict]) -> None:
    qs = [r["question"] for r in gsm8k[:40]]
    near = {3: qs[3].replace("?", " ?").lower(), 17: qs[17].replace(",", "")}
    rows = [{"id": i, "q": q} for i, q in enumerate(qs)]
    rows.insert(10, {"id": 103, "q": near[3]})  # after its original: dropped
    rows.insert(0, {"id": 117, "q": near[17]})  # before its original: kept, original dropped
    df = pl.DataFrame(rows)
    for k in (1, 4):
        c = ctx()
        out = semdedup(df, ["q"], threshold=0.95, model=None, n_clusters=k, seed=0, ctx=c)
        assert sorted(set(df["id"]) - set(out["id"])) == [17, 103]
        assert out["id"].to_list() == [i for i in df["id"] if i not in (17, 103)]
        assert c.stats["duplicates"] == 2 and c.model_calls == 42
    # MiniLM lowercases: 103 embeds exactly as 3 (similarity 1.0); 117 vs 17 is 0.997; any
    # two distinct GSM8K questions here stay below 0.77
    strict = semdedup(df, ["q"], threshold=0.999, model=None, n_clusters=4, seed=0, ctx=ctx())
    assert sorted(set(df["id"]) - set(strict["id"])) == [103]
    assert semdedup(df, ["q"], 0.8, None, 4, 0, ctx()).height == 40
    assert semdedup(df.head(0), ["q"], 0.9, None, 4, 0, ctx()).height == 0


def test_select_dedup_semantic_runs_semdedup(minilm: Any, gsm8k: list[dict]) -> None:
    dedup = get("select.dedup")
    assert dedup is not None
    qs = [r["question"] for r in gsm8k[:30]]
    df = pl.DataFrame({"q": [*qs, qs[4].replace(",", ""), qs[9].upper()]})
    op = dedup(fields=["q"], method="semantic", threshold=0.95)
    c = ctx()
    assert op.run([df], c)["q"].to_list() == qs
    assert c.model_calls == df["q"].n_unique() and c.stats["duplicates"] == 2  # per text
    assert op.model_identity() == model_identity(None)
