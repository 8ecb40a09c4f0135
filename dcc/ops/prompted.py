"""Prompted model operators: `select.judge` (LLM-as-judge) and `rewrite.llm` (LLM rewrite).

Both are row-wise Python operators (`RowPython`, `expensive`): the engine sends them only the
rows its row memo lacks, and memoizes each row's result under the node's key without its
inputs. That key holds every parameter (the template, rubric, settings: temperature,
max_tokens, seed, system), the operator's code and the model's identity, so the rendered
prompt, the model and the settings are what decide a row's result.

Prompts are Jinja2 templates rendered in `ImmutableSandboxedEnvironment` with
`StrictUndefined`: a recipe is data, so a template can read row values but cannot reach
Python internals, and a name that is neither a column nor one of the operator's own variables
is an error, not an empty string. A template's syntax is checked when the recipe compiles, and
the columns it names are checked against the input's schema. In `{{ ... }}` a null renders
as the empty string and a list or dict as JSON; inside expressions values keep their types
(`{{ instances[0].output }}`).

The model is named as in every model operator (a folder beside the recipe, a hub id, or
`openai:URL#MODEL`, see `dcc/ops/models/openai_http.py`): `model` is a path parameter, as
`dcc.ops.models.resolve.model_param()` makes it, and enters the key as the model's identity,
not as text. It is resolved (`resolve_model`) only when the node is keyed or runs. Messages
are sent as a chat: an optional `system` message, then the prompt as the user's message.

This module is longer than the house ~300 lines because the score parser's table of
free-text forms is part of `select.judge`'s contract and lives beside it.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import json
import re
from typing import TYPE_CHECKING, Any

from dcc.errors import DccError, ParamError
from dcc.ops import register
from dcc.ops.base import KeepBest, P, RowPython, RunContext
from dcc.ops.judge_rubrics import (
    AGGREGATES,
    JUDGE_MANY_TEMPLATE,
    RUBRICS,
    aggregate,
    parse_ratings,
    rubric_text,
)
from dcc.ops.models import GenerationConfig
from dcc.schema import Schema

if TYPE_CHECKING:
    from jinja2 import Template


OPENAI_PREFIX = "openai:"  # dcc.ops.models.openai_http.PREFIX, without importing http.client


class PromptError(DccError):
    """A prompt template could not be rendered for a row (a missing column, a sandbox
    violation); raised at run time, when the engine names the node."""

    exit_code = 3


# -- templates -----------------------------------------------------------------------------------
def _finalize(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value, ensure_ascii=False)
    return value


@functools.lru_cache(maxsize=1)
def _jinja_env() -> Any:
    try:
        from jinja2 import StrictUndefined
        from jinja2.sandbox import ImmutableSandboxedEnvironment
    except ModuleNotFoundError:
        raise ParamError("prompt templates need Jinja2: pip install 'jinja2>=3.1'") from None
    return ImmutableSandboxedEnvironment(undefined=StrictUndefined, autoescape=False,
                                         keep_trailing_newline=True, finalize=_finalize)


@functools.lru_cache(maxsize=256)
def compile_template(text: str) -> tuple[Template, frozenset[str]]:
    """(template, the names it reads from its context); ParamError on bad syntax.

    >>> compile_template("{{ instruction }} -> {{ output | upper }}")[1] == {"instruction", "output"}
    True
    >>> compile_template("{{ instruction ")
    Traceback (most recent call last):
    ...
    dcc.errors.ParamError: 'template' is not a valid Jinja2 template: unexpected end of template, expected 'end of print statement'. (line 1 of the template)
    """
    from jinja2 import TemplateSyntaxError, meta

    env = _jinja_env()
    try:
        tree = env.parse(text)
        template = env.from_string(tree)
    except TemplateSyntaxError as e:
        raise ParamError(f"'template' is not a valid Jinja2 template: {e.message} "
                         f"(line {e.lineno} of the template)") from None
    names = meta.find_undeclared_variables(tree) - set(env.globals)  # range, dict, ...
    return template, frozenset(names)


def render(template: Template, context: dict[str, Any], op: str) -> str:
    """Render one prompt; a missing name or a sandbox violation is a PromptError."""
    from jinja2 import TemplateError

    try:
        return template.render(context)
    except TemplateError as e:
        raise PromptError(f"{op}: cannot render the prompt: {type(e).__name__}: {e}") from None


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False)


# -- the shared base -----------------------------------------------------------------------------
def openai_ref(value: str) -> str | None:
    """The `openai:URL#MODEL` reference in a `model` value, or None when it names none.

    `model` is a path parameter (so a local folder is found beside the recipe), and the
    compiler joins it to the recipe's folder; this undoes that for an endpoint, as
    `dcc.ops.models.resolve.parse_ref` does.

    >>> openai_ref("/recipes/openai:http:/127.0.0.1:8000/v1#m")
    'openai:http://127.0.0.1:8000/v1#m'
    >>> openai_ref("./tiny") is None
    True
    """
    at = value.find(OPENAI_PREFIX)
    if at == 0 or (at > 0 and value[at - 1] in "/\\"):
        return re.sub(r"^(openai:[a-z+]+:)/(?!/)", r"\1//", value[at:])
    return None


def load_model(ref: str, options: dict[str, Any], stat_cache: Any = None) -> Any:
    """The backend for a `model` value, through `dcc.ops.models.resolve.resolve_model`;
    where that module is absent, `openai:` references are still served."""
    try:
        from dcc.ops.models.resolve import resolve_model
    except ModuleNotFoundError as e:
        if e.name != "dcc.ops.models.resolve":
            raise
        endpoint = openai_ref(ref)
        if endpoint is None:
            raise ParamError(f"model '{ref}': this install cannot load local models "
                             "(dcc.ops.models.resolve is missing)") from None
        from dcc.ops.models.openai_http import OpenAIBackend

        return OpenAIBackend.from_ref(endpoint, options=options)
    return resolve_model(ref, kind="causal", options=options, stat_cache=stat_cache)


class UsesModel:
    """What every operator that asks a model shares: the `model` parameter's backend,
    resolved once per operator (the key and the run share it), its identity for the node key,
    chat messages, and `ask`, which goes through the request memo (`dcc.ops.models.memo`).
    Row-wise prompted operators (`_Prompted`) and whole-dataset generators (synthesize,
    distill) both build on it."""

    p: dict[str, Any]
    name: str

    def check_model_ref(self) -> list[tuple[str | None, str]]:
        ref = openai_ref(self.p["model"])
        if ref is not None:
            from dcc.ops.models.openai_http import parse_ref

            try:
                parse_ref(ref)
            except ParamError as e:
                return [("model", str(e))]
        return []

    def backend(self, options: dict[str, Any] | None = None, stat_cache: Any = None) -> Any:
        cached = self.__dict__.get("_backend")
        if cached is None:
            cached = load_model(self.p["model"], dict(options or {}), stat_cache)
            self.__dict__["_backend"] = cached
        return cached

    def __getstate__(self) -> dict[str, Any]:  # a backend holds sockets and locks
        return {k: v for k, v in self.__dict__.items() if k != "_backend"}

    def model_identity(self, stat_cache: Any = None) -> str | None:
        return str(self.backend(None, stat_cache).identity)

    def messages(self, prompt: str, system: str | None = None) -> list[dict[str, str]]:
        system = system if system is not None else self.p.get("system")
        head = [{"role": "system", "content": system}] if system else []
        return [*head, {"role": "user", "content": prompt}]

    def ask_many(self, prompts: list[Any], ctx: RunContext,
                 config: GenerationConfig) -> list[list[str]]:
        """`config.n` replies per prompt (a string or a list of chat messages), in order,
        through the request memo: a reply already asked for, by this node or any other,
        costs no model call. HTTP retries are added to the node's stats."""
        from dcc.ops.models.memo import generate

        if not prompts:
            return []
        model = self.backend(ctx.options)
        before = dict(getattr(model, "stats", None) or {})
        replies = generate(ctx, model, prompts, config)
        retries = (getattr(model, "stats", None) or {}).get("retries", 0) - \
            before.get("retries", 0)
        if retries:
            ctx.stats["http_retries"] = ctx.stats.get("http_retries", 0) + retries
        return replies


