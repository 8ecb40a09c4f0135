"""distill.compress: which words survive, exactly, under a scripted scorer; then the tiny real
model, whose scores must give a shorter text of the original's words, the same every time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dcc.errors import ParamError
from dcc.ops import get
from dcc.ops.base import RunContext
from dcc.ops.distill import DistillCompress

# The scripted model's self-information of each word (nats), one token per word but 'Natalia'
# (two tokens of 3 nats each).
INFO = {"Natalia": [3.0, 3.0], "sold": [2.0], "clips": [4.0], "to": [0.5], "48": [0.1],
        "of": [0.2], "her": [0.3], "friends": [5.0], "in": [0.4], "April.": [4.5],
        "Then": [0.6], "half": [3.5]}
TEXT = "Natalia sold clips to 48 of her friends in April.\nThen  half"


def scripted(prefix: str, cont: str) -> list[float]:
    return [-x for x in INFO[cont.strip()]]


def test_registered_as_deterministic_and_row_memoized() -> None:
    cls = get("distill.compress")
    assert cls is DistillCompress and cls.expensive and not cls.stochastic
    assert cls.kind == "rowpython" and cls.spec("seed") is None


def test_the_least_informative_words_go_first(models: Callable) -> None:
    scorer = models("lm", logprobs=scripted)
    ctx = RunContext("c")
    op = DistillCompress(field="text", model="lm", ratio=0.5, into="short")
    out = op.process([{"text": TEXT}], ctx)
    # 13 tokens, budget 6: '48' is protected (1), then friends 5.0 (2), April. 4.5 (3),
    # clips 4.0 (4), half 3.5 (5), Natalia 3.0/token costs 2 and no longer fits, sold 2.0 (6)
    assert out == [{"short": "sold clips 48 friends April.\nhalf", "_compress_ratio": 0.4615}]
    # every word scored once, after the original text before it
    assert scorer.scored[:3] == [("", "Natalia"), ("Natalia", " sold"),
                                 ("Natalia sold", " clips")]
    assert scorer.scored[-1] == ("Natalia sold clips to 48 of her friends in April.\nThen",
                                 "  half")
    assert ctx.model_calls == 1 and ctx.stats == {"words_scored": 12}


def test_protected_words_and_numbers(models: Callable) -> None:
    models("lm", logprobs=scripted)
    op = DistillCompress(field="text", model="lm", ratio=0.2, protect=[r"^of$", "^Th"],
                         keep_numbers=False)
    out = op.process([{"text": TEXT}], RunContext("c"))
    # budget 2: 'of' and 'Then' are protected (2 tokens): nothing else fits
    assert out[0]["text"] == "of\nThen"
    op = DistillCompress(field="text", model="lm", ratio=0.0)
    assert op.process([{"text": TEXT}], RunContext("c"))[0]["text"] == "48"


def test_nulls_empty_texts_and_ratio_one_ask_nothing(models: Callable) -> None:
    scorer = models("lm", logprobs=scripted)
    ctx = RunContext("c")
    rows = [{"text": None}, {"text": "   "}, {"text": ""}]
    out = DistillCompress(field="text", model="lm").process(rows, ctx)
    assert out == [{"text": None, "_compress_ratio": None},
                   {"text": "   ", "_compress_ratio": None},
                   {"text": "", "_compress_ratio": None}]
    same = DistillCompress(field="text", model="lm", ratio=1.0).process([{"text": TEXT}], ctx)
    assert same == [{"text": TEXT, "_compress_ratio": 1.0}]
    assert scorer.scored == [] and ctx.model_calls == 0 and ctx.stats["null_input"] == 1


def test_parameters() -> None:
    with pytest.raises(ParamError, match="'protect' pattern '\\(' is not a valid regular"):
        DistillCompress(field="t", model="./lm", protect=["("])
    with pytest.raises(ParamError, match="'ratio' must be <= 1"):
        DistillCompress(field="t", model="./lm", ratio=1.5)
    op = DistillCompress(field="t", model="/abs/lm", into="u")
    assert op.reads() == ["t"] and op.writes() == ["u", "_compress_ratio"]


def test_the_tiny_model_compresses_gsm8k_questions(tiny_dir: Path,
                                                   gsm8k: list[dict[str, Any]]) -> None:
    rows = [{"question": r["question"]} for r in gsm8k[:6]]
    op = DistillCompress(field="question", model=str(tiny_dir), ratio=0.5, into="short")
    ctx = RunContext("c", options={"device": "cpu"})
    out = op.process(rows, ctx)
    assert op.process(rows, RunContext("c", options={"device": "cpu"})) == out  # deterministic
    for row, res in zip(rows, out):
        original, short = row["question"].split(), res["short"].split()
        assert 0 < len(short) < len(original)
        it = iter(original)
        assert all(word in it for word in short)  # the original's words, in their order
        numbers = [w for w in original if any(c.isdigit() for c in w)]
        assert [w for w in short if any(c.isdigit() for c in w)] == numbers
        assert 0.0 < res["_compress_ratio"] <= 0.5 or numbers
    assert ctx.model_calls == 6
    assert ctx.stats["words_scored"] == sum(len(r["question"].split()) for r in rows)
