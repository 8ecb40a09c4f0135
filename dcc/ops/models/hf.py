"""The transformers backend: causal LMs and encoders on CPU or GPU, batched by token length.

`HFBackend` implements `ModelBackend` for any folder `transformers` can load (a local folder,
a hub snapshot in the local cache, the packaged MiniLM). The weights load on first use, so
building a backend to ask its identity costs nothing.

* Device and precision: `device` (or env `DCC_DEVICE`) picks it; by default CUDA when torch
  sees a GPU, else CPU. On a GPU with bf16 support the weights run in bf16, everywhere else in
  fp32. Precision is not part of the model identity: a cache filled on a GPU serves a CPU build,
  and scores may differ between the two in the last bits.
* Batching: every call tokenizes its inputs, sorts them by token length and runs batches that
  fit a token budget (`max_batch_tokens`, rows x padded length; default 4096 on CPU, 16384 on
  GPU), then returns results in input order (see `batching.py`).
* `score(prefixes, continuations)`: prefix and continuation are tokenized separately (no
  special tokens) and joined, so a continuation has the same tokens whatever its prefix, which
  is what makes conditional and unconditional losses comparable (IFD). The sequence starts with
  the tokenizer's BOS (else EOS) token when it has one, so the first continuation token of an
  empty prefix is scored too; a model with neither leaves that token unscored. Sequences longer
  than the model's context lose prefix tokens from the left, then continuation tokens from the
  right.
* `generate(prompts, config)`: a plain decode loop with a KV cache. Temperature 0 is greedy.
  Otherwise each (prompt, sample k) draws from its own `torch.Generator` seeded from
  (config.seed, prompt text, k), so a prompt's samples do not depend on which other prompts
  share its batch, or on the batch size (up to floating-point differences between batch
  shapes). `top_p` is nucleus sampling; `stop` strings end a completion and are cut from it.
  Chat prompts (lists of messages) go through the tokenizer's chat template when it has one,
  else their contents are joined with blank lines.
* `reward(inputs)` (kind "reward", an `AutoModelForSequenceClassification` with one label):
  one float per input, the head's single logit, in input order, batched like `score`. A chat
  input (a list of messages) goes through the tokenizer's chat template (no generation
  prompt: the reply is already there) when it has one, else its contents joined with blank
  lines; a string is read as it is. Sequences longer than the context keep their LAST
  tokens: the head reads the last token, and the end of the response is what it judges.
  Rows are padded on the right with the config's `pad_token_id` (set to the tokenizer's pad,
  else EOS, token when the config has none, since the head finds each row's last token by it).
* `embed(texts)`: mean pooling over non-padding tokens of the last hidden state (or the CLS
  token when the folder's `1_Pooling/config.json` says so), then L2 normalisation, as
  sentence-transformers does; float32 numpy, shape (n, d).
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from dcc.errors import DccError
from dcc.ops.models import GenerationConfig, Prompt, TokenScores
from dcc.ops.models.batching import run_batched
from dcc.ops.models.prompts import fit, prepare_prompts, prompt_text


class ModelLoadError(DccError):
    """A model folder or hub id could not be loaded; the message says what to do."""

    exit_code = 3


def pick_device(device: str | None = None) -> str:
    import torch

    device = device or os.environ.get("DCC_DEVICE") or None
    if device:
        return device
    return "cuda" if torch.cuda.is_available() else "cpu"


class HFBackend:
    """One transformers model (`kind` "causal", "encoder" or "reward") behind the ModelBackend interface.

    `source` is a folder or a hub id; `revision` pins a hub commit and `cache_dir` says which
    HF cache holds it; `identity` is what the resolver computed (a hash of the files, or the
    hub commit) and goes into node keys.
    """

    # No call's result is independent of the requests batched with it: the padded width
    # changes the order of floating-point sums (a perplexity's last digits, rarely a greedy
    # token), so a model group (dcc.ops.models.pool) keeps each node's own batches here.
    independent_requests: frozenset[str] = frozenset()

    def __init__(self, source: str, *, kind: str = "causal", identity: str,
                 revision: str | None = None, local_files_only: bool = True,
                 trust_remote_code: bool = False, device: str | None = None,
                 max_batch_tokens: int | None = None, cache_dir: str | None = None) -> None:
        if kind not in ("causal", "encoder", "reward"):
            raise ValueError(f"'kind' must be 'causal', 'encoder' or 'reward' (got {kind!r})")
        self.source, self.kind, self.identity = source, kind, identity
        self.revision, self.local_files_only = revision, local_files_only
        self.trust_remote_code, self.cache_dir = trust_remote_code, cache_dir
        self._device, self._max_batch_tokens = device, max_batch_tokens
        self._model: Any = None
        self._tok: Any = None

    def __repr__(self) -> str:
        return f"HFBackend({self.source!r}, kind={self.kind!r}, identity={self.identity!r})"

    # -- loading -----------------------------------------------------------------------------
    def _load(self) -> None:
        if self._model is not None:
            return
        import torch
        import transformers as tf

        self.device = pick_device(self._device)
        on_gpu = self.device.startswith("cuda")
        self.dtype = torch.bfloat16 if on_gpu and torch.cuda.is_bf16_supported() \
            else torch.float32
        kw: dict[str, Any] = {"revision": self.revision,
                              "local_files_only": self.local_files_only,
                              "trust_remote_code": self.trust_remote_code}
        if self.cache_dir is not None:
            kw["cache_dir"] = self.cache_dir
        cls = {"causal": tf.AutoModelForCausalLM, "reward": tf.AutoModelForSequenceClassification
               }.get(self.kind, tf.AutoModel)
        tf.utils.logging.disable_progress_bar()  # the library never prints (STYLE 15)
        tf.utils.logging.set_verbosity_error()
        try:
            tok = tf.AutoTokenizer.from_pretrained(self.source, **kw)
            model = cls.from_pretrained(self.source, **kw)
        except (OSError, ValueError) as e:
            hint = ""
            if "trust_remote_code" in str(e) and not self.trust_remote_code:
                hint = "; this model ships its own code: rerun with --trust-remote-code"
            raise ModelLoadError(f"cannot load model {self.source!r}: "
                                 f"{str(e).splitlines()[0]}{hint}") from None
        model.to(device=self.device, dtype=self.dtype)
        model.eval()
        self._tok, self._model = tok, model
        self.pad_id = _first_id(tok.pad_token_id, tok.eos_token_id, 0)
        if self.kind == "reward":
            self._reward_head(model)
        start = _first_id(tok.bos_token_id, tok.eos_token_id)
        self.start_ids = [start] if start is not None else []
        self.max_length = self._context_length(model, tok)
        self.max_batch_tokens = self._max_batch_tokens or (16384 if on_gpu else 4096)
        self.pooling = _pooling_mode(self.source)
        params = inspect.signature(model.forward).parameters
        # transformers 5 renamed `past_key_values` to `cache`; accept either.
        self.cache_arg = "cache" if "cache" in params else "past_key_values"
        self.keep_last = {"logits_to_keep": 1} if "logits_to_keep" in params else {}

    def _context_length(self, model: Any, tok: Any) -> int:
        cfg = model.config
        limits = [getattr(cfg, a, None) for a in ("n_positions", "max_position_embeddings")]
        limits = [n for n in limits if isinstance(n, int) and n > 0]
        st = _json(self.source, "sentence_bert_config.json").get("max_seq_length")
        if isinstance(st, int) and st > 0:
            limits.append(st)
        tok_max = getattr(tok, "model_max_length", None)
        if isinstance(tok_max, int) and 0 < tok_max < 1_000_000:
            limits.append(tok_max)
        return min(limits) if limits else 2048

    @property
    def tokenizer(self) -> Any:
        self._load()
        return self._tok

    @property
    def model(self) -> Any:
        self._load()
        return self._model

    def _encode(self, texts: Sequence[str], special: bool = False) -> list[list[int]]:
        if not texts:
            return []
        return list(self._tok(list(texts), add_special_tokens=special)["input_ids"])

    def _padded(self, seqs: Sequence[Sequence[int]], left: bool = False) -> tuple[Any, Any]:
        import torch

        width = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros((len(seqs), width), dtype=torch.long)
        for row, s in enumerate(seqs):
            span = slice(width - len(s), width) if left else slice(0, len(s))
            ids[row, span] = torch.tensor(list(s), dtype=torch.long)
            mask[row, span] = 1
        return ids.to(self.device), mask.to(self.device)

    # -- score -------------------------------------------------------------------------------
    def score(self, prefixes: Sequence[str], continuations: Sequence[str],
              *, sort: bool = True) -> list[TokenScores]:
        """Per-token log-probabilities of each continuation given its prefix, in input order.
        `sort=False` batches in input order (the benchmark's baseline)."""
        if len(prefixes) != len(continuations):
            raise ValueError(f"{len(prefixes)} prefixes but {len(continuations)} continuations")
        self._load()
        if not prefixes:
            return []
        pre, cont = self._encode(prefixes), self._encode(continuations)
        items = [self._fit(self.start_ids + p, c) for p, c in zip(pre, cont)]
        lengths = [len(ids) for ids, _ in items]
        return run_batched(items, lengths, self._score_batch, self.max_batch_tokens, sort=sort)

    def _fit(self, prefix: list[int], cont: list[int]) -> tuple[list[int], int]:
        """(token ids, index of the first continuation token), cut to the context length."""
        ids, start = fit(prefix, cont, self.max_length)
        if not ids:  # nothing at all (a tokenizer without BOS or EOS)
            return [self.pad_id], 1
        return ids, start

    def _score_batch(self, items: list[tuple[list[int], int]]) -> list[TokenScores]:
        import torch

        ids, mask = self._padded([s for s, _ in items])
        with torch.inference_mode():
            logits = self._model(input_ids=ids, attention_mask=mask).logits
            logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
            picked = logp.gather(-1, ids[:, 1:, None]).squeeze(-1).cpu()
        out = []
        for row, (seq, start) in enumerate(items):
            first = max(start, 1)  # token j is predicted at position j - 1
            out.append(TokenScores(picked[row, first - 1:len(seq) - 1].tolist()))
        return out

    # -- reward ------------------------------------------------------------------------------
    def _reward_head(self, model: Any) -> None:
        labels = getattr(model.config, "num_labels", None)
        if labels != 1:
            raise ModelLoadError(f"{self.source}: a reward model has a single-output head "
                                 f"(num_labels=1); this one has {labels} labels")
        if model.config.pad_token_id is None:
            model.config.pad_token_id = self.pad_id
        self.pad_id = model.config.pad_token_id

    def reward(self, inputs: Sequence[Prompt], *, sort: bool = True) -> list[float]:
        """The reward head's score of each input (a text, or a chat as a list of messages),
        in input order."""
        if self.kind != "reward":
            raise ValueError(f"{self.source}: only a reward model (kind 'reward') scores "
                             "rewards")
        self._load()
        if not inputs:
            return []
        seqs = []
        for item in inputs:
            if isinstance(item, str):
                seq = self._encode([item], special=True)[0]
            else:
                text, templated = prompt_text(self._tok, item, generation=False)
                seq = self._encode([text], special=not templated)[0]
            seqs.append(seq[-self.max_length:] or [self.pad_id])
        return run_batched(seqs, [len(s) for s in seqs], self._reward_batch,
                           self.max_batch_tokens, sort=sort)

    def _reward_batch(self, seqs: list[list[int]]) -> list[float]:
        import torch

        ids, mask = self._padded(seqs)
        with torch.inference_mode():
            logits = self._model(input_ids=ids, attention_mask=mask).logits
        return [float(x) for x in logits[:, 0].float().cpu().tolist()]

    # -- generate ----------------------------------------------------------------------------
    def generate(self, prompts: Sequence[Prompt], config: GenerationConfig) -> list[list[str]]:
        """`config.n` completions per prompt, in input order."""
        if self.kind != "causal":
            raise ValueError(f"{self.source}: an encoder cannot generate text")
        self._load()
        if not prompts:
            return []
        texts, ids = prepare_prompts(
            self._tok, prompts, lambda text, special: self._encode([text], special=special)[0],
            fallback=self.start_ids or [self.pad_id], max_length=self.max_length,
            max_new_tokens=config.max_new_tokens)
        samples = 1 if config.temperature == 0 else config.n
        jobs = [(i, k) for i in range(len(prompts)) for k in range(samples)]
        lengths = [len(ids[i]) + config.max_new_tokens for i, _ in jobs]
        seeds = [_seed(config.seed, texts[i], k) for i, k in jobs]
        items = list(zip([ids[i] for i, _ in jobs], seeds))
        done = run_batched(items, lengths, lambda batch: self._generate_batch(batch, config),
                           self.max_batch_tokens)
        out: list[list[str]] = [[] for _ in prompts]
        for (i, _), text in zip(jobs, done):
            out[i].append(text)
        return [o * config.n if samples == 1 else o for o in out]

    def _generate_batch(self, items: list[tuple[list[int], int]],
                        config: GenerationConfig) -> list[str]:
        import torch

        ids, mask = self._padded([s for s, _ in items], left=True)
        gens = [torch.Generator(device=self.device).manual_seed(s) for _, s in items]
        eos = {t for t in (self._tok.eos_token_id,) if t is not None}
        cfg_eos = getattr(self._model.generation_config, "eos_token_id", None)
        eos |= set(cfg_eos if isinstance(cfg_eos, list) else [cfg_eos]) - {None}
        tokens: list[list[int]] = [[] for _ in items]
        finished = [False] * len(items)
        pos = (mask.cumsum(-1) - 1).clamp(min=0)
        past, step_ids = None, ids
        with torch.inference_mode():
            for _ in range(config.max_new_tokens):
                out = self._model(input_ids=step_ids, attention_mask=mask, position_ids=pos,
                                  use_cache=True, **{self.cache_arg: past}, **self.keep_last)
                past = out.get("cache", out.get("past_key_values"))
                nxt = self._pick(out.logits[:, -1, :].float(), config, gens)
                for row, t in enumerate(nxt):
                    if finished[row]:
                        continue
                    if t in eos:
                        finished[row] = True
                        continue
                    tokens[row].append(t)
                    if config.stop and _cut(self._tok.decode(tokens[row]), config.stop)[1]:
                        finished[row] = True
                if all(finished):
                    break
                step_ids = torch.tensor(nxt, device=self.device)[:, None]
                mask = torch.cat([mask, mask.new_ones((len(items), 1))], dim=1)
                pos = pos[:, -1:] + 1
        return [_cut(self._tok.decode(t, skip_special_tokens=True), config.stop)[0]
                for t in tokens]

    @staticmethod
    def _pick(logits: Any, config: GenerationConfig, gens: list[Any]) -> list[int]:
        import torch

        if config.temperature == 0:
            return logits.argmax(-1).tolist()
        probs = torch.softmax(logits / config.temperature, dim=-1)
        if config.top_p < 1.0:
            sorted_p, order = probs.sort(dim=-1, descending=True)
            drop = sorted_p.cumsum(-1) - sorted_p >= config.top_p  # keeps at least one token
            sorted_p = sorted_p.masked_fill(drop, 0.0)
            probs = torch.zeros_like(probs).scatter(-1, order, sorted_p)
        return [int(torch.multinomial(probs[row], 1, generator=g)) for row, g in enumerate(gens)]

    # -- embed -------------------------------------------------------------------------------
    def embed(self, texts: Sequence[str]) -> Any:
        """(n, d) float32 numpy array of L2-normalised embeddings, in input order."""
        import numpy as np

        self._load()
        if not texts:
            width = getattr(self._model.config, "hidden_size", 0)
            return np.zeros((0, width), dtype=np.float32)
        limit = self.max_length
        seqs = [s[:limit - 1] + s[-1:] if len(s) > limit else s or [self.pad_id]
                for s in self._encode(texts, special=True)]
        rows = run_batched(seqs, [len(s) for s in seqs], self._embed_batch,
                           self.max_batch_tokens)
        return np.stack(rows).astype(np.float32)

    def _embed_batch(self, seqs: list[list[int]]) -> list[Any]:
        import torch

        ids, mask = self._padded(seqs)
        with torch.inference_mode():
            if self.kind == "causal":
                out = self._model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
                hidden = out.hidden_states[-1]
            else:
                hidden = self._model(input_ids=ids, attention_mask=mask).last_hidden_state
            hidden = hidden.float()
            if self.pooling == "cls":
                pooled = hidden[:, 0]
            else:
                m = mask[..., None].to(hidden.dtype)
                pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
            pooled = torch.nn.functional.normalize(pooled, p=2, dim=-1)
        return list(pooled.cpu().numpy())


def _first_id(*ids: int | None) -> int | None:
    return next((i for i in ids if i is not None), None)


def _json(folder: str, name: str) -> dict[str, Any]:
    path = Path(folder) / name
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _pooling_mode(folder: str) -> str:
    cfg = _json(folder, os.path.join("1_Pooling", "config.json"))
    return "cls" if cfg.get("pooling_mode_cls_token") and not cfg.get(
        "pooling_mode_mean_tokens") else "mean"


def _seed(seed: int, text: str, k: int) -> int:
    from dcc.cache.hashing import canonical_bytes, digest

    return int(digest(canonical_bytes({"seed": seed, "prompt": text, "k": k}))[:15], 16)


def _cut(text: str, stop: Sequence[str]) -> tuple[str, bool]:
    """`text` up to the first stop string, and whether one was found."""
    cuts = [i for i in (text.find(s) for s in stop if s) if i >= 0]
    return (text[:min(cuts)], True) if cuts else (text, False)


__all__ = ["HFBackend", "ModelLoadError", "pick_device"]
