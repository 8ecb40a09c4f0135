"""synthesize.backtranslate: prompts (default chat, or a backward model's raw template), the
instruction column and `_orig_<into>`, and what is dropped, with a scripted model."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import text_of

from dcc.errors import ParamError
from dcc.ops.synth_backtranslate import Backtranslate
from dcc.schema import Schema

REF = "openai:http://127.0.0.1:1/v1#m"


def merged(op: Any, rows: list[dict[str, Any]], ctx: Any) -> list[dict[str, Any]]:
    return [{**row, **r} for row, r in zip(rows, op.process(rows, ctx)) if r is not None]


def test_default_prompt_and_output_columns(scripted, attach, ctx) -> None:
    model = scripted(lambda p, c, k: 'Instruction: "What is the capital of France?"')
    op = attach(Backtranslate(model=REF, seed=4), model)
    rows = [{"output": "Paris is the capital of France.", "id": 1}]
    assert merged(op, rows, ctx()) == [{"output": "Paris is the capital of France.", "id": 1,
                                        "instruction": "What is the capital of France?"}]
    prompt, config = model.requests[0]
    assert prompt[-1]["role"] == "user"
    assert prompt[-1]["content"].endswith("Response:\nParis is the capital of France.\n\n"
                                          "Instruction:")
    assert (config.temperature, config.max_new_tokens, config.seed) == (0.0, 256, 4)


def test_an_existing_instruction_moves_to_orig(scripted, attach, ctx) -> None:
    op = attach(Backtranslate(model=REF), scripted(lambda p, c, k: "Name the capital."))
    rows = [{"instruction": "old one", "output": "Paris."}]
    assert merged(op, rows, ctx()) == [{"instruction": "Name the capital.", "output": "Paris.",
                                        "_orig_instruction": "old one"}]
    schema = op.output_schema([Schema({"instruction": "str", "output": "str"})])
    assert schema.columns == {"instruction": "str", "output": "str", "_orig_instruction": "str"}
    assert "_orig_instruction" not in op.output_schema([Schema({"output": "str"})]).columns


def test_a_backward_models_template_as_raw_text(scripted, attach, ctx) -> None:
    model = scripted(lambda p, c, k: " Summarize the article.")
    op = attach(Backtranslate(model=REF, field="text", into="prompt", chat=False,
                              template="<s>{{ response }}\n[{{ lang }}] Question:"), model)
    out = merged(op, [{"text": "A long article.", "lang": "en"}], ctx())
    assert out[0]["prompt"] == "Summarize the article."
    assert model.requests[0][0] == "<s>A long article.\n[en] Question:"
    assert op.reads() == ["lang", "prompt", "text"]


@pytest.mark.parametrize(("row", "reply", "reason"), [
    ({"output": None}, "x", "null_input"),
    ({"output": "   "}, "x", "null_input"),
    ({"output": "Paris."}, "   ", "empty"),
    ({"output": "Paris."}, "Instruction:", "empty"),
    ({"output": "Paris."}, "I'm sorry, but I can't help with that.", "refused"),
])
def test_unusable_rows_are_dropped_and_counted(row, reply, reason, scripted, attach,
                                               ctx) -> None:
    op = attach(Backtranslate(model=REF), scripted(lambda p, c, k: reply))
    c = ctx()
    assert op.process([row], c) == [None]
    assert c.stats[reason] == 1


def test_only_sendable_rows_are_sent_and_order_is_kept(scripted, attach, ctx) -> None:
    model = scripted(lambda p, c, k: "Q about " + text_of(p).split("Response:\n")[1][:5])
    op = attach(Backtranslate(model=REF), model)
    rows = [{"output": "alpha text"}, {"output": None}, {"output": "gamma text"}]
    assert [r["instruction"] for r in merged(op, rows, ctx())] == ["Q about alpha",
                                                                    "Q about gamma"]
    assert len(model.requests) == 2


def test_parameter_checks() -> None:
    with pytest.raises(ParamError, match="differ"):
        Backtranslate(model=REF, field="x", into="x")
    with pytest.raises(ParamError, match="Jinja2"):
        Backtranslate(model=REF, template="{{ oops")
    with pytest.raises(ParamError, match="reads column 'lang'"):
        Backtranslate(model=REF, template="{{ lang }}").output_schema([Schema({"output": "str"})])
