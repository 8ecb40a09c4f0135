"""`synthesize.magpie`: instructions written by a chat model from its pre-query alone.

A whole-dataset generator (`DatasetOp`): how many rows it makes and with which system prompts
depends on the input as a whole, and later rounds depend on what earlier ones made. Every
request goes through the request memo. Registered by importing `dcc.ops.synthesize`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dcc.ops import register
from dcc.ops.base import REQUIRED, DatasetOp, P, RunContext
from dcc.ops.models.resolve import model_param
from dcc.ops.textgen import (Generator, SynthesisError, count, derive_seed, one_line, sampling,
                             split_chat_template)
from dcc.schema import Schema

if TYPE_CHECKING:
    import polars as pl


@register
class Magpie(Generator, DatasetOp):
    """Let a chat model write user instructions from its template alone (Magpie).

    Xu et al. 2024, "Magpie: Alignment Data Synthesis from Scratch by Prompting Aligned LLMs
    with Nothing" (arXiv:2406.08464). The model is given only its chat template's pre-query —
    the text that precedes a user's message, e.g. "<|im_start|>user\\n" — as a raw completion
    prompt, and the user message it writes is the instruction. The pre-query comes from
    `pre_query` when given, else from the model's tokenizer: its chat template is rendered for
    a conversation whose user message is a sentinel and cut there (a BOS token the tokenizer
    adds by itself is left out). A model with neither (an `openai:` endpoint, a base model) is
    a run-time error naming the node: give `pre_query`. What follows the sentinel up to the
    end of its line (e.g. "<|im_end|>") is a stop string, or `post_query` when given.

    The input rows are slots. With `system_field`, generation i uses row (i mod rows)'s value
    as the system prompt (Magpie's way to steer topics or personas; a null value: none) and
    the output keeps that column; `system` gives one system prompt for all. `n` defaults to
    the number of input rows; without `system_field` the rows' content is not used.

    Each round asks, per distinct pre-query, for as many samples as are still missing (one
    request with `n` samples), seeded by (`seed`, round); defaults follow the paper
    (temperature 1.0, top_p 1.0). A reply is cut at the stop string and stripped; empty
    replies (`empty`) and repeats of an instruction already made (`duplicate`, compared with
    whitespace collapsed and case folded) are dropped and counted. Generation stops when `n`
    instructions are made or `max_requests` samples (default 2n) were asked for.

    With `respond=true` each instruction is then sent to the same model as a chat message
    (after the system prompt, if any) and its reply becomes the `response` column (greedy by
    default, as the paper's responses); an empty response drops the row
    (`empty_response`). Output columns: `into` (default "instruction"), then `response`,
    then `system_field`; rows in generation order (generation i is row i).

    Example:  prompts = slots | synthesize.magpie(model="./qwen-instruct", n=1000, seed=1)
    """

    name = "synthesize.magpie"
    version = 1
    stochastic = True
    expensive = True
    cost = 1000.0
    params = (
        model_param(REQUIRED, doc="an aligned chat model: a folder beside the recipe, a hub "
                                  "id 'org/name' or openai:URL#MODEL (then pre_query is "
                                  "needed)"),
        P("n", "int", None, doc="how many instructions to make (null: one per input row)",
          min=1),
        P("seed", "int", 0, doc="seeds every request"),
        P("into", "str", "instruction", doc="the instruction column"),
        P("pre_query", "str", None, doc="the text before a user's message (null: from the "
                                        "model's chat template)"),
        P("post_query", "str", None, doc="the text that ends a user's message, a stop string "
                                         "(null: from the chat template)"),
        P("system", "str", None, doc="one system prompt for every generation"),
        P("system_field", "str", None, doc="a column of per-slot system prompts", column=True,
          col_type="str"),
        P("respond", "bool", False, doc="also write the model's response"),
        P("response", "str", "output", doc="the response column (with respond=true)"),
        P("max_requests", "int", None, doc="most samples asked for in all (null: 2n)", min=1),
        *sampling(1.0, 1.0, 256, what="instruction"),
        *sampling(0.0, 1.0, 1024, prefix="response_", what="response"),
    )

    def validate(self) -> list[tuple[str | None, str]]:
        p = self.p
        if p["system"] is not None and p["system_field"] is not None:
            return [("system_field", "give 'system' or 'system_field', not both")]
        if p["pre_query"] is not None and (p["system"] or p["system_field"]):
            return [("pre_query", "an explicit pre_query is the whole prefix: write the "
                                  "system prompt into it instead of 'system'/'system_field'")]
        cols = self.writes()
        if len(set(cols)) < len(cols):
            return [("into", "'into', 'response' and 'system_field' must name different "
                             "columns")]
        return self.check_model_ref()

    def writes(self) -> list[str]:
        resp = [self.p["response"]] if self.p["respond"] else []
        sys_col = [self.p["system_field"]] if self.p["system_field"] else []
        return [self.p["into"], *resp, *sys_col]

    def input_columns(self, needed: set[str] | None) -> set[str] | None:
        return set(self.reads())

    def output_schema(self, inputs: list[Schema]) -> Schema:
        return Schema({c: "str" for c in self.writes()})

    # -- prompts -------------------------------------------------------------------------
    def prefixes(self, systems: list[str | None], ctx: RunContext) -> dict[Any, tuple[str, str]]:
        """(pre-query, stop) per distinct system prompt."""
        if self.p["pre_query"] is not None:
            return {None: (self.p["pre_query"], self.p["post_query"] or "")}
        backend = self.backend(ctx.options)
        tokenizer = getattr(backend, "tokenizer", None)
        out = {}
        for system in dict.fromkeys(systems):
            split = split_chat_template(tokenizer, system) if tokenizer is not None else None
            if split is None:
                raise SynthesisError(
                    f"{self.name}: the model has no chat template to take a pre-query from; "
                    "give pre_query=\"...\", the text before a user's message (for a ChatML "
                    "model: \"<|im_start|>user\\n\")")
            pre, post = split
            out[system] = (pre, self.p["post_query"] if self.p["post_query"] is not None
                           else post)
        return out

    # -- the loop ------------------------------------------------------------------------
    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        import polars as pl

        df = inputs[0]
        sys_col = self.p["system_field"]
        n = self.p["n"] if self.p["n"] is not None else df.height
        if sys_col is not None:
            values = df[sys_col].to_list() if sys_col in df.columns else []
            slots = [v if isinstance(v, str) and v.strip() else None for v in values]
        else:
            slots = [self.p["system"]]
        if not slots:
            n = 0
        wanted = [slots[i % len(slots)] for i in range(n)]
        made = self.instructions(wanted, ctx)
        rows = [(inst, wanted[i]) for i, inst in enumerate(made) if inst is not None]
        columns: dict[str, list[Any]] = {self.p["into"]: [r[0] for r in rows]}
        if self.p["respond"]:
            answers = self.responses(rows, ctx)
            rows = [r for r, a in zip(rows, answers) if a]
            count(ctx, "empty_response", len(answers) - len(rows))
            columns = {self.p["into"]: [r[0] for r in rows],
                       self.p["response"]: [a for a in answers if a]}
        if sys_col is not None:
            columns[sys_col] = [r[1] for r in rows]
        return pl.DataFrame(columns, schema={c: pl.String for c in columns})

    def instructions(self, wanted: list[str | None], ctx: RunContext) -> list[str | None]:
        """One instruction (or None) per wanted generation, in order."""
        prefixes = self.prefixes(wanted, ctx) if wanted else {}
        key = (lambda s: None) if self.p["pre_query"] is not None else (lambda s: s)
        slots: dict[Any, list[int]] = {}
        for i, system in enumerate(wanted):
            slots.setdefault(key(system), []).append(i)
        made: list[str | None] = [None] * len(wanted)
        seen: set[str] = set()
        budget = self.p["max_requests"] or 2 * len(wanted)
        round_no = 0
        while budget > 0 and any(made[i] is None for i in range(len(wanted))):
            asks: dict[int, list[tuple[Any, list[int]]]] = {}  # samples -> [(group, slots)]
            for group, idx in slots.items():
                open_ = [i for i in idx if made[i] is None][:budget]
                if open_:
                    budget -= len(open_)
                    asks.setdefault(len(open_), []).append((group, open_))
            seed = derive_seed(self.p["seed"], "magpie.round", round_no)
            for k, groups in sorted(asks.items()):
                prompts = [prefixes[g][0] for g, _ in groups]
                stops = {prefixes[g][1] for g, _ in groups}
                config = self.gen_config(seed, n=k, stop=tuple(s for s in stops if s)
                                         if len(stops) == 1 else ())
                count(ctx, "requests", len(prompts))
                replies = self.ask_many(prompts, ctx, config)
                for (g, open_), samples in zip(groups, replies):
                    self.take(samples, prefixes[g][1], open_, made, seen, ctx)
            round_no += 1
        count(ctx, "kept", sum(m is not None for m in made))
        return made

    def take(self, samples: list[str], stop: str, open_: list[int], made: list[str | None],
             seen: set[str], ctx: RunContext) -> None:
        free = iter(open_)
        for text in samples:
            if stop and stop in text:
                text = text[:text.index(stop)]
            text = text.strip()
            norm = one_line(text).casefold()
            if not text:
                count(ctx, "empty")
            elif norm in seen:
                count(ctx, "duplicate")
            else:
                slot = next(free, None)
                if slot is None:
                    return
                seen.add(norm)
                made[slot] = text

    def responses(self, rows: list[tuple[str, str | None]], ctx: RunContext) -> list[str]:
        prompts = [self.messages(inst, system) for inst, system in rows]
        config = self.gen_config(derive_seed(self.p["seed"], "magpie.respond"),
                                 prefix="response_")
        return [(r[0] if r else "").strip() for r in self.ask_many(prompts, ctx, config)]


__all__ = ["Magpie"]
