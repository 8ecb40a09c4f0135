"""`select.reward` on a real (tiny, randomly initialised) reward model: a
`GPT2ForSequenceClassification` with one label, on the tiny test model's config and tokenizer.

Its scores mean nothing about quality, but they are a real head's outputs on real text: enough
to check that they are deterministic, independent of batching and row order, routed to the
right rows by `keep`, and asked of the model once per distinct input across rebuilds.
"""

from __future__ import annotations

import json
import random
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from dcc.cache import open_store
from dcc.compiler.ir import Node
from dcc.engine.executor import LocalExecutor
from dcc.errors import ParamError
from dcc.ops.base import RunContext
from dcc.ops.models.hf import ModelLoadError
from dcc.ops.models.resolve import resolve_model
from dcc.ops.scorers import SelectReward

CHAT = "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}{% endfor %}"
ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "DCC_DEVICE": "cpu"}


def make_rm(tiny_dir: Path, dest: Path, labels: int = 1, chat: str | None = None) -> Path:
    import torch
    from transformers import AutoTokenizer, GPT2Config, GPT2ForSequenceClassification

    torch.manual_seed(0)
    config = GPT2Config.from_pretrained(tiny_dir, num_labels=labels)
    model = GPT2ForSequenceClassification(config)  # no pad_token_id: the backend sets it
    tok = AutoTokenizer.from_pretrained(tiny_dir)
    if chat is not None:
        tok.chat_template = chat
    model.save_pretrained(dest)
    tok.save_pretrained(dest)
    return dest


