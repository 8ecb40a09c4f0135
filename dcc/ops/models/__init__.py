"""Model backends behind one interface, used by every model operator.

A recipe names a model by a hub id (`"Qwen/Qwen2.5-0.5B-Instruct"`), a local folder (relative
paths are beside the recipe: `"./tiny"`), or an OpenAI-compatible endpoint
(`"openai:http://127.0.0.1:8000/v1#model-name"`, see `openai_http.py`). `resolve_model`
turns that reference into a `ModelBackend`, whose `identity` (resolved revision or a hash of
the weight files, never a display name) goes into node keys together with the generation
settings, so changing weights or settings re-runs exactly the nodes that depend on them.

Backends own batching (sorted by token length, results returned in input order), devices
and precision; operators only say what they want computed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, Sequence

Message = dict[str, str]  # {"role": "user" | "system" | "assistant", "content": "..."}
Prompt = str | list[Message]


@dataclass(frozen=True)
class GenerationConfig:
    """Sampling settings; part of every generating node's key."""

    max_new_tokens: int = 256
    temperature: float = 0.0
    top_p: float = 1.0
    n: int = 1
    seed: int = 0
    stop: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {"max_new_tokens": self.max_new_tokens, "temperature": self.temperature,
                "top_p": self.top_p, "n": self.n, "seed": self.seed, "stop": list(self.stop)}


@dataclass
class TokenScores:
    """Per-token log-probabilities of a continuation given a prefix."""

    logprobs: list[float] = field(default_factory=list)

    @property
    def mean_loss(self) -> float:
        """Mean negative log-likelihood per token (nan for an empty continuation)."""
        return -sum(self.logprobs) / len(self.logprobs) if self.logprobs else float("nan")


class ModelBackend(Protocol):
    identity: str  # resolved revision / weight hash + backend kind; goes into node keys

    def generate(self, prompts: Sequence[Prompt], config: GenerationConfig) -> list[list[str]]:
        """n completions per prompt, in input order."""
        ...

    def score(self, prefixes: Sequence[str], continuations: Sequence[str]) -> list[TokenScores]:
        """Log-probabilities of each continuation's tokens given its prefix ("" = none)."""
        ...

    def embed(self, texts: Sequence[str]) -> Any:
        """An (n, d) float32 numpy array of L2-normalised embeddings, in input order."""
        ...
