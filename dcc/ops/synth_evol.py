"""`synthesize.evol_instruct`: WizardLM's Evol-Instruct, one evolution per row.

Each input row becomes at most one output row and depends on nothing but itself, so it is a
`RowPython` operator: the engine row-memoizes it (a source that grows by 1% costs about 1% of
the calls) and the optimizer may run cheap filters on other columns before it. Replies also go
through the request memo, as every model call does. Registered by importing
`dcc.ops.synthesize`.
"""

from __future__ import annotations

import random
import re
from typing import Any

from dcc.ops import register
from dcc.ops.base import REQUIRED, P, RowPython, RunContext
from dcc.ops.models import GenerationConfig
from dcc.ops.models.resolve import model_param
from dcc.ops.rouge import rouge_l
from dcc.ops.textgen import (Generator, clean_generated, count, derive_seed, has_word,
                             only_stop_words, sampling)
from dcc.schema import Schema

# -- WizardLM's evolution prompts ----------------------------------------------------------------
# Modeled on the templates of Xu et al. 2023 ("WizardLM: Empowering Large Language Models to
# Follow Complex Instructions", arXiv:2304.12244, Appendix A and the released depth/breadth
# prompts): the same roles, rules, method sentences and "#...#" markers, in plain English.
DEPTH_TEMPLATE = """\
I want you to act as a Prompt Rewriter.
Your objective is to rewrite a given prompt into a more complex version to make those famous \
AI systems (e.g., ChatGPT and GPT-4) a bit harder to handle.
But the rewritten prompt must be reasonable and must be understood and responded to by humans.
Your rewriting cannot omit the non-text parts such as the table and code in #The Given \
Prompt#. Also, please do not omit the input in #The Given Prompt#.
You SHOULD complicate the given prompt using the following method:
{method}
You should try your best not to make the #Rewritten Prompt# become verbose; #Rewritten \
Prompt# can only add 10 to 20 words into #The Given Prompt#.
'#The Given Prompt#', '#Rewritten Prompt#', 'given prompt' and 'rewritten prompt' are not \
allowed to appear in #Rewritten Prompt#.

#The Given Prompt#:
{instruction}

#Rewritten Prompt#:
"""

BREADTH_TEMPLATE = """\
I want you to act as a Prompt Creator.
Your goal is to draw inspiration from the #Given Prompt# to create a brand new prompt.
This new prompt should belong to the same domain as the #Given Prompt# but be even more rare.
The LENGTH and complexity of the #Created Prompt# should be similar to that of the #Given \
Prompt#.
The #Created Prompt# must be reasonable and must be understood and responded to by humans.
'#Given Prompt#', '#Created Prompt#', 'given prompt' and 'created prompt' are not allowed to \
appear in #Created Prompt#.

#Given Prompt#:
{instruction}

#Created Prompt#:
"""

DEPTH_METHODS = {
    "constraints": "Please add one more constraint or requirement into #The Given Prompt#.",
    "deepen": ("If #The Given Prompt# contains inquiries about certain issues, the depth and "
               "breadth of the inquiry can be increased."),
    "concretize": "Please replace general concepts with more specific concepts.",
    "reasoning": ("If #The Given Prompt# can be solved with just a few simple thinking "
                  "processes, you can rewrite it to explicitly request multiple-step "
                  "reasoning."),
    "complicate_input": ("Please add {format} as input data to #The Given Prompt#, so that "
                         "the #Rewritten Prompt# can only be answered by using that data."),
}
EVOLUTIONS = (*DEPTH_METHODS, "breadth")
INPUT_FORMATS = ("XML data", "JSON data", "a SQL database table", "an HTML page",
                 "Python code", "a shell command", "a Markdown table", "a LaTeX formula")

EQUAL_TEMPLATE = """\
Here are two instructions to an AI assistant. Do you think they are equal to each other, \
meeting the following requirements:
1. They have the same constraints and requirements.
2. They have the same depth and breadth of the inquiry.
The First Prompt: {first}
The Second Prompt: {second}
Your Judgement (Just answer: Equal or Not Equal. No need to explain the reason.):"""

_COPIED = re.compile(r"#\s*(?:the\s+)?(?:given|rewritten|created)\s+prompt\s*#|"
                     r"\b(?:given|rewritten|created)\s+prompt\b", re.IGNORECASE)
_MARKER_LABEL = re.compile(r"^\s*#\s*(?:rewritten|created)\s+prompt\s*#\s*:?\s*",
                           re.IGNORECASE)