@pytest.fixture(scope="module")
def rm_dir(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_rm(tiny_dir, tmp_path_factory.mktemp("rm") / "rm")


@pytest.fixture(scope="module")
def rm(rm_dir: Path) -> Any:
    return resolve_model(str(rm_dir), kind="reward", options={"device": "cpu"})


@pytest.fixture(scope="module")
def texts(gsm8k: list[dict]) -> list[str]:
    return [r["answer"] for r in gsm8k[:40]]


def test_scores_are_deterministic_and_in_input_order(rm: Any, texts: list[str]) -> None:
    scores = rm.reward(texts)
    assert len(scores) == 40 and len(set(scores)) == 40   # real, distinct outputs
    assert rm.reward(texts) == scores
    perm = list(range(40))
    random.Random(1).shuffle(perm)
    shuffled = rm.reward([texts[i] for i in perm])
    assert shuffled == pytest.approx([scores[i] for i in perm], rel=1e-5, abs=1e-6)
    one_by_one = [rm.reward([t])[0] for t in texts[:8]]   # no padding at all
    assert one_by_one == pytest.approx(scores[:8], rel=1e-5, abs=1e-6)
    unsorted = rm.reward(texts, sort=False)
    assert unsorted == pytest.approx(scores, rel=1e-5, abs=1e-6)


def test_small_batches_give_the_same_scores(rm_dir: Path, rm: Any, texts: list[str]) -> None:
    small = resolve_model(str(rm_dir), kind="reward",
                          options={"device": "cpu", "max_batch_tokens": 300})
    assert small is not rm
    assert small.reward(texts) == pytest.approx(rm.reward(texts), rel=1e-5, abs=1e-6)


def rows_of(gsm8k: list[dict], n: int) -> list[dict[str, Any]]:
    return [{"question": r["question"], "answer": r["answer"]} for r in gsm8k[:n]]


def run(op: SelectReward, rows: list[dict[str, Any]]) -> tuple[pl.DataFrame, RunContext]:
    """The node's output and context, run as the executor runs it, on a fresh store (so
    every distinct input is a model call)."""
    node = Node("n1", op, [], None)  # type: ignore[arg-type]
    folder = Path(tempfile.mkdtemp(prefix="dcc-reward-"))
    try:
        with open_store(folder / ".dcc") as store:
            return LocalExecutor(store, lambda e: None, {"device": "cpu"}).execute(
                node, [pl.DataFrame(rows)], None)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_fields_without_a_chat_template_read_instruction_blank_line_response(
        rm_dir: Path, rm: Any, gsm8k: list[dict]) -> None:
    rows = rows_of(gsm8k, 6)
    by_fields, ctx = run(SelectReward(model=str(rm_dir), fields=["question", "answer"]), rows)
    assert ctx.model_calls == 6
    expected = rm.reward([f"{r['question']}\n\n{r['answer']}" for r in rows])
    assert by_fields["_reward"].to_list() == pytest.approx(expected, rel=1e-5, abs=1e-6)
    by_template, _ = run(SelectReward(model=str(rm_dir),
                                      template="{{ question }}\n\n{{ answer }}"), rows)
    assert by_template["_reward"].to_list() == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_fields_with_a_chat_template_use_it(tiny_dir: Path, tmp_path: Path,
                                            gsm8k: list[dict]) -> None:
    folder = make_rm(tiny_dir, tmp_path / "chat_rm", chat=CHAT)
    backend = resolve_model(str(folder), kind="reward", options={"device": "cpu"})
    rows = rows_of(gsm8k, 4)
    out, _ = run(SelectReward(model=str(folder), fields=["question", "answer"]), rows)
    expected = backend.reward([f"<|user|>{r['question']}<|assistant|>{r['answer']}"
                               for r in rows])
    assert out["_reward"].to_list() == pytest.approx(expected, rel=1e-5, abs=1e-6)
    plain = backend.reward([f"{r['question']}\n\n{r['answer']}" for r in rows])
    assert out["_reward"].to_list() != pytest.approx(plain, rel=1e-5, abs=1e-6)


def test_keep_and_null_scores(rm_dir: Path, gsm8k: list[dict]) -> None:
    rows = rows_of(gsm8k, 20)
    rows[3]["answer"] = ""      # nothing to judge: null, kept only without `keep`
    rows[7]["answer"] = None
    every, _ = run(SelectReward(model=str(rm_dir), fields=["question", "answer"]), rows)
    assert every.height == 20
    scores = every["_reward"].to_list()
    assert scores[3] is None and scores[7] is None
    scored = sorted((s, i) for i, s in enumerate(scores) if s is not None)
    best = sorted(i for _, i in scored[-9:])             # floor(0.5 x 18) = 9 highest
    half, _ = run(SelectReward(model=str(rm_dir), fields=["question", "answer"], keep=0.5),
                  rows)
    assert half["question"].to_list() == [rows[i]["question"] for i in best]
    cut = scored[9][0]
    above, _ = run(SelectReward(model=str(rm_dir), fields=["question", "answer"],
                                keep={"min": cut}), rows)
    assert above.height == 9 and above["_reward"].min() == cut
    band, ctx = run(SelectReward(model=str(rm_dir), fields=["question", "answer"],
                                 keep={"percentile": [0, 100]}), rows)
    assert band.height == 18 and ctx.stats["keep_bounds"] == [scored[0][0], scored[-1][0]]


def test_errors(tiny_dir: Path, tmp_path: Path, rm_dir: Path) -> None:
    two = make_rm(tiny_dir, tmp_path / "two", labels=2)
    backend = resolve_model(str(two), kind="reward", options={"device": "cpu"})
    with pytest.raises(ModelLoadError, match=r"single-output head \(num_labels=1\); this one "
                                             r"has 2 labels"):
        backend.reward(["hi"])
    with pytest.raises(ParamError, match="an openai: endpoint serves no reward head"):
        SelectReward(model="openai:http://127.0.0.1:1/v1#m", field="t")
    with pytest.raises(ParamError, match="vLLM, which runs causal LMs here; reward models"):
        SelectReward(model="vllm:" + str(rm_dir), field="t")
    with pytest.raises(ParamError, match="give exactly one of 'field'"):
        SelectReward(model=str(rm_dir), field="t", template="{{ t }}")
    with pytest.raises(ParamError, match=r"'fields' is \[instruction, response\]"):
        SelectReward(model=str(rm_dir), fields=["a", "b", "c"])


RECIPE = """\
recipe rw
param k = 0.5
raw = load.jsonl("data/gsm8k.jsonl")
good = raw | select.reward(fields=["question", "answer"], model="./rm", keep=k)
export good to "out/good.jsonl"
"""


def test_build_rebuild_and_a_new_keep_ask_the_model_nothing(
        recipe_dir: Callable, run_cli: Callable, rm_dir: Path, gsm8k: list[dict]) -> None:
    rows = rows_of(gsm8k, 16)
    folder = recipe_dir({"r.recipe": RECIPE, "data/gsm8k.jsonl": rows})
    shutil.copytree(rm_dir, folder / "rm")

    def build(*extra: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        code, out, err = run_cli("build", "r.recipe", "--json", *extra, cwd=folder, env=ENV,
                                 timeout=300)
        assert code == 0, err
        nodes = {n["name"]: n for n in json.loads(out)["nodes"]}
        kept = [json.loads(x) for x in (folder / "out" / "good.jsonl").read_text().splitlines()]
        return nodes["good"], kept

    node, first = build()
    assert (node["status"], node["model_calls"]) == ("ran", 16) and len(first) == 8
    node, again = build()
    assert node["status"] == "cached" and node.get("model_calls", 0) == 0 and again == first
    node, wider = build("--set", "k=0.75")
    assert (node["status"], node["model_calls"]) == ("ran", 0)
    assert node["stats"]["memo_hits"] == 16 and len(wider) == 12
    assert {r["question"] for r in first} <= {r["question"] for r in wider}
    assert min(r["_reward"] for r in wider) <= min(r["_reward"] for r in first)
