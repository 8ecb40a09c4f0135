"""Fixtures for the synthesize.* tests: a scripted model, an in-memory request memo, and the
helpers of the other test folders (the HTTP fake server, the tiny local model).

`scripted(reply)` is a `ModelBackend` whose `generate` answers `reply(prompt, config, k)` for
the k-th sample of each prompt and records every request; `attach(op, model)` makes an
operator use it instead of resolving its `model` parameter. `ctx()` is a RunContext with an
in-memory request memo, so a test can check that a second run asks the model nothing.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "models_http"))  # fake_openai

from dcc.ops.base import RunContext  # noqa: E402
from dcc.ops.models import GenerationConfig  # noqa: E402

Reply = Callable[[Any, GenerationConfig, int], str]


class ScriptedModel:
    """A backend that answers from a function and records what it was asked."""

    def __init__(self, reply: Reply, identity: str = "scripted:1",
                 tokenizer: Any = None) -> None:
        self.reply = reply
        self.identity = identity
        self.requests: list[tuple[Any, GenerationConfig]] = []
        if tokenizer is not None:
            self.tokenizer = tokenizer

    def generate(self, prompts: list[Any], config: GenerationConfig) -> list[list[str]]:
        out = []
        for p in prompts:
            self.requests.append((p, config))
            out.append([self.reply(p, config, k) for k in range(config.n)])
        return out


class DictMemo:
    """The request memo's interface (get_many / put_many) over a dict."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def get_many(self, keys: set[str]) -> dict[str, bytes]:
        return {k: self.data[k] for k in keys if k in self.data}

    def put_many(self, items: dict[str, bytes]) -> None:
        self.data.update(items)


def text_of(prompt: Any) -> str:
    """The text of a prompt: a raw string, or the last chat message's content."""
    return prompt if isinstance(prompt, str) else prompt[-1]["content"]


@pytest.fixture
def scripted() -> Callable[..., ScriptedModel]:
    return ScriptedModel


@pytest.fixture
def attach() -> Callable[[Any, ScriptedModel], Any]:
    def _attach(op: Any, model: ScriptedModel) -> Any:
        op.__dict__["_backend"] = model
        return op

    return _attach


@pytest.fixture
def ctx() -> Callable[..., RunContext]:
    def _ctx(memo: DictMemo | None = None, seed: int = 0) -> RunContext:
        return RunContext(node="n", seed=seed, requests=memo)

    return _ctx


@pytest.fixture
def memo() -> DictMemo:
    return DictMemo()


@pytest.fixture
def seed_tasks() -> list[dict[str, Any]]:
    path = HERE.parents[1] / "recipes" / "data" / "self_instruct_seed_tasks.jsonl"
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="session")
def tiny_dir() -> Path:
    """The tiny local causal LM of `dcc.testing.tiny_model` (built once per machine)."""
    import os

    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from dcc.testing.tiny_model import shared_data_dir, tiny_model

    data = shared_data_dir()
    if data is None:
        pytest.skip("shared/data (gsm8k_train.jsonl) is not here")
    return tiny_model(data)
