"""KeyParts: every part moves the key, names stay out, and diff_parts explains a change."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from dcc.cache.keys import KEY_SCHEMA, MISSING, KeyParts, diff_parts

A, B = "a" * 32, "b" * 32


def parts(**changes: Any) -> KeyParts:
    base: dict[str, Any] = dict(
        op="select.length", op_version=1, code="c" * 32, params={"min": 5, "column": "text"},
        model=None, seed=None, inputs=(A,),
    )
    return KeyParts(**{**base, **changes})


@pytest.mark.parametrize("change", [
    {"op": "select.words"}, {"op_version": 2}, {"code": "d" * 32}, {"params": {"min": 6}},
    {"params": {"min": 5.0, "column": "text"}}, {"params": {"min": 5, "column": "body"}},
    {"model": "gpt2@rev1"}, {"seed": 0}, {"inputs": (B,)}, {"inputs": (A, A)}, {"inputs": ()},
])
def test_every_part_changes_the_key(change: dict[str, Any]) -> None:
    assert parts(**change).key() != parts().key()


def test_no_display_names_in_the_key() -> None:
    names = {f.name for f in dataclasses.fields(KeyParts)}
    assert names == {"op", "op_version", "code", "params", "model", "seed", "inputs"}


def test_param_order_does_not_matter() -> None:
    assert parts(params={"column": "text", "min": 5}).key() == parts().key()


def test_json_round_trip_keeps_the_key() -> None:
    p = parts(params={"min": 1.0, "tags": ["a", "b"], "opt": None}, seed=7, inputs=[A, B])
    back = KeyParts.from_dict(json.loads(json.dumps(p.to_dict())))
    assert back == p
    assert back.key() == p.key()
    assert p.to_dict()["schema"] == KEY_SCHEMA


def test_memo_key_ignores_inputs_only() -> None:
    assert parts(inputs=(B,)).memo_key() == parts().memo_key()
    assert parts(params={"min": 9}).memo_key() != parts().memo_key()
    assert parts().memo_key() != parts().key()


def test_inputs_must_be_content_hash_strings() -> None:
    with pytest.raises(TypeError, match=r"inputs\[0\]"):
        KeyParts("op", 1, "c", {}, None, None, (None,))  # type: ignore[arg-type]


def test_unhashable_params_refuse_a_key() -> None:
    with pytest.raises(TypeError, match="set"):
        parts(params={"x": {1}}).key()


def test_diff_parts_unchanged_is_empty() -> None:
    assert diff_parts(parts().to_dict(), parts()) == []


def test_diff_parts_names_each_changed_part() -> None:
    old = parts().to_dict()
    new = parts(op_version=2, params={"min": 6, "column": "text", "max": 9}, seed=3,
                inputs=(B, A))
    assert diff_parts(old, new) == [
        ("op_version", 1, 2),
        ("params.max", MISSING, 9),
        ("params.min", 5, 6),
        ("seed", None, 3),
        ("inputs[0]", A, B),
        ("inputs[1]", MISSING, A),
    ]


def test_diff_parts_tells_int_from_float_and_sees_removed_params() -> None:
    old = parts(params={"min": 5, "column": "text"}).to_dict()
    assert diff_parts(old, parts(params={"min": 5.0})) == [
        ("params.column", "text", MISSING), ("params.min", 5, 5.0),
    ]


def test_diff_parts_reports_a_key_schema_change() -> None:
    old = {**parts().to_dict(), "schema": KEY_SCHEMA - 1}
    assert diff_parts(old, parts()) == [("schema", KEY_SCHEMA - 1, KEY_SCHEMA)]
    assert repr(MISSING) == "<missing>"
