"""distill.coreset and distill.compress: the distill operators that make data smaller.

`distill.coreset` runs `select.kcenter` or `select.diverse` (dcc/ops/scorers.py) at a budget
or a fraction; `distill.compress` plans which words of a text to keep from their
self-information under a small causal LM (dcc/ops/compression.py). Both are registered when
`dcc.ops.distill` is imported.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from dcc.ops import register
from dcc.ops.base import REQUIRED, DatasetOp, P, RowPython, RunContext
from dcc.ops.compression import Scored, join, plan, requests, words
from dcc.ops.models.resolve import model_param
from dcc.ops.scorers import MODELS_EXTRA, ModelOp, SelectDiverse, SelectKCenter
from dcc.ops.teacher import HelperCode, count

if TYPE_CHECKING:
    import numpy as np
    import polars as pl


# -- distill.coreset ----------------------------------------------------------------------------
@register
class DistillCoreset(HelperCode, ModelOp, DatasetOp):
    """Compress a dataset to `budget` rows (or `fraction` of them) chosen on embeddings.

    The size is `budget`, or floor(fraction x rows) computed exactly from the decimal
    written (as select.sample does), never more than the rows there are. Texts are the
    `field` column(s) (default `instruction`; several are joined by newlines), embedded with
    `model` (default: the packaged all-MiniLM-L6-v2; each distinct text costs one model
    call). Two methods, each exactly the select operator it names:
    * `method="kcenter"` (default): greedy k-center (Sener & Savarese, 2018), the rows that
      cover the data best, as `select.kcenter(field, budget, model, seed)`: the first center
      is a row drawn with `seed`, each next one the row farthest (cosine distance) from its
      nearest center.
    * `method="diverse"`: DEITA's score-first diversity (Liu et al., 2024), as
      `select.diverse(field, by, budget, threshold, model)`: rows from the highest `by`
      score down (input order without `by`; null scores last) are admitted when their
      cosine distance to every admitted row exceeds `threshold` (default 0.1); the walk
      stops at the size, so fewer rows come out when the data has fewer distinct ones.
    Kept rows come out unchanged, in their original order. Cached per node.

    Example:  small = scored | distill.coreset(fraction=0.1, method="diverse", by="_ifd")
    """

    name = "distill.coreset"
    version = 1
    helpers = tuple(f"dcc.ops.scorers:{name}" for name in (
        "SelectKCenter", "SelectDiverse", "kcenter_greedy", "diverse_walk", "embed_unique",
        "row_texts"))
    stochastic = True
    cost = 300.0
    model_kind = "encoder"
    requires = MODELS_EXTRA
    params = (
        P("budget", "int", None, doc="rows to keep (give this or 'fraction')", min=0),
        P("fraction", "float", None, doc="fraction of the rows to keep (floor)", min=0.0,
          max=1.0),
        P("method", "str", "kcenter", doc="kcenter (coverage) or diverse (DEITA: score, "
          "then distance)", choices=("kcenter", "diverse")),
        P("field", "str|list[str]", "instruction", doc="text column(s) to embed (joined by "
          "newlines)", column=True),
        P("by", "str", None, doc="method=diverse: numeric score column, best = highest",
          column=True, col_type="number"),
        P("threshold", "float", 0.1, doc="method=diverse: admit when cosine distance to "
          "every admitted row exceeds this", min=0.0, max=2.0),
        model_param(doc="embedding model (default: packaged all-MiniLM-L6-v2)"),
        P("seed", "int", 0, doc="method=kcenter: picks the first center"),
    )

    def validate(self) -> list[tuple[str | None, str]]:
        if (self.p["budget"] is None) == (self.p["fraction"] is None):
            return [(None, "give exactly one of 'budget' and 'fraction'")]
        if self.p["by"] is not None and self.p["method"] != "diverse":
            return [("by", "'by' ranks rows for method=\"diverse\"; k-center uses no scores")]
        return []

    def size(self, rows: int) -> int:
        """
        >>> DistillCoreset(fraction=0.29).size(100), DistillCoreset(budget=500).size(30)
        (29, 30)
        """
        if self.p["budget"] is not None:
            return min(self.p["budget"], rows)
        return math.floor(Fraction(repr(self.p["fraction"])) * rows)

    def inner(self, k: int) -> DatasetOp:
        p = self.p
        if p["method"] == "kcenter":
            return SelectKCenter(field=p["field"], budget=k, model=p["model"], seed=p["seed"])
        return SelectDiverse(field=p["field"], by=p["by"], budget=k, threshold=p["threshold"],
                             model=p["model"])

    def select_rows(self, df: pl.DataFrame, ctx: RunContext) -> np.ndarray:
        import numpy as np

        cols = list(dict.fromkeys(self.reads()))
        marked = df.select(cols).with_row_index("__dcc_row")
        chosen = self.inner(self.size(df.height)).run([marked], ctx)
        return np.asarray(chosen["__dcc_row"].to_numpy(), dtype=np.int64)

    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        return inputs[0][self.select_rows(inputs[0], ctx).tolist()]


# -- distill.compress ---------------------------------------------------------------------------
@register
class DistillCompress(HelperCode, ModelOp, RowPython):
    """Compress the text in `field` to about `ratio` of its tokens, dropping the words a small
    causal LM finds least informative (LLMLingua / Selective Context), into `into`.

    Each word (a maximal run of non-whitespace) is scored by its self-information under
    `model`, -log p(word's tokens | the original text before it), one scored continuation
    per word (see `dcc/ops/compression.py` for why words, not tokens). Words are kept by
    self-information per token, highest first (ties: the earlier word), while the kept
    words' tokens fit in floor(ratio x the text's tokens); a word that does not fit is
    skipped and the next tried. Always kept, even past the target: words holding a digit
    (`keep_numbers`, default true) and words matching any regular expression in `protect`
    (re.search). The kept words stay in their order; between two kept words goes the
    whitespace before the second, or a dropped stretch's line break, so lines survive; the
    result has no leading or trailing whitespace.

    `_compress_ratio` gets the kept share of the text's tokens (4 decimals). A null `field`
    stays null (`null_input`, not scored); a text with no words, or `ratio=1`, is kept as it
    is without asking the model. The result replaces `field`, or goes to `into` when given.
    Scoring is deterministic (no seed); the node is row-memoized, so a rebuild or a source
    grown by 1% scores only new rows. `model_calls` counts one per row scored; the node's
    stats count `words_scored`.

    Example:  short = rows | distill.compress(field="context", model="./tiny", ratio=0.5)
    """

    name = "distill.compress"
    version = 1
    helpers = ("dcc.ops.compression",)
    expensive = True
    cost = 3000.0
    requires = MODELS_EXTRA
    params = (
        P("field", "str", doc="the text column to compress", column=True, col_type="str"),
        model_param(REQUIRED, doc="causal LM: folder beside the recipe, hub id, or "
                    "'openai:URL#model' (an endpoint that returns prompt logprobs)"),
        P("ratio", "float", 0.5, doc="share of the text's tokens to keep", min=0.0, max=1.0),
        P("into", "str", None, doc="write the result here instead of replacing `field`"),
        P("keep_numbers", "bool", True, doc="always keep words that hold a digit"),
        P("protect", "list[str]", None, doc="regular expressions: a word matching any is kept"),
    )

    def validate(self) -> list[tuple[str | None, str]]:
        for pattern in self.p["protect"] or []:
            try:
                re.compile(pattern)
            except re.error as e:
                return [("protect", f"'protect' pattern {pattern!r} is not a valid regular "
                                    f"expression: {e}")]
        return []

    def target(self) -> str:
        return self.p["into"] or self.p["field"]

    def writes(self) -> list[str]:
        return [self.target(), "_compress_ratio"]

    def output_schema(self, inputs: list[Any]) -> Any:
        return super().output_schema(inputs).with_columns(
            **{self.target(): "str", "_compress_ratio": "float"})

    def protected(self, word: str) -> bool:
        if self.p["keep_numbers"] and any(c.isdigit() for c in word):
            return True
        return any(re.search(p, word) for p in self.p["protect"] or [])

    def process(self, rows: list[dict[str, Any]], ctx: RunContext) -> list[dict[str, Any]]:
        ctx.calls_counted = True
        results: list[dict[str, Any]] = []
        jobs: list[tuple[int, list[Any], int]] = []  # (row, its words, first request)
        prefixes: list[str] = []
        continuations: list[str] = []
        for i, row in enumerate(rows):
            value = row.get(self.p["field"])
            text = value if value is None or isinstance(value, str) else str(value)
            results.append({self.target(): text, "_compress_ratio": None})
            if text is None:
                count(ctx, "null_input")
                continue
            ws = words(text)
            if ws and self.p["ratio"] < 1.0:
                pre, cont = requests(text, ws)
                jobs.append((i, ws, len(prefixes)))
                prefixes += pre
                continuations += cont
            elif ws:
                results[i]["_compress_ratio"] = 1.0
        scores = self.backend(ctx).score(prefixes, continuations) if prefixes else []
        ctx.model_calls += len(jobs)
        count(ctx, "words_scored", len(prefixes))
        for i, ws, first in jobs:
            scored = [Scored(-sum(s.logprobs), len(s.logprobs))
                      for s in scores[first:first + len(ws)]]
            keep = plan(scored, self.p["ratio"], [self.protected(w.text) for w in ws])
            cost = [max(s.tokens, 1) for s in scored]
            kept = sum(c for c, k in zip(cost, keep) if k)
            results[i] = {self.target(): join(ws, keep),
                          "_compress_ratio": round(kept / sum(cost), 4)}
        return results


__all__ = ["DistillCompress", "DistillCoreset"]