class _Prompted(UsesModel, RowPython):
    """A row-wise operator that renders one prompt per row and asks a model for one reply."""

    expensive = True
    stochastic = True
    cost = 1000.0
    RESERVED: frozenset[str] = frozenset()  # template names that are not columns

    @staticmethod
    def settings(max_tokens: int | None, default_doc: str = "") -> tuple[P, ...]:
        """The sampling parameters; a null `max_tokens` default is the operator's to fill
        (`default_doc` says how)."""
        return (
            P("temperature", "float", 0.0, doc="sampling temperature (0 = greedy)",
              min=0.0, max=2.0),
            P("max_tokens", "int", max_tokens, doc="most tokens the model may write"
              + default_doc, min=1),
            P("seed", "int", 0, doc="sampling seed, sent with every request"),
            P("system", "str", None, doc="a system message sent before the prompt"),
        )

    def validate(self) -> list[tuple[str | None, str]]:
        problems = self.check_model_ref()
        if problems:
            return problems
        if self.p.get("template") is not None:
            try:
                compile_template(self.p["template"])
            except ParamError as e:
                return [("template", str(e))]
        return []

    # -- columns ---------------------------------------------------------------------------
    def template_columns(self) -> list[str]:
        """Columns a user template reads (every name but the reserved ones), sorted."""
        if self.p.get("template") is None:
            return []
        return sorted(compile_template(self.p["template"])[1] - self.RESERVED)

    def reads(self) -> list[str]:
        return sorted(set(super().reads()) | set(self.template_columns()))

    def check_template_columns(self, schema: Schema) -> None:
        for col in self.template_columns():
            if not schema.has(col):
                close = difflib.get_close_matches(col, list(schema.columns), n=1)
                hint = f"did you mean '{close[0]}'?" if close else \
                    f"the input's columns: {', '.join(sorted(schema.columns)) or 'none'}"
                raise ParamError(f"{self.name}: the template reads column '{col}', which its "
                                 f"input does not have; {hint}")

    # -- the model -------------------------------------------------------------------------
    def config(self) -> GenerationConfig:
        return GenerationConfig(max_new_tokens=self.p["max_tokens"],
                                temperature=self.p["temperature"], seed=self.p["seed"], n=1)

    def ask(self, prompts: list[str], ctx: RunContext) -> list[str]:
        """One reply per prompt, in order (see `UsesModel.ask_many`)."""
        replies = self.ask_many([self.messages(p) for p in prompts], ctx, self.config())
        return [r[0] if r else "" for r in replies]

    def render_user_template(self, row: dict[str, Any], extra: dict[str, Any]) -> str:
        template, names = compile_template(self.p["template"])
        context = {c: row[c] for c in names if c in row and c not in self.RESERVED}
        return render(template, {**context, **extra}, self.name)


