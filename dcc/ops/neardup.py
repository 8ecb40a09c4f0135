"""Near-duplicate detection behind `select.dedup(method="minhash" | "simhash")`.

Why a module of its own: `select.py` holds operators as small classes; this is the numeric
machinery they call, vectorized with numpy and pyarrow so that no Python code runs per
shingle (Python runs once per *distinct word* to hash it, and once per chunk of rows). It
is longer than the house ~400 lines because it is one pipeline read top to bottom (hash,
sketch, bucket, verify, cluster), whose parts share their array layouts; split it when a
third method arrives.

Text of a row
    The listed fields joined with "\\n", a null field read as "". With normalize=true each
    field is first NFKC-normalized and lowercased (as exact dedup's normalize does).

Shingles
    unit="word": words are maximal runs of non-whitespace, exactly Python's `str.split()`
    (Unicode whitespace plus U+001C..U+001F; pyarrow's utf8_split_whitespace, which agrees);
    case and punctuation are kept. A shingle is `ngram` consecutive words of one row (words
    never pair across rows; they do pair across the fields of a row). unit="char": `ngram`
    consecutive Unicode code points of the joined text, whitespace included. A row with at
    least one but fewer than `ngram` units has one shingle, all of them (this matches the
    bench generator's truth). Each distinct word is hashed with xxh3-64 of its UTF-8 bytes,
    each code point with splitmix64; a shingle's 64-bit hash is splitmix64 of a fixed linear
    combination of its units' hashes plus the seed, so it depends on the words, their order
    and the seed only.

Rows without shingles
    A row whose text has no words (null, "" or whitespace only; no characters for
    unit="char") has the empty shingle set. Two empty sets count as identical (Jaccard 1, as
    datasketch and text-dedup treat them), so all such rows form one cluster and the first is
    kept; no empty row is a near-duplicate of a non-empty one.

Identical texts
    Rows whose joined text is identical are merged before hashing (they are Jaccard 1); only
    the first of each such group is shingled. This keeps exact copies out of the LSH buckets,
    where a group of k copies would yield k(k-1)/2 pairs per band.

MinHash signatures
    For permutation k (k < num_perm) the value of a row is min over its shingles s of
    (a_k * h32(s) + b_k) mod 2^32, with h32 the high 32 bits of the shingle hash, a_k odd and
    b_k drawn from numpy's default_rng(seed). These are affine bijections of 32-bit words: a
    (multiply-add) universal family whose multiply numpy runs in SIMD lanes, where the usual
    64-bit (a*h + b) mod (2^61 - 1) cannot be vectorized. Because h32 is itself a strong hash,
    each permutation's minimum falls on a uniformly random shingle; tests check that the
    estimated Jaccard is unbiased with the binomial spread J(1 - J)/num_perm. The signature
    matrix is (num_perm, rows) uint32, computed in cache-sized chunks with one multiply, one
    add and one `minimum.reduceat` per chunk.

LSH bands (b bands of r rows, b*r <= num_perm)
    Two rows become a candidate pair when all r values of some band agree, which happens
    with probability P(s) = 1 - (1 - s^r)^b for Jaccard s. The default choice puts recall
    first, because every candidate is verified afterwards (so chance candidates cost only
    time, never precision): with s_lo = 7/8 * threshold, take the largest r such that
    P(s_lo) >= 0.95 with b = floor(num_perm / r). For num_perm=128 and threshold 0.8 that is
    b=25, r=5: P(0.7) = 0.990, P(0.8) = 0.99995, while P(0.3) = 0.06 and P(0.1) = 0.0003.
    (datasketch's default picks b=9, r=13 for the same setting: P(0.8) = 0.40 per pair.)
    `bands` and `rows_per_band` override the choice.

Verification and clusters
    Every candidate pair is verified: verify="jaccard" (default) computes the exact Jaccard
    of the two rows' sets of 32-bit shingle hashes (exact up to a 2^-32 hash collision);
    verify="signature" uses the fraction of equal signature values (cheaper in memory, but
    its estimate has a standard deviation of ~0.035 at J=0.8 with 128 permutations). Pairs
    with Jaccard >= threshold are edges; each connected component of the graph of edges is a
    cluster and keeps its first row in the original order, so a chain a~b~c collapses to a
    even when a and c alone are below the threshold.

SimHash
    A row's 64-bit fingerprint has bit i set when more than half of its shingle occurrences
    (a multiset: a repeated shingle counts each time) have bit i set in their 64-bit hash.
    Rows at Hamming distance <= max_hamming are edges (same clusters and keep-first rule).
    Candidates come from permuted-block tables (Manku et al., 2007): the 64 bits are cut into
    B near-equal blocks, B > max_hamming; two fingerprints within max_hamming bits agree on
    at least B - max_hamming whole blocks, so one table per choice of B - max_hamming blocks
    (C(B, max_hamming) tables) finds every such pair; B is the smallest count whose narrowest
    table key has >= log2(rows) bits, which keeps chance bucket-mates to about one per row.
    Every candidate is verified by its exact Hamming distance.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from itertools import combinations
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import polars as pl
    import pyarrow as pa

U64 = np.uint64
# Fixed odd constants combining the units of a shingle (position-dependent weights).
_POS = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9,
                 0xD6E8FEB86659FD93, 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53,
                 0x87C37B91114253D5, 0x4CF5AD432745937F], dtype=U64)
_CHUNK_ROWS = 20_000          # rows shingled at once (bounds the memory of pyarrow's split)
_SIG_CELLS = 1 << 19          # num_perm x shingles per signature block (~2 MiB of uint32)
_MAX_BUCKET = 200             # a larger LSH bucket is linked as a chain, not all pairs
_PAIR_CELLS = 1 << 24         # shingle hashes gathered at once when verifying pairs
_THREADS = min(4, os.cpu_count() or 1)   # chunks shingled and sketched at once


def _ranks(sizes: np.ndarray) -> np.ndarray:
    """0, 1, ..., size - 1 for each size, concatenated."""
    return np.arange(int(sizes.sum())) - np.repeat(np.cumsum(sizes) - sizes, sizes)


# -- hashing ---------------------------------------------------------------------------------
def splitmix64(x: np.ndarray) -> np.ndarray:
    """The splitmix64 finalizer, elementwise on uint64 (a bijection with full avalanche).

    >>> splitmix64(np.array([0, 1], dtype=np.uint64)).tolist()
    [0, 6238072747940578789]
    """
    x = x.astype(U64, copy=True)
    with np.errstate(over="ignore"):
        x ^= x >> U64(30)
        x *= U64(0xBF58476D1CE4E5B9)
        x ^= x >> U64(27)
        x *= U64(0x94D049BB133111EB)
        x ^= x >> U64(31)
    return x


def _np(arr: pa.Array) -> np.ndarray:
    """A primitive arrow array without nulls as numpy, through polars (pyarrow's own to_numpy
    imports pandas, a second or so the first time)."""
    import polars as pl

    return pl.from_arrow(arr).to_numpy()


def _word_hashes(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """xxh3-64 of every word of every row (flat, uint64) and the words per row."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import xxhash

    words = pc.utf8_split_whitespace(arr)     # leading/trailing whitespace yields "" items
    flat = pc.list_flatten(words)
    if isinstance(flat, pa.ChunkedArray):
        flat = flat.combine_chunks()
    real = _np(pc.binary_length(flat)) > 0
    parent = _np(pc.list_parent_indices(words))
    counts = np.bincount(parent[real], minlength=len(arr))
    if not real.all():
        import polars as pl

        flat = flat.filter(pl.Series(real).to_arrow())   # pa.array() would import pandas
    enc = pc.dictionary_encode(flat)
    vocab = enc.dictionary.cast(pa.large_binary()).to_pylist()
    vocab = np.fromiter(map(xxhash.xxh3_64_intdigest, vocab), dtype=U64, count=len(vocab))
    return vocab[_np(enc.indices)], counts.astype(np.int64)


