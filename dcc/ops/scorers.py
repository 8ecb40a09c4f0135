"""Model-based selection: perplexity, IFD, DEITA-style diversity and k-center coresets.

Two kinds of operator live here, and the split is what keeps model calls cheap:

* Scorers (`select.perplexity`, `select.ifd`) are row-wise and `expensive`: the engine sends
  only rows its row memo lacks, so a rebuild, or a source grown by 1%, costs (about) no model
  calls. Each writes its score to a documented column (`_ppl`, `_ifd`). Every score also goes
  through the model-request memo (`score_losses`: keyed by model identity, prefix and
  continuation, shared by every node), so changing a scorer's threshold or `keep` re-runs
  the node but asks the model nothing, and IFD's unconditional loss of a text is the same
  request as that text's perplexity.
* Which rows stay is `keep=` (`dcc.ops.base.KeepBest`): a threshold range
  (`keep={"min": 2, "max": 50}`, row by row) or a ranked form (`keep=0.3`: the best 30%;
  `keep={"bottom": 500}`), whose top-k the executor takes once every row is scored. The
  older `min`/`max` parameters are the same range. `select.topk(by="_ppl", ...)` after a
  scorer with no `keep` does the ranked cut as a separate node, which is equivalent.
  A row whose score does not exist (an empty text has no tokens) gets null, and `keep`,
  `min` or `max` drop it; with none of them every row is kept.
* `select.diverse` and `select.kcenter` need every row's embedding and the rows chosen so
  far: they are whole-dataset operators that call the embedding model themselves (counted in
  `model_calls`: one per distinct text embedded) and are cached per node, not per row; the
  vectors themselves are memoized by (model, text) across nodes (`dcc.ops.models.memo.embed`).

The `model` parameter of every operator here takes a folder beside the recipe (`"./tiny"`),
a hub id, `vllm:` before either (the vLLM engine, see `dcc.ops.models.vllm_offline`), or an
`openai:` endpoint (see `dcc.ops.models.resolve`); embedding operators default to the
packaged all-MiniLM-L6-v2. A model's identity (hash of its files, or hub commit) is part of
every node key.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from dcc.errors import ParamError
from dcc.ops import register
from dcc.ops.base import REQUIRED, DatasetOp, KeepBest, MinMaxBounds, P, RowPython, RunContext
from dcc.ops.models.pool import ask_model
from dcc.ops.models.resolve import (
    ModelNotFound,
    model_identity,
    model_param,
    parse_ref,
    resolve_model,
)

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

MODELS_EXTRA = (("torch", "models"), ("transformers", "models"))


class ModelOp:
    """Mixin for operators with a `model` parameter: checked reference, identity, backend.

    The parameter keeps the value as the compiler made it (a folder beside the recipe is
    absolute); `parse_ref` reads it each time it is needed, which costs a few stat calls."""

    model_kind: ClassVar[str] = "causal"
    p: dict[str, Any]
    name: ClassVar[str]

    def __init__(self, **values: Any) -> None:
        super().__init__(**values)  # type: ignore[call-arg]
        try:  # a reference that cannot name anything is a compile-time error
            ref = parse_ref(self.p.get("model"))
        except ModelNotFound as e:
            raise ParamError(f"{self.name}: {e}") from None
        if ref.engine == "vllm" and self.model_kind != "causal":
            what = "reward models" if self.model_kind == "reward" else "embeddings"
            raise ParamError(f"{self.name}: 'model' {str(ref)!r} names vLLM, which runs "
                             f"causal LMs here; {what} are computed with transformers "
                             "(drop the 'vllm:' prefix)")

    def model_identity(self, stat_cache: Any = None) -> str | None:
        return model_identity(self.p.get("model"), stat_cache)

    def backend(self, ctx: RunContext) -> Any:
        return resolve_model(self.p.get("model"), kind=self.model_kind, options=ctx.options)


def _finite(x: float) -> float | None:
    return x if math.isfinite(x) else None


def score_request_hash(identity: str, prefix: str, continuation: str) -> str:
    """The request memo's key for scoring `continuation` after `prefix` (distinct from any
    generation request's key: the fields differ).

    >>> score_request_hash("m", "", "hi") == score_request_hash("m", "", "hi")
    True
    >>> score_request_hash("m", "a", "b") == score_request_hash("m", "", "ab")
    False
    """
    from dcc.cache.hashing import canonical_bytes, digest

    return digest(canonical_bytes({"score": identity, "prefix": prefix,
                                   "continuation": continuation}))


def score_losses(ctx: RunContext, backend: Any, prefixes: Sequence[str],
                 continuations: Sequence[str]) -> list[float | None]:
    """Mean negative log-likelihood per token of each continuation given its prefix (None
    when no token is scored: an empty continuation), in input order, asking the model only
    for requests the request memo (`ctx.requests`) lacks, each distinct one once. Counts one
    model call per request sent and the memo's answers in `ctx.stats['memo_hits']`."""
    ctx.calls_counted = True
    memo = getattr(ctx, "requests", None)
    identity = str(backend.identity)
    hashes = [score_request_hash(identity, p, c) if c else None
              for p, c in zip(prefixes, continuations)]
    found: dict[str, float | None] = {}
    wanted = {h for h in hashes if h is not None}
    if memo is not None and wanted:
        found = {h: json.loads(v) for h, v in memo.get_many(wanted).items()}
        if found:
            hits = sum(1 for h in hashes if h in found)
            ctx.stats["memo_hits"] = ctx.stats.get("memo_hits", 0) + hits
    todo: dict[str, int] = {}
    for i, h in enumerate(hashes):
        if h is not None and h not in found and h not in todo:
            todo[h] = i
    if todo:
        def call(pairs: list[tuple[str, str]]) -> list[float | None]:
            scores = backend.score([p for p, _ in pairs], [c for _, c in pairs])
            return [s.mean_loss if s.logprobs else None for s in scores]

        def commit(fresh: dict[str, float | None]) -> None:
            if memo is not None:
                memo.put_many({h: json.dumps(v).encode() for h, v in fresh.items()})

        found.update(ask_model(ctx, ("score", id(backend)), list(todo),
                               [(prefixes[i], continuations[i]) for i in todo.values()],
                               call, commit, len(todo), backend, "score"))
    return [None if h is None else found[h] for h in hashes]


