"""`select.dedup` (exact, minhash, simhash) distributed on Ray, with the local result exactly.

The operator's method is split where it can be (docs/executors.md has the per-step table):

exact      each block computes its rows' key columns (the operator's own `_key`
           expressions) and a hash of them; a hash shuffle (Ray Data groupby on hash mod P)
           brings equal keys together; each partition finds, for each row, the first row of
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

from dcc.engine.ray_executor import RaySession, split_blocks, to_arrow
from dcc.ops.base import Op, RunContext

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

_AT = "__dcc_at"
_PART = "__dcc_part"
U64 = np.uint64


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


# -- exact: hash partitioning ------------------------------------------------------------------
def key_batch(batch: pa.Table, op: Any, parts: int) -> pa.Table:
    """A block's rows as (position, partition, key columns): the keys are the operator's
    own `_key` expressions (normalize included), the partition a hash of them."""
    import polars as pl

    df = pl.from_arrow(batch)
    assert isinstance(df, pl.DataFrame)
    cols = df.drop(_AT)
    keys = cols.select([k.alias(f"k{i}") for i, k in enumerate(op._key(cols))])
    part = (keys.hash_rows() % parts).cast(pl.Int64).alias(_PART)
    return to_arrow(keys.with_columns(df[_AT], part))


def text_key_batch(batch: pa.Table, parts: int) -> pa.Table:
    """The same for the near-dup text: (position, partition, k0 = the text)."""
    import polars as pl

    df = pl.from_arrow(batch)
    assert isinstance(df, pl.DataFrame)
    keys = df.select(pl.col("text").alias("k0"))
    part = (keys.hash_rows() % parts).cast(pl.Int64).alias(_PART)
    return to_arrow(keys.with_columns(df[_AT], part))


def first_in_partition(batch: pa.Table) -> pa.Table:
    """For each row of one hash partition, the smallest position among rows with its key
    (null equal to null, values compared for real: a hash only chose the partition)."""
    import polars as pl

    df = pl.from_arrow(batch)
    assert isinstance(df, pl.DataFrame)
    keys = [c for c in df.columns if c.startswith("k")]
    out = df.select(pl.col(_AT), pl.col(_AT).min().over(keys).alias("first"))
    return to_arrow(out)


def _shuffle_first(session: RaySession, ds: Any, n: int) -> np.ndarray:
    """(position, partition, keys) rows -> each position's first row of its key."""
    from dcc.engine.ray_executor import operator_errors

    first = np.empty(n, dtype=np.int64)
    with operator_errors():
        grouped = ds.groupby(_PART).map_groups(first_in_partition, batch_format="pyarrow")
        for t in grouped.iter_batches(batch_size=None, batch_format="pyarrow"):
            first[t.column(_AT).to_numpy()] = t.column("first").to_numpy()
    return first


def first_of_key(session: RaySession, keys: pl.DataFrame, op: Any) -> np.ndarray:
    """For each row of `keys` (the operator's fields), the first row with the same key."""
    import ray.data

    if keys.height == 0:
        return np.zeros(0, dtype=np.int64)
    blocks = split_blocks(keys, session.cpus)
    ds = ray.data.from_arrow(blocks).map_batches(
        key_batch, batch_format="pyarrow", batch_size=None,
        fn_kwargs={"op": op, "parts": partitions(session)})
    return _shuffle_first(session, ds, keys.height)


# -- near-duplicates -----------------------------------------------------------------------------
def near_duplicates(session: RaySession, text: pl.Series, method: str, *, threshold: float,
                    ngram: int, unit: str, num_perm: int, bands: int | None,
                    rows_per_band: int | None, verify: str, max_hamming: int, seed: int
                    ) -> Any:
    """dcc.ops.neardup.near_duplicates, step by step on Ray (module docstring)."""
    import polars as pl
    import ray.data

    from dcc.ops import neardup as nd

    text = text.cast(pl.String).fill_null("")
    n = text.len()
    if n == 0:
        return nd.near_duplicates(text, method, threshold=threshold, ngram=ngram, unit=unit,
                                  num_perm=num_perm, bands=bands, rows_per_band=rows_per_band,
                                  verify=verify, max_hamming=max_hamming, seed=seed)
    frame = pl.DataFrame({"text": text})
    # 1. identical texts, by hash partitioning
    ds = ray.data.from_arrow(split_blocks(frame, session.cpus)).map_batches(
        text_key_batch, batch_format="pyarrow", batch_size=None,
        fn_kwargs={"parts": partitions(session)})
    rep = _shuffle_first(session, ds, n)
    uniq = np.flatnonzero(rep == np.arange(n))
    # 2. sketches of the distinct texts, block by block
    opts = {"method": method, "ngram": ngram, "unit": unit, "seed": seed,
            "num_perm": num_perm}
    sketched = ray.data.from_arrow(split_blocks(frame[uniq], session.cpus)).map_batches(
        sketch_batch, batch_format="pyarrow", batch_size=None, fn_kwargs=opts).materialize()
    lens = np.zeros(len(uniq), dtype=np.int64)
    for t in sketched.select_columns([_AT, "len"]).iter_batches(batch_size=None,
                                                                   batch_format="pyarrow"):
        lens[t.column(_AT).to_numpy()] = t.column("len").to_numpy()
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
    cand = _candidates(session, sketched, number, len(full), method, table)
    i, j = cand // max(len(full), 1), cand % max(len(full), 1)
    # 4. verification, block by block
    ok = _verify(session, frame["text"], uniq[full[i]], uniq[full[j]], method,
                 {**opts, "threshold": threshold, "verify": verify,
                  "max_hamming": max_hamming})
    # 5. clusters, in the driver
    return nd.clusters(rep, uniq, lens, full[i[ok]], full[j[ok]], len(cand), stats)