def _count(ctx: RunContext, name: str, n: int = 1) -> None:
    ctx.stats[name] = ctx.stats.get(name, 0) + n


# -- select.judge --------------------------------------------------------------------------------
DEFAULT_RUBRIC = (
    "how accurate, helpful and relevant the response is to the instruction (and to its "
    "input, if there is one). A correct, complete answer that does exactly what was asked "
    "scores high; a wrong, off-topic, unsafe, evasive or cut-off answer scores low.")

JUDGE_TEMPLATE = """\
You are reviewing one example from a dataset used to fine-tune an AI assistant. Rate its \
quality on a scale from 0 to {{ scale }}, where 0 means the example is useless or harmful \
and {{ scale }} means it is excellent.

Judge {{ rubric }}

{% for name, value in fields %}[{{ name }}]
{{ value }}

{% endfor %}Reply with the score first, on a line of its own, in the form \
"Score: N/{{ scale }}", then explain your rating in one or two sentences."""

_NUM_WORDS = {"zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6,
              "seven": 7, "eight": 8, "nine": 9, "ten": 10, "hundred": 100}
_NUM = r"(\d+(?:\.\d+)?(?!\.?\d)|zero|one|two|three|four|five|six|seven|eight|nine|ten)\b"
_TAIL = (r"(?:\s*(?:-|–|to)\s*(\d+(?:\.\d+)?)(?!\s*(?:/|out\s+of)))?"  # a range: 7-8
         r"(?:\s*\(?\s*(?:/|out\s+of|of)\s*(\d+(?:\.\d+)?|five|ten|hundred)\b|\s*(%))?")
