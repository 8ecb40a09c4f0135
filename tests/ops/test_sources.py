"""load.*: real files, schema inference from the head, and bad data named by file and line."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from dcc.errors import DataError, ParamError
from dcc.ops.base import RunContext
from dcc.ops.sources import LoadCsv, LoadDisk, LoadHF, LoadJson, LoadJsonl, LoadParquet
from dcc.schema import Schema


def load(op, ctx: RunContext | None = None) -> pl.DataFrame:
    return op.run([], ctx or RunContext(node="t"))


# -- load.jsonl on the shared data -----------------------------------------------------------
def test_jsonl_reads_gsm8k(data: Path) -> None:
    df = load(LoadJsonl(path=str(data / "gsm8k_train.jsonl")))
    assert df.shape == (7473, 2)
    assert df.columns == ["question", "answer"]
    assert df["question"][1] == ("Weng earns $12 an hour for babysitting. Yesterday, she just "
                                 "did 50 minutes of babysitting. How much did she earn?")
    assert df["answer"][0].endswith("\n#### 72")


def test_jsonl_reads_nested_seed_tasks(data: Path) -> None:
    df = load(LoadJsonl(path=str(data / "self_instruct_seed_tasks.jsonl")))
    assert df.height == 175
    assert df["id"][:2].to_list() == ["seed_task_0", "seed_task_1"]
    assert df["is_classification"].sum() == 26  # as the data README says
    assert df["instances"].list.len().unique().to_list() == [1]
    assert df.schema["instances"] == pl.List(pl.Struct({"input": pl.String,
                                                        "output": pl.String}))


def test_jsonl_schema_from_head(data: Path) -> None:
    op = LoadJsonl(path=str(data / "self_instruct_seed_tasks.jsonl"))
    assert op.infer_schema() == Schema({"id": "str", "name": "str", "instruction": "str",
                                        "instances": "list", "is_classification": "bool"})
    assert op.output_schema([]) == op.infer_schema()
    assert op.files() == [str(data / "self_instruct_seed_tasks.jsonl")]


def test_jsonl_schema_reads_at_most_100_non_blank_lines(write) -> None:
    lines = ['{"a": 1}', ""] * 100 + ['{"late": "x"}', "this is not json"]
    path = write("x.jsonl", "\n".join(lines) + "\n")
    assert LoadJsonl(path=path).infer_schema() == Schema({"a": "int"})
    with pytest.raises(DataError, match=r"x\.jsonl:202: invalid JSON"):
        load(LoadJsonl(path=path))


def test_jsonl_schema_merges_types(write) -> None:
    path = write("x.jsonl", '{"n": 1, "s": null}\n{"n": 2.5, "s": "x", "o": {"k": 1}}\n'
                            '{"m": true, "s": 3}\n')
    assert LoadJsonl(path=path).infer_schema() == Schema(
        {"n": "float", "s": "any", "o": "struct", "m": "bool"})


# -- load.jsonl: blank lines, bad lines, skip mode --------------------------------------------
def test_jsonl_blank_lines_ignored_and_missing_keys_null(write) -> None:
    path = write("x.jsonl", '{"a": 1}\n\n  \n{"a": 2, "b": "é"}\r\n')
    df = load(LoadJsonl(path=path))
    assert df.rows() == [(1, None), (2, "é")]


@pytest.mark.parametrize("content, line, message", [
    (b'{"a": 1}\n\n{"a": \n{"a": 3}\n', 3, "invalid JSON (Expecting value at column 7)"),
    (b'{"a": 1}\n[1, 2]\n', 2, "a row must be a JSON object (got list)"),
    (b'{"a": 1}\n"text"\n', 2, "a row must be a JSON object (got str)"),
    (b'{"a": 1}\nnull\n', 2, "a row must be a JSON object (got null)"),
    (b'{"a": NaN}\n', 1, "invalid JSON (NaN is not valid JSON)"),
    (b'{"a": 1}\n{"a": "\xff"}\n', 2, "invalid UTF-8 (byte 8 of the line)"),
    (b'{"a": 1} {"a": 2}\n', 1, "invalid JSON (Extra data at column 10)"),
])
def test_jsonl_bad_line_names_file_and_line(write, content, line, message) -> None:
    path = write("bad.jsonl", content)
    with pytest.raises(DataError) as exc:
        load(LoadJsonl(path=path))
    assert str(exc.value) == f"{path}:{line}: {message}"


def test_jsonl_rows_that_do_not_fit_together(write) -> None:
    path = write("x.jsonl", '{"a": 1}\n{"a": 2}\n\n{"a": {"k": 1}}\n{"a": 3}\n')
    with pytest.raises(DataError, match=r"x\.jsonl:4: this row's types do not fit"):
        load(LoadJsonl(path=path))
    # Scalars of different kinds are not a conflict: polars makes the column str.
    path = write("y.jsonl", '{"a": 1}\n{"a": "x"}\n')
    assert load(LoadJsonl(path=path))["a"].to_list() == ["1", "x"]


def test_jsonl_skip_drops_bad_lines_and_counts_them(write) -> None:
    path = write("x.jsonl", '{"a": 1}\n{"a": \n[3]\n\n{"a": 4}\n')
    ctx = RunContext(node="t")
    df = load(LoadJsonl(path=path, on_error="skip"), ctx)
    assert df["a"].to_list() == [1, 4]
    assert ctx.stats["skipped_lines"] == 2
    assert LoadJsonl(path=path, on_error="skip").infer_schema() == Schema({"a": "int"})
    with pytest.raises(DataError, match=r":2: invalid JSON"):
        LoadJsonl(path=path).infer_schema()


def test_jsonl_skip_on_clean_file_reports_zero(data: Path) -> None:
    ctx = RunContext(node="t")
    load(LoadJsonl(path=str(data / "humaneval.jsonl"), on_error="skip"), ctx)
    assert ctx.stats == {"skipped_lines": 0}


def test_jsonl_empty_file(write) -> None:
    path = write("e.jsonl", "\n\n")
    assert load(LoadJsonl(path=path)).shape == (0, 0)
    assert LoadJsonl(path=path).infer_schema() == Schema({})


def test_missing_files_are_data_errors(tmp_path: Path) -> None:
    gone = str(tmp_path / "gone.jsonl")
    for op in (LoadJsonl(path=gone), LoadJson(path=gone), LoadParquet(path=gone),
               LoadCsv(path=gone)):
        with pytest.raises(DataError, match="gone.jsonl: no such file"):
            op.infer_schema()
        with pytest.raises(DataError, match="no such file"):
            load(op)
    with pytest.raises(DataError, match="no such folder"):
        LoadDisk(path=str(tmp_path / "nothing")).infer_schema()


def test_on_error_choices() -> None:
    with pytest.raises(ParamError, match="'on_error' must be one of 'raise', 'skip'"):
        LoadJsonl(path="/x.jsonl", on_error="ignore")


# -- load.json --------------------------------------------------------------------------------
def test_json_array_of_objects(write) -> None:
    path = write("a.json", '[\n {"a": 1, "t": "x"},\n {"a": 2.5, "l": [1]}\n]\n')
    df = load(LoadJson(path=path))
    assert df.columns == ["a", "t", "l"]
    assert df.rows() == [(1.0, "x", None), (2.5, None, [1])]
    assert LoadJson(path=path).infer_schema() == Schema({"a": "float", "t": "str", "l": "list"})
    assert load(LoadJson(path=write("e.json", " [ ] "))).shape == (0, 0)


def test_json_schema_reads_only_the_head(write) -> None:
    rows = ",\n".join(['{"a": 1}'] * 100 + ['{"b": 2}', "oops"])
    path = write("a.json", f"[\n{rows}\n]")
    assert LoadJson(path=path).infer_schema() == Schema({"a": "int"})
    with pytest.raises(DataError, match=r"a\.json:103: invalid JSON"):
        load(LoadJson(path=path))


@pytest.mark.parametrize("content, message", [
    ('{"a": 1}', "a.json:1: expected a JSON array of objects"),
    ('[\n {"a": 1},\n 3\n]', "a.json:3: element 2 of the array must be a JSON object (got int)"),
    ('[\n {"a": 1},\n {"a": \n]', "a.json:4: invalid JSON (Expecting value)"),
    ('[\n {"a": 1}\n {"a": 2}\n]', "a.json:3: invalid JSON (expected ',' or ']' after element 1)"),
    ('[\n {"a": 1},\n {"a": {"k": 1}}\n]', "a.json:3: this row's types do not fit"),
])
def test_json_errors_name_the_line(write, content, message) -> None:
    path = write("a.json", content)
    with pytest.raises(DataError) as exc:
        load(LoadJson(path=path))
    assert str(exc.value).startswith(str(Path(path).parent / message))


# -- load.parquet -----------------------------------------------------------------------------
def test_parquet_columns_and_schema(tmp_path: Path) -> None:
    path = str(tmp_path / "t.parquet")
    pl.DataFrame({"s": ["a", None], "i": [1, 2], "f": [0.5, 1.0], "b": [True, False],
                  "l": [[1], []], "o": [{"k": 1}, None]}).write_parquet(path)
    op = LoadParquet(path=path)
    assert op.infer_schema() == Schema({"s": "str", "i": "int", "f": "float", "b": "bool",
                                        "l": "list", "o": "struct"})
    some = LoadParquet(path=path, columns=["i", "s"])
    assert load(some).rows() == [(1, "a"), (2, None)]
    assert some.infer_schema() == Schema({"i": "int", "s": "str"})
    with pytest.raises(DataError, match="no column 'x' \\(it has: s, i, f, b, l, o\\)"):
        LoadParquet(path=path, columns=["x"]).infer_schema()


def test_parquet_garbage_is_a_data_error(write) -> None:
    with pytest.raises(DataError, match="not a readable Parquet file"):
        load(LoadParquet(path=write("t.parquet", b"not parquet at all")))


# -- load.csv ---------------------------------------------------------------------------------
def test_csv_types_only_when_unambiguous(write) -> None:
    path = write("t.csv", 'n,f,b,zip,big,t,e\n'
                          '1,1.5,true,007,99999999999999999999,"a, ""b""",\n'
                          '-2,,false,10,1,,\n')
    df = load(LoadCsv(path=path))
    assert df.schema == pl.Schema({"n": pl.Int64, "f": pl.Float64, "b": pl.Boolean,
                                   "zip": pl.String, "big": pl.String, "t": pl.String,
                                   "e": pl.String})
    assert df.rows() == [(1, 1.5, True, "007", "99999999999999999999", 'a, "b"', ""),
                         (-2, None, False, "10", "1", "", "")]
    assert LoadCsv(path=path).infer_schema() == Schema(
        {"n": "int", "f": "float", "b": "bool", "zip": "str", "big": "str", "t": "str",
         "e": "str"})


