"""distill.*: move knowledge from a teacher model into data, and compress data.

* `distill.respond`  a teacher writes the response to each row's prompt (n samples, all kept
                     or the best by a judge);
* `distill.cot`      a teacher writes a worked rationale; with a reference answer, rejection
                     sampling keeps only rationales that reach it;
* `distill.coreset`  a budget of rows that cover the data (k-center) or the best-scored
                     diverse ones (DEITA), on embeddings;
* `distill.compress` LLMLingua-style prompt compression by self-information under a small LM.

Generation goes through `UsesModel.ask_many`, the request memo keyed by the exact request
(model identity, messages, settings, seed): a rebuild, or a build after a fix to a parser or
a filter rule, asks the model nothing it asked before, and a killed build resumes where its
last committed batch ended. Seeds per sample and attempt, reply screening and the best-of-n
judge are in `dcc/ops/teacher.py`; answer extraction in `dcc/ops/answers.py`; the word-level
compression in `dcc/ops/compression.py`; coresets reuse `select.kcenter` and
`select.diverse` (`dcc/ops/scorers.py`). `docs/distill.md` shows them in recipes.
"""

from __future__ import annotations

import importlib
import inspect
import math
import re
from fractions import Fraction
from typing import TYPE_CHECKING, Any, ClassVar

from dcc.ops import register
from dcc.ops.answers import KINDS, final_answer, normalize_answer, reference_answer
from dcc.ops.base import REQUIRED, DatasetOp, P, RowPython, RunContext
from dcc.ops.compression import Scored, join, plan, requests, words
from dcc.ops.models import GenerationConfig
from dcc.ops.models.resolve import model_param
from dcc.ops.scorers import MODELS_EXTRA, ModelOp, SelectDiverse, SelectKCenter
from dcc.ops.teacher import Judge, TeacherPrompt, best, count, sample_seed, screen
from dcc.schema import Schema

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

MAX_SAMPLES = 16
MAX_ATTEMPTS = 16


class HelperCode:
    """Adds to the operator's code fingerprint the helpers that decide its output: modules
    (`"dcc.ops.answers"`) or objects in them (`"dcc.ops.scorers:kcenter_greedy"`). The engine
    fingerprints class sources only, so without this a fix to an answer rule would leave old
    results cached; with the request memo, such a re-run costs no model call."""

    helpers: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def code_source(cls) -> str:
        parts = [super().code_source()]  # type: ignore[misc]
        for ref in cls.helpers:
            module, _, attr = ref.partition(":")
            try:
                obj = importlib.import_module(module)
                parts.append(inspect.getsource(getattr(obj, attr) if attr else obj))
            except (ImportError, AttributeError, OSError, TypeError):
                parts.append(ref)
        return "\n".join(parts)


TEACHER_HELPERS = ("dcc.ops.teacher", "dcc.ops.prompted")


def _settings(temperature: float, max_tokens: int) -> tuple[P, ...]:
    return (
        P("temperature", "float", temperature, doc="sampling temperature (0 = greedy)",
          min=0.0, max=2.0),
        P("max_tokens", "int", max_tokens, doc="most tokens the teacher may write", min=1),
        P("seed", "int", 0, doc="sampling seed; sample k asks with a seed derived from it"),
        P("system", "str", None, doc="a system message sent before the prompt"),
    )