_KEY = r"\b(?:scores?|rating|rate|rated|grade|graded|mark|verdict)\b"
_TIER_PATTERNS = (
    # 1. "Final score: 8", "Overall rating - 4 out of 5"
    r"\b(?:final|overall|total)\s+" + _KEY + r"[^\d\n]{0,25}?" + _NUM + _TAIL,
    # 2. "Score: 7/10", "Rating: [[7]]", "score = 8"
    _KEY + r"\s*[:=]\s*[\[(\"']*\s*" + _NUM + _TAIL,
    # 3. "I would rate it 4.5 out of 5", "a score of 8", "rated nine"
    _KEY + r"[^\d\n.!?]{0,30}?" + _NUM + _TAIL,
    # 4. the whole reply is the score: "7", "8/10", "**8**", "9."
    r"^\W*" + _NUM + _TAIL + r"\W*$",
    # 5. the first line starts with the score (the AlpaGasus form): "4.5\nThe answer ..."
    r"^\W*" + _NUM + _TAIL + r"[ \t]*(?:$|\n|[-–—:,.;)\]]|\s+points?\b)",
    # 6. "[[7]]" (the MT-Bench form) or a bold number anywhere
    r"(?:\[\[|\*\*)\s*" + _NUM + _TAIL + r"\s*(?:\]\]|\*\*)",
    # 7. a fraction anywhere: "deserves a 9/10", "3 out of 5"
    (r"(?<![\d.])(\d+(?:\.\d+)?)(?:\s*(?:-|–|to)\s*(\d+(?:\.\d+)?))?"
     r"\s*(?:/|out\s+of)\s*(\d+(?:\.\d+)?|five|ten|hundred)\b()"),
)


@functools.lru_cache(maxsize=1)
def _tiers() -> list[re.Pattern[str]]:  # compiled on first use: the registry stays cheap
    return [re.compile(p, re.IGNORECASE) for p in _TIER_PATTERNS]


def _number(token: str) -> float:
    word = _NUM_WORDS.get(token.lower())
    return float(word) if word is not None else float(token)


def parse_score(text: str | None, scale: int = 10) -> float | None:
    """The score a judge's free-text reply gives, on 0..scale, or None when there is none.

    Forms are tried in order, and within a form the first one that lands in range wins:
    a "final/overall/total score" phrase; a score keyword with ':' or '='; a score keyword
    followed within a few words by a number; a reply that is only a number; a first line
    that starts with a number (the AlpaGasus form); "[[N]]" or "**N**"; a fraction anywhere.
    Markdown bold and backticks are ignored. "N/M", "N out of M" and "N%" are rescaled to the
    scale, a range "7-8" counts as its middle (a wider one, "1 to 10", restates the scale and
    is skipped), and number words up to ten are read. A score
    outside 0..scale does not count. Scores are rounded to 4 decimals.

    >>> parse_score("Score: 7/10")
    7.0
    >>> parse_score("**8**")
    8.0
    >>> parse_score("Rating: 4 out of 5")
    8.0
    >>> parse_score("4.5\\nThe response answers the question.", scale=5)
    4.5
    >>> parse_score("I cannot rate this.") is None
    True
    """
    if not text:
        return None
    plain = re.sub(r"\*\*|__|`", "", text).strip()
    for i, pattern in enumerate(_tiers()):
        subject = text if i == 5 else plain  # the bold form needs the asterisks
        for m in pattern.finditer(subject):
            value = _from_match(m.groups(), scale)
            if value is not None:
                return value
    return None


def _from_match(groups: tuple[str | None, ...], scale: int) -> float | None:
    first, upper, denom, percent = groups
    value = _number(first)  # type: ignore[arg-type]
    if upper is not None:
        if float(upper) - value > 2:  # "1 to 10" restates the scale; it is no score
            return None
        value = (value + float(upper)) / 2
    if percent:
        value = value * scale / 100
    elif denom is not None:
        d = _number(denom)
        if d <= 0:
            return None
        value = value * scale / d
    value = round(value, 4)
    return value if 0 <= value <= scale else None


