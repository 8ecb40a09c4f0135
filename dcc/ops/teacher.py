"""What the `distill.*` operators share: seeds per sample, reply screening, the prompt of a
teacher, a judge that picks the best of several samples, and a code fingerprint that covers
their helper modules.

* Seeds. Every generating request carries a seed derived from the recipe's `seed` and the
  sample index (or attempt number): sample 0 asks with `seed` itself, sample k > 0 with
  `sample_seed(seed, k)`, a 31-bit hash of both. The request memo keys a reply by its seed,
  so sample k of a prompt is asked once, ever: raising `n` from 2 to 4 asks only samples 2
  and 3, and the same recipe always asks the same questions. Hashing (rather than seed + k)
  keeps the samples of `seed=1` apart from those of `seed=0`.
* Screening. A reply that is empty after stripping whitespace, or that refuses the task
  (`dcc.ops.prompted.is_refusal`: it opens with "I'm sorry, but I can't...", "As an AI..."
  and the prompt itself does not), is never used; `screen` counts it in the node's stats as
  `empty` or `refused`.
* Judging. `Judge` asks a second model to rate each (prompt, response) pair with
  select.judge's default prompt (`JUDGE_TEMPLATE`, `DEFAULT_RUBRIC`, scale 0-10, greedy,
  the recipe's seed) through the same request memo, and reads the score with `parse_score`.
* Prompts. `TeacherPrompt` builds a teacher's user message from a column (with an optional
  input column after it) or a Jinja2 template, and checks the columns it reads.
* Fingerprints. `HelperCode` (`dcc.ops.base`, shared with the generators) adds the helper
  modules that decide an operator's output (answer rules, compression plan) to its code
  fingerprint.
"""

from __future__ import annotations

import difflib
from typing import Any, ClassVar

from dcc.errors import ParamError
from dcc.ops.base import HelperCode, RunContext
from dcc.ops.models import GenerationConfig
from dcc.ops.prompted import (
    DEFAULT_RUBRIC,
    JUDGE_TEMPLATE,
    PromptError,
    UsesModel,
    compile_template,
    is_refusal,
    parse_score,
    render,
)

JUDGE_SCALE = 10
JUDGE_MAX_TOKENS = 256


def sample_seed(seed: int, k: int) -> int:
    """The seed of sample (or attempt) `k` of a recipe seeded with `seed`.

    >>> sample_seed(7, 0)
    7
    >>> sample_seed(7, 1) == sample_seed(7, 1) != sample_seed(8, 1)
    True
    >>> 0 <= sample_seed(0, 3) < 2 ** 31
    True
    """
    if k == 0:
        return seed
    from dcc.ops.models.memo import request_seed

    return request_seed({"seed": seed, "sample": k})


def count(ctx: RunContext, name: str, n: int = 1) -> None:
    if n:
        ctx.stats[name] = ctx.stats.get(name, 0) + n


def screen(reply: str | None, prompt: str, ctx: RunContext) -> str | None:
    """The reply, stripped, when it may be used; None (counted) when empty or a refusal.

    >>> ctx = RunContext(node="n")
    >>> screen("  42\\n", "2*21?", ctx), screen(" ", "q", ctx)
    ('42', None)
    >>> screen("I'm sorry, but I can't help with that.", "Write a poem.", ctx), ctx.stats
    (None, {'empty': 1, 'refused': 1})
    """
    text = (reply or "").strip()
    if not text:
        count(ctx, "empty")
        return None
    if is_refusal(text, prompt):
        count(ctx, "refused")
        return None
    return text


def instruction_prompt(row: dict[str, Any], field: str, extra: str | None) -> str:
    """The row's instruction, with its `extra` input column after a blank line when that is
    not empty (the Alpaca layout of instruction and input, as select.ifd writes it).

    >>> instruction_prompt({"i": "Translate.", "x": "Bonjour"}, "i", "x")
    'Translate.\\n\\nBonjour'
    >>> instruction_prompt({"i": "Say hi.", "x": " "}, "i", "x")
    'Say hi.'
    """
    text = _text(row.get(field))
    more = _text(row.get(extra)) if extra else ""
    return f"{text}\n\n{more}" if more.strip() else text


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


