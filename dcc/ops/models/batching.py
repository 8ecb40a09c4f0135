"""Length-sorted batching: group inputs of similar token length, return results in input order.

A batch of sequences is padded to its longest member, so a batch that mixes a 20-token and a
400-token text spends 95% of the short row's compute on padding. Sorting by length first
makes each batch nearly uniform; a token budget (rows x padded length) then lets short rows
go in large batches and long rows in small ones, keeping memory flat. `bench/bench_batching.py`
measures the gain on GSM8K answers.

Batches are made longest first, so a budget too large for the device fails on the first batch
rather than after an hour of work. Results come back in input order whatever the batching:
callers never see the permutation.

>>> plan_batches([3, 10, 2, 9], max_tokens=20)
[[1, 3], [0, 2]]
>>> plan_batches([3, 10, 2, 9], max_tokens=20, sort=False)
[[0, 1], [2, 3]]
>>> run_batched(["bb", "a", "ccc"], [2, 1, 3], lambda xs: [x.upper() for x in xs], 4)
['BB', 'A', 'CCC']
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def plan_batches(lengths: Sequence[int], max_tokens: int, *, max_rows: int | None = None,
                 sort: bool = True) -> list[list[int]]:
    """Indices grouped into batches whose padded size (rows x longest) fits `max_tokens`.

    With `sort` (the default) indices are taken longest first (ties in input order); without
    it, in input order, which is the baseline the benchmark compares against. A single row
    longer than the budget still gets a batch of its own.
    """
    if max_tokens < 1:
        raise ValueError(f"'max_tokens' must be >= 1 (got {max_tokens})")
    order = list(range(len(lengths)))
    if sort:
        order.sort(key=lambda i: (-lengths[i], i))
    batches: list[list[int]] = []
    batch: list[int] = []
    longest = 0
    for i in order:
        width = max(longest, lengths[i], 1)
        full = max_rows is not None and len(batch) >= max_rows
        if batch and (full or width * (len(batch) + 1) > max_tokens):
            batches.append(batch)
            batch, width = [], max(lengths[i], 1)
        batch.append(i)
        longest = width
    if batch:
        batches.append(batch)
    return batches


def run_batched(items: Sequence[T], lengths: Sequence[int],
                fn: Callable[[list[T]], Sequence[R]], max_tokens: int, *,
                max_rows: int | None = None, sort: bool = True) -> list[R]:
    """`fn` applied batch by batch (see `plan_batches`); one result per item, in input order."""
    if len(items) != len(lengths):
        raise ValueError(f"{len(items)} items but {len(lengths)} lengths")
    out: list[R | None] = [None] * len(items)
    for batch in plan_batches(lengths, max_tokens, max_rows=max_rows, sort=sort):
        results = fn([items[i] for i in batch])
        if len(results) != len(batch):
            raise ValueError(f"batch function returned {len(results)} results for "
                             f"{len(batch)} items")
        for i, r in zip(batch, results):
            out[i] = r
    return out  # type: ignore[return-value]


__all__ = ["plan_batches", "run_batched"]