def sketch_batch(batch: pa.Table, method: str, ngram: int, unit: str, seed: int,
                 num_perm: int) -> pa.Table:
    """A block of distinct texts: each row's shingle count and sketch (minhash: its
    num_perm uint32 signature values; simhash: its 64-bit fingerprint), as bytes."""
    import pyarrow as pa

    from dcc.ops import neardup as nd

    arr = batch.column("text").combine_chunks().cast(pa.large_string())
    lens, sketch, _, _ = nd._sketch(arr, method, ngram, unit, seed, num_perm, False)
    has = np.flatnonzero(lens > 0)
    if method == "minhash":   # every row gets num_perm values (zeros for a row without any)
        values = np.zeros((len(lens), num_perm), dtype=np.uint32)
        values[has] = sketch.T
    else:
        values = np.zeros((len(lens), 1), dtype=U64)
        values[has, 0] = sketch
    sketches = pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), values.shape[1])
    return pa.table({_AT: batch.column(_AT), "len": pa.array(lens, pa.int64()),
                     "sketch": sketches})


def keys_batch(batch: pa.Table, number: np.ndarray, n_full: int, method: str,
               table: dict[str, int], parts: int) -> pa.Table:
    """A block of sketches as packed LSH keys (dcc.ops.neardup.pack_items), each with the
    partition of its bucket bits."""
    import pyarrow as pa

    from dcc.ops import neardup as nd

    lens = batch.column("len").to_numpy()
    has = np.flatnonzero(lens > 0)
    items = number[batch.column(_AT).to_numpy()[has]]
    col = batch.column("sketch").combine_chunks()
    values = col.flatten().to_numpy().reshape(len(col), -1)[has]
    if method == "minhash":
        keys = nd.band_keys(np.ascontiguousarray(values.T), table["bands"], table["rows"])
    else:
        keys = nd.hamming_keys(values[:, 0].astype(U64), table["max_hamming"], table["n"])
    bits = nd.item_bits(n_full)
    packed = nd.pack_items(keys, bits, items).ravel()
    part = (nd.splitmix64(packed >> U64(bits)) % U64(parts)).astype(np.int64)
    return pa.table({"packed": pa.array(packed, pa.uint64()), _PART: pa.array(part)})


def pairs_in_partition(batch: pa.Table, bits: int, n_full: int) -> pa.Table:
    """One partition's buckets: sorted, then paired exactly as locally."""
    import pyarrow as pa

    from dcc.ops import neardup as nd

    packed = np.sort(batch.column("packed").to_numpy())
    pairs = np.unique(nd.sorted_bucket_pairs(packed, bits, n_full))
    return pa.table({"pair": pa.array(pairs, pa.int64())})


def _candidates(session: RaySession, sketched: Any, number: np.ndarray, n_full: int,
                method: str, table: dict[str, int]) -> np.ndarray:
    from dcc.engine.ray_executor import operator_errors
    from dcc.ops import neardup as nd

    if n_full < 2:
        return np.zeros(0, dtype=np.int64)
    bits = nd.item_bits(n_full)
    with operator_errors():
        keyed = sketched.map_batches(
            keys_batch, batch_format="pyarrow", batch_size=None,
            fn_kwargs={"number": number, "n_full": n_full, "method": method,
                       "table": table, "parts": partitions(session)})
        grouped = keyed.groupby(_PART).map_groups(
            pairs_in_partition, batch_format="pyarrow",
            fn_kwargs={"bits": bits, "n_full": n_full})
        found = [t.column("pair").to_numpy() for t in
                 grouped.iter_batches(batch_size=None, batch_format="pyarrow")]
    return np.unique(np.concatenate(found)) if found else np.zeros(0, dtype=np.int64)


def verify_batch(batch: pa.Table, method: str, ngram: int, unit: str, seed: int,
                 num_perm: int, threshold: float, verify: str, max_hamming: int) -> pa.Table:
    """A block of candidate pairs (with both rows' texts): whether each is an edge."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from dcc.ops import neardup as nd

    a, b = batch.column("a").combine_chunks(), batch.column("b").combine_chunks()
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
    return pa.table({_AT: batch.column(_AT), "ok": pa.array(ok)})


def _verify(session: RaySession, text: pl.Series, a: np.ndarray, b: np.ndarray,
            method: str, opts: dict[str, Any]) -> np.ndarray:
    """Whether each candidate pair (rows a[p], b[p] of `text`) is an edge."""
    import polars as pl

    from dcc.engine.ray_executor import operator_errors

    ok = np.zeros(len(a), dtype=bool)
    if len(a) == 0:
        return ok
    pairs = pl.DataFrame({"a": text.gather(a), "b": text.gather(b)})
    import ray.data

    with operator_errors():
        ds = ray.data.from_arrow(split_blocks(pairs, session.cpus)).map_batches(
            verify_batch, batch_format="pyarrow", batch_size=None, fn_kwargs=opts)
        for t in ds.iter_batches(batch_size=None, batch_format="pyarrow"):
            ok[t.column(_AT).to_numpy()] = t.column("ok").to_numpy(zero_copy_only=False)
    return ok


__all__ = ["distributes", "select_rows"]
