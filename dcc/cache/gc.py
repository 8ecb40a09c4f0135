"""Size parsing and the eviction policy behind `dcc cache gc --max-size`.

The policy is a pure function of the store's entries so it can be tested without a store and
reused by any `Store` implementation: least recently used first, and never an object that the
newest build of some recipe needs (otherwise the next no-op rebuild would rebuild it).
Sizes use ccache's units: k/M/G/T are powers of 1000, Ki/Mi/Gi/Ti powers of 1024, with an
optional trailing "B"; a bare number is bytes.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from dcc.cache.store import EntryInfo

_UNITS = {
    "": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12,
    "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgt]i?)?b?\s*", re.IGNORECASE)


def parse_size(text: str | int) -> int:
    """Bytes in a size such as "10GB", "500M", "1.5GiB" or "1024".

    >>> parse_size("10GB"), parse_size("500M"), parse_size("1024"), parse_size("2KiB")
    (10000000000, 500000000, 1024, 2048)
    """
    if isinstance(text, int) and not isinstance(text, bool):
        if text < 0:
            raise ValueError(f"size must not be negative (got {text})")
        return text
    match = _SIZE.fullmatch(str(text))
    if not match:
        raise ValueError(
            f"invalid size {text!r}: expected a number with an optional unit "
            "(k, M, G, T or Ki, Mi, Gi, Ti, optionally followed by B), e.g. 500M, 10GB, 1.5GiB"
        )
    number, unit = match.groups()
    scale = _UNITS[(unit or "").lower()]
    return int(number) * scale if number.isdigit() else int(float(number) * scale)


def format_size(n: int) -> str:
    """A short human size in the same (decimal) units parse_size reads.

    >>> format_size(999), format_size(1_500_000)
    ('999B', '1.5MB')
    """
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000:
            return f"{value:.0f}{unit}" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1000
    return f"{value:.1f}TB"


def select_victims(
    entries: Iterable[EntryInfo], max_size: int, protected: set[str]
) -> list[EntryInfo]:
    """The objects to delete so the total fits in `max_size`: oldest use first, none protected.

    If the protected objects alone exceed `max_size`, everything else goes and they stay.
    """
    ordered = sorted(entries, key=lambda e: (e.last_used, e.content))
    total = sum(e.size for e in ordered)
    victims: list[EntryInfo] = []
    for entry in ordered:
        if total <= max_size:
            break
        if entry.content in protected:
            continue
        victims.append(entry)
        total -= entry.size
    return victims


__all__ = ["format_size", "parse_size", "select_victims"]
