"""Fixtures for the distill.* tests: scripted model backends, the shared GSM8K rows, the tiny
local model and the fake OpenAI server (from tests/models_http, put on sys.path here).

Nothing may reach a model hub: HF_HUB_OFFLINE and TRANSFORMERS_OFFLINE are set before
transformers can be imported.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

HERE = Path(__file__).resolve().parent
for _p in (str(HERE), str(HERE.parent / "models_http")):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from distill_fakes import ScriptedModel  # noqa: E402
from fake_openai import FakeOpenAI  # noqa: E402

GSM8K = Path("/work/shared/data/gsm8k_train.jsonl")


@pytest.fixture(scope="session")
def gsm8k() -> list[dict[str, Any]]:
    if not GSM8K.is_file():
        pytest.skip("the shared data file /work/shared/data/gsm8k_train.jsonl is not here")
    with GSM8K.open(encoding="utf-8") as f:
        return [json.loads(next(f)) for _ in range(64)]


@pytest.fixture
def models(monkeypatch: pytest.MonkeyPatch) -> Callable[..., ScriptedModel]:
    """models(ref, reply=..., logprobs=...) registers a scripted backend for `ref`: every
    generating operator (through dcc.ops.prompted.load_model) and every scoring one
    (through dcc.ops.scorers.resolve_model) gets it instead of a real model."""
    made: dict[str, ScriptedModel] = {}

    def lookup(ref: str | None, *args: Any, **kw: Any) -> ScriptedModel:
        if ref not in made:
            raise AssertionError(f"no scripted model for {ref!r}")
        return made[ref]

    monkeypatch.setattr("dcc.ops.prompted.load_model", lookup)
    monkeypatch.setattr("dcc.ops.scorers.resolve_model", lookup)

    def register(ref: str, **kw: Any) -> ScriptedModel:
        made[ref] = ScriptedModel(ref, **kw)
        return made[ref]

    return register


@pytest.fixture(scope="session")
def tiny_dir() -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from dcc.testing.tiny_model import shared_data_dir, tiny_model

    data = shared_data_dir()
    if data is None:
        pytest.skip("shared/data (gsm8k_train.jsonl) is not here")
    return tiny_model(data)


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    try:
        yield server
    finally:
        server.stop()
        from dcc.ops.models.resolve import clear_backends

        clear_backends()  # resolve_model keeps one backend per reference and process