@register
class SelectJudge(KeepBest, _Prompted):
    """Score each row with an LLM judge and keep rows scored at least `min_score`.

    LLM-as-judge in the style of AlpaGasus (Chen et al., 2023, "AlpaGasus: Training a Better
    Alpaca with Fewer Data", arXiv:2307.08701), which had a strong model rate every
    (instruction, input, response) triplet and trained on the top-rated ~9k of Alpaca's 52k.
    The default prompt shows the row's `field` or `fields` (each as "[name]" and its value;
    with neither, every column whose name does not start with '_') and asks for a score from 0
    to `scale` by `rubric`. Or give a Jinja2 `template` for the whole prompt: it reads columns
    by name and `rubric` and `scale` as the operator's own values.

    The reply is free text; `parse_score` reads "Score: 7/10", "7", "**8**", "Rating: 4 out
    of 5" (rescaled to `scale`), "a score of 8", "[[7]]" and more. A reply with no score in
    0..scale gives a null score and is counted in the node's stats as `unparsed`.

    The score goes to the column `into` (default `_judge`) unless `keep_score=false`;
    `keep_raw=true` also keeps the reply in `<into>_raw`. With `min_score`, rows scored below
    it are dropped, AND SO ARE ROWS WITH A NULL SCORE (an unreadable verdict is not a pass);
    without it every row is kept with its score. Or give `keep` (`dcc.ops.base.KeepBest`;
    the best rows here are the HIGHEST scores, rows with a null score are never kept):
    keep=0.1 keeps the best-scored 10%, keep=9000 the best 9000 (AlpaGasus's cut),
    keep={"bottom": 100} the 100 worst, keep={"min": 7, "max": 9} scores 7 to 9. A ranked
    `keep` takes its top-k once every row is judged; ties go to the earlier row. Replies are
    memoized by exact request (`dcc.ops.models.memo`), so changing `min_score`, `keep`,
    `keep_raw` or `into` re-runs the node but asks the model nothing: only the prompt, model
    and sampling settings decide a call.

    `rubric` is a text ("how funny it is") or a named rubric: UltraFeedback's aspects
    `helpfulness`, `honesty`, `instruction_following`, `truthfulness`, in dcc's own words
    (`dcc.ops.judge_rubrics.RUBRICS`). keep="none" annotates only: every row, with its score.

    Several candidates in one call (UltraFeedback style): `candidates` names a list column of
    responses, shown numbered after the `field`/`fields` (the instruction), and the judge is
    asked for a "Rating:" and a "Rationale:" per response in ONE request per row. Out come
    `<into>` (list of ratings, 0..scale, in candidate order), `<into>_rationales` (list of
    texts, null where a section has none) and `<into>_<aggregate>` (the row's score: the
    max, mean or min of its ratings; default max), which `min_score` and `keep` compare: so
    keep=0.2 keeps the rows whose best response is in the top 20%, aggregate="min" with
    min_score=4 the rows where every response is rated 4 or more. A reply that does not rate
    every candidate exactly once (a rating missing, one extra, one twice, or out of range)
    gives null ratings for the row, counted as `unparsed`; a null candidates list is not
    sent (`null_input`), an empty one gets empty lists. `max_tokens` defaults to 1024 here.

    A remote judge (`openai:URL#MODEL`) is keyed by its URL, name and the server's /models
    entry: new weights served under an unchanged name are invisible to the cache, so serve
    versioned model names.

    Example:  select.judge(model="openai:http://127.0.0.1:8000/v1#qwen2.5-7b",
                           fields=["instruction", "output"], min_score=7)
              select.judge(model=teacher, fields=["instruction"], candidates="responses",
                           rubric="honesty", scale=5, keep="none")

    >>> op = SelectJudge(model="openai:http://127.0.0.1:8000/v1#m", fields=["q", "a"])
    >>> print(op.prompt({"q": "2+2?", "a": "4", "_judge": None}))
    You are reviewing one example ... from 0 to 10, ...
    <BLANKLINE>
    Judge how accurate, helpful and relevant ...
    <BLANKLINE>
    [q]
    2+2?
    <BLANKLINE>
    [a]
    4
    <BLANKLINE>
    Reply with the score first, on a line of its own, in the form "Score: N/10", then ...
    """

    name = "select.judge"
    version = 1
    RESERVED = frozenset({"rubric", "scale"})
    keep_replaces = ("min_score",)
    score_column = "_judge"
    params = (
        P("model", "str", path=True,
          doc="the judge: a folder beside the recipe, a hub id 'org/name' or openai:URL#MODEL"),
        P("min_score", "number", None, doc="keep rows scored at least this (null: keep all)",
          min=0),
        KeepBest.keep_param("the highest scores"),
        P("field", "str", None, doc="the one column to show the judge", column=True),
        P("fields", "list[str]", None, doc="the columns to show the judge", column=True),
        P("template", "str", None, doc="a Jinja2 template for the whole prompt"),
        P("rubric", "str", DEFAULT_RUBRIC, doc="what the judge rates (the default prompt's "
          "'Judge ...' line): a text, or a named rubric: " + ", ".join(RUBRICS)),
        P("scale", "int", 10, doc="scores run from 0 to this", min=1, max=1000),
        P("candidates", "str", None, doc="a list column of responses to rate in one call "
          "(UltraFeedback style): ratings and rationales come back as lists", column=True,
          col_type="list"),
        P("aggregate", "str", "max", doc="with `candidates`: the row's score (what `keep` and "
          "`min_score` compare, in `<into>_<aggregate>`) from its ratings",
          choices=AGGREGATES),
        P("keep_score", "bool", True, doc="write the score to the column `into`"),
        P("into", "str", "_judge", doc="the score's column"),
        P("keep_raw", "bool", False, doc="also keep the judge's reply in `<into>_raw`"),
        *_Prompted.settings(max_tokens=None, default_doc=" (null: 256, with `candidates` "
                            "1024)"),
    )

    def validate(self) -> list[tuple[str | None, str]]:
        p = self.p
        if p["field"] is not None and p["fields"] is not None:
            return [("fields", "give 'field' or 'fields', not both")]
        if p["template"] is not None and (p["field"] is not None or p["fields"] is not None):
            return [("template", ("give 'template' or 'field'/'fields', not both (the "
                                  "template names the columns it shows)"))]
        if p["min_score"] is not None and p["min_score"] > p["scale"]:
            return [("min_score", (f"'min_score' must be <= scale ({p['scale']}) "
                                   f"(got {p['min_score']!r})"))]
        if p["candidates"] is not None and not p["keep_score"]:
            return [("keep_score", ("with 'candidates' the ratings are the result: "
                                    "keep_score=false would leave nothing"))]
        if p["candidates"] is not None and p["candidates"] in (p["fields"] or [p["field"]]):
            return [("candidates", (f"'{p['candidates']}' is both shown as a field and rated "
                                    "as the candidates; leave it out of 'field'/'fields'"))]
        if p["min_score"] is None and not self.keep_given() and not p["keep_score"] and \
                not p["keep_raw"]:
            return [("keep_score", ("with min_score=null and keep_score=false the judge's "
                                    "verdict goes nowhere; set one of them"))]
        return self.keep_problems() or super().validate()

    def shown_columns(self, row: dict[str, Any]) -> list[str]:
        if self.p["field"] is not None:
            return [self.p["field"]]
        if self.p["fields"] is not None:
            return list(self.p["fields"])
        return [c for c in row if not c.startswith("_") and c != self.p["candidates"]]

    def keep_column(self) -> str:
        """The row's score: `into`, or with candidates `<into>_<aggregate>`."""
        if self.p["candidates"] is not None:
            return f"{self.p['into']}_{self.p['aggregate']}"
        return self.p["into"]

    def writes(self) -> list[str]:
        into = self.p["into"]
        if self.p["candidates"] is not None:
            out = [into, f"{into}_rationales", self.keep_column()]
        else:
            out = [into] if self.p["keep_score"] else []
        return out + ([f"{into}_raw"] if self.p["keep_raw"] else [])

    def output_schema(self, inputs: list[Schema]) -> Schema:
        base = inputs[0] if inputs else Schema.unknown()
        self.check_template_columns(base)
        types = dict.fromkeys(self.writes(), "float")
        if self.p["candidates"] is not None:
            types[self.p["into"]] = types[f"{self.p['into']}_rationales"] = "list"
        if self.p["keep_raw"]:
            types[f"{self.p['into']}_raw"] = "str"
        return base.with_columns(**types)

    def config(self) -> GenerationConfig:
        """As `_Prompted.config`; without `max_tokens`, 256 tokens for one verdict and 1024
        for a reply that rates several candidates."""
        config = super().config()
        if self.p["max_tokens"] is None:
            many = self.p["candidates"] is not None
            config = dataclasses.replace(config, max_new_tokens=1024 if many else 256)
        return config

    def prompt(self, row: dict[str, Any]) -> str:
        """The prompt this row's verdict is asked with."""
        extra = {"rubric": rubric_text(self.p["rubric"]), "scale": self.p["scale"]}
        if self.p["template"] is not None:
            return self.render_user_template(row, extra)
        fields = [(c, _as_text(row.get(c))) for c in self.shown_columns(row)]
        if self.p["candidates"] is not None:
            texts = [_as_text(c) for c in self.candidates_of(row) or []]
            return render(compile_template(JUDGE_MANY_TEMPLATE)[0],
                          {**extra, "fields": fields, "candidates": texts}, self.name)
        return render(compile_template(JUDGE_TEMPLATE)[0], {**extra, "fields": fields},
                      self.name)

    def candidates_of(self, row: dict[str, Any]) -> list[Any] | None:
        value = row.get(self.p["candidates"])
        if value is not None and not isinstance(value, list):
            raise PromptError(f"{self.name}: 'candidates' column '{self.p['candidates']}' "
                              f"must hold lists of responses (got {type(value).__name__})")
        return value

    def process(self, rows: list[dict[str, Any]], ctx: RunContext) -> list[Any]:
        """One result per row: the new columns, or None to drop the row."""
        if self.p["candidates"] is not None:
            return self.process_candidates(rows, ctx)
        replies = self.ask([self.prompt(row) for row in rows], ctx)
        out: list[dict[str, Any] | None] = []
        unparsed = 0
        for reply in replies:
            score = parse_score(reply, self.p["scale"])
            unparsed += score is None
            kept = self.p["keep_score"] or self.keep_ranked()  # a ranked keep needs it
            result: dict[str, Any] = {self.p["into"]: score} if kept else {}
            out.append(self.verdict(score, result, reply))
        _count(ctx, "unparsed", unparsed)
        return out

    def process_candidates(self, rows: list[dict[str, Any]], ctx: RunContext) -> list[Any]:
        """One call per row with candidates; a row whose reply does not rate every candidate
        exactly once gets null ratings (counted as `unparsed`), a row with no candidates
        (null: `null_input`, or []) is not sent."""
        cands = [self.candidates_of(row) for row in rows]
        sent = [i for i, c in enumerate(cands) if c]
        replies = dict(zip(sent, self.ask([self.prompt(rows[i]) for i in sent], ctx)))
        into, out = self.p["into"], []
        for i, c in enumerate(cands):
            parsed = ([], []) if c is not None and not c else None
            if i in replies:
                parsed = parse_ratings(replies[i], len(c or []), self.p["scale"])
                _count(ctx, "unparsed", parsed is None)
            elif c is None:
                _count(ctx, "null_input")
            ratings, rationales = parsed or (None, None)
            score = aggregate(ratings, self.p["aggregate"])
            result = {into: ratings, f"{into}_rationales": rationales,
                      self.keep_column(): score}
            out.append(self.verdict(score, result, replies.get(i)))
        return out

    def verdict(self, score: float | None, result: dict[str, Any],
                reply: str | None) -> dict[str, Any] | None:
        """A row's result, or None when `min_score` or `keep` drops it."""
        if self.p["min_score"] is not None and (score is None or score < self.p["min_score"]):
            return None
        if not self.keep_row(score):
            return None
        if self.p["keep_raw"]:
            result[f"{self.p['into']}_raw"] = reply
        return result


