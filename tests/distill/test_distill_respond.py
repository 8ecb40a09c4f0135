"""distill.respond in process, with scripted teachers and judges: prompts, samples and their
seeds, bad replies, best-of-n by a judge, parameters and columns."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from dcc.errors import ParamError
from dcc.ops import get
from dcc.ops.base import RunContext
from dcc.ops.distill import DistillRespond
from dcc.ops.prompted import PromptError
from dcc.ops.teacher import sample_seed
from dcc.schema import Schema

ROWS = pl.DataFrame({
    "instruction": ["Translate to French.", "Name a colour.", "Say hi.", ""],
    "input": ["Good morning", "", None, None],
    "_parent": ["a", "b", "c", "d"],
    "id": [1, 2, 3, 4],
})


def run(op: DistillRespond, df: pl.DataFrame = ROWS) -> tuple[pl.DataFrame, RunContext]:
    ctx = RunContext("respond")
    return op.run([df], ctx), ctx


def test_registered_with_its_contract() -> None:
    cls = get("distill.respond")
    assert cls is DistillRespond and cls.stochastic and cls.expensive and cls.cost >= 1000
    assert cls.spec("seed").default == 0 and cls.spec("model").path
    assert cls.spec("judge").path  # a judge folder is found beside the recipe too


def test_one_response_per_prompt_with_every_column_kept(models: Callable) -> None:
    teacher = models("t", reply=lambda text, cfg: f"  R({text})\n")
    out, ctx = run(DistillRespond(model="t", input="input", system="Be brief."))
    assert out.columns == ["instruction", "input", "_parent", "id", "output"]
    assert out["output"].to_list() == ["R(Translate to French.\n\nGood morning)",
                                       "R(Name a colour.)", "R(Say hi.)"]
    assert out["_parent"].to_list() == ["a", "b", "c"] and out["id"].dtype == pl.Int64
    assert teacher.requests[0].prompt == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Translate to French.\n\nGood morning"}]
    cfg = teacher.requests[0].config
    assert (cfg.temperature, cfg.max_new_tokens, cfg.seed, cfg.n) == (0.7, 1024, 0, 1)
    assert ctx.stats == {"empty_prompt": 1} and ctx.model_calls == 3


def test_a_template_writes_the_prompt(models: Callable) -> None:
    teacher = models("t")
    op = DistillRespond(model="t", template="Q{{ id }}: {{ instruction }}", into="answer")
    out, _ = run(op)
    assert [r.text for r in teacher.requests] == ["Q1: Translate to French.",
                                                  "Q2: Name a colour.", "Q3: Say hi.",
                                                  "Q4: "]
    assert out["answer"].to_list()[0] == "echo: Q1: Translate to French."
    assert op.reads() == ["id", "instruction"]
    bad = DistillRespond(model="t", template="{{ nope }}")
    with pytest.raises(PromptError, match="cannot render the prompt"):
        run(bad)


def test_a_missing_prompt_column_is_a_clear_error(models: Callable) -> None:
    models("t")
    with pytest.raises(PromptError, match="distill.respond: the input has no column 'prompt'"):
        run(DistillRespond(model="t", field="prompt"))


def test_n_samples_ask_with_derived_seeds_and_keep_every_sample(models: Callable) -> None:
    teacher = models("t", reply=lambda text, cfg: f"{text[:4]}#{cfg.seed}")
    out, ctx = run(DistillRespond(model="t", n=3, seed=5), ROWS.head(2))
    seeds = [sample_seed(5, k) for k in range(3)]
    assert seeds[0] == 5 and len(set(seeds)) == 3
    assert teacher.seeds() == [seeds[0]] * 2 + [seeds[1]] * 2 + [seeds[2]] * 2
    assert out["_sample"].to_list() == [0, 1, 2, 0, 1, 2]
    assert out["output"].to_list() == [f"Tran#{s}" for s in seeds] + [f"Name#{s}" for s in seeds]
    assert out["_parent"].to_list() == ["a"] * 3 + ["b"] * 3
    assert ctx.model_calls == 6


def test_empty_and_refused_replies_are_dropped_and_counted(models: Callable) -> None:
    def reply(text: str, cfg: Any) -> str:
        if text.startswith("Say"):
            return "   "
        if cfg.seed == 0:
            return "I'm sorry, but I can't help with that."
        return "Rouge" if text.startswith("Name") else "Bonjour"

    models("t", reply=reply)
    out, ctx = run(DistillRespond(model="t", n=2, input="input"))
    assert out.select("id", "_sample", "output").rows() == [(1, 1, "Bonjour"), (2, 1, "Rouge")]
    assert ctx.stats == {"empty_prompt": 1, "refused": 2, "empty": 2, "no_response": 1}


def test_a_reply_echoing_a_refusal_shaped_prompt_is_kept(models: Callable) -> None:
    models("t", reply=lambda text, cfg: "I'm sorry, but I cannot come today.")
    df = pl.DataFrame({"instruction": ["I'm sorry, but I can't come. Rewrite this politely."]})
    out, ctx = run(DistillRespond(model="t"), df)
    assert out.height == 1 and "refused" not in ctx.stats


def test_best_of_n_keeps_the_judges_favourite(models: Callable) -> None:
    models("t", reply=lambda text, cfg: f"{text[:4]} v{[0, 1, 2].index(_k(cfg))}")
    verdicts = {"Tran v0": "Score: 6/10", "Tran v1": "Score: 9/10", "Tran v2": "**9**",
                "Name v0": "no idea", "Name v1": "Rating: 2 out of 5", "Name v2": "3",
                "Say  v0": "unreadable", "Say  v1": "?", "Say  v2": "hmm"}
    critic = models("c", reply=lambda text, cfg: next(v for k, v in verdicts.items()
                                                      if f"[response]\n{k}" in text))
    op = DistillRespond(model="t", judge="c", n=3, seed=0)
    out, ctx = run(op, ROWS.head(3).with_columns(pl.col("instruction").str.replace("Say hi.",
                                                                                   "Say  hi")))
    assert out.select("id", "_sample", "output", "_judge").rows() == [
        (1, 1, "Tran v1", 9.0), (2, 1, "Name v1", 4.0), (3, 0, "Say  v0", None)]
    assert ctx.stats == {"judge_unparsed": 4}
    asked = critic.requests[0]
    assert (asked.config.temperature, asked.config.seed) == (0.0, 0)
    assert "[instruction]\nTranslate to French.\n\n[response]\nTran v0" in asked.text
    assert "Score: N/10" in asked.text
    assert ctx.model_calls == 9 + 9
    assert op.writes() == ["output", "_sample", "_judge"]


def _k(cfg: Any) -> int:
    return [sample_seed(0, k) for k in range(3)].index(cfg.seed)


def test_with_no_usable_reply_the_output_keeps_its_schema(models: Callable) -> None:
    models("t", reply=lambda text, cfg: "")
    out, ctx = run(DistillRespond(model="t", n=2))
    assert out.height == 0
    assert out.schema == {"instruction": pl.String, "input": pl.String, "_parent": pl.String,
                          "id": pl.Int64, "output": pl.String, "_sample": pl.Int64}
    assert ctx.stats["no_response"] == 3 and ctx.stats["empty"] == 6


def test_parameters_are_checked() -> None:
    m = "openai:http://127.0.0.1:9/v1#m"
    with pytest.raises(ParamError, match="n=2 samples need temperature > 0"):
        DistillRespond(model=m, n=2, temperature=0.0)
    with pytest.raises(ParamError, match="a judge picks the best of n samples"):
        DistillRespond(model=m, judge=m)
    with pytest.raises(ParamError, match="'n' must be <= 16"):
        DistillRespond(model=m, n=17)
    with pytest.raises(ParamError, match="give 'template' or 'field'/'input', not both"):
        DistillRespond(model=m, template="{{ q }}", input="x")
    with pytest.raises(ParamError, match="not a valid Jinja2 template"):
        DistillRespond(model=m, template="{{ q ")
    with pytest.raises(ParamError, match="missing required parameter 'model'"):
        DistillRespond()


def test_schema_reads_and_writes() -> None:
    m = "openai:http://127.0.0.1:9/v1#m"
    schema = Schema({"instruction": "str", "input": "str"})
    op = DistillRespond(model=m, input="input", n=2)
    assert op.reads() == ["instruction", "input"]
    assert op.output_schema([schema]).columns == {"instruction": "str", "input": "str",
                                                  "output": "str", "_sample": "int"}
    with pytest.raises(ParamError, match="reads column 'instruction'.*did you mean 'instructions'"):
        DistillRespond(model=m).output_schema([Schema({"instructions": "str"})])
    with pytest.raises(ParamError, match="the template reads column 'q'"):
        DistillRespond(model=m, template="{{ q }}").output_schema([schema])
    assert DistillRespond(model=m, field="prompt").reads() == ["prompt"]
    assert "model" not in op.key_params() and "judge" not in op.key_params()


def test_the_judge_is_part_of_the_model_identity(models: Callable) -> None:
    models("t")
    models("c")
    plain = DistillRespond(model="t", n=2).model_identity()
    judged = DistillRespond(model="t", n=2, judge="c").model_identity()
    assert plain == "t" and judged == "t judge=c"


def test_a_killed_run_resumes_from_the_requests_it_committed(models: Callable,
                                                              tmp_path: Path) -> None:
    from dcc.cache.rowmemo import request_memo
    from dcc.cache.store import DiskStore

    store = DiskStore(tmp_path / "cache")
    crash = {"on": True}

    def reply(text: str, cfg: Any) -> str:
        if crash["on"] and text == "q65":
            raise RuntimeError("the server went away")
        return f"a{text}"

    teacher = models("t", reply=reply)
    df = pl.DataFrame({"instruction": [f"q{i}" for i in range(70)]})
    op = DistillRespond(model="t")
    with pytest.raises(RuntimeError):
        op.run([df], RunContext("r", requests=request_memo(store)))
    assert len(teacher.requests) == 66  # the first batch of 64 was committed, then q64, q65
    crash["on"] = False
    ctx = RunContext("r", requests=request_memo(store))
    out = op.run([df], ctx)
    assert out["output"].to_list() == [f"aq{i}" for i in range(70)]
    assert (ctx.model_calls, ctx.stats["memo_hits"]) == (6, 64)
    assert [r.text for r in teacher.requests[66:]] == [f"q{i}" for i in range(64, 70)]
