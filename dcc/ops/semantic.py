"""SemDeDup (Abbas et al., 2023): drop rows whose meaning repeats an earlier row's.

`semdedup(df, fields, threshold, model, n_clusters, seed, ctx)` is what
`select.dedup(method="semantic")` runs:

1. one text per row: the `fields` values (null as "") joined by newlines, embedded with
   `model` (default: the packaged all-MiniLM-L6-v2), L2-normalised; each distinct text is
   embedded once, and only if no node embedded it with this model before (the embedding
   memo), each one counting one model call in `ctx.model_calls`;
2. spherical k-means in numpy (cosine similarity; k-means++ seeding from
   `numpy.random.default_rng(seed)`; Lloyd steps until no assignment changes, at most
   `MAX_ITER`) into min(n_clusters, distinct texts) clusters, so that only rows in one cluster
   are compared (the paper's trick for scale);
3. within each cluster, rows in their original order: a row is dropped when its cosine
   similarity to a row already kept in the cluster exceeds `threshold` (keep-first), so the
   earliest of a group of near-duplicates survives, as exact dedup keeps the first row.

The kept rows come out unchanged and in their original order; `ctx.stats["duplicates"]`
counts the dropped ones. The paper's epsilon is 1 - threshold (threshold 0.95 = epsilon
0.05). Clustering can separate two near-duplicates that sit on either side of a cluster
boundary; more clusters are faster and miss more such pairs, as in the paper.

For the node key, the operator that calls this adds
`dcc.ops.models.resolve.model_identity(model, stat_cache)` to its `model_identity()`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dcc.ops.base import RunContext
from dcc.ops.models.resolve import resolve_model

if TYPE_CHECKING:
    import numpy as np
    import polars as pl

MAX_ITER = 50


def semdedup(df: pl.DataFrame, fields: list[str], threshold: float, model: str | None,
             n_clusters: int, seed: int, ctx: RunContext) -> pl.DataFrame:
    """The rows of `df` left after semantic deduplication (see the module doc)."""
    import numpy as np
    import polars as pl

    from dcc.ops.scorers import embed_unique, row_texts

    if df.height == 0:
        ctx.stats["duplicates"] = 0
        return df
    backend = resolve_model(model, kind="encoder", options=ctx.options)
    vecs, of_row = embed_unique(backend, row_texts(df, fields), ctx)
    labels = spherical_kmeans(vecs, min(max(n_clusters, 1), len(vecs)), seed)
    keep = np.ones(df.height, dtype=bool)
    rows_of: dict[int, list[int]] = {}
    for row, u in enumerate(of_row):
        rows_of.setdefault(int(labels[u]), []).append(row)
    for rows in rows_of.values():
        kept: list[int] = []  # embedding indices of the rows kept in this cluster
        for row in rows:
            v = vecs[of_row[row]]
            if kept and float((vecs[kept] @ v).max()) > threshold:
                keep[row] = False
            else:
                kept.append(of_row[row])
    out = df.filter(pl.Series(keep))
    ctx.stats["duplicates"] = df.height - out.height
    return out


def spherical_kmeans(vecs: np.ndarray, k: int, seed: int) -> Any:
    """Cluster labels of L2-normalised `vecs` into `k` clusters by cosine similarity.

    >>> import numpy as np
    >>> v = np.array([[1, 0], [0.96, 0.28], [0, 1], [0.28, 0.96]], dtype=np.float32)
    >>> labels = spherical_kmeans(v, 2, seed=0)
    >>> bool(labels[0] == labels[1] != labels[2] == labels[3])
    True
    """
    import numpy as np

    n = vecs.shape[0]
    rng = np.random.default_rng(seed)
    centers = [int(rng.integers(n))]
    dist = 1.0 - vecs @ vecs[centers[0]]
    for _ in range(1, k):  # k-means++: next center with probability ~ squared distance
        weight = np.clip(dist, 0.0, None) ** 2
        total = float(weight.sum())
        nxt = int(rng.choice(n, p=weight / total)) if total > 0 else int(np.argmax(dist))
        centers.append(nxt)
        dist = np.minimum(dist, 1.0 - vecs @ vecs[nxt])
    c = vecs[centers].astype(np.float64)
    labels = np.full(n, -1)
    for _ in range(MAX_ITER):
        new = np.argmax(vecs @ c.T, axis=1)
        if np.array_equal(new, labels):
            break
        labels = new
        for j in range(k):
            members = vecs[labels == j]
            if len(members):
                m = members.sum(axis=0)
                norm = np.linalg.norm(m)
                c[j] = m / norm if norm > 0 else c[j]
    return labels


__all__ = ["semdedup", "spherical_kmeans"]
