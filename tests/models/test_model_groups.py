"""Model groups leave local models alone: their numbers depend on the batch a request is
computed in, so the optimizer never changes the order in which their nodes run.

(Grouped builds against a served model, whose replies do not depend on the batch, are tested
in tests/models_http/test_model_groups_http.py.)
"""

from __future__ import annotations

import json
from pathlib import Path

from dcc.compiler import compile_recipe


def test_nodes_on_a_local_model_are_never_grouped(tmp_path: Path, tiny_dir: Path) -> None:
    (tmp_path / "q.jsonl").write_text(json.dumps({"question": "How many?"}) + "\n")
    (tmp_path / "r.recipe").write_text(
        'raw = load.jsonl("q.jsonl")\n'
        f'a = raw | select.length(field="question", min=3)'
        f' | select.perplexity(field="question", model="{tiny_dir}")\n'
        f'b = raw | select.length(field="question", max=3)'
        f' | rewrite.llm(field="question", model="{tiny_dir}", instruction="Shorter.")\n'
        'export a to "out/a.jsonl"\nexport b to "out/b.jsonl"\n')
    prog = compile_recipe(str(tmp_path / "r.recipe"))
    assert prog.model_groups == []
    assert not any(j.startswith("group_model_calls") for j in prog.journal)