@register
class SelectPerplexity(KeepBest, MinMaxBounds, ModelOp, RowPython):
    """Score each row's `field` by its perplexity under a causal LM, into the column `_ppl`.

    `_ppl` = exp(mean negative log-likelihood per token) of the text, scored from the start of
    the sequence (the model's BOS token is the only context). Lower means more fluent or more
    typical of what the model was trained on; shuffled characters and boilerplate-free noise
    score high. A null or empty field has no tokens: `_ppl` is null.

    `keep` chooses the rows that stay; the best rows here are the LOWEST perplexities:
      keep=0.3                    the 30% of scored rows with the lowest perplexity
      keep=100                    the 100 lowest
      keep={"top": 0.05}          the 5% highest (to look at the noise)
      keep={"min": 5, "max": 200} perplexity from 5 to 200 (inclusive), row by row
    (see `dcc.ops.base.KeepBest`: ties go to the earlier row, rows keep their order, null
    scores are never kept). `min`/`max` are the same range as keep={"min":..,"max":..}.
    Without `keep`, `min` or `max`, or with keep="none", every row is kept with its score
    (annotate only). Row-memoized, and every text's score is memoized by request: a rebuild,
    or a new `keep`, costs no model calls.

    Example:  select.perplexity(field="text", model="./tiny", keep=0.3)
    """

    name = "select.perplexity"
    version = 1
    expensive = True
    cost = 1000.0
    requires = MODELS_EXTRA
    keep_best = "bottom"
    score_column = "_ppl"
    annotate_without_bounds = True
    params = (
        P("field", "str", doc="the text column to score", column=True, col_type="str"),
        model_param(REQUIRED, doc="causal LM: folder beside the recipe, hub id, "
                    "'vllm:' + either, or 'openai:URL#model'"),
        KeepBest.keep_param("the lowest perplexity"),
        P("min", "float", None, doc="lowest perplexity kept (inclusive)", min=0.0),
        P("max", "float", None, doc="highest perplexity kept (inclusive)", min=0.0),
    )

    def validate(self) -> list[tuple[str | None, str]]:
        return self.keep_problems() or super().validate()

    def process(self, rows: list[dict[str, Any]], ctx: RunContext) -> list[dict[str, Any] | None]:
        texts = [row.get(self.p["field"]) or "" for row in rows]
        losses = score_losses(ctx, self.backend(ctx), [""] * len(texts), texts)
        out: list[dict[str, Any] | None] = []
        for loss in losses:
            ppl = _finite(math.exp(loss)) if loss is not None else None
            kept = self.within_value(ppl) and self.keep_row(ppl)
            out.append({"_ppl": ppl} if kept else None)
        return out


