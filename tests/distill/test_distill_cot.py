"""distill.cot in process, with scripted teachers on real GSM8K rows: the prompt, rejection
sampling against the reference answer, seeds per attempt, malformed replies, parameters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from dcc.errors import ParamError
from dcc.ops import get
from dcc.ops.base import RunContext
from dcc.ops.distill import COT_INSTRUCTION, DistillCoT
from dcc.ops.prompted import PromptError
from dcc.ops.teacher import sample_seed
from dcc.schema import Schema


def final(row: dict[str, Any]) -> str:
    return row["answer"].splitlines()[-1][5:]


def test_registered_with_its_contract() -> None:
    cls = get("distill.cot")
    assert cls is DistillCoT and cls.stochastic and cls.expensive and cls.kind == "rowpython"
    assert cls.spec("seed").default == 0 and cls.spec("attempts").max == 16


def test_rejection_sampling_keeps_the_first_rationale_that_reaches_the_reference(
        models: Callable, gsm8k: list[dict[str, Any]]) -> None:
    rows = gsm8k[:4]
    seeds = [sample_seed(3, a) for a in range(3)]
    right = {r["question"]: final(r) for r in rows}

    def reply(text: str, cfg: Any) -> str:
        question = text.split("\n\n", 1)[1]
        attempt = seeds.index(cfg.seed)
        correct = right[question]
        if question == rows[0]["question"]:  # right at once, then chatter after the answer
            return f"Work it out.\n#### {correct}\nQuestion: something else\n#### 1"
        if question == rows[1]["question"]:  # wrong, then right with formatting
            return "Guess.\n#### 0" if attempt == 0 else f"Steps.\nThe answer is ${correct}.00."
        if question == rows[2]["question"]:  # unparseable, refused, then wrong again
            return ["I am not sure.", "I'm sorry, but I can't help with that.",
                    "#### -1"][attempt]
        return ""  # always empty

    teacher = models("t", reply=reply)
    op = DistillCoT(model="t", answer="answer", attempts=3, seed=3)
    ctx = RunContext("cot")
    out = op.process([dict(r, _parent=i) for i, r in enumerate(rows)], ctx)
    assert out[0] == {"rationale": f"Work it out.\n#### {right[rows[0]['question']]}",
                      "_answer": right[rows[0]["question"]]}
    assert out[1] == {"rationale": f"Steps.\nThe answer is ${right[rows[1]['question']]}.00.",
                      "_answer": right[rows[1]["question"]]}
    assert out[2] is None and out[3] is None
    # every row is asked once; only the rows still pending are asked again, with new seeds
    assert teacher.seeds() == [seeds[0]] * 4 + [seeds[1]] * 3 + [seeds[2]] * 2
    assert ctx.stats == {"wrong_answer": 2, "unparsed": 1, "refused": 1, "empty": 3,
                         "accepted": 2, "no_rationale": 2}
    assert ctx.model_calls == 9


def test_the_default_prompt_and_the_settings_sent(models: Callable,
                                                  gsm8k: list[dict[str, Any]]) -> None:
    teacher = models("t", reply=lambda text, cfg: "#### 1")
    DistillCoT(model="t", system="You are a tutor.", max_tokens=64).process(gsm8k[:1],
                                                                          RunContext("c"))
    prompt = teacher.requests[0].prompt
    assert prompt == [{"role": "system", "content": "You are a tutor."},
                      {"role": "user", "content": f"{COT_INSTRUCTION}\n\n{gsm8k[0]['question']}"}]
    cfg = teacher.requests[0].config
    assert (cfg.temperature, cfg.max_new_tokens, cfg.seed, cfg.n) == (0.7, 64, 0, 1)
    assert '"#### <answer>"' in COT_INSTRUCTION


def test_without_a_reference_the_first_stated_answer_is_kept(models: Callable) -> None:
    replies = iter(["no answer here", "So the final answer is 12 cookies.", "#### 99"])
    models("t", reply=lambda text, cfg: next(replies))
    ctx = RunContext("c")
    out = DistillCoT(model="t").process([{"question": "How many cookies?"}], ctx)
    assert out == [{"rationale": "So the final answer is 12 cookies.", "_answer": "12"}]
    assert ctx.stats == {"unparsed": 1, "accepted": 1}


def test_text_answers_and_a_template(models: Callable) -> None:
    teacher = models("t", reply=lambda text, cfg: "It is in France.\nAnswer: **Paris**")
    op = DistillCoT(model="t", template="Where is {{ city }}? Answer in one word.",
                    answer="gold", answer_type="text", into="why", attempts=1)
    rows = [{"city": "the Louvre", "gold": "paris"}, {"city": "Big Ben", "gold": "London"}]
    ctx = RunContext("c")
    assert op.process(rows, ctx) == [{"why": "It is in France.\nAnswer: **Paris**",
                                      "_answer": "paris"}, None]
    assert teacher.requests[0].text == "Where is the Louvre? Answer in one word."
    assert op.reads() == ["city", "gold"] and op.writes() == ["why", "_answer"]


def test_rows_without_a_reference_or_a_prompt_are_not_sent(models: Callable) -> None:
    teacher = models("t", reply=lambda text, cfg: "#### 4")
    rows = [{"question": "2+2?", "answer": "#### four"}, {"question": "2+2?", "answer": None},
            {"question": " ", "answer": "4"}, {"question": None, "answer": "4"},
            {"question": "2+2?", "answer": 4}]
    ctx = RunContext("c")
    out = DistillCoT(model="t", answer="answer").process(rows, ctx)
    assert out == [None, None, None, None, {"rationale": "#### 4", "_answer": "4"}]
    assert len(teacher.requests) == 1
    assert ctx.stats == {"no_reference": 2, "empty_prompt": 2, "accepted": 1}


def test_a_missing_question_column_is_a_clear_error(models: Callable) -> None:
    models("t")
    with pytest.raises(PromptError, match="the input has no column 'question'"):
        DistillCoT(model="t").process([{"instruction": "2+2?"}], RunContext("c"))


def test_parameters_and_schema() -> None:
    m = "openai:http://127.0.0.1:9/v1#m"
    with pytest.raises(ParamError, match="attempts=4 need temperature > 0"):
        DistillCoT(model=m, temperature=0.0)
    DistillCoT(model=m, temperature=0.0, attempts=1)  # one greedy attempt is fine
    with pytest.raises(ParamError, match="'attempts' must be <= 16"):
        DistillCoT(model=m, attempts=17)
    with pytest.raises(ParamError, match="'answer_type' must be one of 'number', 'text'"):
        DistillCoT(model=m, answer_type="float")
    op = DistillCoT(model=m, answer="answer")
    schema = op.output_schema([Schema({"question": "str", "answer": "str", "_parent": "int"})])
    assert schema.columns == {"question": "str", "answer": "str", "_parent": "int",
                              "rationale": "str", "_answer": "str"}
    with pytest.raises(ParamError, match="reads column 'question'"):
        op.output_schema([Schema({"problem": "str"})])