def evolution_prompt(name: str, instruction: str, fmt: str = INPUT_FORMATS[0]) -> str:
    """The prompt that evolves `instruction` by the method `name` (one of EVOLUTIONS)."""
    if name == "breadth":
        return BREADTH_TEMPLATE.format(instruction=instruction)
    method = DEPTH_METHODS[name].format(format=fmt)
    return DEPTH_TEMPLATE.format(method=method, instruction=instruction)


def _copied(text: str) -> set[str]:
    return {" ".join(m.group(0).lower().split()) for m in _COPIED.finditer(text)}


def eliminated(original: str, evolved: str, max_similarity: float) -> str | None:
    """Why an evolution fails WizardLM's elimination step (None: it passes).

    >>> eliminated("Name a fruit.", "Name a fruit!", 0.95)
    'no_gain'
    >>> eliminated("Name a fruit.", "Rewrite the given prompt: name a fruit.", 0.95)
    'copied_prompt'
    >>> eliminated("Name a fruit.", "Sorry, I cannot rewrite this.", 0.95)
    'refused'
    >>> eliminated("Name a fruit.", "Name a tropical fruit that grows in Peru.", 0.95) is None
    True
    """
    if not evolved:
        return "empty"
    if _copied(evolved) - _copied(original):  # words the original had are no copy
        return "copied_prompt"
    if has_word(evolved, "sorry") and len(evolved.split()) < 80:
        return "refused"
    if only_stop_words(evolved):
        return "no_content"
    if rouge_l(original, evolved) >= max_similarity:
        return "no_gain"
    return None


def parse_equal(reply: str) -> bool | None:
    """The verdict of the equality check: True "Equal", False "Not Equal", None unreadable.

    >>> parse_equal("Not Equal"), parse_equal("equal."), parse_equal("Maybe?")
    (False, True, None)
    """
    text = reply.strip().lower()
    if re.match(r"^\W*(?:not|un)\s*equal\b", text) or re.search(r"\bnot\s+equal\b", text):
        return False
    if re.match(r"^\W*equal\b", text):
        return True
    return None


