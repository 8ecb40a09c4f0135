"""synthesize.evol_instruct: seeded method choice, the prompts, the elimination step and the
shape of evolved rows, with a scripted model."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from conftest import text_of

from dcc.errors import ParamError
from dcc.ops.synth_evol import EVOLUTIONS, EvolInstruct, eliminated, parse_equal

REF = "openai:http://127.0.0.1:1/v1#m"


def run_rows(op: Any, rows: list[dict[str, Any]], ctx: Any) -> list[dict[str, Any]]:
    """What the executor makes of process(): results merged into their rows, None dropped."""
    return [{**row, **r} for row, r in zip(rows, op.process(rows, ctx)) if r is not None]


def given(prompt: Any) -> str:
    text = text_of(prompt)
    marker = "#The Given Prompt#:\n" if "#The Given Prompt#:\n" in text else "#Given Prompt#:\n"
    return text.split(marker)[1].split("\n\n#")[0]


def test_each_row_is_evolved_once_by_a_seeded_method(scripted, attach, ctx) -> None:
    rows = [{"instruction": f"Explain topic number {i} to a beginner.", "output": "old",
             "_parent": f"p{i}", "id": i} for i in range(60)]
    model = scripted(lambda p, c, k: given(p) + " Use exactly three examples from history.")
    op = attach(EvolInstruct(model=REF, seed=3), model)
    out = run_rows(op, rows, ctx())
    assert len(out) == 60 and len(model.requests) == 60
    for row, src in zip(out, rows):
        assert row["instruction"] == src["instruction"] + " Use exactly three examples from " \
            "history."
        assert row["output"] is None and row["_parent"] == src["_parent"] and row["id"] == src["id"]
        assert row["_evol"] == op.choose(src["instruction"])[0]
    assert set(Counter(r["_evol"] for r in out)) == set(EVOLUTIONS)  # all six get used
    again = run_rows(attach(EvolInstruct(model=REF, seed=3), model), rows[:5], ctx())
    assert [r["_evol"] for r in again] == [r["_evol"] for r in out[:5]]
    other = [EvolInstruct(model=REF, seed=4).choose(r["instruction"])[0] for r in rows]
    assert other != [r["_evol"] for r in out]


def test_the_prompts_follow_the_papers_templates(scripted, attach, ctx) -> None:
    op = EvolInstruct(model=REF)
    for method in EVOLUTIONS:
        op.p["evolutions"] = [method]
        name, prompt = op.choose("Name three rivers.")
        assert name == method and "Name three rivers." in prompt
        if method == "breadth":
            assert "act as a Prompt Creator" in prompt and prompt.endswith("#Created Prompt#:\n")
        else:
            assert "act as a Prompt Rewriter" in prompt
            assert prompt.endswith("#Rewritten Prompt#:\n")
    op.p["evolutions"] = ["complicate_input"]
    formats = {op.choose(f"Task {i}")[1].split("Please add ")[1].split(" as input")[0]
               for i in range(40)}
    assert {"XML data", "JSON data", "Python code"} <= formats


def test_requests_are_chat_messages_with_the_settings(scripted, attach, ctx) -> None:
    model = scripted(lambda p, c, k: "Name three rivers in Asia longer than 2000 km.")
    op = attach(EvolInstruct(model=REF, seed=9, system="Be terse.", evolutions=["concretize"]),
                model)
    op.process([{"instruction": "Name three rivers."}], ctx())
    prompt, config = model.requests[0]
    assert prompt[0] == {"role": "system", "content": "Be terse."}
    assert "replace general concepts with more specific concepts" in prompt[1]["content"]
    assert (config.temperature, config.top_p, config.max_new_tokens, config.seed) == \
        (1.0, 0.95, 1024, 9)


@pytest.mark.parametrize(("reply", "reason"), [
    ("", "empty"),
    ("   \n ", "empty"),
    ("Name three rivers!", "no_gain"),
    ("Here is the rewritten prompt based on the given prompt: name rivers", "copied_prompt"),
    ("Name three rivers, as the #Given Prompt# asks, in Asia.", "copied_prompt"),
    ("I'm sorry, but I cannot make this prompt more complex.", "refused"),
    ("... and the, of it?", "no_content"),
])
def test_failed_evolutions_are_dropped_and_counted(reply, reason, scripted, attach,
                                                   ctx) -> None:
    op = attach(EvolInstruct(model=REF), scripted(lambda p, c, k: reply))
    c = ctx()
    assert op.process([{"instruction": "Name three rivers."}], c) == [None]
    assert c.stats[reason] == 1 and c.stats.get("evolved", 0) == 0


def test_a_label_or_preamble_is_removed_not_counted_as_copying(scripted, attach, ctx) -> None:
    for reply in ("#Rewritten Prompt#:\nName three Asian rivers longer than 2000 km.",
                  "Sure! Here it is:\n\"Name three Asian rivers longer than 2000 km.\""):
        op = attach(EvolInstruct(model=REF), scripted(lambda p, c, k, r=reply: r))
        [res] = op.process([{"instruction": "Name three rivers."}], ctx())
        assert res["instruction"] == "Name three Asian rivers longer than 2000 km."


def test_null_rows_are_dropped_and_the_rest_keep_order(scripted, attach, ctx) -> None:
    op = attach(EvolInstruct(model=REF), scripted(lambda p, c, k: given(p) + " In French."))
    c = ctx()
    rows = [{"instruction": None}, {"instruction": "Say hi."}, {"instruction": "  "},
            {"instruction": "Say bye."}]
    out = op.process(rows, c)
    assert [r and r["instruction"] for r in out] == [None, "Say hi. In French.", None,
                                                     "Say bye. In French."]
    assert c.stats["null_input"] == 2 and c.stats["evolved"] == 2


def test_the_equality_judge(scripted, attach, ctx) -> None:
    verdicts = {"Say hi. Politely.": "Equal", "Say bye. Politely.": "Not Equal",
                "Say yo. Politely.": "Hmm, hard to say."}

    def reply(prompt: Any, config: Any, k: int) -> str:
        text = text_of(prompt)
        if text.startswith("Here are two instructions"):
            second = text.split("The Second Prompt: ")[1].split("\n")[0]
            return verdicts[second]
        return given(prompt) + " Politely."

    model = scripted(reply)
    op = attach(EvolInstruct(model=REF, judge_equal=True), model)
    c = ctx()
    out = op.process([{"instruction": t} for t in ("Say hi.", "Say bye.", "Say yo.")], c)
    assert [r and r["instruction"] for r in out] == [None, "Say bye. Politely.",
                                                     "Say yo. Politely."]
    assert (c.stats["judged_equal"], c.stats["judge_unparsed"], c.stats["evolved"]) == (1, 1, 2)
    judge_config = model.requests[-1][1]
    assert (judge_config.temperature, judge_config.max_new_tokens) == (0.0, 16)


def test_helpers() -> None:
    assert eliminated("Add two numbers.", "Add two numbers and explain each step.", 0.95) is None
    long = " ".join(f"w{i}" for i in range(50))
    assert eliminated(long, long + " extra", 0.95) == "no_gain"
    assert eliminated(long, long + " extra", 0.995) is None  # F = 100/101
    assert eliminated("Shorten the given prompt.", "Shorten the given prompt to ten words.",
                      0.95) is None  # the original's own words are no copy
    assert parse_equal("**Not Equal**") is False and parse_equal("Equal") is True
    assert parse_equal("They are not equal.") is False


def test_parameter_checks_and_columns() -> None:
    with pytest.raises(ParamError, match="unknown evolution 'harder'"):
        EvolInstruct(model=REF, evolutions=["deepen", "harder"])
    with pytest.raises(ParamError, match="at least one"):
        EvolInstruct(model=REF, evolutions=[])
    op = EvolInstruct(model=REF, field="prompt", response="answer")
    assert op.reads() == ["prompt"] and op.writes() == ["prompt", "_evol", "answer"]
    assert EvolInstruct(model=REF, response="").writes() == ["instruction", "_evol"]
    assert (op.stochastic, op.expensive, op.rowwise) == (True, True, True)