IFD_TEMPLATES = {
    # The instruction, a newline, then the response: how GSM8K-style text reads.
    "plain": "{instruction}\n",
    # Stanford Alpaca's prompt, as used by Li et al.'s Cherry-LLM code for IFD.
    "alpaca": ("Below is an instruction that describes a task. Write a response that "
               "appropriately completes the request.\n\n### Instruction:\n{instruction}\n\n"
               "### Response:\n"),
}


@register
class SelectIFD(KeepBest, MinMaxBounds, ModelOp, RowPython):
    """Score each row by Instruction-Following Difficulty (Li et al., 2024, "From Quantity to
    Quality"), into the column `_ifd`.

    `_ifd` = loss(output | prompt) / loss(output), where loss is the mean negative
    log-likelihood per token of `output` under a causal LM, once after the prompt and once
    alone (after BOS only). The output's tokens are the same in both. The prompt is the
    instruction (and `input`, when that column is given and the row's value is not empty,
    after a blank line) formatted with `template`:
      "plain"  (default): "{instruction}\\n" then the output;
      "alpaca": the Stanford Alpaca prompt ("Below is an instruction ... ### Instruction:\\n
                {instruction}\\n\\n### Response:\\n"), as in the paper's code.
    IFD < 1: the instruction makes the output easier to predict; the lower, the more it
    helps. IFD > 1 means the instruction does not help at all. High IFD below 1 marks
    instructions that are hard to follow: the ones the paper selects. An empty output
    scores null.

    `keep` chooses the rows that stay; the best rows here are the HIGHEST IFD AT OR BELOW 1,
    as in the paper's selection code (Cherry_LLM `data_by_IFD.py`: rows with IFD > 1 are
    dropped, the rest sorted, and the top `sample_rate` share of THOSE rows kept):
      keep=0.1                    the 10% highest IFD among rows with IFD <= 1
                                  (= keep={"top": 0.1, "max": 1.0})
      keep=1000                   the 1000 highest IFD <= 1
      keep={"top": 0.1}           the 10% highest IFD of all scored rows, > 1 included
      keep={"bottom": 0.2}        the 20% lowest (instructions that help most)
      keep={"max": 0.999}         every row with IFD <= 0.999, row by row
    (see `dcc.ops.base.KeepBest`; one difference from the paper's code: ties go to the
    earlier row, where its sort keeps the later one). `min`/`max` are the same range as
    keep={"min":..,"max":..}. Without `keep`, `min` or `max`, or with keep="none", every
    row is kept with its score. Both losses are memoized by request: a rebuild or a new
    `keep` costs no model calls, and each row costs two requests the first time.

    Example:  select.ifd(instruction="question", output="answer", model="./tiny", keep=0.3)
    """

    name = "select.ifd"
    version = 1
    expensive = True
    cost = 2000.0
    requires = MODELS_EXTRA
    keep_best = "top"
    keep_eligible = {"max": 1.0}
    score_column = "_ifd"
    annotate_without_bounds = True
    params = (
        P("instruction", "str", "instruction", doc="the instruction column", column=True,
          col_type="str"),
        P("output", "str", "output", doc="the response column", column=True, col_type="str"),
        P("input", "str", None, doc="optional extra-input column, appended to the instruction",
          column=True, col_type="str"),
        model_param(REQUIRED, doc="causal LM: folder beside the recipe, hub id, "
                    "'vllm:' + either, or 'openai:URL#model'"),
        P("template", "str", "plain", doc="how the prompt is written",
          choices=tuple(IFD_TEMPLATES)),
        KeepBest.keep_param("the highest IFD at or below 1"),
        P("min", "float", None, doc="lowest IFD kept (inclusive)", min=0.0),
        P("max", "float", None, doc="highest IFD kept (inclusive)", min=0.0),
    )

    def validate(self) -> list[tuple[str | None, str]]:
        return self.keep_problems() or super().validate()

    def prompt(self, row: dict[str, Any]) -> str:
        instruction = row.get(self.p["instruction"]) or ""
        extra = row.get(self.p["input"]) if self.p["input"] else None
        if extra:
            instruction = f"{instruction}\n\n{extra}"
        return IFD_TEMPLATES[self.p["template"]].format(instruction=instruction)

    def process(self, rows: list[dict[str, Any]], ctx: RunContext) -> list[dict[str, Any] | None]:
        outputs = [row.get(self.p["output"]) or "" for row in rows]
        prompts = [self.prompt(row) for row in rows]
        both = score_losses(ctx, self.backend(ctx), prompts + [""] * len(rows),
                            outputs + outputs)
        out: list[dict[str, Any] | None] = []
        for cond, alone in zip(both[:len(rows)], both[len(rows):]):
            ifd = None
            if cond is not None and alone is not None and alone > 0:
                ifd = _finite(cond / alone)
            kept = self.within_value(ifd) and self.keep_row(ifd)
            out.append({"_ifd": ifd} if kept else None)
        return out


