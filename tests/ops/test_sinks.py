"""Exports: every format round-trips, writes are atomic, and bytes are identical across runs
and processes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import polars as pl
import pytest

from dcc.errors import DataError
from dcc.ops import sinks
from dcc.ops.base import RunContext
from dcc.ops.sinks import format_for, write_export, write_export_batches
from dcc.ops.sources import LoadCsv, LoadDisk, LoadJson, LoadJsonl, LoadParquet

REPO = Path(__file__).resolve().parents[2]
TARGETS = ["out.jsonl", "out.json", "out.parquet", "out.csv", "hf"]


def sample() -> pl.DataFrame:
    return pl.DataFrame({
        "text": ["héllo ☃", None, 'quote " and \\ and\nnewline', ""],
        "n": [1, None, -3, 4],
        "x": [0.5, 1.0, None, 1e-7],
        "ok": [True, False, None, True],
        "msgs": [[{"role": "user", "content": "hi"}], [], None,
                 [{"role": "assistant", "content": "ok"}]],
    })


def digests(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("path, fmt", [
    ("a/train.jsonl", "jsonl"), ("a/train.json", "json"), ("train.parquet", "parquet"),
    ("t.CSV", "csv"), ("out/hf_train", "arrow"), ("out/v1.2", "arrow"),
])
def test_format_for(path: str, fmt: str) -> None:
    assert format_for(path) == fmt


def test_jsonl_is_utf8_with_one_object_per_line(tmp_path: Path) -> None:
    write_export(sample().head(2), tmp_path / "o.jsonl")
    text = (tmp_path / "o.jsonl").read_bytes().decode("utf-8")
    assert text == (
        '{"text":"héllo ☃","n":1,"x":0.5,"ok":true,"msgs":[{"role":"user","content":"hi"}]}\n'
        '{"text":null,"n":null,"x":1.0,"ok":false,"msgs":[]}\n')


def test_json_is_an_array_one_row_per_line(tmp_path: Path) -> None:
    df = pl.DataFrame({"a": [1, 2], "b": ["x", "é"]})
    write_export(df, tmp_path / "o.json")
    assert (tmp_path / "o.json").read_text("utf-8") == '[\n{"a":1,"b":"x"},\n{"a":2,"b":"é"}\n]\n'
    write_export(df.head(0), tmp_path / "e.json")
    assert (tmp_path / "e.json").read_text() == "[]\n"


def test_csv_writes_nested_values_as_json(tmp_path: Path) -> None:
    df = pl.DataFrame({"a": ["x,y", None], "l": [[1, 2], None], "s": [{"k": "v"}, None]})
    write_export(df, tmp_path / "o.csv")
    assert (tmp_path / "o.csv").read_text() == 'a,l,s\n"x,y","[1,2]","{""k"":""v""}"\n,,\n'


@pytest.mark.parametrize("target, loader", [
    ("out.jsonl", LoadJsonl), ("out.json", LoadJson), ("out.parquet", LoadParquet),
    ("hf", LoadDisk),
])
def test_round_trip(tmp_path: Path, target: str, loader) -> None:
    df = sample()
    write_export(df, tmp_path / target)
    back = loader(path=str(tmp_path / target)).run([], RunContext(node="t"))
    assert back.equals(df)


def test_csv_round_trip_of_flat_columns(tmp_path: Path) -> None:
    df = sample().drop("msgs").with_columns(pl.col("text").fill_null(""))
    write_export(df, tmp_path / "o.csv")
    back = LoadCsv(path=str(tmp_path / "o.csv")).run([], RunContext(node="t"))
    assert back.equals(df)


def test_directory_export_is_a_hf_dataset(tmp_path: Path) -> None:
    import datasets

    write_export(sample(), tmp_path / "hf")
    assert sorted(os.listdir(tmp_path / "hf")) == ["data-00000-of-00001.arrow",
                                                  "dataset_info.json", "state.json"]
    ds = datasets.load_from_disk(str(tmp_path / "hf"))
    assert ds.num_rows == 4 and ds.column_names == list(sample().columns)
    assert ds[0]["text"] == "héllo ☃" and ds[3]["msgs"] == [{"role": "assistant",
                                                             "content": "ok"}]
    state = json.loads((tmp_path / "hf" / "state.json").read_text())
    arrow = (tmp_path / "hf" / "data-00000-of-00001.arrow").read_bytes()
    assert state["_fingerprint"] == hashlib.sha256(arrow).hexdigest()[:16]


def test_bytes_identical_across_writes_and_chunking(tmp_path: Path) -> None:
    df = sample()
    chunked = pl.concat([df.head(1), df.slice(1, 2), df.tail(1)], rechunk=False)
    for i, frame in enumerate([df, chunked]):
        for target in TARGETS:
            write_export(frame, tmp_path / str(i) / target)
    assert digests(tmp_path / "0") == digests(tmp_path / "1")
    assert len(digests(tmp_path / "0")) == 7


@pytest.mark.parametrize("cuts", [[50], [1, 13, 0, 20, 16], [7] * 7 + [1], [0]])
def test_streamed_export_equals_the_whole_table(tmp_path: Path, monkeypatch,
                                                cuts: list[int]) -> None:
    """A table exported batch by batch (larger than memory) gives the bytes of the same rows
    written whole, for every format: row groups and record batches are cut by row count.
    Small group sizes put several cuts inside and across the batches."""
    monkeypatch.setattr(sinks, "PARQUET_ROW_GROUP", 7)
    monkeypatch.setattr(sinks, "ARROW_BATCH_ROWS", 3)
    monkeypatch.setattr(sinks, "HF_CANONICAL_ROWS", 6)
    whole = pl.concat([sample()] * 13).head(sum(cuts)).with_row_index("i")
    parts, at = [], 0
    for n in cuts:
        parts.append(whole.slice(at, n))
        at += n
    for target in TARGETS:
        write_export(whole, tmp_path / "whole" / target)
        write_export_batches(dict(whole.schema), iter(parts), tmp_path / "streamed" / target)
    assert digests(tmp_path / "whole") == digests(tmp_path / "streamed")
    back = LoadParquet(path=str(tmp_path / "streamed" / "out.parquet")).run(
        [], RunContext(node="t"))
    assert back.equals(whole)
    assert LoadDisk(path=str(tmp_path / "streamed" / "hf")).run(
        [], RunContext(node="t")).equals(whole)
    assert LoadJson(path=str(tmp_path / "streamed" / "out.json")).run(
        [], RunContext(node="t")).height == whole.height


def test_bytes_identical_across_processes(tmp_path: Path, data: Path) -> None:
    code = (
        "import sys; from pathlib import Path\n"
        "from dcc.ops.base import RunContext\n"
        "from dcc.ops.sources import LoadJsonl\n"
        "from dcc.ops.sinks import write_export\n"
        f"df = LoadJsonl(path={str(data / 'self_instruct_seed_tasks.jsonl')!r})"
        ".run([], RunContext(node='t'))\n"
        f"for t in {TARGETS!r}: write_export(df, Path(sys.argv[1]) / t)\n"
    )
    for name in ("p1", "p2"):
        subprocess.run([sys.executable, "-c", code, str(tmp_path / name)], cwd=REPO, check=True,
                       env={**os.environ, "PYTHONHASHSEED": name[-1]})
    assert digests(tmp_path / "p1") == digests(tmp_path / "p2")
    assert LoadDisk(path=str(tmp_path / "p1" / "hf")).run([], RunContext(node="t")).height == 175


def test_writes_are_atomic_and_leave_no_temps(tmp_path: Path, monkeypatch) -> None:
    dest = tmp_path / "o.jsonl"
    write_export(pl.DataFrame({"a": [1]}), dest)
    before = dest.read_bytes()

    def boom(schema: dict, batches: object, f) -> None:
        f.write(b"half a fi")
        raise RuntimeError("disk full")

    monkeypatch.setattr(sinks, "_write_jsonl", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        write_export(pl.DataFrame({"a": [2]}), dest)
    assert dest.read_bytes() == before
    assert os.listdir(tmp_path) == ["o.jsonl"]


def test_directory_export_replaces_only_a_dataset_folder(tmp_path: Path) -> None:
    write_export(pl.DataFrame({"a": [1]}), tmp_path / "hf")
    write_export(pl.DataFrame({"a": [2, 3]}), tmp_path / "hf")
    assert LoadDisk(path=str(tmp_path / "hf")).run([], RunContext(node="t"))["a"].to_list() == [2, 3]
    assert sorted(os.listdir(tmp_path)) == ["hf"]

    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="export would replace a folder that is not a saved"):
        write_export(pl.DataFrame({"a": [1]}), tmp_path / "mine")
    assert (tmp_path / "mine" / "notes.txt").read_text() == "keep me"
    (tmp_path / "empty").mkdir()
    write_export(pl.DataFrame({"a": [1]}), tmp_path / "empty")
    assert (tmp_path / "empty" / "state.json").is_file()


def test_parent_folders_are_created(tmp_path: Path) -> None:
    write_export(pl.DataFrame({"a": [1]}), tmp_path / "deep" / "er" / "o.parquet")
    assert pl.read_parquet(tmp_path / "deep" / "er" / "o.parquet")["a"].to_list() == [1]
