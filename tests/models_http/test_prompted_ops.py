"""select.judge and rewrite.llm in process: prompts, parameters, results and stats.

The operators resolve `openai:` references to the live fake server, as they do in a build;
back-off is switched off through the environment so scripted failures cost nothing.
"""

from __future__ import annotations

import sys
from typing import Any

import pytest
from fake_openai import FakeOpenAI

from dcc.errors import ParamError
from dcc.ops import get
from dcc.ops.base import RunContext
from dcc.ops.models.openai_http import OpenAIBackend
from dcc.ops.prompted import (
    DEFAULT_RUBRIC,
    PromptError,
    RewriteLLM,
    SelectJudge,
    load_model,
)
from dcc.schema import Schema


@pytest.fixture(autouse=True)
def _fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DCC_OPENAI_BACKOFF_BASE", "0")
    monkeypatch.setenv("DCC_OPENAI_MAX_ATTEMPTS", "3")


def judge(fake: FakeOpenAI, **kw: Any) -> SelectJudge:
    return SelectJudge(model=fake.ref(), **kw)


def user_prompts(fake: FakeOpenAI) -> list[str]:
    return [p["body"]["messages"][-1]["content"] for p in fake.posts()]


ROWS = [{"instruction": "Add 2 and 2.", "output": "4"},
        {"instruction": "Name a colour.", "output": "Blue"},
        {"instruction": "Say hi.", "output": "no"},
        {"instruction": "Spell cat.", "output": "c-a-t"}]
VERDICTS = {"Add 2": "Score: 9/10\nCorrect.", "Name a": "**7**", "Say hi": "Rating: 1 out of 5",
            "Spell": "I cannot judge this."}


def scripted(body: dict[str, Any], index: int) -> str:
    text = body["messages"][-1]["content"]
    return next(v for k, v in VERDICTS.items() if k in text)


# -- registry and prompts ------------------------------------------------------------------------
def test_both_operators_are_registered() -> None:
    assert get("select.judge") is SelectJudge and get("rewrite.llm") is RewriteLLM
    assert SelectJudge.expensive and SelectJudge.stochastic and RewriteLLM.expensive


def test_the_default_judge_prompt_shows_fields_rubric_and_scale() -> None:
    op = SelectJudge(model="openai:http://127.0.0.1:9/v1#m", fields=["instruction", "output"],
                     scale=5, rubric="whether the output is polite.")
    text = op.prompt({"output": "Sure.", "instruction": "Be nice.", "other": "hidden"})
    assert "scale from 0 to 5" in text and 'in the form "Score: N/5"' in text
    assert "Judge whether the output is polite." in text
    assert text.index("[instruction]\nBe nice.\n") < text.index("[output]\nSure.\n")
    assert "hidden" not in text


def test_without_fields_the_judge_shows_every_public_column_as_text() -> None:
    op = SelectJudge(model="openai:http://127.0.0.1:9/v1#m")
    text = op.prompt({"q": "Why?", "tags": ["a", "é"], "n": None, "_judge": 3.0})
    assert '[q]\nWhy?\n' in text and '[tags]\n["a", "é"]\n' in text and "[n]\n\n" in text
    assert "_judge" not in text and DEFAULT_RUBRIC in text
    assert op.reads() == []  # every column can change the prompt: the whole row is hashed


def test_a_judge_template_reads_columns_and_its_own_values() -> None:
    op = SelectJudge(model="openai:http://127.0.0.1:9/v1#m", scale=4,
                     template="Q: {{ instruction }}\nA: {{ output }}\n"
                              "{{ rubric }} (0-{{ scale }}) {{ instances[0].output }}",
                     rubric="Be strict.")
    assert op.reads() == ["instances", "instruction", "output"]
    row = {"instruction": "I", "output": None, "instances": [{"output": "O"}], "x": 1}
    assert op.prompt(row) == "Q: I\nA: \nBe strict. (0-4) O"


def test_a_missing_column_is_an_error_not_an_empty_string() -> None:
    op = SelectJudge(model="openai:http://127.0.0.1:9/v1#m", template="{{ question }}")
    with pytest.raises(PromptError, match="'question' is undefined"):
        op.prompt({"instruction": "I"})


@pytest.mark.parametrize("template", [
    "{{ instruction.__class__.__mro__ }}",
    "{{ instruction.__class__.__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{% for i in range(3) %}{{ i.__class__ }}{% endfor %}",
    "{{ instances.append(1) }}",
])
def test_the_sandbox_refuses_python_internals(template: str) -> None:
    op = SelectJudge(model="openai:http://127.0.0.1:9/v1#m", template=template)
    with pytest.raises(PromptError, match="SecurityError: access to attribute .* is unsafe"):
        op.prompt({"instruction": "I", "instances": [], "cycler": "x"})


