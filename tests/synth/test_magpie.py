"""synthesize.magpie: the pre-query from a chat template or a parameter, slots and system
prompts, cleaning, dedup, bounded sampling and responses, with a scripted model."""

from __future__ import annotations

import itertools
from typing import Any

import polars as pl
import pytest

from dcc.errors import ParamError
from dcc.ops.synth_magpie import Magpie
from dcc.ops.textgen import SynthesisError, derive_seed, split_chat_template

REF = "openai:http://127.0.0.1:1/v1#m"
PRE = "<|im_start|>user\n"


class ChatML:
    """A tokenizer with a ChatML chat template (as Qwen's), optionally a BOS it adds itself."""

    chat_template = "{% for m in messages %}...{% endfor %}"
    bos_token, bos_token_id = "<s>", 1

    def __init__(self, adds_bos: bool = False) -> None:
        self.adds_bos = adds_bos

    def apply_chat_template(self, messages: list[dict[str, str]], tokenize: bool,
                            add_generation_prompt: bool) -> str:
        assert tokenize is False and add_generation_prompt is False
        text = "<s>" if self.adds_bos else ""
        if messages[0]["role"] != "system":
            messages = [{"role": "system", "content": "You are helpful."}, *messages]
        return text + "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n"
                              for m in messages)

    def __call__(self, text: str, add_special_tokens: bool = True) -> dict[str, list[int]]:
        return {"input_ids": ([1] if self.adds_bos and add_special_tokens else []) + [7]}


def numbered(prefix: str = "Question"):
    counter = itertools.count()
    return lambda p, c, k: f"{prefix} {next(counter)}: how do tides work?<|im_end|>\nmore"


def test_pre_query_from_the_chat_template(scripted, attach, ctx) -> None:
    model = scripted(numbered(), tokenizer=ChatML())
    op = attach(Magpie(model=REF, n=3, seed=2), model)
    c = ctx()
    out = op.run([pl.DataFrame({"x": [1]})], c)
    assert out["instruction"].to_list() == [f"Question {i}: how do tides work?"
                                            for i in range(3)]
    [(prompt, config)] = model.requests
    assert prompt == "<|im_start|>system\nYou are helpful.<|im_end|>\n" + PRE
    assert (config.n, config.temperature, config.top_p, config.max_new_tokens) == \
        (3, 1.0, 1.0, 256)
    assert config.stop == ("<|im_end|>",) and config.seed == derive_seed(2, "magpie.round", 0)
    assert c.stats["requests"] == 1 and c.stats["kept"] == 3


def test_a_bos_the_tokenizer_adds_is_not_doubled() -> None:
    pre, post = split_chat_template(ChatML(adds_bos=True), "Sys")
    assert pre == "<|im_start|>system\nSys<|im_end|>\n" + PRE and post == "<|im_end|>"
    assert split_chat_template(object(), None) is None


def test_explicit_pre_query_and_post_query(scripted, attach, ctx) -> None:
    model = scripted(lambda p, c, k: f" Tell me a fact about owls number {k}.[/INST]")
    op = attach(Magpie(model=REF, n=2, pre_query="[INST] ", post_query="[/INST]"), model)
    out = op.run([pl.DataFrame({"x": [1]})], ctx())
    assert out["instruction"].to_list() == ["Tell me a fact about owls number 0.",
                                            "Tell me a fact about owls number 1."]
    assert model.requests[0][0] == "[INST] " and model.requests[0][1].stop == ("[/INST]",)


def test_no_template_and_no_pre_query_is_a_clear_error(scripted, attach, ctx) -> None:
    op = attach(Magpie(model=REF, n=2), scripted(lambda p, c, k: "x"))
    with pytest.raises(SynthesisError, match=r"no chat template.*pre_query="):
        op.run([pl.DataFrame({"x": [1]})], ctx())


def test_empty_and_duplicate_replies_are_dropped_within_a_budget(scripted, attach,
                                                                 ctx) -> None:
    replies = itertools.cycle(["  ", "What is 2+2?", "what  is 2+2?", "Name a bird."])
    model = scripted(lambda p, c, k: next(replies), tokenizer=ChatML())
    op = attach(Magpie(model=REF, n=5), model)
    c = ctx()
    out = op.run([pl.DataFrame({"x": [1]})], c)
    assert out["instruction"].to_list() == ["What is 2+2?", "Name a bird."]
    samples = sum(cfg.n for _, cfg in model.requests)
    assert samples == 10  # the default budget: 2n samples
    assert (c.stats["empty"], c.stats["duplicate"], c.stats["kept"]) == (3, 5, 2)


