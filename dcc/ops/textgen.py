"""What the `synthesize.*` generators share: seeds, settings, code identity, reply parsing.

Model replies are untrusted text. Every parser here returns a value or None and never
raises: a generator drops what it cannot use and counts it in the node's stats, so a weak or
misbehaving model yields fewer rows, never a failed build.

Seeds. A request's seed is part of its memo key (`dcc.ops.models.memo`), so a generator that
wants a fresh sample asks with a seed derived from the recipe's `seed` and what makes the
request distinct (a round, a row's text): the same recipe asks the same questions, and a
second build is served from the memo.
"""

from __future__ import annotations

import re
from typing import Any

from dcc.errors import DccError
from dcc.ops.base import HelperCode, P, RunContext
from dcc.ops.models import GenerationConfig
from dcc.ops.prompted import UsesModel
from dcc.ops.rouge import UsesRouge

# Modules whose functions decide what a generator outputs: their source is part of every
# generator's code fingerprint (the engine fingerprints class sources only).
HELPER_MODULES = ("dcc.ops.textgen", "dcc.ops.rouge")


class SynthesisError(DccError):
    """A generator cannot run as configured (no chat template for magpie, no seed
    instructions); raised at run time, when the engine names the node."""

    exit_code = 3


def derive_seed(*parts: Any) -> int:
    """The seed of a request distinguished by `parts`: the recipe's seed and a round, a
    row (`dcc.ops.models.memo.request_seed` of the list of parts).

    >>> derive_seed(0, "round", 1) == derive_seed(0, "round", 1)
    True
    >>> derive_seed(0, "round", 1) != derive_seed(0, "round", 2)
    True
    """
    from dcc.ops.models.memo import request_seed

    return request_seed(list(parts))


def sampling(temperature: float, top_p: float, max_tokens: int, *,
             prefix: str = "", what: str = "") -> tuple[P, ...]:
    """The sampling parameters of a generator, with the method's published defaults."""
    about = f" for the {what}" if what else ""
    return (
        P(f"{prefix}temperature", "float", temperature,
          doc=f"sampling temperature{about} (0 = greedy)", min=0.0, max=2.0),
        P(f"{prefix}top_p", "float", top_p, doc=f"nucleus sampling mass{about}",
          min=0.0, max=1.0),
        P(f"{prefix}max_tokens", "int", max_tokens, doc=f"most tokens per reply{about}", min=1),
    )


def count(ctx: RunContext, name: str, n: int = 1) -> None:
    if n:
        ctx.stats[name] = ctx.stats.get(name, 0) + n


class Generator(HelperCode, UsesModel, UsesRouge):
    """Base of the model-calling generators: settings to a `GenerationConfig`, and a code
    fingerprint (`HelperCode`) that includes the helper modules (parsers, filters, ROUGE-L)
    whose changes change outputs, and their whole own module (prompt templates, module-level
    parsers)."""

    p: dict[str, Any]

    def gen_config(self, seed: int, *, prefix: str = "", n: int = 1,
                   stop: tuple[str, ...] = ()) -> GenerationConfig:
        return GenerationConfig(max_new_tokens=self.p[f"{prefix}max_tokens"],
                                temperature=self.p[f"{prefix}temperature"],
                                top_p=self.p[f"{prefix}top_p"], n=n, seed=seed, stop=stop)

    @classmethod
    def code_helpers(cls) -> tuple[str, ...]:
        return (*HELPER_MODULES, cls.__module__)


# -- parsing -------------------------------------------------------------------------------------
_WS = re.compile(r"\s+")
_ITEM = re.compile(r"(?:^|\n)[ \t]*(\d{1,3})[ \t]*[.)][ \t]+")
_LABEL = re.compile(r"^\s*(?:#+\s*)?(?:\*\*)?(?:new |rewritten |created |evolved )?"
                    r"(?:instruction|prompt|question|task)(?:\*\*)?\s*(?:#+\s*)?[:：]\s*",
                    re.IGNORECASE)
_PREAMBLE = re.compile(r"^\s*(?:sure|certainly|of course|okay|ok|here(?:'s| is| are))\b"
                       r"[^\n]*:\s*\n", re.IGNORECASE)
_QUOTES = (('"', '"'), ("'", "'"), ("\u201c", "\u201d"), ("`", "`"))


def one_line(text: str) -> str:
    """Whitespace runs to one space, stripped: how Self-Instruct prints a task in a list."""
    return _WS.sub(" ", text).strip()


