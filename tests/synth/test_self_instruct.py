"""synthesize.self_instruct: prompts, parsing, the paper's filters, seeding and bounded attempts,
with a scripted model standing in for the LLM."""

from __future__ import annotations

import random
import zlib
from typing import Any

import polars as pl
import pytest

from dcc.errors import ParamError
from dcc.ops.synthesize import SelfInstruct, heuristic_reject, self_instruct_prompt
from dcc.ops.textgen import SynthesisError, derive_seed

REF = "openai:http://127.0.0.1:1/v1#m"


def seeds_df(seed_tasks: list[dict[str, Any]], n: int | None = None) -> pl.DataFrame:
    return pl.DataFrame({"instruction": [t["instruction"] for t in seed_tasks[:n]]})


def productive(seed_tasks: list[dict[str, Any]]):
    """A model that continues the list with 7 random, mutually dissimilar instructions."""
    vocab = sorted({w for t in seed_tasks for w in t["instruction"].lower().split()
                    if w.isalpha() and len(w) > 3})

    def reply(prompt: Any, config: Any, k: int) -> str:
        rng = random.Random(zlib.crc32(str(prompt).encode()) ^ config.seed ^ k)
        items = [" ".join(rng.sample(vocab, 9)) + "." for _ in range(7)]
        return " " + items[0] + "".join(f"\n{i}. {t}" for i, t in zip(range(10, 16), items[1:]))

    return reply


def test_the_first_prompt_is_the_papers(seed_tasks, scripted, attach, ctx) -> None:
    model = scripted(productive(seed_tasks))
    op = attach(SelfInstruct(model=REF, n=3, seed=5), model)
    op.run([seeds_df(seed_tasks)], ctx())
    prompt, config = model.requests[0]
    lines = prompt.split("\n")
    assert isinstance(prompt, str)  # a raw completion prompt, not chat messages
    assert lines[0] == "Come up with a series of tasks:"
    assert [line.split(". ", 1)[0] for line in lines[1:9]] == [str(i) for i in range(1, 9)]
    assert lines[9] == "9."
    seeds = {" ".join(t["instruction"].split()).rstrip(":") for t in seed_tasks}
    assert all(line.split(". ", 1)[1] in seeds for line in lines[1:9])
    assert (config.temperature, config.top_p, config.max_new_tokens) == (0.7, 0.5, 1024)
    assert config.stop == ("\n\n", "\n16", "16.", "16 .")
    assert config.seed == derive_seed(5, "self_instruct.round", 0)


def test_prompt_format_helper() -> None:
    assert self_instruct_prompt(["A:", "b\n c"], "Tasks:") == "Tasks:\n1. A\n2. b c\n3."


def test_later_prompts_show_at_most_two_generated_tasks(seed_tasks, scripted, attach,
                                                        ctx) -> None:
    model = scripted(productive(seed_tasks))
    op = attach(SelfInstruct(model=REF, n=40, seed=1, batch=2), model)
    out = op.run([seeds_df(seed_tasks)], ctx())["instruction"].to_list()
    assert len(out) == 40
    seeds = {" ".join(t["instruction"].split()).rstrip(":") for t in seed_tasks}
    for prompt, _ in model.requests[2:]:
        shown = [line.split(". ", 1)[1] for line in prompt.split("\n")[1:-1]]
        machine = [s for s in shown if s not in seeds]
        assert len(shown) == 8 and len(machine) == 2
        assert all(m in out for m in machine)


def test_items_are_parsed_filtered_and_counted(seed_tasks, scripted, attach, ctx) -> None:
    reply = (" Summarize the main argument of the following essay in two sentences.\n"
             "10. Do it now.\n"                                                # too short
             "11. Draw a picture of your favourite animal and describe it.\n"  # banned word
             "12 . Write a program that sorts a list of numbers quickly.\n"     # banned prefix
             "13. - Create a list of five healthy breakfast options for kids.\n"  # punctuation
             "14. Écrivez un poème sur la mer et les bateaux.\n"              # non-English
             "15. Tell me if the following email is a promotion email.\n"     # a seed: similar
             "16. " + "word " * 151)                                           # too long
    model = scripted(lambda p, c, k: reply)
    op = attach(SelfInstruct(model=REF, n=5, max_requests=1), model)
    c = ctx()
    out = op.run([seeds_df(seed_tasks)], c)
    assert out["instruction"].to_list() == [
        "Summarize the main argument of the following essay in two sentences."]
    assert {k: c.stats[k] for k in ("too_short", "banned_word", "banned_prefix",
                                    "punctuation_start", "non_english_start", "similar",
                                    "too_long")} == dict.fromkeys(
        ("too_short", "banned_word", "banned_prefix", "punctuation_start",
         "non_english_start", "similar", "too_long"), 1)
    assert (c.stats["candidates"], c.stats["kept"], c.stats["requests"]) == (8, 1, 1)


def test_first_letter_is_capitalized_and_the_rest_kept() -> None:
    assert heuristic_reject("Use the API of GitHub.", 4, 150, [], []) is None


@pytest.mark.parametrize("reply", ["", "\n\n", "!!!", "9.", "null", "\x00\x01 ???",
                                   "1. 2. 3.", "<|endoftext|>"])
def test_malformed_replies_are_dropped_never_a_crash(reply, seed_tasks, scripted, attach,
                                                     ctx) -> None:
    op = attach(SelfInstruct(model=REF, n=3, max_requests=4, batch=2),
                scripted(lambda p, c, k: reply))
    c = ctx()
    out = op.run([seeds_df(seed_tasks)], c)
    assert out.height == 0 and out.columns == ["instruction"]
    assert c.stats["requests"] == 4 and c.stats.get("kept", 0) == 0


