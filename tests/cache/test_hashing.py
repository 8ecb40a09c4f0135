"""canonical_bytes, digest and hash_file, plus the golden keys that make drift deliberate."""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from dcc.cache.hashing import CHUNK, MMAP_MIN, canonical_bytes, digest, hash_file
from dcc.cache.keys import KEY_SCHEMA, KeyParts

# -- canonical bytes: properties ---------------------------------------------------------------
scalars = (
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
    | st.text(max_size=8) | st.binary(max_size=8)
)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)


def tagged(v: Any) -> Any:
    """What canonical_bytes promises to preserve: the value with its type, tuples as lists."""
    if v is None or isinstance(v, bool):
        return ("const", v)
    if isinstance(v, int):
        return ("int", v)
    if isinstance(v, float):
        return ("float", v.hex())
    if isinstance(v, (str, bytes)):
        return (type(v).__name__, v)
    if isinstance(v, (list, tuple)):
        return ("list", tuple(tagged(x) for x in v))
    return ("dict", tuple(sorted((k, tagged(x)) for k, x in v.items())))


@settings(max_examples=300, deadline=None)
@given(values, values)
def test_equal_bytes_exactly_when_equal_tagged_values(a: Any, b: Any) -> None:
    assert (canonical_bytes(a) == canonical_bytes(b)) == (tagged(a) == tagged(b))


@settings(max_examples=100, deadline=None)
@given(st.dictionaries(st.text(max_size=5), values, max_size=6))
def test_dict_insertion_order_does_not_matter(d: dict[str, Any]) -> None:
    reordered = dict(reversed(list(d.items())))
    assert canonical_bytes(reordered) == canonical_bytes(d)


@pytest.mark.parametrize(("a", "b"), [
    (1, 1.0), (0, False), (1, True), (0, None), ("1", 1), ("a", b"a"), (0.0, -0.0),
    ([1, [2]], [[1], 2]), (["ab"], ["a", "b"]), ({"a": 1}, [["a", 1]]), ({}, []),
    ({"a": None}, {}), (10**30, float(10**30)),
])
def test_values_that_differ_encode_differently(a: Any, b: Any) -> None:
    assert canonical_bytes(a) != canonical_bytes(b)


def test_list_and_tuple_encode_alike_so_json_round_trips_keep_keys() -> None:
    assert canonical_bytes((1, "a", (2,))) == canonical_bytes([1, "a", [2]])


def test_nan_and_infinities_are_stable() -> None:
    assert canonical_bytes(math.nan) == canonical_bytes(float("nan"))
    assert canonical_bytes(math.inf) != canonical_bytes(-math.inf)


def test_exclude_drops_only_top_level_keys() -> None:
    obj = {"a": 1, "seed": 2, "inner": {"seed": 3}}
    assert canonical_bytes(obj, exclude=("seed",)) == canonical_bytes(
        {"a": 1, "inner": {"seed": 3}}
    )
    with pytest.raises(TypeError, match="exclude= needs a dict"):
        canonical_bytes([1], exclude=("seed",))


@pytest.mark.parametrize(("value", "named"), [
    ({1, 2}, "builtins.set"), (object(), "builtins.object"), (Path("x"), "PosixPath"),
    (1j, "builtins.complex"), ({"ok": [1, {2, 3}]}, "builtins.set"),
    ({"a": {(1, 2): 3}}, "got tuple"),
], ids=["set", "object", "path", "complex", "nested-set", "tuple-key"])
def test_unknown_types_raise_naming_the_type(value: Any, named: str) -> None:
    with pytest.raises(TypeError, match=named):
        canonical_bytes(value)


def test_error_names_the_type_and_where_it_sits() -> None:
    with pytest.raises(TypeError, match=r"builtins\.set .*value\['p'\]\[1\]"):
        canonical_bytes({"p": [1, {2}]})
    with pytest.raises(TypeError, match="dict keys must be str"):
        canonical_bytes({1: "a"})


# -- digest and hash_file ----------------------------------------------------------------------
def test_digest_is_xxh3_128_hex() -> None:
    assert digest(b"abc") == xxhash.xxh3_128_hexdigest(b"abc")
    assert len(digest(b"abc")) == 32
    assert digest(b"") == "99aa06d3014798d86001c324468d497f"


@pytest.mark.parametrize("size", [
    0, 1, CHUNK - 1, CHUNK, CHUNK + 1, MMAP_MIN - 1, MMAP_MIN, 3 * MMAP_MIN + 12345,
])
def test_hash_file_equals_digest_of_bytes(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    path = tmp_path / "f.bin"
    path.write_bytes(data)
    assert hash_file(path) == digest(path.read_bytes()) == digest(data)
    assert hash_file(str(path)) == digest(data)


def test_hash_file_runs_at_least_half_the_speed_of_hashing_bytes(tmp_path: Path) -> None:
    data = os.urandom(1 << 20) * 32
    path = tmp_path / "big.bin"
    path.write_bytes(data)

    def best(fn: Any) -> float:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    raw = best(lambda: xxhash.xxh3_128_hexdigest(data))
    streamed = best(lambda: hash_file(path))
    assert streamed <= 2 * raw, f"hash_file {streamed:.4f}s vs bytes {raw:.4f}s"


# -- golden values: change these only together with a deliberate KEY_SCHEMA decision ----------
def test_golden_canonical_bytes() -> None:
    assert canonical_bytes({"b": [1, 1.5, None, True], "a": "é", "c": b"\x00"}) == (
        b"d3:s1:as2:\xc3\xa9s1:bl4:i1:1f20:0x1.8000000000000p+0NTs1:cb1:\x00"
    )


def test_golden_node_key() -> None:
    parts = KeyParts(
        op="select.length", op_version=1, code="0123456789abcdef0123456789abcdef",
        params={"min": 5, "max": None, "column": "text"}, model=None, seed=42,
        inputs=("fedcba9876543210fedcba9876543210",),
    )
    assert KEY_SCHEMA == 1
    assert parts.key() == "7e5db59eb8f45ef237dd5b00b4dfbdcf"