def test_csv_tab_delimiter_and_quoted_newlines(write) -> None:
    path = write("t.tsv", 'q\ta\n"two\nlines"\tx\n')
    assert load(LoadCsv(path=path, delimiter="\t")).rows() == [("two\nlines", "x")]


@pytest.mark.parametrize("content, message", [
    ("a,b\n1,2\n3\n", "t.csv:3: expected 2 fields, found 1"),
    ('a,b\n1,"x\ny"\n4,5,6\n', "t.csv:4: expected 2 fields, found 3"),
])
def test_csv_ragged_rows_name_the_line(write, content, message) -> None:
    path = write("t.csv", content)
    with pytest.raises(DataError) as exc:
        load(LoadCsv(path=path))
    assert str(exc.value) == str(Path(path).parent / message)


def test_csv_delimiter_must_be_one_character() -> None:
    with pytest.raises(ParamError, match="'delimiter' must be one ASCII character"):
        LoadCsv(path="/t.csv", delimiter=";;")


def test_csv_empty_and_header_only(write) -> None:
    assert load(LoadCsv(path=write("e.csv", ""))).shape == (0, 0)
    df = load(LoadCsv(path=write("h.csv", "a,b\n")))
    assert df.shape == (0, 2) and df.schema == pl.Schema({"a": pl.String, "b": pl.String})


