"""`select.dedup` (exact, minhash, simhash) distributed on Ray, with the local result exactly.

The operator's method is split where it can be (docs/executors.md has the per-step table):

exact      each block computes its rows' key columns (the operator's own `_key`
           expressions) and a hash of them; a hash shuffle (map tasks that cut their block
           into P pieces by hash mod P, one reduce task per partition) brings equal keys
           together; each partition finds, for each row, the first row of
           its key (minimum position over the key). Gathered: one (row, first) pair per row.
minhash /  1. identical texts: the exact step above on the joined text.
simhash    2. sketches: each block shingles and sketches its distinct texts with the local
              code (dcc.ops.neardup._sketch): parallel, rows independent. Gathered: the
              shingle count of each row (to number the rows with shingles, as locally).
           3. LSH: each block packs its rows' band (or permuted-block table) keys with the
              row's number, exactly as dcc.ops.neardup._bucket_pairs does; a hash shuffle on
              the key's bucket bits brings each bucket to one partition, which sorts it and
              emits its pairs with the local code (sorted_bucket_pairs). Gathered: the
              candidate pairs, deduplicated.
           4. verification: candidate pairs in blocks, each with the texts of its two rows;
              each block re-shingles its rows (a row's shingles depend on nothing else) and
              computes the exact Jaccard, signature agreement or Hamming distance.
           5. clusters: connected components over the verified edges in the driver
              (dcc.ops.neardup.clusters: the same function as locally). The edges are few (at
              most the candidates) and keep-first needs every cluster's smallest row.

Every step's per-row work is the local function on a subset of rows, and every cross-row
decision (which pairs a bucket yields, which row a cluster keeps) sees exactly the data it
sees locally, so the kept rows and the stats are the local ones.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from dcc.engine.ray_executor import _AT, RaySession, split_blocks
from dcc.ops.base import Op, RunContext
from dcc.ops.neardup import U64

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa


def distributes(op: Op) -> bool:
    """True for the operators this module runs (semantic dedup runs in the driver)."""
    from dcc.ops.select import SelectDedup

    return isinstance(op, SelectDedup) and op.p["method"] in ("exact", "minhash", "simhash")


def partitions(session: RaySession) -> int:
    return 2 * session.cpus


def select_rows(session: RaySession, op: Any, df: pl.DataFrame, ctx: RunContext
                ) -> np.ndarray:
    """The kept rows of `op` over `df`, as op.select_rows gives them locally."""
    if op.p["method"] == "exact":
        first = first_of_key(session, df.select(op.p["fields"]), op)
        rows = np.flatnonzero(first == np.arange(df.height))
        ctx.stats["duplicates"] = df.height - len(rows)
        return rows
    res = near_duplicates(session, op._text(df), op.p["method"], **op._near_options())
    ctx.stats.update(res.stats)
    return np.flatnonzero(np.asarray(res.keep, dtype=bool))


# -- Ray tasks ----------------------------------------------------------------------------------
# The dedup steps run as plain Ray tasks (a map task returns one output per partition, a
# reduce task takes its partition from every map task: Ray's classic shuffle). Ray Data's
# groupby would do the same with a planner, a sort or aggregator actors and ~200 partitions
# by default, seconds of overhead a step on a small cluster.
_REMOTE: dict[Any, Any] = {}


def _task(fn: Any, returns: int = 1) -> Any:
    """`fn` as a Ray remote function with `returns` results (made once per process)."""
    import ray

    key = (fn, returns)
    if key not in _REMOTE:
        _REMOTE[key] = ray.remote(num_returns=returns)(fn)
    return _REMOTE[key]


def _shuffle(map_fn: Any, blocks: list[Any], parts: int, reduce_fn: Any,
             **kwargs: Any) -> list[Any]:
    """map_fn(block, parts, **kwargs) -> `parts` pieces per block; reduce_fn(*pieces of one
    partition) for each partition; the reduce results (refs), one per partition."""
    mapper = _task(map_fn, parts)
    pieces = [mapper.remote(b, parts, **kwargs) for b in blocks]
    if parts == 1:
        pieces = [[p] for p in pieces]
    reducer = _task(reduce_fn)
    return [reducer.remote(*[pieces[b][p] for b in range(len(blocks))])
            for p in range(parts)]


def _split(df: pl.DataFrame, part: np.ndarray, parts: int) -> list[pl.DataFrame]:
    """`df`'s rows by partition number, each partition's rows in their order."""
    order = np.argsort(part, kind="stable")
    cuts = np.searchsorted(part[order], np.arange(1, parts))
    return [df[idx] for idx in np.split(order, cuts)]


# -- exact: hash partitioning ------------------------------------------------------------------
def key_pieces(block: pa.Table, parts: int, op: Any = None) -> Any:
    """A block's rows as (position, key columns) split by a hash of the key: the keys are
    the operator's own `_key` expressions (normalize included); `op` None: the key is the
    block's `text` column (the near-dup text)."""
    import polars as pl

    df = pl.from_arrow(block)
    assert isinstance(df, pl.DataFrame)
    cols = df.drop(_AT)
    exprs = op._key(cols) if op is not None else [pl.col("text")]
    keys = cols.select([k.alias(f"k{i}") for i, k in enumerate(exprs)])
    part = (keys.hash_rows() % parts).to_numpy().astype(np.int64)
    pieces = _split(keys.with_columns(df[_AT]), part, parts)
    return pieces[0] if parts == 1 else tuple(pieces)


