"""`dcc lock` pins statistical keep bounds (zscore, percentile) from the last build, and
`dcc build --locked` stops, naming the node and both values, when a build computes others.

The scorer is select.judge against the fake OpenAI server, whose verdicts the test shifts:
with the same sources and a fresh cache, new scores give new bounds (as a model would on
other hardware), which only a build can see.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models_http"))
from fake_openai import FakeOpenAI  # noqa: E402  (the HTTP tests' fake server)

SCORES = [8, 9, 4, 7, 3, 10, 6]
ROWS = [{"q": f"question {i}", "a": f"answer {i}"} for i in range(len(SCORES))]


@pytest.fixture
def server() -> Iterator[FakeOpenAI]:
    fake = FakeOpenAI().start()
    fake.shift = 0  # type: ignore[attr-defined]

    def reply(body: dict[str, Any], index: int) -> str:
        prompt = body["messages"][-1]["content"]
        i = int(re.search(r"question (\d+)\n", prompt).group(1))  # type: ignore[union-attr]
        return f"Score: {min(10, SCORES[i] + (fake.shift if i == 0 else 0))}/10"

    fake.reply = reply
    try:
        yield fake
    finally:
        fake.stop()


def recipe(server: FakeOpenAI, keep: str) -> str:
    return (f'recipe j\nrows = load.jsonl("rows.jsonl")\n'
            f'best = rows | select.judge(model="{server.ref()}", fields=["q", "a"], '
            f'keep={keep})\nexport best to "best.jsonl"\n')


def test_lock_pins_the_bounds_and_locked_reports_drift(
        server: FakeOpenAI, recipe_dir: Callable, run_cli: Callable) -> None:
    folder = recipe_dir({"rows.jsonl": ROWS, "r.recipe": recipe(server, '{"zscore": 1}')})
    lockfile = folder / "r.recipe.lock"

    code, _, err = run_cli("lock", "r.recipe", cwd=folder)  # nothing built yet
    assert code == 0, err
    assert json.loads(lockfile.read_text())["keep_bounds"] == {
        "best": {"keep": {"zscore": 1}, "bounds": None}}
    assert "the keep bounds of node 'best' are not pinned" in err

    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder)
    assert code == 0, err
    stats = next(n for n in json.loads(out)["nodes"] if n["name"] == "best")["stats"]
    code, _, err = run_cli("lock", "r.recipe", cwd=folder)
    assert code == 0 and "not pinned" not in err
    pinned = json.loads(lockfile.read_text())["keep_bounds"]["best"]
    assert pinned == {"keep": {"zscore": 1}, "bounds": stats["keep_bounds"],
                      "mean": stats["keep_mean"], "std": stats["keep_std"]}
    assert pinned["mean"] == pytest.approx(sum(SCORES) / len(SCORES))

    code, out, err = run_cli("build", "r.recipe", "--locked", "--json", cwd=folder)
    assert code == 0, err  # cached: the same bounds

    # Same sources, model and recipe, a fresh cache, and the judge now rates row 0 higher.
    server.shift = 2  # type: ignore[attr-defined]
    (folder / "best.jsonl").unlink()
    code, out, err = run_cli("build", "r.recipe", "--locked", "--cache-dir", "other",
                             cwd=folder)
    assert code == 1
    assert "the keep bounds of node 'best' (zscore=1) drifted from" in err
    assert f"bounds {pinned['bounds']}" in err and f"mean {pinned['mean']}" in err
    assert "run `dcc lock r.recipe` after a build to accept" in err
    assert not (folder / "best.jsonl").exists()  # stopped before any export

    # A changed form is drift that shows before building.
    (folder / "r.recipe").write_text(recipe(server, '{"percentile": [10, 90]}'))
    code, out, err = run_cli("build", "r.recipe", "--locked", cwd=folder)
    assert code == 1
    assert "keep of best zscore=1 -> percentile=[10, 90]" in err
