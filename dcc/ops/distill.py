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
judge are in `dcc/ops/teacher.py`; answer extraction in `dcc/ops/answers.py`. The two
operators that make data smaller, `distill.coreset` and `distill.compress`, live in
`dcc/ops/distill_data.py`. `docs/distill.md` shows them all in recipes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dcc.ops import register
from dcc.ops.answers import KINDS, final_answer, normalize_answer, reference_answer
from dcc.ops.base import REQUIRED, DatasetOp, P, RowPython, RunContext
from dcc.ops.distill_data import DistillCompress, DistillCoreset  # registers them
from dcc.ops.models import GenerationConfig
from dcc.ops.models.resolve import model_param
from dcc.ops.teacher import HelperCode, Judge, TeacherPrompt, best, count, sample_seed, screen
from dcc.schema import Schema

if TYPE_CHECKING:
    import polars as pl

MAX_SAMPLES = 16
MAX_ATTEMPTS = 16


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


__all__ = ["DistillCoT", "DistillCompress", "DistillCoreset", "DistillRespond"]