# -- reward models ------------------------------------------------------------------------------
REWARD_BATCH = 256  # inputs sent (and committed to the request memo) at a time


def reward_request_hash(identity: str, item: Any) -> str:
    """The request memo's key for a reward model's score of `item` (a text, or a chat as a
    list of messages): distinct from scoring and generation keys, whose fields differ.

    >>> reward_request_hash("m", "hi") == reward_request_hash("m", "hi")
    True
    >>> reward_request_hash("m", "hi") == reward_request_hash("m", [{"role": "user",
    ...                                                              "content": "hi"}])
    False
    """
    from dcc.cache.hashing import canonical_bytes, digest

    return digest(canonical_bytes({"reward": identity, "input": item}))


def reward_scores(ctx: RunContext, backend: Any, items: Sequence[Any]) -> list[float | None]:
    """The reward model's score of each item (None for a None item), in input order, asking
    the model only for requests the request memo lacks, each distinct one once, committed
    `REWARD_BATCH` at a time (a killed build resumes after the last batch). Counts one model
    call per request sent and the memo's answers in `ctx.stats['memo_hits']`."""
    ctx.calls_counted = True
    memo = getattr(ctx, "requests", None)
    identity = str(backend.identity)
    hashes = [None if item is None else reward_request_hash(identity, item) for item in items]
    wanted = {h for h in hashes if h is not None}
    found: dict[str, float] = {}
    if memo is not None and wanted:
        found = {h: json.loads(v) for h, v in memo.get_many(wanted).items()}
        if found:
            hits = sum(1 for h in hashes if h in found)
            ctx.stats["memo_hits"] = ctx.stats.get("memo_hits", 0) + hits
    todo: dict[str, int] = {}
    for i, h in enumerate(hashes):
        if h is not None and h not in found and h not in todo:
            todo[h] = i

    def call(batch: list[Any]) -> list[float]:
        return [float(v) for v in backend.reward(batch)]

    def commit(fresh: dict[str, float]) -> None:
        if memo is not None:
            memo.put_many({h: json.dumps(v).encode() for h, v in fresh.items()})

    found.update(ask_model(ctx, ("reward", id(backend)), list(todo),
                           [items[i] for i in todo.values()], call, commit, REWARD_BATCH,
                           backend, "reward"))
    return [None if h is None else _finite(found[h]) for h in hashes]


