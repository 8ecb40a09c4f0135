"""`synthesize.backtranslate`: Humpback's self-augmentation, one instruction per response.

Each input row becomes at most one output row and depends on nothing but itself, so it is a
`RowPython` operator: row-memoized by the engine, and the optimizer may run cheap filters on
other columns before it. Replies also go through the request memo. Registered by importing
`dcc.ops.synthesize`.
"""

from __future__ import annotations

from typing import Any

from dcc.errors import ParamError
from dcc.ops import register
from dcc.ops.base import REQUIRED, P, RowPython, RunContext
from dcc.ops.models.resolve import model_param
from dcc.ops.prompted import compile_template, is_refusal, render
from dcc.ops.textgen import Generator, clean_generated, count, sampling
from dcc.schema import Schema

# -- Humpback's self-augmentation ----------------------------------------------------------------
BACKTRANSLATE_TEMPLATE = """\
Below is a response written by an AI assistant, or a text that could serve as one. Write \
the instruction a user most probably gave to receive exactly this response: one \
self-contained request, in the user's voice, that the response answers completely and \
stays on topic with. Reply with the instruction only.

Response:
{{ response }}

Instruction:"""


@register
class Backtranslate(Generator, RowPython):
    """Write the instruction each row's response answers (instruction back-translation).

    The self-augmentation step of Humpback: Li et al. 2023, "Self-Alignment with Instruction
    Backtranslation" (arXiv:2308.06259). The paper fine-tunes a backward model M_yx on seed
    (response -> instruction) pairs and decodes it on unlabelled text; it prints no prompt,
    since a fine-tuned model needs none. dcc therefore offers both ways:

    * default: an instruction-following model is asked in a chat message (below) to write the
      instruction that `field`'s text answers;
    * a fine-tuned backward model: give its own input format as a Jinja2 `template` (it reads
      columns by name, and `response` is the `field` text) and `chat=false`, which sends the
      rendered text as a raw completion prompt.

    The reply is cleaned (a "Here is ...:" first line, an "Instruction:" label and enclosing
    quotes removed) and written to the column `into` (default "instruction"); if the input
    already has that column, its old value moves to `_orig_<into>`. The response column is
    kept unchanged. Rows are DROPPED, and counted in the node's stats, when `field` is null or
    blank (`null_input`), the cleaned reply is empty (`empty`) or it refuses ("I'm sorry,
    but ...", `refused`). Rows keep their input order; Humpback's next step, self-curation,
    is `select.judge`.

    Example:  pairs = web | synthesize.backtranslate(model="./qwen", field="text")

    >>> op = Backtranslate(model="openai:http://127.0.0.1:8000/v1#m")
    >>> print(op.prompt({"output": "Paris is the capital of France."}))
    Below is a response written by an AI assistant, ... Reply with the instruction only.
    <BLANKLINE>
    Response:
    Paris is the capital of France.
    <BLANKLINE>
    Instruction:
    """

    name = "synthesize.backtranslate"
    version = 1
    stochastic = True
    expensive = True
    cost = 1000.0
    params = (
        model_param(REQUIRED, doc="the backward model: a folder beside the recipe, a hub id "
                                  "'org/name' or openai:URL#MODEL"),
        P("field", "str", "output", doc="the response text to write an instruction for",
          column=True, col_type="str"),
        P("into", "str", "instruction", doc="the column that gets the instruction"),
        P("template", "str", None, doc="a Jinja2 template for the whole prompt (a fine-tuned "
                                       "backward model's input format)"),
        P("chat", "bool", True, doc="send the prompt as a chat message (false: raw text)"),
        P("seed", "int", 0, doc="sent with every request"),
        *sampling(0.0, 1.0, 256),
        P("system", "str", None, doc="a system message sent before the prompt (chat only)"),
    )

    def validate(self) -> list[tuple[str | None, str]]:
        if self.p["into"] == self.p["field"]:
            return [("into", "'into' must differ from 'field' (the response is kept)")]
        if self.p["template"] is not None:
            try:
                compile_template(self.p["template"])
            except Exception as e:  # noqa: BLE001 - ParamError with the template's message
                return [("template", str(e))]
        return self.check_model_ref()

    def template_columns(self) -> list[str]:
        if self.p["template"] is None:
            return []
        return sorted(compile_template(self.p["template"])[1] - {"response"})

    def reads(self) -> list[str]:
        # `into` too: its old value moves to _orig_<into>, so it is part of a row's result
        return sorted({self.p["field"], self.p["into"], *self.template_columns()})

    def writes(self) -> list[str]:
        return [self.p["into"], f"_orig_{self.p['into']}"]

    def output_schema(self, inputs: list[Schema]) -> Schema:
        base = inputs[0] if inputs else Schema.unknown()
        for col in self.template_columns():
            if not base.has(col):
                raise ParamError(f"{self.name}: the template reads column '{col}', which its "
                                 "input does not have")
        types = {self.p["into"]: "str"}
        if self.p["into"] in base.columns:
            types[f"_orig_{self.p['into']}"] = base.columns[self.p["into"]]
        return base.with_columns(**types)

    def prompt(self, row: dict[str, Any]) -> str:
        """The prompt this row's instruction is asked with."""
        text = row.get(self.p["field"])
        if self.p["template"] is None:
            return render(compile_template(BACKTRANSLATE_TEMPLATE)[0], {"response": text},
                          self.name)
        template, names = compile_template(self.p["template"])
        context = {c: row.get(c) for c in names if c != "response"}
        return render(template, {**context, "response": text}, self.name)

    def process(self, rows: list[dict[str, Any]], ctx: RunContext) -> list[Any]:
        field, into = self.p["field"], self.p["into"]
        todo = [i for i, row in enumerate(rows)
                if isinstance(row.get(field), str) and row[field].strip()]
        count(ctx, "null_input", len(rows) - len(todo))
        prompts = [self.prompt(rows[i]) for i in todo]
        asks = [self.messages(p) for p in prompts] if self.p["chat"] else prompts
        replies = self.ask_many(asks, ctx, self.gen_config(self.p["seed"]))
        out: list[dict[str, Any] | None] = [None] * len(rows)
        for i, reply in zip(todo, replies):
            instruction = clean_generated(reply[0] if reply else "")
            if not instruction:
                count(ctx, "empty")
                continue
            if is_refusal(instruction, rows[i][field]):
                count(ctx, "refused")
                continue
            result: dict[str, Any] = {into: instruction}
            if into in rows[i]:
                result[f"_orig_{into}"] = rows[i][into]
            out[i] = result
        count(ctx, "written", sum(r is not None for r in out))
        return out


__all__ = ["BACKTRANSLATE_TEMPLATE", "Backtranslate"]