def test_a_greedy_model_repeating_itself_stops(scripted, attach, ctx) -> None:
    model = scripted(lambda p, c, k: "Same question?", tokenizer=ChatML())
    op = attach(Magpie(model=REF, n=4, max_requests=6, temperature=0.0), model)
    out = op.run([pl.DataFrame({"x": [1]})], ctx())
    assert out.height == 1 and sum(cfg.n for _, cfg in model.requests) == 6


def test_slots_carry_system_prompts_and_n_defaults_to_rows(scripted, attach, ctx) -> None:
    def reply(prompt: str, config: Any, k: int) -> str:
        system = prompt.split("<|im_start|>system\n")[1].split("<|im_end|>")[0]
        return f"A {system} question {config.seed % 97} {k}?"

    model = scripted(reply, tokenizer=ChatML())
    slots = pl.DataFrame({"persona": ["chef", "pilot", None], "other": [1, 2, 3]})
    op = attach(Magpie(model=REF, system_field="persona"), model)
    out = op.run([slots], ctx())
    assert out.columns == ["instruction", "persona"]
    assert out["persona"].to_list() == ["chef", "pilot", None]
    assert out["instruction"][0].startswith("A chef question")
    assert out["instruction"][2].startswith("A You are helpful. question")
    assert sorted(len(p) for p, _ in model.requests) == sorted(len(p) for p in {
        p for p, _ in model.requests})  # one request per distinct system prompt
    assert op.reads() == ["persona"] and op.input_columns({"instruction"}) == {"persona"}


def test_respond_writes_the_models_answer(scripted, attach, ctx) -> None:
    def reply(prompt: Any, config: Any, k: int) -> str:
        if isinstance(prompt, list):  # the response request: chat messages
            q = prompt[-1]["content"]
            return "" if "skip" in q else f" Answer to {q} "
        return ["How do magnets work?", "Please skip this one.", "Why is ice slippery?"][k]

    model = scripted(reply, tokenizer=ChatML())
    op = attach(Magpie(model=REF, n=3, respond=True, system="Be brief."), model)
    c = ctx()
    out = op.run([pl.DataFrame({"x": [1]})], c)
    assert out.to_dicts() == [
        {"instruction": "How do magnets work?", "output": "Answer to How do magnets work?"},
        {"instruction": "Why is ice slippery?", "output": "Answer to Why is ice slippery?"}]
    assert c.stats["empty_response"] == 1
    chat, config = model.requests[-1]
    assert chat[0] == {"role": "system", "content": "Be brief."}
    assert (config.temperature, config.max_new_tokens) == (0.0, 1024)


def test_deterministic_and_memoized(scripted, attach, ctx, memo) -> None:
    model = scripted(lambda p, c, k: f"Question {c.seed} {k}?", tokenizer=ChatML())
    first, again = ctx(memo), ctx(memo)
    a = attach(Magpie(model=REF, n=4, seed=1), model).run([pl.DataFrame({"x": [1]})], first)
    b = attach(Magpie(model=REF, n=4, seed=1), model).run([pl.DataFrame({"x": [1]})], again)
    assert a.equals(b) and first.model_calls == 1 and again.model_calls == 0
    c = attach(Magpie(model=REF, n=4, seed=2), model).run([pl.DataFrame({"x": [1]})], ctx())
    assert not a.equals(c)


def test_no_rows_and_no_n_makes_nothing(scripted, attach, ctx) -> None:
    model = scripted(lambda p, c, k: "x?")
    out = attach(Magpie(model=REF), model).run([pl.DataFrame({"x": []})], ctx())
    assert out.height == 0 and out.columns == ["instruction"] and not model.requests


def test_parameter_checks() -> None:
    with pytest.raises(ParamError, match="not both"):
        Magpie(model=REF, system="a", system_field="b")
    with pytest.raises(ParamError, match="whole prefix"):
        Magpie(model=REF, pre_query="[INST]", system="a")
    with pytest.raises(ParamError, match="different"):
        Magpie(model=REF, respond=True, response="instruction")
    assert Magpie(model=REF, respond=True).output_schema([]).columns == {
        "instruction": "str", "output": "str"}