# -- distill.respond ----------------------------------------------------------------------------
@register
class DistillRespond(HelperCode, TeacherPrompt, DatasetOp):
    """A teacher model writes the response to each row's prompt, into the column `into`.

    The prompt is the column `field` (default `instruction`), followed by the column `input`
    after a blank line when `input` is given and the row's value is not empty (Alpaca's
    instruction + input); or a Jinja2 `template` that reads columns by name. It is sent as a
    chat: an optional `system` message, then the prompt as the user's message.

    Samples. Each prompt is asked `n` times (1 to 16); sample k carries the seed `seed` for
    k = 0 and a hash of (seed, k) after that, so each sample is its own memoized request
    (raising `n` asks only the new samples). n > 1 needs temperature > 0 (greedy samples are
    all the same). Then:
    * without `judge`, every usable sample becomes a row: the input row with the reply in
      `into`, and with n > 1 the sample's index in `_sample` (rows in input order, samples in
      k order);
    * with `judge` (a second model; needs n > 1), best-of-n: the judge rates each usable
      sample with select.judge's default prompt and rubric (0-10, greedy, seeded with
      `seed`), and the row keeps the highest-rated sample (the earliest of equals), its
      index in `_sample` and its score in `_judge`. A verdict without a readable score
      ranks below every scored sample (counted as `judge_unparsed`); when no sample has
      one, the first usable sample is kept with a null `_judge`.

    Bad replies. A reply that is empty after stripping, or a refusal ("I'm sorry, but I
    can't...", "As an AI..." when the prompt does not itself start so), is not used and is
    counted in the node's stats (`empty`, `refused`); it is not judged and asked no further.
    A row with no usable sample is dropped (`no_response`); a row whose prompt is null or
    blank is not sent and is dropped (`empty_prompt`). Every input column is kept (an
    existing `into` column is replaced); replies are stripped of surrounding whitespace.

    Example:  teacher_rows = rows | distill.respond(model="./teacher", n=4, judge="./critic")

    >>> op = DistillRespond(model="openai:http://127.0.0.1:8000/v1#m", input="input")
    >>> op.prompt_for({"instruction": "Translate to French.", "input": "Good morning"})
    'Translate to French.\\n\\nGood morning'
    >>> op.writes()
    ['output']
    """

    name = "distill.respond"
    version = 1
    helpers = TEACHER_HELPERS
    stochastic = True
    expensive = True
    cost = 1000.0
    params = (
        model_param(REQUIRED, doc="the teacher: a folder beside the recipe, a hub id "
                    "'org/name' or openai:URL#MODEL"),
        P("field", "str", None, doc="the prompt column (null: 'instruction'; not read with "
          "`template`)", column=True, col_type="str"),
        P("input", "str", None, doc="an optional input column, after the prompt and a blank "
          "line when not empty", column=True, col_type="str"),
        P("template", "str", None, doc="a Jinja2 template for the whole prompt"),
        P("into", "str", "output", doc="the response's column"),
        P("n", "int", 1, doc="samples per prompt", min=1, max=MAX_SAMPLES),
        P("judge", "str", None, path=True, doc="a judge model that keeps the best of the n "
          "samples (null: keep every sample)"),
        *_settings(0.7, 1024),
    )

    def validate(self) -> list[tuple[str | None, str]]:
        p = self.p
        if p["n"] > 1 and p["temperature"] == 0:
            return [("temperature", f"n={p['n']} samples need temperature > 0 (greedy "
                                    "decoding writes the same reply every time)")]
        if p["judge"] is not None:
            if p["n"] == 1:
                return [("judge", "a judge picks the best of n samples: give n > 1 (to "
                                  "score single responses, follow with select.judge)")]
            problems = self.judge().check_model_ref()
            if problems:
                return [("judge", problems[0][1])]
        return self.prompt_problems()

    def judge(self) -> Judge:
        found = self.__dict__.get("_judge")
        if found is None:
            found = self.__dict__["_judge"] = Judge(self.p["judge"], self.name)
        return found

    def __getstate__(self) -> dict[str, Any]:  # backends hold sockets and locks
        return {k: v for k, v in self.__dict__.items() if k not in ("_backend", "_judge")}

    def model_identity(self, stat_cache: Any = None) -> str | None:
        teacher = super().model_identity(stat_cache)
        if self.p["judge"] is None:
            return teacher
        return f"{teacher} judge={self.judge().model_identity(stat_cache)}"

    def reads(self) -> list[str]:
        return self.prompt_columns()

    def writes(self) -> list[str]:
        extra = ["_sample"] if self.p["n"] > 1 else []
        return [self.p["into"], *extra, *(["_judge"] if self.p["judge"] else [])]

    def output_schema(self, inputs: list[Schema]) -> Schema:
        base = inputs[0] if inputs else Schema.unknown()
        self.check_prompt_columns(base)
        types = {self.p["into"]: "str"}
        if self.p["n"] > 1:
            types["_sample"] = "int"
        if self.p["judge"]:
            types["_judge"] = "float"
        return base.with_columns(**types)

    def config(self, k: int) -> GenerationConfig:
        return GenerationConfig(max_new_tokens=self.p["max_tokens"],
                                temperature=self.p["temperature"],
                                seed=sample_seed(self.p["seed"], k), n=1)

    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        import polars as pl

        df = inputs[0]
        self.require_columns(df.columns)
        cols = [c for c in self.reads() if c in df.columns]  # a missing one: PromptError
        rows = df.select(cols).to_dicts() if cols else [{}] * df.height
        prompts = {i: self.prompt_for(row) for i, row in enumerate(rows)}
        sent = [i for i, text in prompts.items() if text.strip()]
        count(ctx, "empty_prompt", len(rows) - len(sent))
        usable: dict[int, list[tuple[int, str]]] = {i: [] for i in sent}
        for k in range(self.p["n"]):
            asked = [self.messages(prompts[i]) for i in sent]
            for i, reply in zip(sent, self.ask_many(asked, ctx, self.config(k))):
                text = screen(reply[0] if reply else "", prompts[i], ctx)
                if text is not None:
                    usable[i].append((k, text))
            ctx.progress(k + 1, self.p["n"])
        picked = self.pick(usable, prompts, ctx)
        count(ctx, "no_response", sum(1 for i in sent if not usable[i]))
        out = df[[i for i, _, _, _ in picked]]
        cols = [pl.Series(self.p["into"], [t for _, _, t, _ in picked], dtype=pl.String)]
        if self.p["n"] > 1:
            cols.append(pl.Series("_sample", [k for _, k, _, _ in picked], dtype=pl.Int64))
        if self.p["judge"]:
            cols.append(pl.Series("_judge", [s for _, _, _, s in picked], dtype=pl.Float64))
        return out.with_columns(cols)

    def pick(self, usable: dict[int, list[tuple[int, str]]], prompts: dict[int, str],
             ctx: RunContext) -> list[tuple[int, int, str, float | None]]:
        """(row, sample, reply, score) for each output row, in row order."""
        if self.p["judge"] is None:
            return [(i, k, text, None) for i in sorted(usable) for k, text in usable[i]]
        pairs = [(prompts[i], text) for i in sorted(usable) for _, text in usable[i]]
        scores = iter(self.judge().scores(pairs, ctx, self.p["seed"]) if pairs else [])
        out = []
        for i in sorted(usable):
            mine = [(k, text, next(scores)) for k, text in usable[i]]
            if mine:
                k, text, s = mine[best([s for _, _, s in mine])]
                out.append((i, k, text, s))
        return out


