"""parse_size and the eviction policy, as pure functions."""

from __future__ import annotations

import pytest

from dcc.cache.gc import format_size, parse_size, select_victims
from dcc.cache.store import EntryInfo


@pytest.mark.parametrize(("text", "size"), [
    ("1024", 1024), ("0", 0), ("10GB", 10 * 10**9), ("500M", 500 * 10**6), ("500m", 500 * 10**6),
    ("2k", 2000), ("2KiB", 2048), ("1.5GiB", 3 * 2**29), ("1Ti", 2**40), (" 7 MB ", 7 * 10**6),
    ("12B", 12), (".5k", 500), (4096, 4096),
])
def test_parse_size(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "GB", "10XB", "-5", "1,000", "ten", "1e3", "5 G B"])
def test_parse_size_rejects_with_an_example(text: str) -> None:
    with pytest.raises(ValueError, match=r"invalid size .*e\.g\. 500M"):
        parse_size(text)


def test_parse_size_rejects_negative_ints() -> None:
    with pytest.raises(ValueError, match="negative"):
        parse_size(-1)


def test_format_size() -> None:
    assert [format_size(n) for n in (0, 999, 1000, 2_500_000, 3 * 10**12)] == [
        "0B", "999B", "1.0kB", "2.5MB", "3.0TB"]


def entry(content: str, size: int, last_used: float) -> EntryInfo:
    return EntryInfo(content=content, size=size, last_used=last_used, node=None, recipe=None,
                     rows=None)


def test_select_victims_oldest_first_until_it_fits() -> None:
    entries = [entry("c", 10, 3.0), entry("a", 10, 1.0), entry("b", 10, 2.0), entry("d", 10, 4)]
    assert [e.content for e in select_victims(entries, 25, set())] == ["a", "b"]
    assert select_victims(entries, 40, set()) == []
    assert [e.content for e in select_victims(entries, 0, {"a", "c"})] == ["b", "d"]
