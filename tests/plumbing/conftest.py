"""Fixtures for the row-plumbing and text-quality tests: the shared real data as tables."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

DATA = Path("/work/shared/data")


def _read(name: str) -> pl.DataFrame:
    path = DATA / name
    if not path.is_file():
        pytest.skip(f"the shared data file {path} is not here")
    return pl.DataFrame([json.loads(x) for x in path.read_text().splitlines()])


@pytest.fixture(scope="session")
def seed_tasks() -> pl.DataFrame:
    return _read("self_instruct_seed_tasks.jsonl")


@pytest.fixture(scope="session")
def gsm8k() -> pl.DataFrame:
    return _read("gsm8k_train.jsonl")


@pytest.fixture(scope="session")
def user_tasks() -> pl.DataFrame:
    return _read("self_instruct_user_oriented_instructions.jsonl")