# -- distill.cot --------------------------------------------------------------------------------
COT_INSTRUCTION = ("Solve the following problem. Reason step by step and show your work, "
                   "then give the final answer alone on the last line, in the form "
                   "\"#### <answer>\".")


@register
class DistillCoT(HelperCode, TeacherPrompt, RowPython):
    """A teacher writes a worked rationale for each row, into `into`, with its final answer in
    `_answer`; with a reference `answer` column, only rationales that reach it are kept.

    The prompt is the default instruction (step-by-step reasoning, then the final answer on
    a last line "#### <answer>", GSM8K's form) and a blank line before the column `field`
    (default `question`); or a Jinja2 `template` for the whole user message. The final answer
    is read from the reply by `dcc.ops.answers.final_answer`: the first line starting with
    `####`, else the last `\\boxed{...}`, else the last "the answer is ..." / "Answer: ..."
    phrase; it is compared after `normalize_answer`: with `answer_type="number"` (default)
    it must start with a number, and "$1,080.00", "1080" and "1080 dollars" are all 1080;
    with `answer_type="text"`, case and spacing are ignored.

    Rejection sampling (STaR; GSM8K distillation). Attempt a (0 .. attempts-1, at most 16)
    asks with the seed `seed` for a = 0 and a hash of (seed, a) after that; the attempts of
    all rows still pending are asked together, round by round, and a row stops at its first
    accepted rationale:
    * with `answer` (e.g. GSM8K's `answer`, whose last line is `#### 72`; its final answer
      is read the same way, or the whole value when it states none): accepted when the
      normalized answers are equal;
    * without `answer`: the first rationale with a readable final answer is accepted.
    attempts > 1 needs temperature > 0. The kept rationale is the reply stripped, cut after
    its `####` line when it has one (text a model adds after its answer is dropped).

    Rows with no accepted rationale after every attempt are dropped (`no_rationale`), as are
    rows with a blank prompt (`empty_prompt`) or a reference with no answer in it
    (`no_reference`, never sent). The node's stats also count rejected samples by reason:
    `empty`, `refused`, `unparsed` (no final answer), `wrong_answer`; and `accepted`. Every
    input column is kept. Row-memoized, and every request goes through the request memo, so
    changing `into` or the answer rules re-runs no model call; stats count the rows a run
    sent, not those served from the row memo.

    Example:  solved = gsm8k | distill.cot(model="./teacher", answer="answer", attempts=4)

    >>> op = DistillCoT(model="openai:http://127.0.0.1:8000/v1#m", answer="answer")
    >>> print(op.prompt_for({"question": "What is 6 x 7?"}))
    Solve the following problem. Reason step by step ... in the form "#### <answer>".
    <BLANKLINE>
    What is 6 x 7?
    >>> op.accept("6 x 7 = 42\\n#### 42\\nQuestion: what", "q", "42", RunContext("n"))
    {'rationale': '6 x 7 = 42\\n#### 42', '_answer': '42'}
    """

    name = "distill.cot"
    version = 1
    helpers = (*TEACHER_HELPERS, "dcc.ops.answers")
    stochastic = True
    expensive = True
    cost = 4000.0
    default_field = "question"
    params = (
        model_param(REQUIRED, doc="the teacher: a folder beside the recipe, a hub id "
                    "'org/name' or openai:URL#MODEL"),
        P("field", "str", None, doc="the question column (null: 'question'; not read with "
          "`template`)", column=True, col_type="str"),
        P("template", "str", None, doc="a Jinja2 template for the whole prompt"),
        P("answer", "str", None, doc="the reference answer column (null: keep the first "
          "rationale with a final answer)", column=True),
        P("answer_type", "str", "number", doc="how answers compare", choices=KINDS),
        P("attempts", "int", 4, doc="most rationales sampled per row", min=1,
          max=MAX_ATTEMPTS),
        P("into", "str", "rationale", doc="the rationale's column"),
        *_settings(0.7, 512),
    )

    def validate(self) -> list[tuple[str | None, str]]:
        if self.p["attempts"] > 1 and self.p["temperature"] == 0:
            return [("temperature", f"attempts={self.p['attempts']} need temperature > 0 "
                                    "(greedy decoding writes the same rationale every time)")]
        return self.prompt_problems()

    def reads(self) -> list[str]:
        return sorted({*self.prompt_columns(), *([self.p["answer"]] if self.p["answer"]
                                                  else [])})

    def writes(self) -> list[str]:
        return [self.p["into"], "_answer"]

    def output_schema(self, inputs: list[Schema]) -> Schema:
        base = inputs[0] if inputs else Schema.unknown()
        self.check_prompt_columns(base)
        return base.with_columns(**{self.p["into"]: "str", "_answer": "str"})

    def prompt_for(self, row: dict[str, Any]) -> str:
        if self.p["template"] is not None:
            return super().prompt_for(row)
        question = super().prompt_for(row)
        return f"{COT_INSTRUCTION}\n\n{question}" if question.strip() else ""

    def accept(self, reply: str, prompt: str, ref: str | None,
               ctx: RunContext) -> dict[str, Any] | None:
        """The row's new columns when this reply is accepted, else None (counted)."""
        text = screen(reply, prompt, ctx)
        if text is None:
            return None
        stated = final_answer(text)
        answer = normalize_answer(stated[0], self.p["answer_type"]) if stated else None
        if answer is None:
            count(ctx, "unparsed")
            return None
        if ref is not None and answer != ref:
            count(ctx, "wrong_answer")
            return None
        return {self.p["into"]: text[:stated[1]].rstrip(), "_answer": answer}  # type: ignore

    def process(self, rows: list[dict[str, Any]], ctx: RunContext) -> list[Any]:
        if rows:
            self.require_columns(rows[0])
        results: list[dict[str, Any] | None] = [None] * len(rows)
        prompts: dict[int, str] = {}
        refs: dict[int, str | None] = {}
        for i, row in enumerate(rows):
            prompt = self.prompt_for(row)
            if not prompt.strip():
                count(ctx, "empty_prompt")
                continue
            if self.p["answer"] is not None:
                refs[i] = reference_answer(row.get(self.p["answer"]), self.p["answer_type"])
                if refs[i] is None:
                    count(ctx, "no_reference")
                    continue
            prompts[i] = prompt
        pending = list(prompts)
        for attempt in range(self.p["attempts"]):
            if not pending:
                break
            config = GenerationConfig(max_new_tokens=self.p["max_tokens"],
                                      temperature=self.p["temperature"],
                                      seed=sample_seed(self.p["seed"], attempt), n=1)
            replies = self.ask_many([self.messages(prompts[i]) for i in pending], ctx, config)
            still = []
            for i, reply in zip(pending, replies):
                results[i] = self.accept(reply[0] if reply else "", prompts[i], refs.get(i),
                                         ctx)
                if results[i] is None:
                    still.append(i)
            pending = still
        count(ctx, "accepted", sum(r is not None for r in results))
        count(ctx, "no_rationale", len(pending))
        return results


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


__all__ = ["DistillCoT", "DistillCompress", "DistillCoreset", "DistillRespond"]
