"""A scripted model backend for the distill.* tests: it answers from a Python function and
records every request, so a test states the model's behaviour and checks what was asked."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from dcc.ops.models import GenerationConfig, Prompt, TokenScores


def user_text(prompt: Prompt) -> str:
    return prompt if isinstance(prompt, str) else prompt[-1]["content"]


@dataclass
class Request:
    prompt: Prompt
    config: GenerationConfig

    @property
    def text(self) -> str:
        return user_text(self.prompt)


@dataclass
class ScriptedModel:
    """`reply(user_text, config) -> str` answers generations; `logprobs(prefix,
    continuation) -> list[float]` answers scoring."""

    identity: str
    reply: Callable[[str, GenerationConfig], str] = lambda text, config: f"echo: {text}"
    logprobs: Callable[[str, str], list[float]] = lambda prefix, cont: [-1.0]
    requests: list[Request] = field(default_factory=list)
    scored: list[tuple[str, str]] = field(default_factory=list)

    def generate(self, prompts: Sequence[Prompt], config: GenerationConfig) -> list[list[str]]:
        out = []
        for p in prompts:
            self.requests.append(Request(p, config))
            out.append([self.reply(user_text(p), config) for _ in range(config.n)])
        return out

    def score(self, prefixes: Sequence[str], continuations: Sequence[str]) -> list[TokenScores]:
        self.scored.extend(zip(prefixes, continuations))
        return [TokenScores(list(self.logprobs(p, c))) for p, c in zip(prefixes, continuations)]

    def embed(self, texts: Sequence[str]) -> Any:
        raise AssertionError("the scripted model does not embed")

    def seeds(self) -> list[int]:
        return [r.config.seed for r in self.requests]
