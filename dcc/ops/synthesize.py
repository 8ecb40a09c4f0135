"""synthesize.*: make new rows — self-instruct, evol-instruct, magpie, back-translation, templates.

This module holds `self_instruct`; each other operator has a module of its own
(`synth_evol.py`, `synth_magpie.py`, `synth_backtranslate.py`, `synth_template.py`), with the
shared helpers in `textgen.py` and ROUGE-L in `rouge.py`. Importing this module (the registry
does) registers all five.

Shared rules (see `docs/synthesize.md`): every model call goes through `UsesModel.ask_many`
and so through the request memo, keyed by the exact request, so a second build, a fixed
parser or a changed filter threshold re-asks nothing it asked before, and a killed build
resumes without repeating finished requests. Every request's seed derives from the recipe's
`seed`. Model output is parsed defensively: what cannot be used is dropped and counted in the
node's stats, never a crash. A target `n` is a target: generation stops after a bounded,
documented number of requests, so a weak model yields fewer rows, never an endless loop.
"""

from __future__ import annotations

import random
import string
from typing import TYPE_CHECKING, Any

from dcc.ops import register
from dcc.ops import (synth_backtranslate, synth_evol, synth_magpie,  # noqa: F401 - register
                     synth_template)
from dcc.ops.base import REQUIRED, DatasetOp, P, RunContext
from dcc.ops.models.resolve import model_param
from dcc.ops.rouge import RougePool
from dcc.ops.textgen import (Generator, SynthesisError, count, derive_seed, has_word,
                             numbered_items, one_line, sampling)
from dcc.schema import Schema

if TYPE_CHECKING:
    import polars as pl

# -- self-instruct -------------------------------------------------------------------------------
SELF_INSTRUCT_HEADER = "Come up with a series of tasks:"
BANNED_WORDS = ("image", "images", "graph", "graphs", "picture", "pictures", "file", "files",
                "map", "maps", "draw", "plot", "go to")


def self_instruct_prompt(tasks: list[str], header: str = SELF_INSTRUCT_HEADER) -> str:
    """The paper's in-context prompt: the header, the tasks numbered 1..k, then "k+1.".

    >>> print(self_instruct_prompt(["Name a fruit:", "Add  two\\nnumbers."]))
    Come up with a series of tasks:
    1. Name a fruit
    2. Add two numbers.
    3.
    """
    lines = [f"{i}. {one_line(t).rstrip(':')}" for i, t in enumerate(tasks, 1)]
    return "\n".join([header, *lines, f"{len(tasks) + 1}."])


def heuristic_reject(inst: str, min_words: int, max_words: int, banned_words: list[str],
                     banned_prefixes: list[str]) -> str | None:
    """Why Self-Instruct's heuristics reject an instruction (None: they accept it).

    >>> heuristic_reject("Draw a cat.", 2, 150, ["draw"], [])
    'banned_word'
    >>> heuristic_reject("Sort these numbers in ascending order.", 4, 150, [], []) is None
    True
    """
    words = len(inst.split())
    if words < min_words:
        return "too_short"
    if words > max_words:
        return "too_long"
    if any(has_word(inst, w) for w in banned_words):
        return "banned_word"
    if any(inst.lower().startswith(p.lower()) for p in banned_prefixes):
        return "banned_prefix"
    if inst[0] in string.punctuation:
        return "punctuation_start"
    if not inst[0].isascii():
        return "non_english_start"
    return None