@register
class EvolInstruct(Generator, RowPython):
    """Evolve each row's instruction into a harder or rarer one (Evol-Instruct, WizardLM).

    Xu et al. 2023, "WizardLM: Empowering Large Language Models to Follow Complex
    Instructions" (arXiv:2304.12244). Every input row is evolved once, by one method picked
    from `evolutions` with a random generator seeded by (`seed`, the row's instruction), so the
    same recipe evolves the same row the same way, whatever the other rows are. The methods
    (prompts modeled on the paper's templates, `dcc ops` shows none of them; see
    `dcc/ops/synth_evol.py`):

    * in depth: `constraints` (add a constraint or requirement), `deepen` (deepen the
      inquiry), `concretize` (replace general concepts with specific ones), `reasoning`
      (request multiple-step reasoning), `complicate_input` (add input data in a format also
      picked by the seed: XML, JSON, a SQL table, HTML, Python code, a shell command, a
      Markdown table, LaTeX);
    * in breadth: `breadth` (a brand-new, rarer prompt in the same domain; the paper's
      mutation).

    The reply is cleaned (a "Here is ...:" first line, a leading "#Rewritten Prompt#:" or
    "Instruction:" label and enclosing quotes are removed) and then passes the paper's
    elimination step or the row is DROPPED, counted in the node's stats by reason:
    `empty`; `copied_prompt` (it still contains "#The Given Prompt#", "given prompt",
    "rewritten prompt", "created prompt" and the like); `refused` (it contains "sorry" and is
    under 80 words — the paper applies this to the response to the evolved instruction, dcc
    to the evolution itself, as no response exists yet); `no_content` (only stop words and
    punctuation); `no_gain` (ROUGE-L F of original and evolved >= `max_similarity`, default
    0.95: equal up to case and punctuation, or a few words added to a long prompt); and, with
    `judge_equal=true`, `judged_equal`: the model is asked the paper's equality question
    ("Equal or Not Equal", greedy) and said Equal (an unreadable verdict keeps the row,
    counted as `judge_unparsed`). A null or blank instruction is dropped as `null_input`.

    Kept rows are the input row with `field` replaced by the evolution, `_evol` set to the
    method used, and `response` (default "output"; "" for none) set to null — the old answer
    belongs to the old instruction; the column is created when the input lacks it. Every
    other column passes through unchanged (lineage such as `_parent` included). Rows keep
    their input order.

    Requests are chat messages (an optional `system`, then the prompt) sent with the recipe's
    `seed`; defaults follow the released WizardLM code (temperature 1.0, top_p 0.95).

    Example:  harder = seeds | synthesize.evol_instruct(model="./qwen", seed=1)

    >>> print(evolution_prompt("constraints", "Name a fruit.").splitlines()[5])
    Please add one more constraint or requirement into #The Given Prompt#.
    """

    name = "synthesize.evol_instruct"
    version = 1
    stochastic = True
    expensive = True
    cost = 1000.0
    params = (
        model_param(REQUIRED, doc="the evolving model: a folder beside the recipe, a hub id "
                                  "'org/name' or openai:URL#MODEL"),
        P("field", "str", "instruction", doc="the instruction column to evolve", column=True,
          col_type="str"),
        P("response", "str", "output", doc="a response column set to null in evolved rows "
                                           "(\"\": none)"),
        P("evolutions", "list[str]", list(EVOLUTIONS),
          doc="methods to pick from: " + ", ".join(EVOLUTIONS)),
        P("max_similarity", "float", 0.95, doc="drop evolutions this ROUGE-L-similar to the "
                                               "original (no information gain)",
          min=0.0, max=1.0),
        P("judge_equal", "bool", False, doc="also ask the model whether the two prompts are "
                                            "equal (the paper's check; one more call per row)"),
        P("seed", "int", 0, doc="picks each row's method; sent with every request"),
        *sampling(1.0, 0.95, 1024),
        P("system", "str", None, doc="a system message sent before the prompt"),
    )

    def validate(self) -> list[tuple[str | None, str]]:
        evols = self.p["evolutions"]
        if not evols:
            return [("evolutions", "'evolutions' must name at least one method")]
        bad = [e for e in evols if e not in EVOLUTIONS]
        if bad:
            return [("evolutions", f"unknown evolution {bad[0]!r}; the methods: "
                                   f"{', '.join(EVOLUTIONS)}")]
        if self.p["response"] in (self.p["field"], "_evol"):
            return [("response", f"'response' must differ from {self.p['response']!r}")]
        return self.check_model_ref()

    def writes(self) -> list[str]:
        resp = [self.p["response"]] if self.p["response"] else []
        return [self.p["field"], "_evol", *resp]

    def output_schema(self, inputs: list[Schema]) -> Schema:
        base = inputs[0] if inputs else Schema.unknown()
        return base.with_columns(**{c: "str" for c in self.writes()})

    def choose(self, instruction: str) -> tuple[str, str]:
        """(method, prompt) for one instruction: the seeded pick described above."""
        rng = random.Random(derive_seed(self.p["seed"], "evol_instruct", instruction))
        method = rng.choice(list(self.p["evolutions"]))
        fmt = rng.choice(INPUT_FORMATS)
        return method, evolution_prompt(method, instruction, fmt)

    def process(self, rows: list[dict[str, Any]], ctx: RunContext) -> list[Any]:
        field = self.p["field"]
        todo = [(i, row[field]) for i, row in enumerate(rows)
                if isinstance(row.get(field), str) and row[field].strip()]
        count(ctx, "null_input", len(rows) - len(todo))
        picks = [self.choose(text) for _, text in todo]
        replies = self.ask_many([self.messages(prompt) for _, prompt in picks], ctx,
                                self.gen_config(self.p["seed"]))
        out: list[dict[str, Any] | None] = [None] * len(rows)
        passed = []
        for (i, text), (method, _), reply in zip(todo, picks, replies):
            evolved = clean_generated(reply[0] if reply else "")
            evolved = clean_generated(_MARKER_LABEL.sub("", evolved, count=1))
            why = eliminated(text, evolved, self.p["max_similarity"])
            if why is not None:
                count(ctx, why)
                continue
            passed.append((i, text, method, evolved))
        if self.p["judge_equal"]:
            passed = self._judge(passed, ctx)
        for i, _, method, evolved in passed:
            result: dict[str, Any] = {field: evolved, "_evol": method}
            if self.p["response"]:
                result[self.p["response"]] = None
            out[i] = result
        count(ctx, "evolved", len(passed))
        return out

    def _judge(self, passed: list[tuple[int, str, str, str]],
               ctx: RunContext) -> list[tuple[int, str, str, str]]:
        prompts = [self.messages(EQUAL_TEMPLATE.format(first=text, second=evolved))
                   for _, text, _, evolved in passed]
        config = GenerationConfig(max_new_tokens=16, temperature=0.0, seed=self.p["seed"])
        kept = []
        for item, reply in zip(passed, self.ask_many(prompts, ctx, config)):
            verdict = parse_equal(reply[0] if reply else "")
            if verdict is None:
                count(ctx, "judge_unparsed")
            if verdict is True:
                count(ctx, "judged_equal")
            else:
                kept.append(item)
        return kept


__all__ = ["EVOLUTIONS", "EvolInstruct", "eliminated", "evolution_prompt", "parse_equal"]