def test_template_syntax_is_checked_at_construction() -> None:
    with pytest.raises(ParamError, match=r"not a valid Jinja2 template.*line 2"):
        SelectJudge(model="openai:http://127.0.0.1:9/v1#m", template="ok\n{% if x %}")
    with pytest.raises(ParamError, match="not a valid Jinja2 template"):
        RewriteLLM(field="t", model="openai:http://127.0.0.1:9/v1#m", template="{{ t ")


def test_template_columns_are_checked_against_the_schema() -> None:
    op = SelectJudge(model="openai:http://127.0.0.1:9/v1#m", template="{{ questoin }}")
    with pytest.raises(ParamError, match="reads column 'questoin'.*did you mean 'question'"):
        op.output_schema([Schema({"question": "str"})])
    assert op.output_schema([Schema.unknown()]).has("_judge")  # an open schema may have it


@pytest.mark.parametrize("cls, kw, words", [
    (SelectJudge, {"field": "a", "fields": ["b"]}, "not both"),
    (SelectJudge, {"field": "a", "template": "{{ a }}"}, "'template' or 'field'/'fields'"),
    (SelectJudge, {"min_score": 11}, "must be <= scale"),
    (SelectJudge, {"keep_score": False}, "goes nowhere"),
    (SelectJudge, {"temperature": -1.0}, "'temperature' must be >= 0"),
    (RewriteLLM, {"field": "t"}, "give 'instruction' or 'template'"),
    (RewriteLLM, {"field": "t", "instruction": "x", "template": "{{ t }}"}, "exactly one"),
    (RewriteLLM, {"field": "t", "instruction": "x", "into": "u", "keep_original": True},
     "keep_original"),
])
def test_parameter_checks(cls: type, kw: dict[str, Any], words: str) -> None:
    with pytest.raises(ParamError, match=words):
        cls(model="openai:http://127.0.0.1:9/v1#m", **kw)


def test_a_malformed_openai_reference_is_caught_at_construction() -> None:
    with pytest.raises(ParamError, match="names no model"):
        SelectJudge(model="openai:http://127.0.0.1:9/v1")
    with pytest.raises(ParamError, match="names no model"):  # as the compiler passes it
        SelectJudge(model="/recipes/openai:http:/127.0.0.1:9/v1")


def test_the_model_as_the_compiler_joined_it_to_the_recipe_folder(fake: FakeOpenAI) -> None:
    joined = f"/recipes/here/openai:http:/127.0.0.1:{fake.port}/v1#m"  # os.path.normpath'd
    op = SelectJudge(model=joined, field="instruction")
    assert "model" not in op.key_params()  # a path parameter: it enters the key as identity
    assert op.model_identity().startswith(f"openai:{fake.url}#m ")


def test_without_the_resolver_endpoints_still_load(fake: FakeOpenAI,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "dcc.ops.models.resolve", None)  # as if not installed
    fake.reply = scripted
    op = judge(fake, field="instruction")
    assert op.process(ROWS[:1], RunContext("j")) == [{"_judge": 9.0}]
    assert isinstance(op.backend(), OpenAIBackend)
    with pytest.raises(ParamError, match="cannot load local models"):
        load_model("/recipes/tiny", {})


# -- select.judge against the server -------------------------------------------------------------
def test_judge_keeps_rows_at_or_above_min_score(fake: FakeOpenAI) -> None:
    fake.reply = scripted
    ctx = RunContext("j")
    out = judge(fake, fields=["instruction", "output"], min_score=7).process(ROWS, ctx)
    assert out == [{"_judge": 9.0}, {"_judge": 7.0}, None, None]  # 2/10 dropped, None dropped
    assert ctx.stats == {"unparsed": 1} and ctx.model_calls == 4


def test_judge_without_min_score_keeps_every_row_and_null_scores(fake: FakeOpenAI) -> None:
    fake.reply = scripted
    ctx = RunContext("j")
    out = judge(fake, fields=["instruction"], keep_raw=True, into="q").process(ROWS, ctx)
    assert [r["q"] for r in out] == [9.0, 7.0, 2.0, None]
    assert out[3]["q_raw"] == "I cannot judge this." and ctx.stats["unparsed"] == 1


def test_settings_and_seed_reach_the_server(fake: FakeOpenAI) -> None:
    fake.reply = scripted
    op = judge(fake, fields=["instruction"], temperature=0.7, max_tokens=33, seed=1234,
               system="You are a strict grader.")
    op.process(ROWS[:1], RunContext("j"))
    body = fake.posts("/v1/chat/completions")[0]["body"]
    assert (body["temperature"], body["max_tokens"], body["seed"], body["n"]) == \
        (0.7, 33, 1234, 1)
    assert body["messages"][0] == {"role": "system", "content": "You are a strict grader."}
    assert body["messages"][1]["role"] == "user" and "Add 2 and 2." in user_prompts(fake)[0]