@register
class SelfInstruct(Generator, DatasetOp):
    """Bootstrap new instructions from seed tasks (Self-Instruct).

    Wang et al. 2022, "Self-Instruct: Aligning Language Models with Self-Generated
    Instructions" (arXiv:2212.10560). The input rows are the seed pool: the non-blank strings
    of `field` (e.g. the 175 seed tasks in recipes/data/self_instruct_seed_tasks.jsonl). The
    output is the NEW instructions only, one column `field`, at most `n` rows, in the order
    they were accepted; `concat(seeds, new)` gives the paper's grown pool. Rows carry no
    lineage of their own. Responses come from a later step (`distill.respond`).

    Generation runs in rounds of `batch` requests. Request k samples, with a generator seeded
    by (`seed`, k), up to `machine_tasks` (2) instructions accepted so far and fills up to
    `prompt_tasks` (8) with seed instructions, shuffles them and asks the paper's prompt:

        Come up with a series of tasks:
        1. <task>
        ...
        8. <task>
        9.

    as a raw completion (`chat=false`; `chat=true` sends it as a user message). Sampling
    follows the paper (temperature 0.7, top_p 0.5, 1024 tokens); requests of round r carry the
    seed derived from (`seed`, r) and, in raw mode, the paper's stop strings for a list of k
    tasks ("\\n\\n", "\\n2k", "2k.", "2k ."). A reply is split at numbered items ("10. ",
    "11 . "); in raw mode its text before the first number is item k+1, in chat mode it is a
    preamble and ignored. A reply with no item counts as `unparsed`.

    Each item, whitespace collapsed and its first letter capitalized (the paper's code also
    lowercases the rest; dcc keeps it), is kept only when it passes the paper's heuristics —
    `min_words` (4) to `max_words` (150) words, none of `banned_words` as a whole word (image,
    graph, picture, file, map, draw, plot, go to and plurals: things a text model cannot
    do), not starting with one of `banned_prefixes` ("Write a program"), with punctuation or
    with a non-ASCII character — and when its ROUGE-L F-measure (`dcc.ops.rouge`, as
    rouge_score computes it) with every instruction in the pool (seeds and all accepted) is
    below `max_rouge` (0.7). Rejections are counted in the node's stats by reason
    (`too_short`, `too_long`, `banned_word`, `banned_prefix`, `punctuation_start`,
    `non_english_start`, `similar`); `requests`, `candidates` and `kept` are counted too.

    Generation stops when `n` instructions are accepted or after `max_requests` requests
    (default: n), whichever comes first; a prompt that repeats one already sent in its round
    is not sent again but counts against the budget. Because later prompts show accepted
    instructions, changing a filter can change later prompts: the memo then serves every
    request up to the first changed one.

    Example:  new = seeds | synthesize.self_instruct(model="./qwen", n=100, seed=1)
    """

    name = "synthesize.self_instruct"
    version = 1
    stochastic = True
    expensive = True
    cost = 1000.0
    params = (
        model_param(REQUIRED, doc="the generating model: a folder beside the recipe, a hub "
                                  "id 'org/name' or openai:URL#MODEL"),
        P("n", "int", doc="how many new instructions to make (a target: a weak model yields "
                          "fewer)", min=1),
        P("seed", "int", 0, doc="seeds the task sampling and every request"),
        P("field", "str", "instruction", doc="the seed instructions' column, and the output's",
          column=True, col_type="str"),
        P("prompt_tasks", "int", 8, doc="tasks shown in each prompt", min=1, max=100),
        P("machine_tasks", "int", 2, doc="of those, at most this many generated ones", min=0),
        P("batch", "int", 8, doc="requests per round (sent together)", min=1),
        P("max_requests", "int", None, doc="most requests in all (null: n)", min=1),
        P("max_rouge", "float", 0.7, doc="keep instructions whose ROUGE-L F with every pooled "
                                         "one is below this", min=0.0, max=1.0),
        P("min_words", "int", 4, doc="fewest words in an instruction", min=1),
        P("max_words", "int", 150, doc="most words in an instruction", min=1),
        P("banned_words", "list[str]", list(BANNED_WORDS),
          doc="drop instructions with any of these whole words (case-insensitive)"),
        P("banned_prefixes", "list[str]", ["Write a program"],
          doc="drop instructions that start with any of these (case-insensitive)"),
        P("chat", "bool", False, doc="send the prompt as a chat message (false: raw text, as "
                                     "the paper)"),
        P("header", "str", SELF_INSTRUCT_HEADER, doc="the prompt's first line"),
        *sampling(0.7, 0.5, 1024),
    )

    def validate(self) -> list[tuple[str | None, str]]:
        p = self.p
        if p["machine_tasks"] > p["prompt_tasks"]:
            return [("machine_tasks", f"'machine_tasks' must be <= prompt_tasks "
                                      f"({p['prompt_tasks']}) (got {p['machine_tasks']})")]
        if p["min_words"] > p["max_words"]:
            return [("max_words", f"'max_words' must be >= min_words ({p['min_words']}) "
                                  f"(got {p['max_words']})")]
        return self.check_model_ref()

    def writes(self) -> list[str]:
        return [self.p["field"]]

    def input_columns(self, needed: set[str] | None) -> set[str] | None:
        return {self.p["field"]}

    def output_schema(self, inputs: list[Schema]) -> Schema:
        return Schema({self.p["field"]: "str"})

    # -- one request ---------------------------------------------------------------------
    def tasks_for(self, k: int, seeds: list[str], machine: list[str]) -> list[str]:
        """The tasks request k shows (seeded by `seed` and k)."""
        rng = random.Random(derive_seed(self.p["seed"], "self_instruct", k))
        picked = rng.sample(machine, min(self.p["machine_tasks"], len(machine)))
        want = self.p["prompt_tasks"] - len(picked)
        picked += rng.sample(seeds, min(want, len(seeds)))
        rng.shuffle(picked)
        return picked

    def stops(self, k_tasks: int) -> tuple[str, ...]:
        last = 2 * k_tasks
        if self.p["chat"]:
            return (f"\n{last}.",)
        return ("\n\n", f"\n{last}", f"{last}.", f"{last} .")

    def ask(self, prompts: list[str], k_tasks: int, round_no: int,
            ctx: RunContext) -> list[str]:
        config = self.gen_config(derive_seed(self.p["seed"], "self_instruct.round", round_no),
                                 stop=self.stops(k_tasks))
        asks: list[Any] = [self.messages(p, None) for p in prompts] if self.p["chat"] \
            else list(prompts)
        return [r[0] if r else "" for r in self.ask_many(asks, ctx, config)]

    # -- the loop ------------------------------------------------------------------------
    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        import polars as pl

        field = self.p["field"]
        df = inputs[0]
        seeds = [v for v in (df[field].to_list() if field in df.columns else [])
                 if isinstance(v, str) and v.strip()]
        if not seeds:
            raise SynthesisError(f"{self.name} needs seed instructions: the input has no "
                                 f"non-blank '{field}' values")
        accepted = self.generate(seeds, ctx)
        return pl.DataFrame({field: accepted}, schema={field: pl.String})

    def generate(self, seeds: list[str], ctx: RunContext) -> list[str]:
        n = self.p["n"]
        budget = self.p["max_requests"] or n
        pool = RougePool(seeds)
        accepted: list[str] = []
        sent = round_no = 0
        while len(accepted) < n and sent < budget:
            size = min(self.p["batch"], budget - sent)
            by_len: dict[int, list[str]] = {}
            for k in range(sent, sent + size):
                tasks = self.tasks_for(k, seeds, accepted)
                prompt = self_instruct_prompt(tasks, self.p["header"])
                group = by_len.setdefault(len(tasks), [])
                if prompt not in group:
                    group.append(prompt)
            sent += size
            for k_tasks, prompts in sorted(by_len.items()):
                count(ctx, "requests", len(prompts))
                for reply in self.ask(prompts, k_tasks, round_no, ctx):
                    self.take(reply, pool, accepted, ctx)
                    if len(accepted) >= n:
                        break
                if len(accepted) >= n:
                    break
            round_no += 1
        count(ctx, "kept", len(accepted))
        return accepted[:n]

    def take(self, reply: str, pool: RougePool, accepted: list[str], ctx: RunContext) -> None:
        """Parse one reply, filter its items, and add the survivors to the pool."""
        p = self.p
        items = numbered_items(reply, first_unnumbered=not p["chat"])
        if not items:
            count(ctx, "unparsed")
        for item in items:
            if len(accepted) >= p["n"]:
                return
            count(ctx, "candidates")
            inst = item[0].upper() + item[1:]
            why = heuristic_reject(inst, p["min_words"], p["max_words"], p["banned_words"],
                                   p["banned_prefixes"])
            if why is None and pool.max_score(inst, p["max_rouge"]) >= p["max_rouge"]:
                why = "similar"
            if why is not None:
                count(ctx, why)
                continue
            pool.add(inst)
            accepted.append(inst)


__all__ = ["SelfInstruct", "heuristic_reject", "self_instruct_prompt"]
