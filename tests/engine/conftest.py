"""Fixtures for the engine tests (helpers in `engine_helpers.py`, operators for tests in
`engine_ops.py`, both importable by name because this folder is put on sys.path)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
for _p in (str(HERE.parents[1]), str(HERE)):
    if _p not in sys.path:
        sys.path.insert(0, _p)

from engine_helpers import Project  # noqa: E402


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path / "proj")


@pytest.fixture
def make_project(tmp_path: Path):  # noqa: ANN201
    """make_project(name) -> a further Project beside the default one."""
    return lambda name: Project(tmp_path / name)