def numbered_items(reply: str, first_unnumbered: bool) -> list[str]:
    """The items of a numbered list in a model's reply, each on one line.

    `first_unnumbered`: the prompt ended with the next item's number ("9."), so the reply's
    text before the first number is that item (a completion model continues the list);
    otherwise it is a preamble ("Sure, here are more tasks:") and is dropped.

    >>> numbered_items(" Name a fruit.\\n10. List three\\n  colors.\\n11 . x", True)
    ['Name a fruit.', 'List three colors.', 'x']
    >>> numbered_items("Here you go:\\n9) Sort the list.\\n10. Add two numbers.", False)
    ['Sort the list.', 'Add two numbers.']
    """
    marks = list(_ITEM.finditer(reply))
    items = []
    if first_unnumbered:
        items.append(reply[:marks[0].start()] if marks else reply)
    for i, m in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(reply)
        items.append(reply[m.end():end])
    return [t for t in (one_line(x) for x in items) if t]


def clean_generated(reply: str) -> str:
    """A generated instruction from a reply: stripped, without a "Here is ...:" first line, a
    leading "Instruction:"-style label or quotes around the whole text.

    >>> clean_generated('Sure! Here is the rewritten prompt:\\n"Explain how tides work."')
    'Explain how tides work.'
    >>> clean_generated("Instruction: Name three rivers in Asia.")
    'Name three rivers in Asia.'
    """
    text = _PREAMBLE.sub("", reply, count=1).strip()
    text = _LABEL.sub("", text, count=1).strip()
    for left, right in _QUOTES:
        if len(text) > 1 and text.startswith(left) and text.endswith(right) and \
                left not in text[1:-1]:
            text = text[1:-1].strip()
    return text


# Common English function words, for "the text is only stop words and punctuation".
STOP_WORDS = frozenset("""
a about above after again against all am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further
had has have having he her here hers herself him himself his how i if in into is it its itself
just me more most my myself no nor not now of off on once only or other our ours ourselves out
over own same she should so some such than that the their theirs them themselves then there
these they this those through to too under until up very was we were what when where which
while who whom why will with would you your yours yourself yourselves s t d ll m o re ve y
""".split())


def only_stop_words(text: str) -> bool:
    """True when the text has no word beyond stop words (punctuation only counts too).

    >>> only_stop_words("... and then?!"), only_stop_words("Explain tides.")
    (True, False)
    """
    from dcc.ops.rouge import tokenize

    return all(t in STOP_WORDS for t in tokenize(text))


def has_word(text: str, word: str) -> bool:
    """Whole-word, case-insensitive match (Self-Instruct's find_word_in_string)."""
    return re.search(rf"\b{re.escape(word)}\b", text, re.IGNORECASE) is not None


# -- chat templates ------------------------------------------------------------------------------
SENTINEL = "DCCSENTINELQUERY"


def split_chat_template(tokenizer: Any, system: str | None) -> tuple[str, str] | None:
    """(pre-query, end-of-turn) of a chat template: the text a chat model sees before a
    user's message, and the text right after it (the end of the user turn, a stop string).
    Found by rendering a conversation whose user message is a sentinel and cutting there.
    None when the tokenizer has no chat template.

    When the tokenizer adds its BOS token by itself on encoding, a BOS at the start of the
    rendered text is removed from the pre-query, so the model sees one BOS, not two.
    """
    if not getattr(tokenizer, "chat_template", None):
        return None
    messages = ([{"role": "system", "content": system}] if system else []) + \
        [{"role": "user", "content": SENTINEL}]
    try:
        text = tokenizer.apply_chat_template(messages, tokenize=False,
                                             add_generation_prompt=False)
    except Exception as e:  # noqa: BLE001 - a template is the model's code; report, never crash
        raise SynthesisError(f"the model's chat template failed to render a user turn: "
                             f"{type(e).__name__}: {e}") from None
    at = text.find(SENTINEL) if isinstance(text, str) else -1
    if at < 0:
        raise SynthesisError("the model's chat template does not show the user's message "
                             "verbatim; give pre_query=... explicitly")
    pre, post = text[:at], text[at + len(SENTINEL):]
    bos = getattr(tokenizer, "bos_token", None)
    if bos and pre.startswith(bos) and _adds_bos(tokenizer):
        pre = pre[len(bos):]
    return pre, post.strip().split("\n")[0].strip()


def _adds_bos(tokenizer: Any) -> bool:
    try:
        ids = tokenizer("a", add_special_tokens=True)["input_ids"]
    except Exception:  # noqa: BLE001
        return False
    return bool(ids) and ids[0] == getattr(tokenizer, "bos_token_id", None)


__all__ = ["Generator", "STOP_WORDS", "SynthesisError", "clean_generated", "count",
           "derive_seed", "has_word", "numbered_items", "one_line", "only_stop_words",
           "sampling", "split_chat_template"]