def test_the_default_temperature_is_zero_and_no_system_message(fake: FakeOpenAI) -> None:
    fake.reply = scripted
    judge(fake, field="instruction").process(ROWS[:1], RunContext("j"))
    body = fake.posts()[0]["body"]
    assert body["temperature"] == 0.0 and body["seed"] == 0
    assert [m["role"] for m in body["messages"]] == ["user"]


def test_settings_are_in_the_key_and_the_model_identity_comes_from_the_server(
        fake: FakeOpenAI) -> None:
    base = judge(fake, field="instruction")
    for change in ({"temperature": 0.5}, {"max_tokens": 10}, {"seed": 1}, {"rubric": "r"}):
        assert judge(fake, field="instruction", **change).key_params() != base.key_params()
    ident = base.model_identity()
    assert ident.startswith(f"openai:{fake.url}#m ") and '"owned_by":"fake"' in ident
    assert base.model_identity() == ident
    assert len([r for r in fake.requests if r["method"] == "GET"]) == 1


def test_retries_show_in_the_stats(fake: FakeOpenAI) -> None:
    fake.reply = scripted
    fake.push(("status", 503))
    ctx = RunContext("j")
    judge(fake, field="instruction").process(ROWS[:1], ctx)
    assert ctx.stats["http_retries"] == 1 and ctx.model_calls == 1


# -- rewrite.llm against the server --------------------------------------------------------------
def rewriter(fake: FakeOpenAI, **kw: Any) -> RewriteLLM:
    kw.setdefault("instruction", "Make it formal.")
    return RewriteLLM(field="t", model=fake.ref(), **kw)


def test_rewrite_replaces_the_field(fake: FakeOpenAI) -> None:
    fake.reply = lambda body, i: "Here is the rewritten text:\nGood evening. " + \
        body["messages"][-1]["content"].split("<text>\n")[1].split("\n</text>")[0]
    ctx = RunContext("r")
    out = rewriter(fake).process([{"t": "hey"}, {"t": "yo"}], ctx)
    assert out == [{"t": "Good evening. hey"}, {"t": "Good evening. yo"}]
    assert ctx.stats == {"rewritten": 2} and ctx.model_calls == 2
    assert user_prompts(fake)[0].startswith("Make it formal.\n")


def test_rewrite_into_another_column_or_keeping_the_original(fake: FakeOpenAI) -> None:
    fake.reply = lambda body, i: "NEW"
    assert rewriter(fake, into="u").process([{"t": "old"}], RunContext("r")) == [{"u": "NEW"}]
    op = rewriter(fake, keep_original=True)
    assert op.process([{"t": "old"}], RunContext("r")) == [{"t": "NEW", "_orig_t": "old"}]
    assert op.writes() == ["t", "_orig_t"]


def test_empty_and_refusing_replies_keep_the_original(fake: FakeOpenAI) -> None:
    replies = {"a": "   ", "b": "I'm sorry, but I can't help with that.", "c": "fine"}
    fake.reply = lambda body, i: replies[body["messages"][-1]["content"].split("<text>\n")[1][0]]
    ctx = RunContext("r")
    out = rewriter(fake, into="u").process([{"t": "a1"}, {"t": "b1"}, {"t": "c1"}], ctx)
    assert out == [{"u": "a1"}, {"u": "b1"}, {"u": "fine"}]
    assert ctx.stats == {"empty": 1, "refused": 1, "rewritten": 1}


def test_a_null_field_is_not_sent(fake: FakeOpenAI) -> None:
    fake.reply = lambda body, i: "X"
    ctx = RunContext("r")
    out = rewriter(fake, keep_original=True).process([{"t": None}, {"t": "a"}], ctx)
    assert out == [{"t": None, "_orig_t": None}, {"t": "X", "_orig_t": "a"}]
    assert len(fake.posts()) == 1 and ctx.model_calls == 1 and ctx.stats["null_input"] == 1


def test_a_rewrite_template(fake: FakeOpenAI) -> None:
    fake.reply = lambda body, i: "ok"
    op = rewriter(fake, instruction=None,
                  template="Improve the answer to '{{ q }}':\n{{ t }}")
    assert op.reads() == ["q", "t"]
    op.process([{"q": "Why?", "t": "because"}], RunContext("r"))
    assert user_prompts(fake) == ["Improve the answer to 'Why?':\nbecause"]