def test_a_model_that_repeats_itself_stops_within_the_budget(seed_tasks, scripted, attach,
                                                             ctx) -> None:
    model = scripted(lambda p, c, k: " Plan a three day trip to the mountains with a budget.")
    op = attach(SelfInstruct(model=REF, n=50, seed=2, batch=4), model)
    c = ctx()
    out = op.run([seeds_df(seed_tasks)], c)
    assert out.height == 1
    assert len(model.requests) == 50  # the default budget: n requests
    assert c.stats["similar"] == 49 and c.stats["kept"] == 1


def test_n_is_reached_early_and_output_is_exactly_n(seed_tasks, scripted, attach,
                                                    ctx) -> None:
    model = scripted(productive(seed_tasks))
    op = attach(SelfInstruct(model=REF, n=10, batch=2), model)
    out = op.run([seeds_df(seed_tasks)], ctx())
    assert out.height == 10 and len(model.requests) == 2  # 7 + 7 items >= 10


def test_same_seed_same_questions_and_rows_other_seed_other_questions(
        seed_tasks, scripted, attach, ctx) -> None:
    runs = []
    for seed in (3, 3, 4):
        model = scripted(productive(seed_tasks))
        op = attach(SelfInstruct(model=REF, n=12, seed=seed, batch=3), model)
        out = op.run([seeds_df(seed_tasks)], ctx())["instruction"].to_list()
        runs.append(([p for p, _ in model.requests], out))
    assert runs[0] == runs[1]
    assert runs[0][0][0] != runs[2][0][0] and runs[0][1] != runs[2][1]


def test_a_second_run_is_served_by_the_request_memo(seed_tasks, scripted, attach, ctx,
                                                    memo) -> None:
    model = scripted(productive(seed_tasks))
    first = ctx(memo)
    out1 = attach(SelfInstruct(model=REF, n=12, batch=3), model).run([seeds_df(seed_tasks)],
                                                                      first)
    sent = len(model.requests)
    again = ctx(memo)
    op = attach(SelfInstruct(model=REF, n=12, batch=3, max_rouge=0.69), model)
    out2 = op.run([seeds_df(seed_tasks)], again)
    assert first.model_calls == sent and again.model_calls == 0
    assert len(model.requests) == sent and again.stats["memo_hits"] == sent
    assert out1.equals(out2)


def test_a_small_pool_does_not_resend_the_same_prompt(scripted, attach, ctx) -> None:
    model = scripted(lambda p, c, k: " ")
    df = pl.DataFrame({"instruction": ["Name a fruit.", "Add two numbers."]})
    op = attach(SelfInstruct(model=REF, n=5, batch=4, max_requests=8), model)
    c = ctx()
    op.run([df], c)
    # two seeds, no machine tasks: each round has at most 2 distinct orders of the tasks
    assert len(model.requests) <= 4 and c.stats["unparsed"] == len(model.requests)


def test_chat_mode_sends_messages_and_skips_the_preamble(seed_tasks, scripted, attach,
                                                         ctx) -> None:
    reply = ("Sure! Here are some more tasks:\n9. Suggest three names for a bakery in "
             "Lisbon.\n10. Explain why the sky looks blue at noon.")
    model = scripted(lambda p, c, k: reply)
    op = attach(SelfInstruct(model=REF, n=2, chat=True), model)
    out = op.run([seeds_df(seed_tasks)], ctx())["instruction"].to_list()
    assert out == ["Suggest three names for a bakery in Lisbon.",
                   "Explain why the sky looks blue at noon."]
    prompt, config = model.requests[0]
    assert prompt[-1]["role"] == "user" and prompt[-1]["content"].endswith("\n9.")
    assert config.stop == ("\n16.",)


def test_no_seed_instructions_is_a_clear_error(scripted, attach, ctx) -> None:
    op = attach(SelfInstruct(model=REF, n=2), scripted(lambda p, c, k: ""))
    with pytest.raises(SynthesisError, match="needs seed instructions"):
        op.run([pl.DataFrame({"instruction": [None, "  "]}, schema={"instruction": pl.String})],
               ctx())


def test_parameter_checks() -> None:
    with pytest.raises(ParamError, match="machine_tasks"):
        SelfInstruct(model=REF, n=2, prompt_tasks=2, machine_tasks=3)
    with pytest.raises(ParamError, match="'n' must be >= 1"):
        SelfInstruct(model=REF, n=0)
    with pytest.raises(ParamError, match="max_words"):
        SelfInstruct(model=REF, n=2, min_words=10, max_words=5)


def test_columns_for_the_compiler() -> None:
    op = SelfInstruct(model=REF, n=2, field="prompt")
    assert op.reads() == ["prompt"] and op.writes() == ["prompt"]
    assert op.input_columns({"prompt", "other"}) == {"prompt"}
    assert op.output_schema([]).columns == {"prompt": "str"}
    assert (op.stochastic, op.expensive, op.cost) == (True, True, 1000.0)


def test_the_code_fingerprint_covers_the_helpers() -> None:
    """A fix to a parser, a filter or ROUGE-L must re-key the generators (the engine
    fingerprints class sources only)."""
    import dcc.ops.rouge as rouge
    from dcc.ops.synth_magpie import Magpie
    from dcc.ops.synth_template import SynthTemplate

    source = SelfInstruct.code_source()
    assert "def numbered_items" in source and "def heuristic_reject" in source
    assert "def _lcs_bits" in source
    assert "def split_chat_template" in Magpie.code_source()
    assert "def grid_product" in SynthTemplate.code_source()
    assert rouge.UsesRouge in SelfInstruct.__mro__  # rouge.py's stat is in the code memo key
