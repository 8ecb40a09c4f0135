"""select.judge(candidates=...) end to end with a real local model (the tiny test LM): the
prompt goes through the transformers backend and the request memo, one request per row, and
whatever the model writes is parsed or counted, never a crash."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dcc.cache import open_store
from dcc.compiler import compile_recipe
from dcc.engine.build import build


def test_tiny_model_rates_candidates(recipe_dir: Callable, tiny_dir: Path,
                                     gsm8k: list[dict[str, Any]]) -> None:
    rows = [{"question": r["question"], "answers": [r["answer"], "I do not know."]}
            for r in gsm8k[:3]]
    folder = recipe_dir({"rows.jsonl": rows})

    def run(keep: str) -> tuple[Any, list[dict[str, Any]]]:
        (folder / "r.recipe").write_text(
            'recipe r\nrows = load.jsonl("rows.jsonl")\n'
            f'rated = rows | select.judge(model="{tiny_dir}", fields=["question"], '
            f'candidates="answers", scale=5, max_tokens=8, keep={keep})\n'
            'export rated to "rated.jsonl"\n', encoding="utf-8")
        result = build(compile_recipe(str(folder / "r.recipe")), open_store(folder / ".dcc"),
                       options={"device": "cpu"})
        node = next(n for n in result.nodes if "rated" in n.names)
        out = [json.loads(x) for x in (folder / "rated.jsonl").read_text().splitlines()]
        return node, out

    node, out = run('"none"')
    assert (node.rows_in, node.rows_out, node.model_calls) == (3, 3, 3)
    parsed = [r for r in out if r["_judge"] is not None]
    assert node.stats.get("unparsed", 0) == 3 - len(parsed)
    assert all(len(r["_judge"]) == 2 and r["_judge_max"] == max(r["_judge"]) for r in parsed)
    node, _ = run('{"min": 0}')  # a new keep: the judge is asked nothing
    assert node.model_calls == 0 and node.stats["memo_hits"] == 3
