"""concat, mix, split: exact counts, order, determinism, and errors."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from dcc.errors import DataError, ParamError
from dcc.ops.base import RunContext
from dcc.ops.combinators import Concat, Mix, Split, mix_counts
from dcc.ops.sources import LoadJsonl
from dcc.schema import Schema


def run(op, *dfs: pl.DataFrame, ctx: RunContext | None = None) -> pl.DataFrame:
    return op.run(list(dfs), ctx or RunContext(node="t"))


def frame(tag: str, n: int) -> pl.DataFrame:
    return pl.DataFrame({"src": [tag] * n, "i": list(range(n))})


# -- concat -----------------------------------------------------------------------------------
def test_concat_rows_in_order_columns_unioned() -> None:
    a = pl.DataFrame({"x": [1, 2], "y": ["a", "b"]})
    b = pl.DataFrame({"z": [True], "x": [3]})
    out = run(Concat(), a, b, a)
    assert out.columns == ["x", "y", "z"]
    assert out.rows() == [(1, "a", None), (2, "b", None), (3, None, True), (1, "a", None),
                          (2, "b", None)]


def test_concat_types_and_edge_frames() -> None:
    ints, floats = pl.DataFrame({"v": [1]}), pl.DataFrame({"v": [0.5]})
    assert run(Concat(), ints, floats)["v"].to_list() == [1.0, 0.5]
    assert run(Concat(), ints, pl.DataFrame({"v": ["s"]}))["v"].to_list() == ["1", "s"]
    assert run(Concat(), ints).equals(ints)
    assert run(Concat(), pl.DataFrame(), ints).rows() == [(1,)]
    no_columns = pl.DataFrame([{}, {}])  # two rows of {} from a JSONL file
    assert run(Concat(), no_columns, ints)["v"].to_list() == [None, None, 1]
    with pytest.raises(pl.exceptions.PolarsError):
        run(Concat(), pl.DataFrame({"v": [[1]]}), pl.DataFrame({"v": ["s"]}))


def test_concat_real_files_and_schema(data: Path) -> None:
    load = [LoadJsonl(path=str(data / f)) for f in ("self_instruct_seed_tasks.jsonl",
                                                      "self_instruct_user_oriented_instructions.jsonl")]
    frames = [op.run([], RunContext(node="t")) for op in load]
    out = run(Concat(), *frames)
    assert out.height == 175 + 252
    assert out.columns == ["id", "name", "instruction", "instances", "is_classification",
                           "motivation_app"]
    assert out["id"][174] == "seed_task_174" and out["id"][175] == "user_oriented_task_0"
    assert out["motivation_app"].null_count() == 175
    schema = Concat().output_schema([op.infer_schema() for op in load])
    assert schema.columns["motivation_app"] == "str" and not schema.open
    assert Concat.n_inputs is None and Concat().p == {}


# -- mix --------------------------------------------------------------------------------------
@pytest.mark.parametrize("rows, weights, n, counts", [
    ([100, 100], [0.7, 0.3], None, [99, 43]),   # n = min(floor(100/0.7), floor(100/0.3)) = 142
    ([100, 100], [0.7, 0.3], 10, [7, 3]),
    ([10, 2], [3, 1], None, [6, 2]),            # n = min(13, 8) = 8
    ([5, 5, 5], [1, 1, 1], 10, [4, 3, 3]),      # remainders tie: the earlier input first
    ([5, 5, 5], [1, 1, 1], None, [5, 5, 5]),
    ([7, 0], [1, 0], None, [7, 0]),             # a zero weight leaves an input out
    ([0, 9], [1, 1], None, [0, 0]),
    ([3, 4], [0.29, 0.71], 100, None),          # too many asked
])
def test_mix_counts(rows, weights, n, counts) -> None:
    if counts is None:
        with pytest.raises(DataError, match="n=100 needs 29 rows from input 1, which has 3"):
            mix_counts(rows, weights, n)
    else:
        assert mix_counts(rows, weights, n) == counts
        assert sum(counts) == (n if n is not None else sum(counts))


def test_mix_order_and_without_replacement() -> None:
    a, b = frame("a", 100), frame("b", 100)
    ctx = RunContext(node="t")
    out = run(Mix(weights=[0.7, 0.3]), a, b, ctx=ctx)
    assert ctx.stats["rows_per_input"] == [99, 43]
    assert out["src"].to_list() == ["a"] * 99 + ["b"] * 43
    for tag in "ab":
        idx = out.filter(pl.col("src") == tag)["i"].to_list()
        assert idx == sorted(set(idx))  # original order, no row twice


def test_mix_is_seeded() -> None:
    import numpy as np

    a, b = frame("a", 30), frame("b", 30)
    one = run(Mix(weights=[1, 2], n=12, seed=5), a, b)
    assert one.equals(run(Mix(weights=[1, 2], n=12, seed=5), a, b))
    assert not one.equals(run(Mix(weights=[1, 2], n=12, seed=6), a, b))
    expected_b = sorted(np.random.default_rng([5, 1]).choice(30, 8, replace=False).tolist())
    assert one.filter(pl.col("src") == "b")["i"].to_list() == expected_b
    assert Mix.stochastic


def test_mix_defaults_to_equal_weights_and_unions_columns() -> None:
    a = pl.DataFrame({"x": [1, 2, 3]})
    b = pl.DataFrame({"y": ["p", "q"]})
    out = run(Mix(), a, b)
    assert out.height == 4 and out.columns == ["x", "y"]
    assert out["x"].null_count() == 2


def test_mix_parameter_errors() -> None:
    with pytest.raises(ParamError, match="'weights' has 3 values for 2 inputs"):
        run(Mix(weights=[1, 1, 1]), frame("a", 3), frame("b", 3))
    with pytest.raises(ParamError, match="'weights' has 1 values for 2 inputs"):
        Mix(weights=[1]).output_schema([Schema({}), Schema({})])
    with pytest.raises(ParamError, match="'weights' must be >= 0 with at least one > 0"):
        Mix(weights=[0, 0])
    with pytest.raises(ParamError, match="'weights' must be >= 0"):
        Mix(weights=[1, -1])
    with pytest.raises(DataError, match="at most 6 rows"):
        run(Mix(n=7), frame("a", 3), frame("b", 10))


# -- split ------------------------------------------------------------------------------------
def test_split_parts_are_complementary(data: Path) -> None:
    gsm = LoadJsonl(path=str(data / "gsm8k_train.jsonl")).run([], RunContext(node="t"))
    gsm = gsm.with_row_index("row")
    test = run(Split(test=0.1, part="test", seed=7), gsm)
    train = run(Split(test=0.1, part="train", seed=7), gsm)
    assert test.height == 747 and train.height == 7473 - 747  # floor(0.1 x 7473)
    rows_test, rows_train = test["row"].to_list(), train["row"].to_list()
    assert rows_test == sorted(rows_test) and rows_train == sorted(rows_train)
    assert sorted(rows_test + rows_train) == list(range(7473))
    other = run(Split(test=0.1, part="test", seed=8), gsm)["row"].to_list()
    assert other != rows_test


def test_split_exact_sizes_and_seed() -> None:
    import numpy as np

    df = pl.DataFrame({"i": list(range(100))})
    test = run(Split(test=0.29, part="test", seed=1), df)["i"].to_list()
    assert test == sorted(np.random.default_rng(1).permutation(100)[:29].tolist())
    assert run(Split(test=0.0, part="test"), df).height == 0
    assert run(Split(test=1.0, part="train"), df).height == 0
    assert run(Split(), df).height == 90  # defaults: test=0.1, part="train"


def test_split_takes_one_dataset() -> None:
    df = pl.DataFrame({"i": [1]})
    with pytest.raises(ParamError, match="split takes exactly one dataset \\(got 2\\)"):
        run(Split(), df, df)
    with pytest.raises(ParamError, match="exactly one dataset"):
        Split().output_schema([Schema({}), Schema({})])
    assert Split().output_schema([Schema({"i": "int"})]) == Schema({"i": "int"})
    with pytest.raises(ParamError, match="'part' must be one of 'train', 'test'"):
        Split(part="valid")