@register
class SelectReward(KeepBest, ModelOp, RowPython):
    """Score each row with a reward model (a sequence-classification head with one output),
    into the column `into` (default `_reward`).

    The usual open reward models (trained on preference pairs to score a response to an
    instruction) rate a whole exchange with one number: higher is better, and only the
    differences between scores mean something. What the model reads is, by exactly one of:
      fields=[instruction, response]  a chat: the user's turn is the first column, the
                assistant's the second. With the tokenizer's chat template when it has one
                (no generation prompt: the reply is there), else "instruction\n\nresponse".
                This is how chat-tuned reward models were trained, so prefer it.
      field="text"    one column, read as it is.
      template="..."  a Jinja2 template over the row's columns (as select.judge's), read as
                it is: for a reward model with its own prompt format.
    A null or empty text (or response, with `fields`) has nothing to judge: the score is null.
    The score is the head's single logit (float32 on CPU, bf16 weights on a GPU; see
    `dcc.ops.models.hf`); inputs longer than the model's context keep their last tokens.

    `keep` chooses the rows that stay; the best rows here are the HIGHEST rewards:
      keep=0.3                    the 30% of scored rows with the highest reward
      keep=1000                   the 1000 highest
      keep={"bottom": 0.05}       the 5% lowest (to look at them)
      keep={"min": 0.5}           reward 0.5 or more, row by row
      keep={"zscore": 3}          rewards within mean +- 3 std of this node's input
      keep={"percentile": [10, 100]}  everything from the 10th percentile up
    (see `dcc.ops.base.KeepBest`; null scores are never kept). Without `keep`, or with
    keep="none", every row is kept with its score: the operator only annotates. Inputs are batched by token length
    and run in input order; each distinct input is asked once and memoized by request
    (model identity and input), so a rebuild, or a new `keep`, costs no model calls. The
    model runs with transformers (a folder beside the recipe or a hub id; not vLLM, not an
    openai: endpoint, which serve no reward heads).

    Example:  select.reward(fields=["instruction", "output"], model="./rm", keep=0.5)
    """

    name = "select.reward"
    version = 1
    expensive = True
    cost = 1000.0
    requires = MODELS_EXTRA
    model_kind = "reward"
    keep_best = "top"
    score_column = "_reward"
    params = (
        P("field", "str", None, doc="one text column, read as it is", column=True,
          col_type="str"),
        P("fields", "list[str]", None, doc="[instruction, response] columns: a user turn and "
          "the assistant's reply", column=True),
        P("template", "str", None, doc="a Jinja2 template over the row's columns"),
        model_param(REQUIRED, doc="reward model (sequence classification, one label): "
                    "folder beside the recipe or hub id"),
        P("into", "str", "_reward", doc="the score's column"),
        KeepBest.keep_param("the highest reward"),
    )

    def validate(self) -> list[tuple[str | None, str]]:
        p = self.p
        given = [n for n in ("field", "fields", "template") if p[n] is not None]
        if len(given) != 1:
            return [("field", ("give exactly one of 'field' (one text), 'fields' ([instruction, "
                               f"response]) or 'template' (got {', '.join(given) or 'none'})"))]
        if p["fields"] is not None and len(p["fields"]) != 2:
            return [("fields", ("'fields' is [instruction, response]: two columns, the user's "
                                f"turn and the reply (got {len(p['fields'])})"))]
        if parse_ref(p["model"]).scheme == "openai":
            return [("model", ("an openai: endpoint serves no reward head; give a reward "
                               "model's folder or hub id"))]
        if p["template"] is not None:
            from dcc.ops.prompted import compile_template

            try:
                compile_template(p["template"])
            except ParamError as e:
                return [("template", str(e))]
        return self.keep_problems()

    def template_columns(self) -> list[str]:
        if self.p["template"] is None:
            return []
        from dcc.ops.prompted import compile_template

        return sorted(compile_template(self.p["template"])[1])

    def reads(self) -> list[str]:
        return sorted(set(super().reads()) | set(self.template_columns()))  # type: ignore[misc]

    def output_schema(self, inputs: list[Any]) -> Any:
        import difflib

        for col in self.template_columns():
            if inputs and not inputs[0].has(col):
                close = difflib.get_close_matches(col, list(inputs[0].columns), n=1)
                hint = f"did you mean '{close[0]}'?" if close else \
                    f"the input's columns: {', '.join(sorted(inputs[0].columns)) or 'none'}"
                raise ParamError(f"{self.name}: the template reads column '{col}', which its "
                                 f"input does not have; {hint}")
        return super().output_schema(inputs)

    def reward_input(self, row: dict[str, Any]) -> Any:
        """What the reward model reads for this row: a text, a chat, or None (nothing)."""
        if self.p["fields"] is not None:
            instruction, response = (_text(row.get(c)) for c in self.p["fields"])
            if not response:
                return None
            return [{"role": "user", "content": instruction},
                    {"role": "assistant", "content": response}]
        if self.p["template"] is not None:
            from dcc.ops.prompted import compile_template, render

            template, names = compile_template(self.p["template"])
            text = render(template, {c: row.get(c) for c in names}, self.name)
        else:
            text = _text(row.get(self.p["field"]))
        return text or None

    def process(self, rows: list[dict[str, Any]], ctx: RunContext) -> list[dict[str, Any] | None]:
        scores = reward_scores(ctx, self.backend(ctx), [self.reward_input(r) for r in rows])
        return [{self.p["into"]: s} if self.keep_row(s) else None for s in scores]


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