# -- rewrite.llm ---------------------------------------------------------------------------------
REWRITE_TEMPLATE = """\
{{ instruction }}

Apply this to the text between <text> and </text> below. Reply with the rewritten text \
only: no preamble, no quotation marks, no explanation.

<text>
{{ text }}
</text>"""

_PREAMBLE = re.compile(r"^\s*(?:sure|certainly|of course|okay|ok|here(?:'s| is| are)|below is)"
                       r"\b[^\n]*:\s*\n", re.IGNORECASE)
_APOS = "['\u2019]"
_REFUSAL = re.compile(
    rf"^\s*(?:(?:(?:i{_APOS}?m|i am)\s+sorry|sorry|i apologi[sz]e)[,.!]?\s+(?:but\s+)?"
    rf"(?:i\b|as an?\b|this\b|that\b|the (?:request|text)\b)"
    rf"|i\s+(?:can(?:no|{_APOS})?t|can not|am unable|{_APOS}?m unable|am not able|"
    rf"{_APOS}?m not able|won{_APOS}?t|will not)\s+(?:help|assist|comply|provide|do|rewrite|"
    rf"complete|fulfil+|process|create|generate|write|change|edit)\b"
    rf"|as an? (?:ai|language model|large language model)\b)", re.IGNORECASE)