def _char_hashes(arr: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """splitmix64 of every code point of every row (flat, uint64) and the code points per row."""
    import pyarrow.compute as pc

    counts = _np(pc.utf8_length(arr)).astype(np.int64)
    cps = np.frombuffer("".join(arr.to_pylist()).encode("utf-32-le"), dtype=np.uint32)
    return splitmix64(cps.astype(U64) + U64(0x632BE59BD9B4E019)), counts


def shingle_hashes(arr: pa.Array, ngram: int, unit: str, seed: int
                   ) -> tuple[np.ndarray, np.ndarray]:
    """64-bit hashes of every row's shingles, flat, and the row offsets into them (n + 1).

    >>> import pyarrow as pa
    >>> h, offs = shingle_hashes(pa.array(["a b c d", "a b c", "", "b c d"]), 3, "word", 1)
    >>> offs.tolist()           # 2 shingles, 1, none, 1
    [0, 2, 3, 3, 4]
    >>> bool(h[1] == h[3])      # "b c d" occurs in rows 0 and 3
    True
    """
    units, counts = (_word_hashes if unit == "word" else _char_hashes)(arr)
    n, total = len(counts), len(units)
    n_sh = np.where(counts >= ngram, counts - ngram + 1, np.minimum(counts, 1))
    offs = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(n_sh, out=offs[1:])
    first = np.zeros(n + 1, dtype=np.int64)                       # first unit of each row
    np.cumsum(counts, out=first[1:])
    pos = [_POS[j % len(_POS)] for j in range(ngram)]
    with np.errstate(over="ignore"):
        # A window at every unit: sum_j units[u + j] * C_j (the last ngram - 1 are partial).
        win = units * pos[0]
        for j in range(1, ngram):
            win[:total - j] += units[j:] * pos[j]
        short = np.flatnonzero((counts > 0) & (counts < ngram))   # one shingle of all units
        if len(short):
            acc = np.zeros(len(short), dtype=U64)
            for j in range(ngram - 1):
                ok = counts[short] > j
                acc += np.where(ok, units[np.minimum(first[short] + j, total - 1)] * pos[j],
                                U64(0))
            win[first[short]] = acc + counts[short].astype(U64)   # tell "a b" from "a b c"
        valid = np.ones(total, dtype=bool)
        tail = np.repeat(first[1:], np.maximum(np.minimum(counts, ngram - 1), 0)) - 1 - \
            _ranks(np.maximum(np.minimum(counts, ngram - 1), 0))  # last ngram - 1 units...
        valid[tail] = False
        valid[first[short]] = True                                # ...but a short row's first
        h = win[valid] if len(tail) else win
        h += U64(seed) * U64(0x9E3779B97F4A7C15) + U64(ngram)
    return splitmix64(h), offs


# -- MinHash ---------------------------------------------------------------------------------
def permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) of each permutation: a odd, both uint32, from default_rng(seed)."""
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 1 << 32, size=num_perm, dtype=np.uint64).astype(np.uint32) | np.uint32(1)
    b = rng.integers(0, 1 << 32, size=num_perm, dtype=np.uint64).astype(np.uint32)
    return a, b


def signatures(h32: np.ndarray, offs: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """MinHash signatures, (num_perm, rows) uint32; every row must have a shingle.

    >>> a, b = permutations(16, seed=1)
    >>> h = np.array([5, 9, 5, 9, 7], dtype=np.uint32)
    >>> sig = signatures(h, np.array([0, 2, 5]), a, b)
    >>> sig.shape, float((sig[:, 0] == sig[:, 1]).mean()) < 1   # {5,9} vs {5,9,7}
    ((16, 2), True)
    """
    n, k = len(offs) - 1, len(a)
    out = np.empty((k, n), dtype=np.uint32)
    if n == 0:
        return out
    step = max(1, _SIG_CELLS // k)
    bounds = np.unique(np.searchsorted(offs, np.arange(0, offs[-1], step), side="right") - 1)
    bounds = np.append(bounds, n)
    a_col, b_col = a[:, None], b[:, None]
    buf = np.empty(k * max(step, int(np.diff(offs[bounds]).max())), dtype=np.uint32)
    for r0, r1 in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        s0, s1 = int(offs[r0]), int(offs[r1])
        block = buf[: k * (s1 - s0)].reshape(k, s1 - s0)
        np.multiply(a_col, h32[None, s0:s1], out=block)
        np.add(block, b_col, out=block)
        out[:, r0:r1] = np.minimum.reduceat(block, offs[r0:r1] - s0, axis=1)
    return out


def collision_probability(s: float, bands: int, rows: int) -> float:
    """P(two rows with Jaccard s share a band) = 1 - (1 - s^r)^b.

    >>> round(collision_probability(0.8, 25, 5), 5)
    0.99995
    """
    return 1.0 - (1.0 - s ** rows) ** bands


def choose_bands(num_perm: int, threshold: float) -> tuple[int, int]:
    """(bands, rows per band): the largest r with P(7/8 * threshold) >= 0.95, b = num_perm // r.

    >>> choose_bands(128, 0.8), choose_bands(128, 0.9), choose_bands(256, 0.8)
    ((25, 5), (18, 7), (36, 7))
    """
    s_lo = 0.875 * threshold
    best = (num_perm, 1)
    for r in range(1, num_perm + 1):
        b = num_perm // r
        if collision_probability(s_lo, b, r) >= 0.95:
            best = (b, r)
    return best


def _bucket_pairs(keys: np.ndarray) -> np.ndarray:
    """Pairs i < j (as i * n + j, unique) of items whose keys agree in some table.

    `keys` is (tables, n). Keys are compared on their high 64 - ceil(log2 n) bits (the low
    bits carry the item through one fast sort; a chance agreement only adds a candidate,
    which verification then rejects). A bucket of more than _MAX_BUCKET items is linked as a
    chain (each item to the previous one and to the first) instead of every pair.

    >>> _bucket_pairs(np.array([[7, 8, 7, 7], [1, 1, 2, 3]], dtype=np.uint64) << np.uint64(40))
    array([ 1,  2,  3, 11])
    """
    n = keys.shape[1]
    bits = item_bits(n)
    return np.unique(sorted_bucket_pairs(np.sort(pack_items(keys, bits).ravel()), bits, n))


def item_bits(n: int) -> int:
    """Low bits of a packed key that carry the item (of n)."""
    return max(1, int(n - 1).bit_length())


def pack_items(keys: np.ndarray, bits: int, items: np.ndarray | None = None) -> np.ndarray:
    """Each key's high bits with its item (column number, or `items`) in the low `bits`: a
    bucket is a run of equal `packed >> bits` in sorted order (the Ray executor sorts each
    hash partition of these; dcc.engine.ray_dedup)."""
    low = U64((1 << bits) - 1)
    if items is None:
        items = np.arange(keys.shape[-1], dtype=U64)
    return (keys & ~low) | items.astype(U64)


def sorted_bucket_pairs(packed: np.ndarray, bits: int, n: int) -> np.ndarray:
    """The pairs (i * n + j, i < j, maybe repeated) of the buckets of sorted packed keys."""
    low = U64((1 << bits) - 1)
    hi = packed >> U64(bits)
    same = np.concatenate(([False], hi[1:] == hi[:-1], [False]))
    if not same.any():
        return np.zeros(0, dtype=np.int64)
    item = (packed & low).astype(np.int64)
    edge = np.flatnonzero(same[1:] != same[:-1])
    starts, sizes = edge[0::2], edge[1::2] - edge[0::2] + 1     # runs of equal keys
    big = sizes > _MAX_BUCKET
    s_, z_ = starts[~big], sizes[~big]
    member = np.repeat(s_, z_) + _ranks(z_)
    later = np.repeat(z_, z_) - _ranks(z_) - 1                     # members after this one
    left = [np.repeat(member, later)]
    right = [left[0] + 1 + _ranks(later)]
    for s, z in zip(starts[big].tolist(), sizes[big].tolist()):
        left += [np.arange(s, s + z - 1), np.full(z - 2, s)]
        right += [np.arange(s + 1, s + z), np.arange(s + 2, s + z)]
    i, j = item[np.concatenate(left)], item[np.concatenate(right)]
    return i[i < j] * n + j[i < j]


def band_keys(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """(bands, n) uint64: each column's hash of each band of `rows` signature values."""
    n = sig.shape[1]
    keys = np.empty((bands, n), dtype=U64)
    with np.errstate(over="ignore"):
        for band in range(bands):
            h = np.full(n, U64(band + 1) * U64(0xD6E8FEB86659FD93), dtype=U64)
            for r in range(band * rows, (band + 1) * rows):
                h ^= sig[r]
                h *= U64(0x9FB21C651E98DF25)
                h ^= h >> U64(29)
            keys[band] = h
    return keys