def first_in_partition(*pieces: pl.DataFrame) -> np.ndarray:
    """For each row of one hash partition, (position, smallest position among rows with its
    key): null equal to null, values compared for real (a hash only chose the partition)."""
    import polars as pl

    df = pl.concat(pieces, how="vertical")
    keys = [c for c in df.columns if c != _AT]
    out = df.select(pl.col(_AT), pl.col(_AT).min().over(keys).alias("first"))
    return out.to_numpy().astype(np.int64)


def first_of_key(session: RaySession, keys: pl.DataFrame, op: Any) -> np.ndarray:
    """For each row of `keys` (the operator's fields, or `text` with op None), the first row
    with the same key."""
    import ray

    first = np.zeros(keys.height, dtype=np.int64)
    if keys.height == 0:
        return first
    refs = _shuffle(key_pieces, split_blocks(keys, session.cpus), partitions(session),
                    first_in_partition, op=op)
    for pairs in ray.get(refs):
        first[pairs[:, 0]] = pairs[:, 1]
    return first


# -- near-duplicates -----------------------------------------------------------------------------
def near_duplicates(session: RaySession, text: pl.Series, method: str, *, threshold: float,
                    ngram: int, unit: str, num_perm: int, bands: int | None,
                    rows_per_band: int | None, verify: str, max_hamming: int, seed: int
                    ) -> Any:
    """dcc.ops.neardup.near_duplicates, step by step on Ray (module docstring)."""
    import polars as pl
    import ray

    from dcc.ops import neardup as nd

    text = text.cast(pl.String).fill_null("")
    n = text.len()
    if n == 0:
        return nd.near_duplicates(text, method, threshold=threshold, ngram=ngram, unit=unit,
                                  num_perm=num_perm, bands=bands, rows_per_band=rows_per_band,
                                  verify=verify, max_hamming=max_hamming, seed=seed)
    frame = pl.DataFrame({"text": text})
    # 1. identical texts, by hash partitioning
    rep = first_of_key(session, frame, None)
    uniq = np.flatnonzero(rep == np.arange(n))
    # 2. sketches of the distinct texts, block by block (the sketches stay on the workers)
    opts = {"method": method, "ngram": ngram, "unit": unit, "seed": seed,
            "num_perm": num_perm}
    blocks = split_blocks(frame[uniq], session.cpus)
    sketcher = _task(sketch_block, 2)
    sketched = [sketcher.remote(b, **opts) for b in blocks]
    lens = np.zeros(len(uniq), dtype=np.int64)
    for at, block_lens in ray.get([s[0] for s in sketched]):
        lens[at] = block_lens
    full = np.flatnonzero(lens > 0)
    number = np.full(len(uniq), -1, dtype=np.int64)   # each distinct text's number among
    number[full] = np.arange(len(full))               # the rows with shingles (local order)
    stats: dict[str, Any] = {"method": method}
    if method == "minhash":
        if bands is None or rows_per_band is None:
            bands, rows_per_band = nd.choose_bands(num_perm, threshold)
        table = {"bands": bands, "rows": rows_per_band}
        stats.update(bands=bands, rows_per_band=rows_per_band)
    else:
        table = {"max_hamming": max_hamming, "n": len(full)}
        stats.update(tables=len(nd.block_tables(max_hamming, len(full))))
    # 3. LSH buckets by a hash shuffle of the packed keys
    cand = np.zeros(0, dtype=np.int64)
    if len(full) >= 2:
        parts, bits = partitions(session), nd.item_bits(len(full))
        number_ref = ray.put(number)
        mapper = _task(key_block, parts)
        pieces = [mapper.remote(s[0], s[1], number_ref, len(full), method, table, parts)
                  for s in sketched]
        if parts == 1:
            pieces = [[p] for p in pieces]
        reducer = _task(pairs_in_partition)
        found = ray.get([reducer.remote(bits, len(full), *[pc[p] for pc in pieces])
                         for p in range(parts)])
        cand = np.unique(np.concatenate(found)) if found else cand
    i, j = cand // max(len(full), 1), cand % max(len(full), 1)
    # 4. verification, block by block
    ok = _verify(session, frame["text"], uniq[full[i]], uniq[full[j]],
                 {**opts, "threshold": threshold, "verify": verify,
                  "max_hamming": max_hamming})
    # 5. clusters, in the driver
    return nd.clusters(rep, uniq, lens, full[i[ok]], full[j[ok]], len(cand), stats)


