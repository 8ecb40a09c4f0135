"""No input, however malformed, makes `dcc check` show a traceback or an internal error.

Property tests run `dcc.cli.main(["check", PATH])` in-process on (a) arbitrary bytes and
recipe-flavoured text and (b) mutations of the bundled recipes in `recipes/` (tokens and
characters deleted, duplicated, swapped, punctuation and keywords inserted). The exit code
must be 0 (fine) or 1 (diagnostics), and stderr must hold neither "Traceback" nor "internal
error". The mutants run inside a copy of `recipes/`, so imports and data files resolve and
the schema check runs too.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
from pathlib import Path
from unittest import mock

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dcc.cli import main

RECIPES = Path(__file__).resolve().parents[2] / "recipes"
SOURCES = {p.relative_to(RECIPES).as_posix(): p.read_text(encoding="utf-8")
           for p in sorted(RECIPES.rglob("*.recipe"))}

SETTINGS = settings(max_examples=150, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow])

KEYWORDS = ["recipe", "param", "use", "as", "pipeline", "export", "to", "evolve", "true",
            "false", "null"]
PUNCT = list("()[]{}|=,.:\"'#\\$@;-+*/\n\t ") + ['r"', '"\\', "\r", "\ufeff", "\x00", "\u2028"]
PIECES = KEYWORDS + PUNCT + [
    "x", "raw", "load.jsonl", "select.length", "select.lenght", "concat", "mix", "split",
    "field=", "min=", '"data/gsm8k_1k.jsonl"', '"out/o.jsonl"', "1", "-2.5", "1e999",
    "99999999999999999999", "[", "]", 'r"(?i)\\b"', "cleaning.tidy", "tidy", "é", "\u200b",
]
TOKEN = re.compile(r'r?"(?:[^"\\\n]|\\.)*"|[A-Za-z_][A-Za-z0-9_.]*|-?\d+(?:\.\d+)?|\s+|.', re.S)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("fuzz") / "recipes"
    shutil.copytree(RECIPES, root, ignore=shutil.ignore_patterns(".dcc", "out"))
    return root


def run_check(path: Path, data: bytes) -> tuple[int, str]:
    path.write_bytes(data)
    err = io.StringIO()
    code = 0
    with mock.patch.dict(os.environ, {"COLUMNS": "120"}), \
            contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        os.environ.pop("DCC_DEBUG", None)
        try:
            main(["check", str(path)])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return code, err.getvalue()


def assert_clean(path: Path, data: bytes) -> None:
    code, err = run_check(path, data)
    assert "Traceback" not in err and "internal error" not in err, (data, err)
    assert code in (0, 1), (code, data, err)
    if code == 1:
        assert re.search(r"^\S.*:\d+:\d+: error: |^error: ", err, re.M), (data, err)


# -- (a) arbitrary input ----------------------------------------------------------------------
recipe_text = st.lists(st.sampled_from(PIECES) | st.text(max_size=3), max_size=40).map("".join)


@SETTINGS
@given(data=st.binary(max_size=300) | recipe_text.map(lambda s: s.encode("utf-8", "replace")))
def test_random_input_never_crashes(workdir: Path, data: bytes) -> None:
    assert_clean(workdir / "random.recipe", data)


# -- (b) mutations of the bundled recipes -------------------------------------------------------
@st.composite
def mutants(draw: st.DrawFn) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(SOURCES)))
    text = SOURCES[name]
    by_char = draw(st.booleans())
    units = list(text) if by_char else TOKEN.findall(text)
    for _ in range(draw(st.integers(1, 4))):
        if not units:
            break
        i = draw(st.integers(0, len(units) - 1))
        op = draw(st.sampled_from(["delete", "duplicate", "swap", "insert"]))
        if op == "delete":
            del units[i]
        elif op == "duplicate":
            units.insert(i, units[i])
        elif op == "swap":
            j = draw(st.integers(0, len(units) - 1))
            units[i], units[j] = units[j], units[i]
        else:
            units.insert(i, draw(st.sampled_from(PIECES)))
    return name, "".join(units).encode("utf-8", "surrogatepass")


@SETTINGS
@given(case=mutants())
def test_mutated_recipes_never_crash(workdir: Path, case: tuple[str, bytes]) -> None:
    name, data = case
    # write beside the original so relative imports and data paths still resolve
    target = workdir / Path(name).parent / f"mutant_{Path(name).name}"
    assert_clean(target, data)


def test_the_bundled_recipes_check_clean(workdir: Path) -> None:
    for name, text in SOURCES.items():
        code, err = run_check(workdir / Path(name).parent / f"copy_{Path(name).name}",
                              text.encode())
        assert code == 0, err


def test_an_unreadable_recipe_is_a_clean_error(workdir: Path) -> None:
    code, err = run_check(workdir / "latin1.recipe", "x = \"caf\xe9\"\n".encode("latin-1"))
    assert code == 1 and "Traceback" not in err
    assert err.startswith(f"error: cannot read recipe {workdir / 'latin1.recipe'}: 'utf-8' codec "
                          "can't decode byte 0xe9 in position 8")
