"""The vLLM backend: offline batched generation and scoring on a GPU with `vllm.LLM`.

A recipe chooses it per model reference, with the prefix `vllm:` before a folder or hub id:
`model="vllm:./qwen"`, `model="vllm:Qwen/Qwen2.5-7B-Instruct"`, or on the command line through
a param (`dcc build r.recipe --set teacher=vllm:./qwen`). A prefix rather than a build flag,
because a recipe may score with a small local model and generate with a large one, and only
the large one needs vLLM. vLLM is an optional extra (`pip install 'dcc-recipes[vllm]'`, a
multi-GB CUDA build); it is imported only when a `vllm:` model must actually run, so a
machine without it still plans, checks, and serves cached results of a GPU machine's build,
and fails with that pip command (exit 3, no traceback) when it would have to run the model.

The interface and its guarantees are the transformers backend's (`hf.py`), so a node gives
the same kind of result whichever engine ran it:

* `generate(prompts, config)`: every prompt is tokenized here (a chat prompt through the
  tokenizer's chat template, as in `hf.py`) and sent as token ids, so no BOS is added twice
  and prompts longer than the context lose tokens from the left. Temperature 0 is greedy.
  Otherwise each (prompt, sample k) is its own request with `SamplingParams(seed=...)`
  seeded from (config.seed, prompt text, k) exactly as `hf.py` seeds them, so a sample does
  not depend on `n`, on the batch, or on the other prompts. vLLM batches continuously;
  outputs come back in input order.
* `score(prefixes, continuations)`: the same token sequence as `hf.py` (BOS or EOS, the
  prefix's tokens, the continuation's tokens; each part tokenized alone; too long: prefix
  cut on the left, continuation on the right), sent with `prompt_logprobs`, and the
  continuation's own tokens' log-probabilities read back. vLLM must generate at least one
  token, so a scored sequence holds one token fewer than the context; only a sequence that
  long scores differently (one more prefix token cut, or one less continuation token).
* `embed` is refused: embedding operators use the transformers encoder (name their model
  without `vllm:`).

Identity: the weights' identity as the resolver computes it for transformers (a hash of the
folder's files, or the hub commit), prefixed with `vllm:`. Two engines round differently, so
their results are cached apart; generation settings enter node keys separately, as always.
Precision (`dtype`, default vLLM's "auto": the checkpoint's own, bf16 for most) and engine
arguments (`DCC_VLLM_ARGS`, a JSON object passed to `vllm.LLM`, e.g.
'{"gpu_memory_utilization": 0.5, "max_model_len": 4096}') are not part of the identity, as
device and precision are not for transformers.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from typing import Any

from dcc.errors import DccError
from dcc.ops.models import GenerationConfig, Prompt, TokenScores
from dcc.ops.models.hf import ModelLoadError, _cut, _first_id, _seed
from dcc.ops.models.prompts import fit, prepare_prompts

PREFIX = "vllm:"
PIP = "pip install 'dcc-recipes[vllm]'"


class VLLMUnavailable(DccError):
    """A `vllm:` model must run, and vLLM cannot be imported here."""

    exit_code = 3


def import_vllm(what: str = "this model") -> Any:
    """The `vllm` module, or VLLMUnavailable saying how to get it."""
    try:
        import vllm
    except ImportError as e:
        if e.name not in (None, "vllm"):  # installed, but a library it needs is not
            raise VLLMUnavailable(f"{what} runs on vLLM ('{PREFIX}'), which is installed but "
                                  f"cannot be imported: {e}") from None
        raise VLLMUnavailable(f"{what} runs on vLLM ('{PREFIX}'), which is not installed "
                              f"here: {PIP} (vLLM needs a CUDA GPU); or drop the '{PREFIX}' "
                              "prefix to run it with transformers") from None
    return vllm


def engine_args() -> dict[str, Any]:
    """Extra `vllm.LLM` arguments from DCC_VLLM_ARGS (a JSON object)."""
    raw = os.environ.get("DCC_VLLM_ARGS", "").strip()
    if not raw:
        return {}
    try:
        args = json.loads(raw)
    except ValueError as e:
        raise ModelLoadError(f"DCC_VLLM_ARGS is not JSON: {e}") from None
    if not isinstance(args, dict):
        raise ModelLoadError(f"DCC_VLLM_ARGS must be a JSON object (got {raw!r})")
    return args


class VLLMBackend:
    """One causal LM run by `vllm.LLM` behind the ModelBackend interface (see the module
    doc). `source` is a folder (a hub snapshot in the local cache is passed as its folder)
    or a hub id with `revision`; `identity` is what the resolver computed."""

    kind = "causal"

    def __init__(self, source: str, *, identity: str, revision: str | None = None,
                 trust_remote_code: bool = False, cache_dir: str | None = None,
                 dtype: str | None = None, seed: int = 0) -> None:
        self.source, self.identity, self.revision = source, identity, revision
        self.trust_remote_code, self.cache_dir = trust_remote_code, cache_dir
        self.dtype = dtype or os.environ.get("DCC_VLLM_DTYPE") or "auto"
        self.seed = seed
        self._llm: Any = None

    def __repr__(self) -> str:
        return f"VLLMBackend({self.source!r}, identity={self.identity!r})"

    # -- loading -----------------------------------------------------------------------------
    def _load(self) -> None:
        if self._llm is not None:
            return
        vllm = import_vllm(f"model {PREFIX}{self.source}")
        kw: dict[str, Any] = {"model": self.source, "tokenizer": self.source,
                              "seed": self.seed, "dtype": self.dtype,
                              "trust_remote_code": self.trust_remote_code}
        if self.revision:
            kw.update(revision=self.revision, tokenizer_revision=self.revision)
        if self.cache_dir:
            kw["download_dir"] = self.cache_dir
        kw.update(engine_args())
        try:
            llm = vllm.LLM(**kw)
        except Exception as e:  # noqa: BLE001 - no GPU, out of memory, unknown architecture
            first = (str(e).strip().splitlines() or [""])[0]
            hint = ""
            if "trust_remote_code" in str(e) and not self.trust_remote_code:
                hint = "; this model ships its own code: rerun with --trust-remote-code"
            raise ModelLoadError(f"vLLM cannot load {self.source!r}: {type(e).__name__}: "
                                 f"{first}{hint}") from None
        self._vllm, self._llm = vllm, llm
        self._tok = llm.get_tokenizer()
        tok = self._tok
        self.pad_id = _first_id(tok.pad_token_id, tok.eos_token_id, 0)
        start = _first_id(tok.bos_token_id, tok.eos_token_id)
        self.start_ids = [start] if start is not None else []
        self.max_length = _context_length(llm, tok)

    @property
    def tokenizer(self) -> Any:
        self._load()
        return self._tok

    def _encode(self, text: str, special: bool = False) -> list[int]:
        return list(self._tok.encode(text, add_special_tokens=special)) if text else []

    def _run(self, token_ids: list[list[int]], params: Any) -> list[Any]:
        outs = self._llm.generate([{"prompt_token_ids": ids} for ids in token_ids], params,
                                  use_tqdm=False)
        if len(outs) != len(token_ids):
            raise RuntimeError(f"vLLM returned {len(outs)} outputs for {len(token_ids)} "
                               "prompts")
        return list(outs)

    # -- generate ----------------------------------------------------------------------------
    def generate(self, prompts: Sequence[Prompt], config: GenerationConfig) -> list[list[str]]:
        """`config.n` completions per prompt, in input order."""
        self._load()
        if not prompts:
            return []
        texts, ids = prepare_prompts(
            self._tok, prompts, lambda text, special: self._encode(text, special=special),
            fallback=self.start_ids or [self.pad_id], max_length=self.max_length,
            max_new_tokens=config.max_new_tokens)
        samples = 1 if config.temperature == 0 else config.n
        jobs = [(i, k) for i in range(len(prompts)) for k in range(samples)]
        params = [self._vllm.SamplingParams(
            n=1, temperature=config.temperature, top_p=config.top_p,
            max_tokens=config.max_new_tokens, stop=list(config.stop) or None,
            seed=_seed(config.seed, texts[i], k)) for i, k in jobs]
        outs = self._run([ids[i] for i, _ in jobs], params)
        result: list[list[str]] = [[] for _ in prompts]
        for (i, _), out in zip(jobs, outs):
            result[i].append(_cut(out.outputs[0].text, config.stop)[0])
        return [r * config.n if samples == 1 else r for r in result]

    # -- score -------------------------------------------------------------------------------
    def score(self, prefixes: Sequence[str], continuations: Sequence[str]) -> list[TokenScores]:
        """Per-token log-probabilities of each continuation given its prefix, in input order."""
        if len(prefixes) != len(continuations):
            raise ValueError(f"{len(prefixes)} prefixes but {len(continuations)} continuations")
        self._load()
        limit = None if self.max_length is None else self.max_length - 1  # + 1 sampled token
        items: dict[int, tuple[list[int], int]] = {}
        for i, (p, c) in enumerate(zip(prefixes, continuations)):
            cont = self._encode(c)
            if cont:  # nothing to score otherwise
                items[i] = fit(self.start_ids + self._encode(p), cont, limit)
        out = [TokenScores([]) for _ in prefixes]
        if not items:
            return out
        params = self._vllm.SamplingParams(max_tokens=1, temperature=0.0, prompt_logprobs=1)
        results = self._run([seq for seq, _ in items.values()], params)
        for (i, (seq, start)), res in zip(items.items(), results):
            out[i] = TokenScores(_prompt_logprobs(res.prompt_logprobs, seq, max(start, 1)))
        return out

    def embed(self, texts: Sequence[str]) -> Any:
        raise ModelLoadError(f"{PREFIX}{self.source}: the vLLM backend generates and scores; "
                             "embedding operators use the transformers encoder (name the "
                             f"embedding model without '{PREFIX}')")


def _prompt_logprobs(entries: Any, seq: list[int], first: int) -> list[float]:
    """The log-probabilities of `seq[first:]` from vLLM's `prompt_logprobs` (one dict of
    token id -> Logprob per position; None for position 0)."""
    if entries is None or len(entries) != len(seq):
        got = "none" if entries is None else len(entries)
        raise ModelLoadError(f"vLLM returned prompt logprobs for {got} of {len(seq)} tokens")
    values = []
    for j in range(first, len(seq)):
        entry = (entries[j] or {}).get(seq[j])
        if entry is None:
            raise ModelLoadError(f"vLLM's prompt logprobs lack the prompt's own token at "
                                 f"position {j}")
        values.append(float(getattr(entry, "logprob", entry)))
    return values


def _context_length(llm: Any, tok: Any) -> int | None:
    """The engine's max_model_len (else the tokenizer's limit; None: unknown, no cut)."""
    try:
        n = llm.llm_engine.model_config.max_model_len
    except AttributeError:
        n = None
    if isinstance(n, int) and n > 0:
        return n
    tok_max = getattr(tok, "model_max_length", None)
    return tok_max if isinstance(tok_max, int) and 0 < tok_max < 1_000_000 else None


__all__ = ["PIP", "PREFIX", "VLLMBackend", "VLLMUnavailable", "fit", "import_vllm"]
