"""How a prompt becomes the token ids a local backend runs: shared by the transformers
(`hf.py`) and vLLM (`vllm_offline.py`) backends, so both read a chat and cut a long input the
same way, and their outputs stay comparable.

* A chat (a list of messages) goes through the tokenizer's chat template when it has one,
  with the generation prompt for generation and without it for a reward model (the reply is
  already there); the template's text carries its own special tokens, so it is encoded
  without adding more. Without a template the messages' contents are joined by blank lines
  and encoded with the tokenizer's special tokens, as a plain text prompt is.
* A generation prompt keeps its LAST tokens, leaving `max_new_tokens` of the context for the
  reply (at least one prompt token): the end of a prompt is the question being asked.
* A scored continuation keeps its first tokens and its prefix its last ones (`fit`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from dcc.ops.models import Prompt


def prompt_text(tok: Any, prompt: Prompt, generation: bool = True) -> tuple[str, bool]:
    """(text, whether a chat template made it: then it already has its special tokens)."""
    if isinstance(prompt, str):
        return prompt, False
    if getattr(tok, "chat_template", None):
        return tok.apply_chat_template(list(prompt), tokenize=False,
                                       add_generation_prompt=generation), True
    return "\n\n".join(m["content"] for m in prompt), False


def prepare_prompts(tok: Any, prompts: Sequence[Prompt],
                    encode: Callable[[str, bool], list[int]], *, fallback: list[int],
                    max_length: int | None, max_new_tokens: int
                    ) -> tuple[list[str], list[list[int]]]:
    """Each prompt's text and token ids for generation (`encode(text, add_special)`), the ids
    cut on the left to leave `max_new_tokens` of `max_length` (None: no cut); an empty
    encoding becomes `fallback` (the BOS, else the pad token), since a model needs one."""
    room = None if max_length is None else max(1, max_length - max_new_tokens)
    texts, ids = [], []
    for prompt in prompts:
        text, templated = prompt_text(tok, prompt)
        seq = encode(text, not templated) or fallback
        texts.append(text)
        ids.append(seq[-room:] if room else seq)
    return texts, ids


def fit(prefix: list[int], cont: list[int], limit: int | None) -> tuple[list[int], int]:
    """(token ids, index of the first continuation token) within `limit` tokens: the prefix
    loses tokens on the left, then the continuation on the right.

    >>> fit([1, 2, 3], [4, 5], 4)
    ([2, 3, 4, 5], 2)
    >>> fit([1], [4, 5, 6, 7], 3)
    ([1, 4, 5], 1)
    """
    if limit is not None:
        cont = cont[:limit - (1 if prefix else 0)] if len(cont) >= limit else cont
        room = limit - len(cont)
        prefix = prefix[len(prefix) - room:] if len(prefix) > room else prefix
    return prefix + cont, len(prefix)


__all__ = ["fit", "prepare_prompts", "prompt_text"]
