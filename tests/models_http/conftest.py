"""Fixtures for the HTTP model backend and the prompted operators: a live fake server.

`fake` is a started `FakeOpenAI` on 127.0.0.1 (stopped after the test); `backend(fake, ...)`
builds an `OpenAIBackend` on it with fast, bounded retries. API-key variables of the outer
environment are removed so that no test depends on (or leaks) a real key.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fake_openai import FAST, FakeOpenAI

from dcc.ops.models.openai_http import OpenAIBackend


@pytest.fixture(autouse=True)
def _no_outer_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "DCC_OPENAI_API_KEY", "DCC_OPENAI_MAX_CONCURRENCY",
                 "DCC_OPENAI_TIMEOUT", "DCC_OPENAI_MAX_ATTEMPTS", "DCC_OPENAI_BACKOFF_BASE",
                 "DCC_OPENAI_BACKOFF_MAX"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(autouse=True)
def _fresh_backends() -> Iterator[None]:
    """resolve_model keeps one backend per reference and process; a test's server is new."""
    yield
    try:
        from dcc.ops.models.resolve import clear_backends
    except ImportError:
        return
    clear_backends()


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def backend() -> Callable[..., OpenAIBackend]:
    made: list[OpenAIBackend] = []

    def _make(server: FakeOpenAI, model: str = "m", **kw: Any) -> OpenAIBackend:
        kw.setdefault("retry", FAST)
        kw.setdefault("timeout", 5.0)
        b = OpenAIBackend(server.url, model, **kw)
        made.append(b)
        return b

    yield _make
    for b in made:
        b.close()
