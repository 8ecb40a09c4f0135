"""distill.coreset: a budget or fraction of GSM8K questions, chosen exactly as select.kcenter
and select.diverse choose them (MiniLM embeddings), returned as row positions."""

from __future__ import annotations

from typing import Any

import numpy as np
import polars as pl
import pytest

from dcc.errors import ParamError
from dcc.ops import get
from dcc.ops.base import RunContext
from dcc.ops.distill import DistillCoreset
from dcc.ops.scorers import SelectDiverse, SelectKCenter


@pytest.fixture(scope="module")
def df(gsm8k: list[dict[str, Any]]) -> pl.DataFrame:
    pytest.importorskip("torch")
    rows = gsm8k[:40] + gsm8k[:3]  # three exact repeats at the end
    return pl.DataFrame({"question": [r["question"] for r in rows],
                         "score": [float(i % 7) for i in range(len(rows))],
                         "_parent": list(range(len(rows)))})


def ctx() -> RunContext:
    return RunContext("coreset", options={"device": "cpu"})


def test_registered_with_its_contract() -> None:
    cls = get("distill.coreset")
    assert cls is DistillCoreset and cls.stochastic and not cls.expensive
    assert cls.kind == "dataset" and cls.spec("seed").default == 0


def test_kcenter_keeps_what_select_kcenter_keeps(df: pl.DataFrame) -> None:
    op = DistillCoreset(budget=10, field="question", seed=4)
    c = ctx()
    rows = op.select_rows(df, c)
    assert rows.dtype == np.int64 and list(rows) == sorted(set(rows.tolist()))
    want = SelectKCenter(field="question", budget=10, seed=4).run([df], ctx())
    assert df[rows.tolist()].equals(want)
    assert op.run([df], ctx()).equals(want)  # every column kept, in the original order
    assert c.model_calls == 40  # each distinct question embedded once


def test_diverse_keeps_what_select_diverse_keeps(df: pl.DataFrame) -> None:
    op = DistillCoreset(fraction=0.25, method="diverse", field="question", by="score",
                        threshold=0.3)
    rows = op.select_rows(df, ctx())
    assert len(rows) == 10  # floor(0.25 x 43)
    want = SelectDiverse(field="question", by="score", budget=10, threshold=0.3).run([df],
                                                                                     ctx())
    assert df[rows.tolist()].equals(want)
    assert sorted(set(df[rows.tolist()]["score"].to_list()))[-1] == 6.0


def test_sizes_at_the_edges_ask_no_model(df: pl.DataFrame) -> None:
    c = ctx()
    assert len(DistillCoreset(budget=0, field="question").select_rows(df, c)) == 0
    assert list(DistillCoreset(budget=500, field="question").select_rows(df, c)) == \
        list(range(df.height))
    assert list(DistillCoreset(fraction=1.0, field="question").select_rows(df, c)) == \
        list(range(df.height))
    assert c.model_calls == 0
    assert DistillCoreset(fraction=0.29).size(100) == 29  # exact decimal, not 28


def test_parameters() -> None:
    with pytest.raises(ParamError, match="give exactly one of 'budget' and 'fraction'"):
        DistillCoreset()
    with pytest.raises(ParamError, match="give exactly one of 'budget' and 'fraction'"):
        DistillCoreset(budget=3, fraction=0.5)
    with pytest.raises(ParamError, match="'by' ranks rows for method=\"diverse\""):
        DistillCoreset(budget=3, by="score")
    with pytest.raises(ParamError, match="'method' must be one of 'kcenter', 'diverse'"):
        DistillCoreset(budget=3, method="random")
    op = DistillCoreset(budget=3, method="diverse", field=["question", "answer"], by="s")
    assert op.reads() == ["question", "answer", "s"]