class TeacherPrompt(UsesModel):
    """The prompt of a teacher operator: the column `field` (default `default_field`), with the
    column `input` after it, or a Jinja2 `template` that reads columns by name; the model
    reference checked, the columns read and checked against the input's schema."""

    default_field: ClassVar[str] = "instruction"

    def prompt_problems(self) -> list[tuple[str | None, str]]:
        p = self.p
        if p.get("template") is not None:
            if p.get("field") is not None or p.get("input") is not None:
                return [("template", "give 'template' or 'field'/'input', not both (the "
                                     "template names the columns it reads)")]
            try:
                compile_template(p["template"])
            except ParamError as e:
                return [("template", str(e))]
        return self.check_model_ref()

    def prompt_field(self) -> str | None:
        return None if self.p.get("template") is not None else \
            self.p.get("field") or self.default_field

    def prompt_columns(self) -> list[str]:
        if self.p.get("template") is not None:
            return sorted(compile_template(self.p["template"])[1])
        extra = self.p.get("input")
        return [self.prompt_field() or "", *([extra] if extra else [])]

    def check_prompt_columns(self, schema: Any) -> None:
        for col in self.prompt_columns():
            if not schema.has(col):
                close = difflib.get_close_matches(col, list(schema.columns), n=1)
                hint = f"did you mean '{close[0]}'?" if close else \
                    f"the input's columns: {', '.join(sorted(schema.columns)) or 'none'}"
                how = "the template reads" if self.p.get("template") is not None else "reads"
                raise ParamError(f"{self.name} {how} column '{col}', which its input does "
                                 f"not have; {hint}")

    def require_columns(self, have: Any) -> None:
        """At run time, where the compiler could not see the input's columns (an open
        schema): a prompt column the data lacks is an error, not a blank prompt."""
        if self.p.get("template") is not None:
            return  # rendering names the missing column
        for col in self.prompt_columns():
            if col not in have:
                raise PromptError(f"{self.name}: the input has no column '{col}' "
                                  f"(its columns: {', '.join(sorted(have)) or 'none'})")

    def prompt_for(self, row: dict[str, Any]) -> str:
        """The user message this row's samples are asked with."""
        if self.p.get("template") is not None:
            template, names = compile_template(self.p["template"])
            return render(template, {c: row[c] for c in names if c in row}, self.name)
        return instruction_prompt(row, self.prompt_field() or "", self.p.get("input"))


class Judge(UsesModel):
    """A judge model behind `UsesModel` (its backend, identity and memoized `ask_many`)."""

    def __init__(self, ref: str, op_name: str) -> None:
        self.p = {"model": ref, "system": None}
        self.name = op_name

    def prompt(self, instruction: str, response: str) -> str:
        fields = [("instruction", instruction), ("response", response)]
        return render(compile_template(JUDGE_TEMPLATE)[0],
                      {"rubric": DEFAULT_RUBRIC, "scale": JUDGE_SCALE, "fields": fields},
                      self.name)

    def scores(self, pairs: list[tuple[str, str]], ctx: RunContext,
               seed: int) -> list[float | None]:
        """One score (0-10, or None when the reply states none) per (prompt, response)."""
        config = GenerationConfig(max_new_tokens=JUDGE_MAX_TOKENS, temperature=0.0,
                                  seed=seed, n=1)
        replies = self.ask_many([self.messages(self.prompt(*p)) for p in pairs], ctx, config)
        out = [parse_score(r[0] if r else "", JUDGE_SCALE) for r in replies]
        count(ctx, "judge_unparsed", sum(s is None for s in out))
        return out


def best(scores: list[float | None]) -> int:
    """The position of the best score: the highest, the earliest of equals; a missing score
    ranks below every score, so with none at all the first position wins.

    >>> best([7.0, 9.0, 9.0]), best([None, 3.0]), best([None, None])
    (1, 1, 0)
    """
    ranked = [(s is not None, s if s is not None else 0.0, -i) for i, s in enumerate(scores)]
    return -max(ranked)[2]


__all__ = ["HelperCode", "Judge", "TeacherPrompt", "best", "count", "instruction_prompt",
           "sample_seed", "screen"]
