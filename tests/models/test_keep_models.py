"""`keep=` on the model scorers, built as a user builds: the same rows as scoring then
`select.topk`, the paper's IFD cut, and a new `keep` that asks the model nothing."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dcc.ops.base import RunContext
from dcc.ops.scorers import SelectIFD, SelectPerplexity, score_losses

RECIPE = """\
recipe keep
param k = 0.25
raw = load.jsonl("data/gsm8k.jsonl")
fluent = raw | select.perplexity(field="answer", model="./tiny", keep=k)
fluent2 = raw | select.perplexity(field="answer", model="./tiny")
  | select.topk(by="_ppl", fraction=0.25, descending=false)
hard = raw | select.ifd(instruction="question", output="answer", model="./tiny", keep=0.3)
hard2 = raw | select.ifd(instruction="question", output="answer", model="./tiny", max=1.0)
  | select.topk(by="_ifd", fraction=0.3)
export fluent to "out/fluent.jsonl"
export fluent2 to "out/fluent2.jsonl"
export hard to "out/hard.jsonl"
export hard2 to "out/hard2.jsonl"
"""

ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "DCC_DEVICE": "cpu"}


def read(folder: Path, name: str) -> list[dict[str, Any]]:
    return [json.loads(x) for x in (folder / "out" / name).read_text().splitlines()]


def test_keep_is_scoring_then_topk_and_a_new_keep_asks_nothing(
        recipe_dir: Callable, run_cli: Callable, tiny_dir: Path, gsm8k: list[dict]) -> None:
    rows = [{"question": r["question"], "answer": r["answer"]} for r in gsm8k[:24]]
    folder = recipe_dir({"r.recipe": RECIPE, "data/gsm8k.jsonl": rows})
    shutil.copytree(tiny_dir, folder / "tiny")

    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder, env=ENV, timeout=300)
    assert code == 0, err
    nodes = {n["name"]: n for n in json.loads(out)["nodes"]}
    # one request per answer (perplexity, and IFD's loss of the answer alone: the same
    # request) and one per question+answer: every node after the first asks the memo
    assert sum(n.get("model_calls", 0) for n in nodes.values()) == 48
    fluent = read(folder, "fluent.jsonl")
    assert fluent == read(folder, "fluent2.jsonl") and len(fluent) == 6
    ppl = sorted(r["_ppl"] for r in fluent)
    hard = read(folder, "hard.jsonl")
    assert hard == read(folder, "hard2.jsonl") and all(r["_ifd"] <= 1.0 for r in hard)
    assert len(hard) == int(0.3 * nodes["hard2"]["rows_in"])  # of the rows at or below 1
    chosen = {h["question"] for h in hard}
    assert [r["question"] for r in hard] == [r["question"] for r in rows
                                              if r["question"] in chosen]  # input order

    code, out, err = run_cli("build", "r.recipe", "--json", "--set", "k=0.5", cwd=folder,
                             env=ENV, timeout=300)
    assert code == 0, err
    nodes = {n["name"]: n for n in json.loads(out)["nodes"]}
    assert (nodes["fluent"]["status"], nodes["fluent"]["model_calls"]) == ("ran", 0)
    assert nodes["fluent"]["stats"]["memo_hits"] == 24
    wider = read(folder, "fluent.jsonl")
    assert len(wider) == 12 and max(r["_ppl"] for r in wider) >= ppl[-1]
    assert {r["answer"] for r in fluent} <= {r["answer"] for r in wider}
    assert nodes["hard"]["status"] == "cached"


def test_scores_through_the_memo_are_the_scores(tiny_dir: Path, gsm8k: list[dict]) -> None:
    """A memoized loss is the exact float the model gave (JSON keeps every bit)."""

    class Memo(dict):
        def get_many(self, keys: Any) -> dict:
            return {k: self[k] for k in keys if k in self}

        def put_many(self, items: dict) -> None:
            self.update(items)

    rows = [{"q": r["question"], "a": r["answer"]} for r in gsm8k[:5]] + [{"q": "x", "a": ""}]
    memo = Memo()
    ctx = RunContext("t", options={"device": "cpu"}, requests=memo)
    ifd = SelectIFD(instruction="q", output="a", model=str(tiny_dir))
    first = ifd.process(rows, ctx)
    assert ctx.model_calls == 10 and len(memo) == 10  # the empty answer asks nothing
    again = ifd.process(rows, ctx)
    assert again == first and ctx.model_calls == 10 and ctx.stats["memo_hits"] == 10
    plain = SelectIFD(instruction="q", output="a", model=str(tiny_dir)).process(
        rows, RunContext("t", options={"device": "cpu"}))
    assert plain == first and first[-1] == {"_ifd": None}
    ppl = SelectPerplexity(field="a", model=str(tiny_dir))
    ppl.process(rows, ctx)  # the answers alone were asked by IFD already
    assert ctx.model_calls == 10
    backend = ppl.backend(ctx)
    assert score_losses(ctx, backend, [""], [""]) == [None]