# -- embedding-based selection ------------------------------------------------------------------
def row_texts(df: pl.DataFrame, fields: list[str]) -> list[str]:
    """One text per row: the listed fields' values, nulls as "", joined by newlines."""
    cols = [df[f].cast(str).fill_null("").to_list() for f in fields]
    return ["\n".join(vals) for vals in zip(*cols)] if cols else [""] * df.height


def embed_unique(backend: Any, texts: list[str], ctx: RunContext) -> tuple[np.ndarray, list[int]]:
    """Embeddings of the distinct texts and, for each text, the row of its embedding, through
    the embedding memo (`dcc.ops.models.memo.embed`): each distinct text not embedded before
    by this model, in any node, counts one model call."""
    import numpy as np

    from dcc.ops.models.memo import embed

    index: dict[str, int] = {}
    of_row = [index.setdefault(t, len(index)) for t in texts]
    unique = list(index)
    vecs = embed(ctx, backend, unique) if unique else np.zeros((0, 0), dtype=np.float32)
    return np.asarray(vecs, dtype=np.float32), of_row


@register
class SelectDiverse(ModelOp, DatasetOp):
    """DEITA-style diverse selection: walk the rows from the best `by` score down and admit a
    row only when its embedding is far from every row admitted so far.

    Rows are ranked by the numeric column `by`, highest first (null/NaN last, ties in input
    order; without `by`, input order). A row is admitted when its cosine distance
    (1 - cosine similarity of `field`'s embeddings) to every admitted row exceeds
    `threshold`; the walk stops after `budget` rows. The kept rows come out in their original
    order. The default threshold 0.1 is DEITA's (similarity below 0.9). Embeddings come from
    `model` (default: the packaged all-MiniLM-L6-v2), computed in rank order and only as far
    as the walk goes; each distinct text not embedded before (by any node) costs one model
    call. Cached per node (the whole dataset decides the result), not per row.

    Example:  select.diverse(field="instruction", by="_ifd", budget=1000, threshold=0.1)
    """

    name = "select.diverse"
    version = 1
    CHUNK = 256  # texts embedded per step of the walk
    cost = 300.0
    model_kind = "encoder"
    requires = MODELS_EXTRA
    params = (
        P("field", "str|list[str]", doc="text column(s) to embed (joined by newlines)",
          column=True),
        P("by", "str", None, doc="numeric score column, best = highest", column=True,
          col_type="number"),
        P("budget", "int", None, doc="most rows kept (null: no limit)", min=0),
        P("threshold", "float", 0.1, doc="admit when cosine distance to every admitted row "
          "exceeds this", min=0.0, max=2.0),
        model_param(doc="embedding model (default: packaged all-MiniLM-L6-v2)"),
    )

    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        import numpy as np
        import polars as pl

        df = inputs[0]
        fields = self.p["field"] if isinstance(self.p["field"], list) else [self.p["field"]]
        texts = row_texts(df, fields)
        order = np.arange(df.height)
        if self.p["by"] is not None:
            score = df[self.p["by"]].cast(pl.Float64).to_numpy()
            key = np.where(np.isnan(score), np.inf, -score)
            order = np.lexsort((order, key))
        budget = df.height if self.p["budget"] is None else self.p["budget"]
        keep = diverse_walk(self.backend(ctx), [texts[i] for i in order], budget,
                            self.p["threshold"], ctx, chunk=self.CHUNK)
        mask = np.zeros(df.height, dtype=bool)
        mask[order[keep]] = True
        return df.filter(pl.Series(mask))


