"""rows.explode / rows.group / rows.shuffle / rows.sort and load.rows (dcc/ops/plumbing.py):
round trips on the shared data, hand-checked rows, and the edge cases (empty and null lists,
null keys, wrong column types)."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from dcc.errors import DataError, ParamError
from dcc.ops.base import RunContext
from dcc.ops.plumbing import LoadRows, RowsExplode, RowsGroup, RowsShuffle, RowsSort
from dcc.ops.rules import ColumnTypeError
from dcc.schema import Schema


def run(op, *frames: pl.DataFrame) -> pl.DataFrame:
    return op.run(list(frames), RunContext(node="t"))


@pytest.fixture
def steps(gsm8k: pl.DataFrame) -> pl.DataFrame:
    """The first 200 GSM8K answers as a list of their lines (real lists of 2 to 9 items)."""
    return gsm8k.head(200).with_row_index("id").with_columns(
        pl.col("answer").str.split("\n").alias("steps"))


# -- explode / group ------------------------------------------------------------------------
def test_explode_gsm8k_lines_one_row_per_line(steps: pl.DataFrame) -> None:
    out = run(RowsExplode(field="steps", index="k"), steps)
    want = sum(len(a.split("\n")) for a in steps["answer"])
    assert out.height == want
    first = out.filter(pl.col("id") == 0)
    # the first GSM8K answer, read by hand: two working lines and the final "#### 72"
    assert first["steps"].to_list() == [
        "Natalia sold 48/2 = <<48/2=24>>24 clips in May.",
        "Natalia sold 48+24 = <<48+24=72>>72 clips altogether in April and May.",
        "#### 72"]
    assert first["k"].to_list() == [0, 1, 2]
    assert first["question"].n_unique() == 1


def test_group_undoes_explode(steps: pl.DataFrame) -> None:
    exploded = run(RowsExplode(field="steps"), steps)
    back = run(RowsGroup(by="id", collect=["steps"]), exploded)
    assert back.equals(steps)


def test_explode_unnests_the_seed_tasks_instances(seed_tasks: pl.DataFrame) -> None:
    out = run(RowsExplode(field="instances", unnest=True), seed_tasks)
    assert out.columns == ["id", "name", "instruction", "input", "output", "is_classification"]
    assert out.height == 175
    row = out.row(0, named=True)
    assert row["id"] == "seed_task_0" and row["input"] == ""
    assert row["output"].startswith("Yes, you can have 1 oatmeal banana protein shake")


def test_explode_empty_and_null_lists() -> None:
    df = pl.DataFrame({"id": [1, 2, 3, 4], "xs": [["a", "b"], [], None, ["c"]]})
    assert run(RowsExplode(field="xs"), df).rows() == [(1, "a"), (1, "b"), (4, "c")]
    kept = run(RowsExplode(field="xs", keep_empty=True, index="k"), df)
    assert kept.rows() == [(1, "a", 0), (1, "b", 1), (2, None, None), (3, None, None),
                           (4, "c", 0)]


def test_explode_several_fields_together_and_unequal_lengths() -> None:
    df = pl.DataFrame({"q": [["q1", "q2"], ["q3"]], "a": [["a1", "a2"], ["a3"]]})
    assert run(RowsExplode(field=["q", "a"]), df).rows() == [
        ("q1", "a1"), ("q2", "a2"), ("q3", "a3")]
    bad = pl.DataFrame({"q": [["q1"], ["q2", "q3"]], "a": [["a1"], ["a2"]]})
    with pytest.raises(DataError, match=r"row 2: 'q' has 2, 'a' has 1 elements"):
        run(RowsExplode(field=["q", "a"]), bad)


def test_explode_all_null_column_and_wrong_type() -> None:
    df = pl.DataFrame({"xs": [None, None], "s": ["a", "b"]})
    assert run(RowsExplode(field="xs"), df).height == 0
    assert run(RowsExplode(field="xs", keep_empty=True), df).height == 2
    with pytest.raises(ColumnTypeError, match="column 's' must be list"):
        run(RowsExplode(field="s"), df)
    with pytest.raises(ColumnTypeError, match="no column 'nope'"):
        run(RowsExplode(field="nope"), df)


def test_explode_unnest_clash_and_non_objects() -> None:
    df = pl.DataFrame({"input": ["x"], "inst": [[{"input": "a", "output": "b"}]]})
    with pytest.raises(DataError, match="key 'input' clashes"):
        run(RowsExplode(field="inst", unnest=True), df)
    with pytest.raises(DataError, match="needs object elements"):
        run(RowsExplode(field="xs", unnest=True), pl.DataFrame({"xs": [[1, 2]]}))


def test_explode_params_and_schema() -> None:
    with pytest.raises(ParamError, match="'index' must be a new column"):
        RowsExplode(field="xs", index="xs")
    op = RowsExplode(field="xs", index="k")
    out = op.output_schema([Schema({"id": "int", "xs": "list"})])
    assert out.columns == {"id": "int", "xs": "any", "k": "int"}
    assert op.input_columns({"id", "k"}) == {"id", "xs"}


def test_group_keeps_first_of_other_columns_counts_and_null_keys() -> None:
    df = pl.DataFrame({"k": ["b", None, "a", "b", None], "v": [1, 2, 3, None, 5],
                       "tag": ["x", "y", "z", "w", "u"]})
    out = run(RowsGroup(by="k", collect=["v"], count="n"), df)
    assert out.rows() == [("b", [1, None], "x", 2), (None, [2, 5], "y", 2), ("a", [3], "z", 1)]
    every = run(RowsGroup(by=["k"]), df)  # collect=null: every non-key column
    assert every["tag"].to_list() == [["x", "w"], ["y", "u"], ["z"]]
    schema = RowsGroup(by="k", count="n").output_schema([Schema({"k": "str", "v": "int"})])
    assert schema.columns == {"k": "str", "v": "list", "n": "int"}


def test_group_errors() -> None:
    with pytest.raises(ParamError, match="'k' is a key"):
        RowsGroup(by="k", collect=["k"])
    df = pl.DataFrame({"k": [1], "n": [2]})
    with pytest.raises(DataError, match="'count' column 'n' already exists"):
        run(RowsGroup(by="k", count="n"), df)
    with pytest.raises(DataError, match="no column 'zz'"):
        run(RowsGroup(by="zz"), df)


# -- shuffle / sort --------------------------------------------------------------------------
def test_shuffle_is_numpy_permutation_and_deterministic(gsm8k: pl.DataFrame) -> None:
    df = gsm8k.head(500)
    a, b = run(RowsShuffle(seed=11), df), run(RowsShuffle(seed=11), df)
    assert a.equals(b)
    perm = np.random.default_rng(11).permutation(500)
    assert a["question"].to_list() == [df["question"][int(i)] for i in perm]
    assert not run(RowsShuffle(seed=12), df).equals(a)
    assert sorted(a["question"].to_list()) == sorted(df["question"].to_list())


def test_sort_stable_nulls_and_nan() -> None:
    df = pl.DataFrame({"x": [2.0, None, float("nan"), 1.0, 2.0],
                       "s": ["B", "a", "c", "B", "a"], "i": [0, 1, 2, 3, 4]})
    assert run(RowsSort(by="x"), df)["i"].to_list() == [3, 0, 4, 2, 1]
    assert run(RowsSort(by="x", descending=True), df)["i"].to_list() == [2, 0, 4, 3, 1]
    assert run(RowsSort(by="x", nulls_last=False), df)["i"].to_list() == [1, 3, 0, 4, 2]
    assert run(RowsSort(by=["s", "x"], descending=[False, True]), df)["i"].to_list() == \
        [0, 3, 4, 1, 2]  # "B" < "a" (code points); within "B" the 2.0 first


def test_sort_by_gsm8k_question_length(gsm8k: pl.DataFrame) -> None:
    df = gsm8k.head(300).with_columns(pl.col("question").str.len_chars().alias("n"))
    out = run(RowsSort(by="n", descending=True), df)
    want = sorted(range(300), key=lambda i: -df["n"][i])  # Python's sort is stable too
    assert out["question"].to_list() == [df["question"][i] for i in want]


def test_sort_errors() -> None:
    with pytest.raises(ParamError, match="'descending' has 2 values for 1 keys"):
        RowsSort(by="x", descending=[True, False])
    with pytest.raises(DataError, match="cannot sort by 'xs'"):
        run(RowsSort(by="xs"), pl.DataFrame({"xs": [[1], [2]]}))


# -- load.rows -------------------------------------------------------------------------------
def test_load_rows_types_as_jsonl_would(write_jsonl) -> None:
    rows = [{"topic": "algebra", "n": 1}, {"topic": "geometry", "n": 2.5, "hard": True},
            {"n": None, "tags": ["a"]}]
    got = LoadRows(rows=rows).load(RunContext("t"))
    want = pl.read_ndjson(write_jsonl(rows), infer_schema_length=None)
    assert got.equals(want)
    assert got.columns == ["topic", "n", "hard", "tags"]
    assert LoadRows(rows=rows).infer_schema().columns == {
        "topic": "str", "n": "float", "hard": "bool", "tags": "list"}


def test_load_rows_edge_cases() -> None:
    assert LoadRows(rows=[]).load(RunContext("t")).shape == (0, 0)
    with pytest.raises(ParamError, match="row 2 is str"):
        LoadRows(rows=[{"a": 1}, "b"])
    with pytest.raises(DataError, match="row 2's types do not fit"):
        LoadRows(rows=[{"a": [1]}, {"a": {"b": 1}}]).load(RunContext("t"))
    assert LoadRows(rows=[{"a": 1}]).files() == []


@pytest.fixture
def write_jsonl(tmp_path):
    def _write(rows: list[dict]) -> str:
        import json

        path = tmp_path / "rows.jsonl"
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
        return str(path)

    return _write