# -- load.disk --------------------------------------------------------------------------------
def test_disk_reads_hf_save_to_disk(tmp_path: Path) -> None:
    import datasets

    datasets.disable_progress_bars()
    ds = datasets.Dataset.from_dict({"q": ["x", "é"], "n": [1, 2],
                                     "m": [[{"role": "user", "content": "hi"}], []]})
    ds.save_to_disk(str(tmp_path / "hf"))
    op = LoadDisk(path=str(tmp_path / "hf"))
    assert op.infer_schema() == Schema({"q": "str", "n": "int", "m": "list"})
    df = load(op)
    assert df["q"].to_list() == ["x", "é"] and df["n"].to_list() == [1, 2]
    assert df["m"][0].to_list() == [{"role": "user", "content": "hi"}]
    assert [Path(f).name for f in op.files()] == ["data-00000-of-00001.arrow",
                                                  "dataset_info.json", "state.json"]

    datasets.DatasetDict({"train": ds, "test": ds}).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(DataError, match=r"holds several splits \((train, test|test, train)\)"):
        LoadDisk(path=str(tmp_path / "dd")).infer_schema()
    assert load(LoadDisk(path=str(tmp_path / "dd" / "test"))).height == 2


def test_disk_rejects_a_plain_folder(tmp_path: Path) -> None:
    (tmp_path / "f").mkdir()
    with pytest.raises(DataError, match="not a saved dataset"):
        load(LoadDisk(path=str(tmp_path / "f")))


# -- load.hf ----------------------------------------------------------------------------------
def test_hf_local_folder(tmp_path: Path, data: Path, monkeypatch) -> None:
    import datasets

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf-cache")
    folder = tmp_path / "gsm"
    folder.mkdir()
    head = (data / "gsm8k_train.jsonl").read_text().splitlines()[:5]
    (folder / "train.jsonl").write_text("\n".join(head) + "\n")
    op = LoadHF(name=str(folder))
    assert op.files() == [str(folder / "train.jsonl")]
    assert op.infer_schema() == Schema.unknown()
    df = load(op)
    assert df.columns == ["question", "answer"]
    assert df["question"].to_list() == [json.loads(x)["question"] for x in head]
    with pytest.raises(DataError, match="cannot load .*Unknown split"):
        load(LoadHF(name=str(folder), split="test"))


def test_hf_hub_name_is_keyed_by_params_not_files() -> None:
    op = LoadHF(name="openai/gsm8k", revision="abc123")
    assert op.files() == []
    assert op.key_params() == {"name": "openai/gsm8k", "split": "train", "revision": "abc123",
                               "data_dir": None}
