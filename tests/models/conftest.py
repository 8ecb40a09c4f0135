"""Fixtures for the model tests: a tiny causal LM trained once per machine, the packaged MiniLM.

Nothing here may reach a model hub: HF_HUB_OFFLINE and TRANSFORMERS_OFFLINE are set before
transformers is imported. The tiny model (`dcc.testing.tiny_model`) is built on first use
(about 20-40 s on two cores) and cached under $DCC_TEST_MODELS or ~/.cache/dcc-test-models;
every test of the session shares one loaded copy.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

pytest.importorskip("torch")
pytest.importorskip("transformers")

from dcc.testing.tiny_model import shared_data_dir, tiny_model


@pytest.fixture(scope="session")
def data_dir() -> Path:
    data = shared_data_dir()
    if data is None:
        pytest.skip("shared/data (gsm8k_train.jsonl) is not here")
    return data


@pytest.fixture(scope="session")
def gsm8k(data_dir: Path) -> list[dict[str, Any]]:
    with open(data_dir / "gsm8k_train.jsonl", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


@pytest.fixture(scope="session")
def tiny_dir(data_dir: Path) -> Path:
    return tiny_model(data_dir)


@pytest.fixture(scope="session")
def tiny(tiny_dir: Path) -> Any:
    from dcc.ops.models.resolve import resolve_model

    return resolve_model(str(tiny_dir), kind="causal", options={"device": "cpu"})


@pytest.fixture(scope="session")
def minilm() -> Any:
    from dcc.ops.models.resolve import resolve_model

    return resolve_model(None, kind="encoder")


@pytest.fixture
def tiny_copy(tiny_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the tiny model's folder (for tests that edit or move it)."""
    dest = tmp_path / "tiny"
    shutil.copytree(tiny_dir, dest)
    return dest