def diverse_walk(backend: Any, ranked: list[str], budget: int, threshold: float,
                 ctx: RunContext, chunk: int = 256) -> list[int]:
    """Positions in `ranked` admitted by the DEITA walk; embeds `chunk` texts at a time."""
    import numpy as np

    admitted: list[int] = []
    bank: np.ndarray | None = None
    seen: dict[str, np.ndarray] = {}
    pos = 0
    while pos < len(ranked) and len(admitted) < budget:
        batch = ranked[pos:pos + chunk]
        fresh = list(dict.fromkeys(t for t in batch if t not in seen))
        if fresh:
            from dcc.ops.models.memo import embed

            for t, v in zip(fresh, embed(ctx, backend, fresh)):
                seen[t] = v
        for j, text in enumerate(batch):
            if len(admitted) >= budget:
                break
            v = seen[text]
            if bank is None:
                bank = np.empty((min(budget, len(ranked)), v.shape[0]), dtype=np.float32)
            near = float((bank[:len(admitted)] @ v).max()) if admitted else -1.0
            if 1.0 - near > threshold:
                bank[len(admitted)] = v
                admitted.append(pos + j)
        pos += chunk
        ctx.progress(min(pos, len(ranked)), len(ranked))
    return admitted


@register
class SelectKCenter(ModelOp, DatasetOp):
    """A k-center coreset: `budget` rows that cover the data, chosen greedily on embeddings.

    Greedy k-center (Sener & Savarese, 2018): the first center is a seeded random row
    (numpy default_rng(seed)); each next one is the row farthest, in cosine distance of
    `field`'s embeddings, from its nearest chosen center (ties: the earlier row). The result
    is within a factor 2 of the optimal covering radius. Rows with identical text share an
    embedding (one model call per distinct text); once every distinct text is chosen, further
    picks are duplicates in input order. Kept rows come out in their original order.

    Example:  select.kcenter(field="instruction", budget=500, seed=1)
    """

    name = "select.kcenter"
    version = 1
    cost = 300.0
    stochastic = True
    model_kind = "encoder"
    requires = MODELS_EXTRA
    params = (
        P("field", "str|list[str]", doc="text column(s) to embed (joined by newlines)",
          column=True),
        P("budget", "int", doc="number of rows to keep", min=0),
        model_param(doc="embedding model (default: packaged all-MiniLM-L6-v2)"),
        P("seed", "int", 0, doc="random seed (picks the first center)"),
    )

    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        import numpy as np
        import polars as pl

        df = inputs[0]
        budget = min(self.p["budget"], df.height)
        if budget == 0:
            return df.head(0)
        if budget == df.height:
            return df
        fields = self.p["field"] if isinstance(self.p["field"], list) else [self.p["field"]]
        vecs, of_row = embed_unique(self.backend(ctx), row_texts(df, fields), ctx)
        chosen = kcenter_greedy(vecs[np.asarray(of_row)], budget, self.p["seed"])
        mask = np.zeros(df.height, dtype=bool)
        mask[chosen] = True
        return df.filter(pl.Series(mask))


def kcenter_greedy(vecs: np.ndarray, k: int, seed: int) -> list[int]:
    """Indices of `k` greedy k-center picks on L2-normalised rows of `vecs`.

    >>> import numpy as np
    >>> v = np.array([[1, 0], [0.99, 0.14], [0, 1], [-1, 0]], dtype=np.float32)
    >>> sorted(kcenter_greedy(v, 3, seed=0))
    [0, 2, 3]
    """
    import numpy as np

    n = vecs.shape[0]
    first = int(np.random.default_rng(seed).integers(n))
    chosen = [first]
    dist = 1.0 - vecs @ vecs[first]
    dist[first] = -np.inf
    while len(chosen) < k:
        nxt = int(np.argmax(dist))  # the first of equal maxima: the earlier row
        chosen.append(nxt)
        dist = np.minimum(dist, 1.0 - vecs @ vecs[nxt])
        dist[chosen] = -np.inf
    return chosen


__all__ = [
    "IFD_TEMPLATES",
    "ModelOp",
    "SelectDiverse",
    "SelectIFD",
    "SelectKCenter",
    "SelectPerplexity",
    "SelectReward",
    "diverse_walk",
    "embed_unique",
    "kcenter_greedy",
    "reward_request_hash",
    "reward_scores",
    "row_texts",
    "score_losses",
    "score_request_hash",
]
