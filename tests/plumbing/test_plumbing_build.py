"""End to end: `dcc check` and `dcc build` of recipes that use the row plumbing and the
text-quality operators together, on a slice of the shared GSM8K data."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl

RECIPE = '''recipe plumbing_e2e

topics = load.rows([{"topic": "money", "words": ["earn", "cost"]},
                    {"topic": "time", "words": ["hour", "minute"]}])
words = topics | rows.explode(field="words", index="k")

raw = load.jsonl("data/gsm8k.jsonl")
html = raw | rewrite.strip_markup(fields=["question"])
prose = html
  | select.lines(field="answer", max_short_lines=null, max_newlines_per_word=null,
                 max_dup_line_chars=0.0, min_punct_lines=null, max_line_length=200)
  | select.gopher(field="question", min_words=20, min_stop_words=1, max_mean_word_length=8)
  | select.gopher_repetition(field="question")
  | select.flagged_words(field="question")
short = prose | rewrite.truncate(fields=["answer"], max_words=30)
  | columns.rename(mapping={"answer": "short_answer"})
both = merge(prose, short, on="question")
  | rows.sort(by="question")
mixed = interleave(prose, raw, probs=[0.5, 0.5], seed=3) | rows.shuffle(seed=1)
per_topic = words | rows.group(by="topic", collect=["words"], count="n")
pages = raw | rewrite.c4_lines(field="answer", min_words=3, min_sentences=1)

export both to "out/both.jsonl"
export mixed to "out/mixed.jsonl"
export per_topic to "out/per_topic.jsonl"
export pages to "out/pages.jsonl"
'''


def _rows(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_build_recipe_with_new_operators(recipe_dir, run_cli, gsm8k) -> None:
    rows = gsm8k.head(300).to_dicts()
    rows[0]["question"] = "<p>" + rows[0]["question"].replace(" and ", " &amp; ") + "</p>"
    folder = recipe_dir({"r.recipe": RECIPE, "data/gsm8k.jsonl": rows})
    code, out, err = run_cli("check", "r.recipe", cwd=folder)
    assert code == 0, err
    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder)
    assert code == 0, err
    report = json.loads(out)
    status = {n["name"]: n for n in report["nodes"]}
    assert status["words"]["rows_out"] == 4 and status["per_topic"]["rows_out"] == 2

    per_topic = _rows(folder / "out/per_topic.jsonl")
    assert per_topic == [{"topic": "money", "words": ["earn", "cost"], "k": 0, "n": 2},
                         {"topic": "time", "words": ["hour", "minute"], "k": 0, "n": 2}]

    both = _rows(folder / "out/both.jsonl")
    assert 0 < len(both) < 300
    assert [r["question"] for r in both] == sorted(r["question"] for r in both)
    for r in both:
        assert r["answer"].startswith(r["short_answer"])
        assert len(r["short_answer"].split()) <= 30
        assert "<p>" not in r["question"]
    first = next((r for r in both if r["question"].startswith("Natalia")), None)
    if first is not None:  # the row whose markup was stripped, if the rules kept it
        assert "&amp;" not in first["question"] and " & " in first["question"]

    mixed = _rows(folder / "out/mixed.jsonl")
    assert len(mixed) == report["exports"][1]["rows"]
    pages = pl.read_ndjson(folder / "out/pages.jsonl")
    assert pages.height <= 300 and not pages["answer"].str.contains("####").any()

    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder)
    assert code == 0, err
    assert {n["status"] for n in json.loads(out)["nodes"]} == {"cached"}


def test_check_reports_errors_of_new_operators(recipe_dir, run_cli) -> None:
    bad = '''recipe bad
t = load.rows([{"a": 1}, "b"])
d = load.rows([{"q": "x", "n": 2}])
s = d | rows.sort(by="nope")
e = d | rows.explode(field="q")
m = d | merge(d, on="q")
g = d | select.gopher(field="q", min_words="many")
export s to "o1.jsonl"
export e to "o2.jsonl"
export m to "o3.jsonl"
export g to "o4.jsonl"
export t to "o5.jsonl"
'''
    folder = recipe_dir({"r.recipe": bad})
    code, out, err = run_cli("check", "r.recipe", cwd=folder)
    assert code == 1
    assert "r.recipe:2:" in err and "row 2 is str" in err
    assert "r.recipe:4:" in err and "rows.sort reads column 'nope'" in err
    assert "r.recipe:5:" in err and "reads column 'q' as list, but it is str" in err
    assert "merge takes its datasets as arguments" in err
    assert "'min_words' must be int" in err