def clean_rewrite(reply: str) -> str:
    """The rewritten text from a reply: stripped, without a "Here is ...:" first line or the
    <text> markers the prompt used.

    >>> clean_rewrite("Sure! Here is the rewritten text:\\n<text>\\nHello there.\\n</text>\\n")
    'Hello there.'
    """
    text = _PREAMBLE.sub("", reply, count=1).strip()
    if text.startswith("<text>") and text.endswith("</text>"):
        text = text[len("<text>"):-len("</text>")].strip()
    return text


def is_refusal(reply: str, original: str) -> bool:
    """A reply that declines the task: it opens like a refusal and the original did not.

    >>> is_refusal("I'm sorry, but I can't help with that.", "Make this formal: hey")
    True
    >>> is_refusal("I'm sorry for the delay.", "sry 4 the delay")
    False
    >>> is_refusal("I'm sorry, but I can't help with that.", "I'm sorry, but I can't come.")
    False
    """
    return bool(_REFUSAL.match(reply)) and not _REFUSAL.match(original)


@register
class RewriteLLM(_Prompted):
    """Rewrite a text column with a model: refine, correct, restyle, translate.

    Give an `instruction` ("Fix grammar and spelling; keep the meaning.") and the default
    prompt wraps the field's text in <text> markers and asks for the rewritten text only; or
    give a Jinja2 `template` for the whole prompt, which reads columns by name. The reply,
    stripped of a "Here is ...:" first line and of the markers, replaces `field`, or goes to
    the column `into` (then `field` is left as it was); `keep_original=true` keeps the old
    text in `_orig_<field>`.

    Rule for bad replies: an empty reply, or one that refuses ("I'm sorry, but...", "I
    cannot...", "As an AI...") when the original text does not itself start that way, is
    not used: the row keeps its original text (copied to `into` when `into` is given) and is
    counted in the node's stats as `empty` or `refused`. A null `field` is not sent to the
    model: it stays null (and `into` gets null), counted as `null_input`. Rows are never
    dropped. As with `select.judge`, an `openai:` model is keyed by URL, name and /models
    entry, so serve versioned model names.

    Example:  rewrite.llm(field="output", model="openai:http://127.0.0.1:8000/v1#qwen2.5-7b",
                          instruction="Fix grammar and spelling; keep the meaning.")

    >>> op = RewriteLLM(field="t", model="openai:http://127.0.0.1:8000/v1#m",
    ...                 instruction="Make it formal.")
    >>> print(op.prompt({"t": "hey, u coming?"}))
    Make it formal.
    <BLANKLINE>
    Apply this to the text between <text> and </text> below. Reply with ...
    <BLANKLINE>
    <text>
    hey, u coming?
    </text>
    """

    name = "rewrite.llm"
    version = 1
    params = (
        P("field", "str", doc="the text column to rewrite", column=True, col_type="str"),
        P("model", "str", path=True,
          doc="the model: a folder beside the recipe, a hub id 'org/name' or openai:URL#MODEL"),
        P("instruction", "str", None, doc="what to do to the text (the default prompt)"),
        P("template", "str", None, doc="a Jinja2 template for the whole prompt"),
        P("into", "str", None, doc="write the result here instead of replacing `field`"),
        P("keep_original", "bool", False, doc="keep the old text in `_orig_<field>`"),
        *_Prompted.settings(max_tokens=1024),
    )

    def validate(self) -> list[tuple[str | None, str]]:
        p = self.p
        if (p["instruction"] is None) == (p["template"] is None):
            return [("instruction", "give 'instruction' or 'template' (exactly one)")]
        if p["keep_original"] and p["into"] is not None:
            return [("keep_original", ("keep_original=true only applies when the result "
                                       "replaces 'field'; with 'into' the original stays "
                                       f"in '{p['field']}'"))]
        return super().validate()

    def target(self) -> str:
        return self.p["into"] or self.p["field"]

    def writes(self) -> list[str]:
        orig = [f"_orig_{self.p['field']}"] if self.p["keep_original"] else []
        return [self.target(), *orig]

    def output_schema(self, inputs: list[Schema]) -> Schema:
        base = inputs[0] if inputs else Schema.unknown()
        self.check_template_columns(base)
        return base.with_columns(**{c: "str" for c in self.writes()})

    def prompt(self, row: dict[str, Any]) -> str:
        """The prompt this row's rewrite is asked with."""
        if self.p["template"] is not None:
            return self.render_user_template(row, {})
        return render(compile_template(REWRITE_TEMPLATE)[0],
                      {"instruction": self.p["instruction"], "text": row.get(self.p["field"])},
                      self.name)

    def process(self, rows: list[dict[str, Any]], ctx: RunContext) -> list[dict[str, Any]]:
        field = self.p["field"]
        sent = [i for i, row in enumerate(rows) if row.get(field) is not None]
        replies = dict(zip(sent, self.ask([self.prompt(rows[i]) for i in sent], ctx)))
        out = []
        for i, row in enumerate(rows):
            original = row.get(field)
            text = original
            if original is None:
                _count(ctx, "null_input")
            else:
                new = clean_rewrite(replies[i])
                if not new:
                    _count(ctx, "empty")
                elif is_refusal(new, original):
                    _count(ctx, "refused")
                else:
                    text = new
                    _count(ctx, "rewritten")
            result = {self.target(): text}
            if self.p["keep_original"]:
                result[f"_orig_{field}"] = original
            out.append(result)
        return out