def lsh_candidates(sig: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """Candidate pairs (i * n + j, i < j) of columns of `sig` that agree on a whole band."""
    return _bucket_pairs(band_keys(sig, bands, rows))


# -- verification -----------------------------------------------------------------------------
def _segments(offs: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Flat indices of the CSR segments of `rows`, and each segment's length."""
    lens = offs[rows + 1] - offs[rows]
    base = np.repeat(offs[rows] - (np.cumsum(lens) - lens), lens)
    return base + np.arange(int(lens.sum())), lens


def _sorted_sets(h32: np.ndarray, offs: np.ndarray, rows: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The sorted, duplicate-free hashes of each of `rows` (flat) and their CSR offsets."""
    idx, lens = _segments(offs, rows)
    keys = np.sort((np.repeat(np.arange(len(rows), dtype=U64), lens) << U64(32))
                   | h32[idx].astype(U64))
    keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))] if len(keys) else keys
    size = np.bincount((keys >> U64(32)).astype(np.int64), minlength=len(rows))
    return (keys & U64(0xFFFFFFFF)).astype(np.uint32), np.concatenate(([0], np.cumsum(size)))


def jaccard(h32: np.ndarray, offs: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Exact Jaccard of the shingle-hash sets of rows i[p] and j[p], for every pair p.

    Each involved row's set is sorted once; then, per batch of pairs, each side's sets are
    tagged with the pair number (sorted keys pair << 32 | hash) and the B side is looked up
    in the A side with one searchsorted.

    >>> h = np.array([1, 2, 3, 1, 2, 4, 4], dtype=np.uint32)
    >>> jaccard(h, np.array([0, 3, 5, 7]), np.array([0, 0]), np.array([1, 2])).tolist()
    [0.6666666666666666, 0.0]
    """
    out = np.empty(len(i), dtype=np.float64)
    if len(i) == 0:
        return out
    rows, at = np.unique(np.concatenate([i, j]), return_inverse=True)
    sets, set_offs = _sorted_sets(h32, offs, rows)
    si, sj = at[:len(i)], at[len(i):]
    size = np.diff(set_offs)
    per = size[si] + size[sj]
    cuts = np.searchsorted(np.cumsum(per), np.arange(_PAIR_CELLS, per.sum(), _PAIR_CELLS))
    for lo, hi in zip(np.r_[0, cuts].tolist(), np.r_[cuts, len(i)].tolist()):
        if lo == hi:
            continue
        tagged = []
        for side in (si[lo:hi], sj[lo:hi]):
            idx, lens = _segments(set_offs, side)
            tagged.append((np.repeat(np.arange(hi - lo, dtype=U64), lens) << U64(32))
                          | sets[idx].astype(U64))
        a, b = tagged
        pos = np.minimum(np.searchsorted(a, b), max(len(a) - 1, 0))
        hit = a[pos] == b if len(a) else np.zeros(len(b), dtype=bool)
        inter = np.bincount((b[hit] >> U64(32)).astype(np.int64), minlength=hi - lo)
        union = size[si[lo:hi]] + size[sj[lo:hi]] - inter
        out[lo:hi] = inter / np.maximum(union, 1)
    return out


# -- clusters ----------------------------------------------------------------------------------
def components(n: int, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """For each of n items, the smallest item of its connected component under edges (i, j).

    Hook-and-compress label propagation, all in numpy: O(log n) rounds in practice.

    >>> components(6, np.array([4, 1, 2]), np.array([2, 3, 1])).tolist()
    [0, 1, 1, 1, 1, 5]
    """
    parent = np.arange(n, dtype=np.int64)
    i, j = np.asarray(i, dtype=np.int64), np.asarray(j, dtype=np.int64)
    while True:
        pi, pj = parent[i], parent[j]
        if (pi == pj).all():
            return parent
        np.minimum.at(parent, np.maximum(pi, pj), np.minimum(pi, pj))
        while True:
            grand = parent[parent]
            if (grand == parent).all():
                break
            parent = grand


# -- SimHash -----------------------------------------------------------------------------------
def simhash(h64: np.ndarray, offs: np.ndarray) -> np.ndarray:
    """64-bit SimHash per row (uint64): bit i is set when most shingles have bit i set.

    >>> fp = simhash(np.array([0b101, 0b100, 0b001], dtype=np.uint64), np.array([0, 3]))
    >>> bin(int(fp[0]))
    '0b101'
    """
    n = len(offs) - 1
    fp = np.zeros(n, dtype=U64)
    shifts = np.arange(64, dtype=U64)[:, None]
    step = max(1, _SIG_CELLS // 64)
    bounds = np.unique(np.searchsorted(offs, np.arange(0, offs[-1], step), side="right") - 1)
    bounds = np.append(bounds, n)
    for r0, r1 in zip(bounds[:-1].tolist(), bounds[1:].tolist()):
        s0, s1 = int(offs[r0]), int(offs[r1])
        bits = ((h64[None, s0:s1] >> shifts) & U64(1)).astype(np.int32)
        ones = np.add.reduceat(bits, offs[r0:r1] - s0, axis=1)           # (64, rows)
        major = (2 * ones > np.diff(offs[r0:r1 + 1])[None, :]).astype(U64)
        fp[r0:r1] = (major << shifts).sum(axis=0, dtype=U64)
    return fp


def popcount(x: np.ndarray) -> np.ndarray:
    """Set bits per uint64 element."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(x).astype(np.int64)
    table = np.array([v.bit_count() for v in range(256)], dtype=np.int64)
    return table[x.view(np.uint8).reshape(-1, 8)].sum(axis=1)


def block_tables(max_hamming: int, n: int) -> list[int]:
    """Masks of the permuted-block tables: one per choice of B - max_hamming of B blocks.

    >>> len(block_tables(3, 100_000)), len(block_tables(0, 10))
    (10, 1)
    """
    need = max(1, math.ceil(math.log2(max(n, 2))))
    for blocks in range(max_hamming + 1, 65):
        cuts = [round(64 * q / blocks) for q in range(blocks + 1)]
        widths = sorted(cuts[q + 1] - cuts[q] for q in range(blocks))
        if sum(widths[: blocks - max_hamming]) >= need or blocks == 64:
            break
    masks = [((1 << (cuts[q + 1] - cuts[q])) - 1) << cuts[q] for q in range(blocks)]
    return [sum(c) for c in combinations(masks, blocks - max_hamming)]


def hamming_keys(fp: np.ndarray, max_hamming: int, n: int) -> np.ndarray:
    """(tables, len(fp)) uint64: each fingerprint's key in each permuted-block table, for a
    run over `n` fingerprints in all."""
    masks = block_tables(max_hamming, n)
    return np.stack([splitmix64((fp & U64(mask)) + U64(t)) for t, mask in enumerate(masks)])


def hamming_candidates(fp: np.ndarray, max_hamming: int) -> np.ndarray:
    """Candidate pairs (i * n + j) of fingerprints that agree on a table's blocks."""
    return _bucket_pairs(hamming_keys(fp, max_hamming, len(fp)))


# -- the operator's entry point ----------------------------------------------------------------
@dataclass
class NearDupResult:
    """Which rows to keep, each row's cluster (the row number of the row kept for it), and
    what the run saw (for ctx.stats)."""

    keep: np.ndarray
    cluster: np.ndarray
    stats: dict[str, Any] = field(default_factory=dict)


def _text_array(text: pl.Series) -> pa.Array:
    import polars as pl
    import pyarrow as pa

    arr = text.cast(pl.String).fill_null("").to_arrow()
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    return arr.cast(pa.large_string())


def first_of_kind(keys: pl.DataFrame) -> np.ndarray | None:
    """For each row, the first row whose key values are all equal to its own (null equal to
    null); None when two different keys share a 64-bit row hash (callers then compare the
    values themselves). Rows are grouped by polars' row hash, then every row put with an
    earlier one is compared with it for real, so the answer never depends on the hash.

    >>> import polars as pl
    >>> first_of_kind(pl.DataFrame({"t": ["a", None, "a", "", None]})).tolist()
    [0, 1, 0, 3, 1]
    """
    h = keys.hash_rows().to_numpy()
    order = np.argsort(h)
    sorted_h = h[order]
    new = np.concatenate(([True], sorted_h[1:] != sorted_h[:-1]))
    first = np.empty_like(order)
    if len(h):
        first[order] = np.minimum.reduceat(order, np.flatnonzero(new))[np.cumsum(new) - 1]
    dup = np.flatnonzero(first != np.arange(len(h)))
    for c in keys.columns:
        if not keys[c].gather(dup).eq_missing(keys[c].gather(first[dup])).all():
            return None
    return first


def _identical(text: pl.Series, arr: pa.Array) -> np.ndarray:
    """For each row, the first row with the identical text."""
    import polars as pl
    import pyarrow.compute as pc

    first = first_of_kind(pl.DataFrame({"t": text}))
    if first is not None:
        return first
    codes = _np(pc.dictionary_encode(arr).indices)
    _, first = np.unique(codes, return_index=True)
    return first[codes]


def _sketch(arr: pa.Array, method: str, ngram: int, unit: str, seed: int, num_perm: int,
            keep_sets: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Shingle `arr` chunk by chunk and sketch each row that has shingles.

    Returns the shingles per row, the sketches of the rows with shingles (minhash: the
    (num_perm, m) signatures; simhash: m fingerprints), and for verify="jaccard" their 32-bit
    shingle hashes (flat) with CSR offsets; the 64-bit hashes never outlive their chunk.
    Chunks run on a few threads (pyarrow and numpy release the GIL); each chunk's result
    depends only on its rows, and results are put together in row order, so the outcome
    does not depend on the number of threads.
    """
    perms = permutations(num_perm, seed) if method == "minhash" else None

    def chunk(c0: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        h64, offs = shingle_hashes(arr.slice(c0, _CHUNK_ROWS), ngram, unit, seed)
        n_sh = np.diff(offs)
        sub = np.concatenate(([0], np.cumsum(n_sh[n_sh > 0])))   # empty rows have no hashes
        if perms is None:
            return n_sh, simhash(h64, sub), None
        h32 = (h64 >> U64(32)).astype(np.uint32)
        del h64
        return n_sh, signatures(h32, sub, *perms), h32 if keep_sets else None

    starts = range(0, len(arr), _CHUNK_ROWS)
    if len(starts) > 1 and _THREADS > 1:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(max_workers=_THREADS) as pool:
            parts = list(pool.map(chunk, starts))
    else:
        parts = [chunk(c0) for c0 in starts]
    lens = np.concatenate([p[0] for p in parts]) if parts else np.zeros(0, dtype=np.int64)
    if parts:
        sketch = np.concatenate([p[1] for p in parts], axis=-1)
    else:
        sketch = np.zeros((num_perm, 0), dtype=np.uint32) if perms else np.zeros(0, dtype=U64)
    sets = [p[2] for p in parts if p[2] is not None]
    flat = np.concatenate(sets) if sets else np.zeros(0, dtype=np.uint32)
    return lens, sketch, flat, np.concatenate(([0], np.cumsum(lens[lens > 0])))


def near_duplicates(text: pl.Series, method: str, *, threshold: float = 0.8, ngram: int = 5,
                    unit: str = "word", num_perm: int = 128, bands: int | None = None,
                    rows_per_band: int | None = None, verify: str = "jaccard",
                    max_hamming: int = 3, seed: int = 1) -> NearDupResult:
    """Keep-first near-dedup of `text` (one string per row) by MinHash-LSH or SimHash.

    >>> import polars as pl
    >>> text = pl.Series(["the cat sat on the mat today", "the cat sat on the mat today!",
    ...                   "a completely different sentence is here", None, ""])
    >>> r = near_duplicates(text, "minhash", threshold=0.5, ngram=2)
    >>> r.keep.tolist(), r.cluster.tolist(), r.stats["clusters"], r.stats["duplicates"]
    ([True, False, True, True, False], [0, 0, 2, 3, 3], 2, 2)
    """
    text, arr, rep, uniq = identical_texts(text)
    if len(uniq) < len(arr):
        arr = _text_array(text.gather(uniq))
    lens, sketch, sets, offs = _sketch(arr, method, ngram, unit, seed, num_perm,
                                       verify == "jaccard")
    full = np.flatnonzero(lens > 0)            # positions in `uniq` of rows with shingles
    stats: dict[str, Any] = {"method": method}
    if method == "minhash":
        if bands is None or rows_per_band is None:
            bands, rows_per_band = choose_bands(num_perm, threshold)
        cand = lsh_candidates(sketch, bands, rows_per_band)
        i, j = cand // max(len(full), 1), cand % max(len(full), 1)
        if verify == "jaccard":
            score = jaccard(sets, offs, i, j)
        else:
            score = (sketch[:, i] == sketch[:, j]).mean(axis=0) if len(cand) else np.zeros(0)
        ok = score >= threshold - 1e-12
        stats.update(bands=bands, rows_per_band=rows_per_band)
    else:
        cand = hamming_candidates(sketch, max_hamming)
        i, j = cand // max(len(full), 1), cand % max(len(full), 1)
        ok = popcount(sketch[i] ^ sketch[j]) <= max_hamming
        stats.update(tables=len(block_tables(max_hamming, len(full))))
    return clusters(rep, uniq, lens, full[i[ok]], full[j[ok]], len(cand), stats)


def identical_texts(text: pl.Series) -> tuple[pl.Series, pa.Array, np.ndarray, np.ndarray]:
    """The text (nulls as ""), as Arrow, each row's first row with the identical text, and
    the rows that are the first of their text (ascending)."""
    import polars as pl

    text = text.cast(pl.String).fill_null("")
    arr = _text_array(text)
    rep = _identical(text, arr)
    return text, arr, rep, np.flatnonzero(rep == np.arange(len(arr)))


def clusters(rep: np.ndarray, uniq: np.ndarray, lens: np.ndarray, i: np.ndarray,
             j: np.ndarray, candidates: int, stats: dict[str, Any]) -> NearDupResult:
    """The keep-first result from the verified edges (i, j: positions in `uniq`): connected
    components, the empty rows linked together, each row mapped through its identical text."""
    n = len(rep)
    empty = np.flatnonzero(lens == 0)          # all alike: linked to the first of them
    root = components(len(uniq), np.concatenate([i, np.repeat(empty[:1],
                                                              max(len(empty) - 1, 0))]),
                      np.concatenate([j, empty[1:]]))
    keep = np.zeros(n, dtype=bool)
    keep[uniq[root == np.arange(len(uniq))]] = True
    at = np.searchsorted(uniq, rep)                     # each row's position in `uniq`
    rows_in = np.bincount(root[at], minlength=len(uniq))
    stats.update(candidate_pairs=candidates, verified_pairs=len(i),
                 identical_rows=int(n - len(uniq)), clusters=int((rows_in > 1).sum()),
                 duplicates=int(n - keep.sum()))
    return NearDupResult(keep, uniq[root[at]], stats)