def sketch_block(block: pa.Table, method: str, ngram: int, unit: str, seed: int,
                 num_perm: int) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray]:
    """A block of distinct texts: ((positions, shingle counts), sketches of the rows with
    shingles: minhash (num_perm, m) uint32 signatures, simhash m fingerprints)."""
    import pyarrow as pa

    from dcc.ops import neardup as nd

    arr = block.column("text").combine_chunks().cast(pa.large_string())
    lens, sketch, _, _ = nd._sketch(arr, method, ngram, unit, seed, num_perm, False)
    return (block.column(_AT).to_numpy(), lens), sketch


def key_block(head: tuple[np.ndarray, np.ndarray], sketch: np.ndarray, number: np.ndarray,
              n_full: int, method: str, table: dict[str, int], parts: int) -> Any:
    """A block's sketches as packed LSH keys (dcc.ops.neardup.pack_items), split by a hash
    of their bucket bits."""
    from dcc.ops import neardup as nd

    at, lens = head
    items = number[at[lens > 0]]
    if method == "minhash":
        keys = nd.band_keys(sketch, table["bands"], table["rows"])
    else:
        keys = nd.hamming_keys(sketch, table["max_hamming"], table["n"])
    bits = nd.item_bits(n_full)
    packed = nd.pack_items(keys, bits, items).ravel()
    part = (nd.splitmix64(packed >> U64(bits)) % U64(parts)).astype(np.int64)
    order = np.argsort(part, kind="stable")
    pieces = np.split(packed[order], np.searchsorted(part[order], np.arange(1, parts)))
    return pieces[0] if parts == 1 else tuple(pieces)


def pairs_in_partition(bits: int, n_full: int, *pieces: np.ndarray) -> np.ndarray:
    """One partition's buckets: sorted, then paired exactly as locally."""
    from dcc.ops import neardup as nd

    packed = np.sort(np.concatenate(pieces))
    return np.unique(nd.sorted_bucket_pairs(packed, bits, n_full))


def verify_block(block: pa.Table, method: str, ngram: int, unit: str, seed: int,
                 num_perm: int, threshold: float, verify: str, max_hamming: int
                 ) -> tuple[np.ndarray, np.ndarray]:
    """A block of candidate pairs (with both rows' texts): whether each is an edge."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from dcc.ops import neardup as nd

    a, b = block.column("a").combine_chunks(), block.column("b").combine_chunks()
    enc = pc.dictionary_encode(pa.concat_arrays([a, b]))
    texts = enc.dictionary.cast(pa.large_string())
    idx = enc.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    i, j = idx[:len(a)], idx[len(a):]
    lens, sketch, sets, offs = nd._sketch(texts, method, ngram, unit, seed, num_perm,
                                          method == "minhash" and verify == "jaccard")
    if method == "minhash":
        if verify == "jaccard":
            score = nd.jaccard(sets, offs, i, j)
        else:
            score = (sketch[:, i] == sketch[:, j]).mean(axis=0)
        ok = score >= threshold - 1e-12
    else:
        ok = nd.popcount(sketch[i] ^ sketch[j]) <= max_hamming
    return block.column(_AT).to_numpy(), np.asarray(ok, dtype=bool)


def _verify(session: RaySession, text: pl.Series, a: np.ndarray, b: np.ndarray,
            opts: dict[str, Any]) -> np.ndarray:
    """Whether each candidate pair (rows a[p], b[p] of `text`) is an edge."""
    import polars as pl
    import ray

    ok = np.zeros(len(a), dtype=bool)
    if len(a) == 0:
        return ok
    pairs = pl.DataFrame({"a": text.gather(a), "b": text.gather(b)})
    verifier = _task(verify_block)
    for at, block_ok in ray.get([verifier.remote(blk, **opts)
                                 for blk in split_blocks(pairs, session.cpus)]):
        ok[at] = block_ok
    return ok


__all__ = ["distributes", "select_rows"]
