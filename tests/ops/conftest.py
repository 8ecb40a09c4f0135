"""Fixtures for the operator tests: the shared real data and a way to write small files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

DATA = Path("/work/shared/data")


@pytest.fixture
def data() -> Path:
    if not DATA.is_dir():
        pytest.skip("the shared data folder /work/shared/data is not here")
    return DATA


@pytest.fixture
def write(tmp_path: Path) -> Callable[[str, bytes | str], str]:
    """write(name, content) -> absolute path of a new file under tmp_path."""

    def _write(name: str, content: bytes | str) -> str:
        p = tmp_path / name
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(content.encode() if isinstance(content, str) else content)
        return str(p)

    return _write
