"""interleave and merge (dcc/ops/branches.py): interleave checked row for row against Hugging
Face `datasets.interleave_datasets` itself, merge on the shared data and its error cases."""

from __future__ import annotations

import datasets
import polars as pl
import pytest

from dcc.errors import DataError, ParamError
from dcc.ops.base import RunContext
from dcc.ops.branches import Interleave, Merge
from dcc.schema import Schema

STOPS = ("first_exhausted", "all_exhausted", "all_exhausted_without_replacement")


def run(op, *frames: pl.DataFrame) -> pl.DataFrame:
    return op.run(list(frames), RunContext(node="t"))


def _parts(gsm8k: pl.DataFrame, sizes: list[int]) -> list[pl.DataFrame]:
    out, at = [], 0
    for n in sizes:
        out.append(gsm8k.slice(at, n).select("question").with_columns(pl.lit(len(out)).alias("src")))
        at += n
    return out


@pytest.mark.parametrize("stop", STOPS)
@pytest.mark.parametrize("probs", [None, [0.7, 0.2, 0.1], [2, 1, 1]])
@pytest.mark.parametrize("seed", [0, 42])
def test_interleave_matches_hugging_face(gsm8k: pl.DataFrame, stop: str, probs, seed: int):
    frames = _parts(gsm8k, [3, 40, 17])
    hf_probs = None if probs is None else [p / sum(probs) for p in probs] \
        if abs(sum(probs) - 1) > 1e-9 else probs
    want = datasets.interleave_datasets(
        [datasets.Dataset.from_polars(f) for f in frames], probabilities=hf_probs, seed=seed,
        stopping_strategy=stop)
    got = run(Interleave(probs=probs, seed=seed, stop=stop), *frames)
    assert got["question"].to_list() == want["question"]
    assert got["src"].to_list() == want["src"]


def test_interleave_alternates_by_hand() -> None:
    a, b = pl.DataFrame({"x": [0, 1, 2]}), pl.DataFrame({"x": [10, 11], "y": ["p", "q"]})
    assert run(Interleave(), a, b).rows() == [(0, None), (10, "p"), (1, None), (11, "q")]
    assert run(Interleave(stop="all_exhausted_without_replacement"), a, b)["x"].to_list() == \
        [0, 10, 1, 11, 2]
    assert Interleave().output_schema([Schema({"x": "int"}), Schema({"y": "str"})]).columns \
        == {"x": "int", "y": "str"}


def test_interleave_errors() -> None:
    a, empty = pl.DataFrame({"x": [1]}), pl.DataFrame({"x": []}, schema={"x": pl.Int64})
    with pytest.raises(ParamError, match="'probs' has 1 values for 2 inputs"):
        run(Interleave(probs=[1.0]), a, a)
    with pytest.raises(DataError, match="input 2 is empty"):
        run(Interleave(probs=[0.5, 0.5]), a, empty)
    with pytest.raises(DataError, match="input 2 is empty"):
        run(Interleave(stop="all_exhausted"), a, empty)
    with pytest.raises(DataError, match="input 2 has weight 0"):
        run(Interleave(probs=[1, 0], stop="all_exhausted"), a, a)
    assert run(Interleave(), a, empty).height == 0  # first_exhausted: the empty one ends it
    assert run(Interleave(probs=[1, 0]), a, empty)["x"].to_list() == [1]
    with pytest.raises(ParamError, match="'probs' must be >= 0"):
        Interleave(probs=[0, 0])


# -- merge -----------------------------------------------------------------------------------
@pytest.fixture
def branches(gsm8k: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Two branches of the same 50 prompts: 'teacher a' answers every other one, 'teacher b'
    answers them all, in reverse order."""
    base = gsm8k.head(50).with_row_index("id").select("id", "question")
    a = base.filter(pl.col("id") % 2 == 0).with_columns(
        pl.col("question").str.len_chars().alias("response"))
    b = base.reverse().with_columns(pl.col("question").str.to_uppercase().alias("response"))
    return a, b


def test_merge_by_key_puts_teachers_side_by_side(branches) -> None:
    a, b = branches
    out = run(Merge(on="id", overlap="suffix"), a, b)
    assert out.columns == ["id", "question", "response", "question_2", "response_2"]
    assert out["id"].to_list() == list(range(0, 50, 2))  # first input's rows and order
    assert (out["question_2"] == out["question"]).all()
    assert out["response_2"].to_list() == [q.upper() for q in out["question"]]
    left = run(Merge(on="id", how="left", overlap="suffix"), b, a)
    assert left["id"].to_list() == list(range(49, -1, -1))
    assert left.filter(pl.col("id") % 2 == 1)["response_2"].null_count() == 25


def test_merge_check_mode_keeps_equal_columns_once_and_rejects_different(branches) -> None:
    a, b = branches
    renamed = b.rename({"response": "response_b"})
    out = run(Merge(on="id"), a, renamed)
    assert out.columns == ["id", "question", "response", "response_b"]
    with pytest.raises(DataError, match="column 'response' has different types in input 1 "
                                        "and input 2"):
        run(Merge(on="id"), a, b)
    a_text = a.with_columns(pl.col("response").cast(pl.String))
    with pytest.raises(DataError, match=r"column 'response' differs between input 1 and "
                                        r"input 2 on output row 1 \('155' vs 'NATALIA"):
        run(Merge(on="id"), a_text, b)
    first = run(Merge(on="id", overlap="first"), a, b)
    assert first["response"].to_list() == a["response"].to_list()


def test_merge_by_position_is_a_zip() -> None:
    a = pl.DataFrame({"q": ["x", "y"]})
    b = pl.DataFrame({"r": [1, 2]})
    assert run(Merge(), a, b).rows() == [("x", 1), ("y", 2)]
    with pytest.raises(DataError, match="input 2 has 1 rows but input 1 has 2"):
        run(Merge(), a, b.head(1))


def test_merge_keys_nulls_duplicates_and_types() -> None:
    a = pl.DataFrame({"k": [1, None, 2, 1], "v": ["a", "b", "c", "d"]})
    b = pl.DataFrame({"k": [None, 1], "w": ["n", "one"]})
    assert run(Merge(on="k"), a, b).rows() == [(1, "a", "one"), (1, "d", "one")]
    assert run(Merge(on="k", how="left"), a, b)["w"].to_list() == ["one", None, None, "one"]
    with pytest.raises(DataError, match='input 2 has key k=1 more than once'):
        run(Merge(on="k"), a, pl.DataFrame({"k": [1, 1]}))
    with pytest.raises(DataError, match="key 'k' is Int64 in input 1 but String in input 2"):
        run(Merge(on="k"), a, pl.DataFrame({"k": ["1"]}))
    with pytest.raises(DataError, match="input 2 has no key column 'k'"):
        run(Merge(on="k"), a, pl.DataFrame({"z": [1]}))
    with pytest.raises(DataError, match="at least two datasets"):
        run(Merge(on="k"), a)


def test_merge_schema_and_pruning() -> None:
    op = Merge(on="id", overlap="suffix")
    s = op.output_schema([Schema({"id": "int", "q": "str", "r": "str"}),
                          Schema({"id": "int", "q": "str", "r": "float", "x": "bool"})])
    assert s.columns == {"id": "int", "q": "str", "r": "str", "q_2": "str", "r_2": "float",
                         "x": "bool"}
    assert op.input_columns({"r_2"}) == {"r_2", "r", "id"}
    assert Merge(on="id").output_schema([Schema({"id": "int", "q": "str"}),
                                         Schema({"id": "int", "q": "str"})]).columns == \
        {"id": "int", "q": "str"}
