"""A stand-in for the `vllm` package, with the API shapes of vLLM >= 0.6, computed on CPU.

The vLLM backend is tested everywhere against this module, injected as `sys.modules["vllm"]`
(and, for a child `dcc` process, as a `vllm` package on PYTHONPATH). It mimics what the
backend relies on: `LLM(model=..., tokenizer=..., seed=..., dtype=..., trust_remote_code=...,
**engine args)`, `llm.get_tokenizer()`, `llm.llm_engine.model_config.max_model_len`, and
`llm.generate(prompts, sampling_params, use_tqdm=...)` taking strings or
`{"prompt_token_ids": [...]}` and one `SamplingParams` or a list of them, returning one
`RequestOutput` per prompt in input order, each with `.outputs[i].text` and
`.prompt_logprobs`: None for the first token, then per position a dict of token id ->
`Logprob(logprob=...)` holding the prompt's own token and the top-k. Like vLLM it refuses a
prompt that leaves no room for `max_tokens` and checks SamplingParams' arguments.

The numbers are real: a transformers causal LM (the tiny test model) computes them, one
request at a time and unpadded, so scores and greedy text can be compared with the
transformers backend's batched ones. Every request is recorded in `LLM.requests` and every
constructed engine in `LLM.made`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

__version__ = "0.6.3.fake"


@dataclass
class Logprob:
    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


class SamplingParams:
    def __init__(self, n: int = 1, temperature: float = 1.0, top_p: float = 1.0,
                 max_tokens: int | None = 16, stop: str | list[str] | None = None,
                 seed: int | None = None, prompt_logprobs: int | None = None,
                 logprobs: int | None = None, **unknown: Any) -> None:
        if unknown:
            raise TypeError(f"SamplingParams got unexpected arguments {sorted(unknown)}")
        if temperature < 0:
            raise ValueError(f"temperature must be non-negative, got {temperature}.")
        if not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}.")
        if max_tokens is not None and max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {max_tokens}.")
        if prompt_logprobs is not None and prompt_logprobs < 0:
            raise ValueError(f"prompt_logprobs must be non-negative, got {prompt_logprobs}.")
        if temperature < 1e-5 and n > 1:
            raise ValueError(f"n must be 1 when using greedy sampling, got {n}.")
        self.n, self.temperature, self.top_p = n, temperature, top_p
        self.max_tokens, self.seed, self.prompt_logprobs = max_tokens, seed, prompt_logprobs
        self.logprobs = logprobs
        self.stop = [stop] if isinstance(stop, str) else list(stop or [])


@dataclass
class CompletionOutput:
    index: int
    text: str
    token_ids: list[int]
    finish_reason: str | None = None


@dataclass
class RequestOutput:
    request_id: str
    prompt: str | None
    prompt_token_ids: list[int]
    prompt_logprobs: list[dict[int, Logprob] | None] | None
    outputs: list[CompletionOutput] = field(default_factory=list)
    finished: bool = True


@dataclass
class _Engine:
    model_config: Any


@dataclass
class _ModelConfig:
    max_model_len: int


class LLM:
    made: ClassVar[list[LLM]] = []

    def __init__(self, model: str, tokenizer: str | None = None, *, seed: int = 0,
                 dtype: str = "auto", trust_remote_code: bool = False,
                 revision: str | None = None, tokenizer_revision: str | None = None,
                 download_dir: str | None = None, **engine: Any) -> None:
        import torch
        import transformers as tf

        self.kwargs = {"model": model, "tokenizer": tokenizer, "seed": seed, "dtype": dtype,
                       "trust_remote_code": trust_remote_code, "revision": revision,
                       "tokenizer_revision": tokenizer_revision,
                       "download_dir": download_dir, **engine}
        tf.utils.logging.set_verbosity_error()
        self._tok = tf.AutoTokenizer.from_pretrained(tokenizer or model)
        self._model = tf.AutoModelForCausalLM.from_pretrained(model).to(torch.float32).eval()
        limit = engine.get("max_model_len") or self._model.config.n_positions
        self.llm_engine = _Engine(_ModelConfig(int(limit)))
        self.requests: list[tuple[list[int], SamplingParams]] = []
        self._next = 0
        LLM.made.append(self)

    def get_tokenizer(self) -> Any:
        return self._tok

    def generate(self, prompts: Any, sampling_params: Any = None, use_tqdm: bool = True,
                 **_: Any) -> list[RequestOutput]:
        prompts = prompts if isinstance(prompts, list) else [prompts]
        if sampling_params is None:
            sampling_params = SamplingParams()
        params = sampling_params if isinstance(sampling_params, list) else \
            [sampling_params] * len(prompts)
        if len(params) != len(prompts):
            raise ValueError("The lengths of prompts and sampling_params must be the same.")
        out = []
        for prompt, sp in zip(prompts, params):
            text = prompt if isinstance(prompt, str) else prompt.get("prompt")
            ids = list(prompt["prompt_token_ids"]) if isinstance(prompt, dict) and \
                "prompt_token_ids" in prompt else self._tok.encode(text)
            limit = self.llm_engine.model_config.max_model_len
            if not ids or len(ids) + (sp.max_tokens or 1) > limit:
                raise ValueError(f"The decoder prompt (length {len(ids)}) plus max_tokens is "
                                 f"longer than the maximum model length of {limit}.")
            self.requests.append((ids, sp))
            out.append(self._one(str(self._next), text, ids, sp))
            self._next += 1
        return out

    def _one(self, rid: str, text: str | None, ids: list[int],
             sp: SamplingParams) -> RequestOutput:
        import torch

        with torch.inference_mode():
            logits = self._model(input_ids=torch.tensor([ids])).logits[0].float()
        logp = torch.log_softmax(logits, dim=-1)
        prompt_lp = None
        if sp.prompt_logprobs is not None:
            prompt_lp = [None]
            for j in range(1, len(ids)):
                row = logp[j - 1]
                entry = {ids[j]: Logprob(float(row[ids[j]]))}
                if sp.prompt_logprobs:
                    for t in row.topk(sp.prompt_logprobs).indices.tolist():
                        entry.setdefault(t, Logprob(float(row[t])))
                prompt_lp.append(entry)
        gen = torch.Generator().manual_seed(sp.seed if sp.seed is not None else 0)
        outputs = [self._sample(ids, sp, gen, k) for k in range(sp.n)]
        return RequestOutput(rid, text, ids, prompt_lp, outputs)

    def _sample(self, ids: list[int], sp: SamplingParams, gen: Any, k: int) -> CompletionOutput:
        import torch

        eos = self._tok.eos_token_id
        seq, new = list(ids), []
        with torch.inference_mode():
            for _ in range(sp.max_tokens or 16):
                logits = self._model(input_ids=torch.tensor([seq])).logits[0, -1].float()
                if sp.temperature < 1e-5:
                    t = int(logits.argmax())
                else:
                    probs = torch.softmax(logits / sp.temperature, dim=-1)
                    if sp.top_p < 1:
                        sp_sorted, order = probs.sort(descending=True)
                        drop = sp_sorted.cumsum(-1) - sp_sorted >= sp.top_p
                        probs = torch.zeros_like(probs).scatter(
                            -1, order, sp_sorted.masked_fill(drop, 0.0))
                    t = int(torch.multinomial(probs, 1, generator=gen))
                if t == eos:
                    return CompletionOutput(k, self._tok.decode(new), new, "stop")
                new.append(t)
                seq.append(t)
                text = self._tok.decode(new)
                cuts = [text.find(s) for s in sp.stop if s in text]
                if cuts:
                    return CompletionOutput(k, text[:min(cuts)], new, "stop")
        return CompletionOutput(k, self._tok.decode(new), new, "length")
