"""select.dedup near-duplicate methods (minhash, simhash, semantic dispatch) and dcc.ops.neardup.

Hand-built clusters whose Jaccard values are checked against a plain-Python reference first,
so each test states the premise it relies on; then recall and the estimator's spread on a
small set from the shared bench generator, simhash's block tables by their pigeonhole promise,
and the compile-time checks through `dcc check` and `dcc build`.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest

from dcc.errors import DataError, ParamError
from dcc.ops import neardup as nd
from dcc.ops.base import RunContext
from dcc.ops.select import SelectDedup

GEN = Path("/work/shared/bench/gen_data.py")
RNG_WORDS = [f"w{i}" for i in range(5000)]


def words(n: int, seed: int) -> list[str]:
    return random.Random(seed).sample(RNG_WORDS, n)


def shingles(text: str, n: int = 5) -> set[str]:
    """The reference definition (as the bench generator's truth): n-word shingles."""
    w = text.split()
    return {" ".join(w)} if len(w) < n else {" ".join(w[i:i + n]) for i in range(len(w) - n + 1)}


def jac(a: str, b: str, n: int = 5) -> float:
    sa, sb = shingles(a, n), shingles(b, n)
    return len(sa & sb) / len(sa | sb)


def dedup(texts: list[str | None], ctx: RunContext | None = None, **kw: Any) -> list[int]:
    """Row numbers kept by select.dedup on a one-column frame."""
    df = pl.DataFrame({"t": texts, "i": list(range(len(texts)))}, schema={"t": pl.String,
                                                                         "i": pl.Int64})
    op = SelectDedup(fields=["t"], **kw)
    return op.run([df], ctx or RunContext("t"))["i"].to_list()


def replace(ws: list[str], at: int, new: str) -> list[str]:
    out = list(ws)
    out[at] = new
    return out


# -- clusters --------------------------------------------------------------------------------------
def test_a_chain_collapses_to_its_first_row_even_when_its_ends_are_far_apart() -> None:
    a = words(40, seed=1)
    b = replace(a, 10, "XX")
    c = replace(b, 30, "YY")
    ta, tb, tc = " ".join(a), " ".join(b), " ".join(c)
    assert jac(ta, tb) >= 0.7 and jac(tb, tc) >= 0.7 > jac(ta, tc)    # the premise
    others = [" ".join(words(40, seed=s)) for s in (2, 3)]
    ctx = RunContext("t")
    # c first: the cluster keeps c (the first row in the original order), drops a and b
    assert dedup([tc, others[0], ta, others[1], tb], ctx, method="minhash",
                 threshold=0.7) == [0, 1, 3]
    assert ctx.stats["clusters"] == 1 and ctx.stats["duplicates"] == 2
    assert ctx.stats["verified_pairs"] == 2 and ctx.stats["candidate_pairs"] >= 2
    assert dedup([tb, ta, tc], method="minhash", threshold=0.7) == [0]
    # without the middle link, a and c stay apart
    assert dedup([ta, tc], method="minhash", threshold=0.7) == [0, 1]


def test_every_verified_pair_is_at_or_above_the_threshold_and_clusters_are_exact() -> None:
    rng = random.Random(7)
    base = [words(60, seed=100 + k) for k in range(30)]
    texts, source = [], []
    for k, ws in enumerate(base):
        texts.append(" ".join(ws))
        source.append(k)
        for _ in range(rng.randrange(0, 4)):           # 0-3 near copies of 1-4 word edits
            w = list(ws)
            for at in rng.sample(range(60), rng.randrange(1, 5)):
                w[at] = f"edit{rng.randrange(10**6)}"
            texts.append(" ".join(w))
            source.append(k)
    order = list(range(len(texts)))
    rng.shuffle(order)
    texts = [texts[o] for o in order]
    # reference: union-find over every pair with exact Jaccard >= 0.8, keep first of each
    parent = list(range(len(texts)))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for x in range(len(texts)):
        for y in range(x + 1, len(texts)):
            if jac(texts[x], texts[y]) >= 0.8:
                rx, ry = find(x), find(y)
                parent[max(rx, ry)] = min(rx, ry)
    expected = [x for x in range(len(texts)) if find(x) == x]
    assert len(expected) < len(texts) - 5                              # there is work to do
    assert dedup(texts, method="minhash") == expected


def test_clearly_different_texts_are_never_merged() -> None:
    texts = [" ".join(words(30, seed=s)) for s in range(300)]
    ctx = RunContext("t")
    assert dedup(texts, ctx, method="minhash") == list(range(300))
    assert ctx.stats["verified_pairs"] == 0 and ctx.stats["duplicates"] == 0
    assert dedup(texts, method="simhash") == list(range(300))


def test_identical_texts_and_big_buckets_link_without_quadratic_pairs() -> None:
    common = words(100, seed=5)
    # 300 distinct texts, each the common text plus its own last word: all Jaccard > 0.95,
    # one LSH bucket per band far larger than the all-pairs limit (linked as a chain)
    texts = [" ".join(common + [f"tail{k}"]) for k in range(300)]
    texts += texts[:50]                                                 # and exact copies
    ctx = RunContext("t")
    assert dedup(texts, ctx, method="minhash") == [0]
    assert ctx.stats["identical_rows"] == 50
    assert ctx.stats["candidate_pairs"] < 300 * 4                       # not 300 * 299 / 2


def test_keep_first_is_the_original_order_and_other_columns_ride_along() -> None:
    t = " ".join(words(50, seed=9))
    near = " ".join(replace(t.split(), 25, "zz"))
    df = pl.DataFrame({"t": ["unrelated words here and there, quite a few of them", near, t],
                       "id": ["x", "first", "second"]})
    out = SelectDedup(fields=["t"], method="minhash").run([df], RunContext("t"))
    assert out["id"].to_list() == ["x", "first"]
    assert out.columns == ["t", "id"]


# -- text, nulls, units ----------------------------------------------------------------------------
def test_null_empty_and_whitespace_rows_are_one_cluster_of_their_own() -> None:
    t = "some words that make up a real row of text here"
    ctx = RunContext("t")
    assert dedup([None, t, "", "   \n\t", None, "x"], ctx, method="minhash") == [0, 1, 5]
    assert ctx.stats["clusters"] == 1 and ctx.stats["duplicates"] == 3
    assert dedup([" ", "", None], method="simhash") == [0]
    # unit="char": whitespace is text, so only null and "" have no shingles
    assert dedup([None, " ", "", t], method="minhash", unit="char") == [0, 1, 3]


def test_fields_are_joined_with_a_newline_and_a_null_field_reads_as_empty() -> None:
    body = " ".join(words(40, seed=11))
    df = pl.DataFrame({"q": ["Explain it.", None, "Explain it."],
                       "a": [body, "Explain it.\n" + body, body + " extra"]})
    out = SelectDedup(fields=["q", "a"], method="minhash", threshold=0.8).run(
        [df], RunContext("t"))
    assert out.height == 1                     # row 1 is row 0's text; row 2 adds one word
    assert jac("Explain it.\n" + body, "Explain it.\n" + body + " extra") >= 0.8


def test_words_split_like_python_and_shingles_follow_the_reference() -> None:
    texts = ["a\u00a0b\u2003c d\x1ce f", " lead  and trail ", "x", "", "one two three four"]
    arr = nd._text_array(pl.Series(texts))
    h, offs = nd.shingle_hashes(arr, 3, "word", seed=1)
    assert np.diff(offs).tolist() == [len(shingles(t, 3)) if t.split() else 0 for t in texts]
    same = nd.shingle_hashes(nd._text_array(pl.Series(["a b c d e f"])), 3, "word", 1)[0]
    assert np.array_equal(h[:4], same)         # unicode whitespace splits exactly as str.split


def test_char_shingles_catch_typos_in_short_texts() -> None:
    texts = ["The quick brown fox jumps over the lazy dog",
             "The quick brown fox jumsp over the lazy dog",
             "Pack my box with five dozen liquor jugs"]
    assert dedup(texts, method="minhash", unit="char", ngram=3, threshold=0.7) == [0, 2]
    assert dedup(texts, method="minhash", ngram=3, threshold=0.7) == [0, 1, 2]  # words differ


def test_normalize_compares_case_and_width_folded_text() -> None:
    t = " ".join(words(30, seed=13))
    assert dedup([t, t.upper()], method="minhash") == [0, 1]
    assert dedup([t, t.upper()], method="minhash", normalize=True) == [0]


def test_a_non_string_field_is_a_data_error() -> None:
    df = pl.DataFrame({"n": [1, 2]})
    with pytest.raises(DataError, match="column 'n' is Int64"):
        SelectDedup(fields=["n"], method="minhash").run([df], RunContext("t"))


# -- determinism and the estimator -----------------------------------------------------------------
def test_the_same_seed_gives_the_same_result_and_another_seed_other_hashes() -> None:
    texts = [" ".join(words(50, seed=s % 40)) + (" x" if s >= 40 else "") for s in range(80)]
    r1 = nd.near_duplicates(pl.Series(texts), "minhash", seed=3)
    r2 = nd.near_duplicates(pl.Series(texts), "minhash", seed=3)
    assert np.array_equal(r1.keep, r2.keep) and np.array_equal(r1.cluster, r2.cluster)
    assert r1.stats == r2.stats
    r3 = nd.near_duplicates(pl.Series(texts), "minhash", seed=4)
    assert np.array_equal(r1.keep, r3.keep)       # clear cases do not depend on the seed
    arr = nd._text_array(pl.Series(texts[:3]))
    h1, o = nd.shingle_hashes(arr, 5, "word", seed=3)
    h2, _ = nd.shingle_hashes(arr, 5, "word", seed=4)
    s1 = nd.signatures((h1 >> np.uint64(32)).astype(np.uint32), o, *nd.permutations(128, 3))
    s2 = nd.signatures((h2 >> np.uint64(32)).astype(np.uint32), o, *nd.permutations(128, 3))
    assert not np.array_equal(s1, s2)
    # fixed values: a change to hashing shows up here, not as a silent drift of builds
    assert int(h1[0]) == int(nd.shingle_hashes(arr, 5, "word", seed=3)[0][0])
    assert nd.permutations(4, 1)[0].tolist() == nd.permutations(4, 1)[0].tolist()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> tuple[pl.DataFrame, pl.DataFrame]:
    if not GEN.is_file():
        pytest.skip("shared/bench/gen_data.py is not here")
    out = tmp_path_factory.mktemp("gen") / "g.jsonl"
    subprocess.run([sys.executable, str(GEN), "--rows", "4000", "--out", str(out)], check=True,
                   stdout=subprocess.DEVNULL)
    return pl.read_ndjson(out), pl.read_csv(f"{out}.truth.tsv", separator="\t")


def test_recall_and_precision_on_a_generated_set(generated: tuple[pl.DataFrame, pl.DataFrame]
                                                  ) -> None:
    df, truth = generated
    op = SelectDedup(fields=["instruction", "input", "output"], method="minhash")
    ctx = RunContext("t")
    kept = op.run([df], ctx).height
    res = nd.near_duplicates(op._text(df), "minhash")
    assert kept == int(res.keep.sum()) and ctx.stats == {**res.stats}
    near = truth.filter(pl.col("kind") == "near")
    above = near.filter(pl.col("jaccard5") >= 0.8)
    below = near.filter(pl.col("jaccard5") < 0.8)
    c = res.cluster
    recall = np.mean(c[above["row"].to_numpy()] == c[above["source"].to_numpy()])
    assert len(above) > 80 and recall >= 0.99
    # nothing below the threshold is merged directly; a dropped row is always a planted copy
    assert np.mean(c[below["row"].to_numpy()] == c[below["source"].to_numpy()]) < 0.02
    # precision: each dropped row comes from the same planted source as the row kept for it
    src = truth["source"].to_numpy()
    family = np.where(src >= 0, src, truth["row"].to_numpy())
    dropped = np.flatnonzero(~res.keep)
    assert len(dropped) > 200 and (family[dropped] == family[c[dropped]]).all()
    assert ctx.stats["identical_rows"] == (truth["kind"] == "exact").sum()


def test_signature_estimates_are_unbiased_with_the_binomial_spread(
        generated: tuple[pl.DataFrame, pl.DataFrame]) -> None:
    df, truth = generated
    near = truth.filter((pl.col("kind") == "near") & pl.col("jaccard5").is_between(0.05, 0.95))
    m = near.height
    text = SelectDedup(fields=["instruction", "input", "output"], method="minhash")._text(df)
    rows = np.concatenate([near["row"].to_numpy(), near["source"].to_numpy()])
    h, offs = nd.shingle_hashes(nd._text_array(text.gather(rows)), 5, "word", seed=1)
    h32 = (h >> np.uint64(32)).astype(np.uint32)
    true = near["jaccard5"].to_numpy()
    exact = nd.jaccard(h32, offs, np.arange(m), np.arange(m) + m)
    assert np.abs(exact - true).max() < 1e-4        # truth is rounded to 4 decimals
    sig = nd.signatures(h32, offs, *nd.permutations(128, seed=1))
    est = (sig[:, :m] == sig[:, m:]).mean(axis=0)
    z = (est - true) / np.sqrt(true * (1 - true) / 128)
    assert abs(z.mean()) < 0.25 and 0.8 < z.std() < 1.2


def test_chunks_blocks_batches_and_threads_do_not_change_the_result(
        generated: tuple[pl.DataFrame, pl.DataFrame], monkeypatch: pytest.MonkeyPatch) -> None:
    df, _ = generated
    text = SelectDedup(fields=["instruction", "input", "output"], method="minhash")._text(df)
    whole = nd.near_duplicates(text, "minhash")
    simh = nd.near_duplicates(text, "simhash")
    monkeypatch.setattr(nd, "_CHUNK_ROWS", 333)       # rows shingled per chunk
    monkeypatch.setattr(nd, "_SIG_CELLS", 128 * 50)   # shingles per signature block
    monkeypatch.setattr(nd, "_PAIR_CELLS", 1000)      # hashes per verification batch
    for threads in (1, 3):
        monkeypatch.setattr(nd, "_THREADS", threads)
        parts = nd.near_duplicates(text, "minhash")
        assert np.array_equal(parts.cluster, whole.cluster) and parts.stats == whole.stats
        assert np.array_equal(nd.near_duplicates(text, "simhash").cluster, simh.cluster)


def test_verify_signature_uses_the_estimate() -> None:
    a = words(200, seed=21)
    texts = [" ".join(a), " ".join(replace(a, 100, "q"))]             # J = 191/201 = 0.95
    assert abs(jac(*texts) - 191 / 201) < 1e-12
    assert dedup(texts, method="minhash", verify="signature") == [0]
    assert dedup(texts, method="minhash", verify="signature", threshold=1.0) == [0, 1]


# -- LSH bands, union-find, simhash ----------------------------------------------------------------
@pytest.mark.parametrize("num_perm, threshold", [(128, 0.8), (128, 0.5), (64, 0.9),
                                                 (256, 0.7), (16, 0.3)])
def test_bands_are_the_most_selective_that_keep_recall_below_the_threshold(
        num_perm: int, threshold: float) -> None:
    b, r = nd.choose_bands(num_perm, threshold)
    assert b == num_perm // r and b * r <= num_perm
    assert nd.collision_probability(0.875 * threshold, b, r) >= 0.95
    assert nd.collision_probability(threshold, b, r) >= 0.99
    if r < num_perm:
        assert nd.collision_probability(0.875 * threshold, num_perm // (r + 1), r + 1) < 0.95


def test_components_match_a_plain_union_find() -> None:
    rng = np.random.default_rng(0)
    n = 500
    i, j = rng.integers(0, n, 300), rng.integers(0, n, 300)
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for x, y in zip(i.tolist(), j.tolist()):
        rx, ry = find(x), find(y)
        parent[max(rx, ry)] = min(rx, ry)
    assert nd.components(n, i, j).tolist() == [find(x) for x in range(n)]


@pytest.mark.parametrize("k", [0, 1, 3, 5])
def test_block_tables_find_every_pair_within_max_hamming(k: int) -> None:
    rng = np.random.default_rng(k)
    n = 400
    fp = rng.integers(0, 2**63, n, dtype=np.uint64) * np.uint64(2) + np.uint64(1)
    flips = np.zeros(n, dtype=np.uint64)
    for row in range(n):
        for bit in rng.choice(64, size=k, replace=False):
            flips[row] |= np.uint64(1) << np.uint64(bit)
    both = np.concatenate([fp, fp ^ flips])
    assert (nd.popcount(fp ^ (fp ^ flips)) == k).all()
    cand = set(nd.hamming_candidates(both, k).tolist())
    assert all(r * 2 * n + (r + n) in cand for r in range(n))


def test_simhash_merges_small_edits_of_long_texts_and_keeps_distinct_ones() -> None:
    a = words(300, seed=31)
    texts = [" ".join(a), " ".join(replace(a, 150, "edited")), " ".join(words(300, seed=32))]
    arr = nd._text_array(pl.Series(texts))
    h, offs = nd.shingle_hashes(arr, 5, "word", seed=1)
    fp = nd.simhash(h, offs)
    near, far = int(nd.popcount(fp[:1] ^ fp[1:2])[0]), int(nd.popcount(fp[:1] ^ fp[2:])[0])
    assert near <= 6 and far >= 16   # 5 of 296 shingles changed vs unrelated (~32 bits)
    ctx = RunContext("t")
    assert dedup(texts, ctx, method="simhash", max_hamming=near) == [0, 2]
    assert ctx.stats["verified_pairs"] == 1 and ctx.stats["tables"] >= 4
    if near:
        assert dedup(texts, method="simhash", max_hamming=near - 1) == [0, 1, 2]


# -- exact keeps its semantics (and identical texts are grouped exactly) ---------------------------
def test_exact_survives_a_hash_collision(monkeypatch: pytest.MonkeyPatch) -> None:
    df = pl.DataFrame({"t": ["a", "b", "a", None, "", None], "n": list(range(6))})
    monkeypatch.setattr(pl.DataFrame, "hash_rows",
                        lambda self, *a, **k: pl.Series([7] * self.height, dtype=pl.UInt64))
    ctx = RunContext("t")
    assert SelectDedup(fields=["t"]).run([df], ctx)["n"].to_list() == [0, 1, 3, 4]
    assert ctx.stats == {"duplicates": 2}
    t = " ".join(words(30, seed=51))                  # near dedup's identical-text grouping too
    assert dedup([t, "other words", t, None, t + " x"], method="minhash") == [0, 1, 3]


# -- semantic --------------------------------------------------------------------------------------
@pytest.fixture
def model_folder(tmp_path: Path) -> str:
    """A folder that model references accept (a config.json is what makes a model folder)."""
    (tmp_path / "enc").mkdir()
    (tmp_path / "enc" / "config.json").write_text("{}")
    return str(tmp_path / "enc")


def test_semantic_without_the_models_extra_is_a_clear_error(
        monkeypatch: pytest.MonkeyPatch, model_folder: str) -> None:
    monkeypatch.setitem(sys.modules, "dcc.ops.semantic", None)   # import fails
    op = SelectDedup(fields=["t"], method="semantic", model=model_folder)
    with pytest.raises(DataError, match=r"models extra: pip install 'dcc-recipes\[models\]'"):
        op.run([pl.DataFrame({"t": ["a"]})], RunContext("t"))


def test_semantic_dispatches_to_the_backend_module(monkeypatch: pytest.MonkeyPatch,
                                                   model_folder: str) -> None:
    pytest.importorskip("dcc.ops.models.resolve")
    seen: dict[str, Any] = {}
    fake = types.ModuleType("dcc.ops.semantic")

    def semdedup(df: pl.DataFrame, fields: list[str], threshold: float, model: str | None,
                 n_clusters: int, seed: int, ctx: RunContext) -> pl.DataFrame:
        seen.update(fields=fields, threshold=threshold, model=model, n_clusters=n_clusters,
                    seed=seed)
        ctx.stats["duplicates"] = df.height - 1
        return df.head(1)

    fake.semdedup = semdedup  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "dcc.ops.semantic", fake)
    op = SelectDedup(fields=["t"], method="semantic", model=model_folder, n_clusters=4, seed=9)
    assert op.run([pl.DataFrame({"t": ["a", "b"]})], RunContext("t")).height == 1
    assert seen == {"fields": ["t"], "threshold": 0.95, "model": model_folder,
                    "n_clusters": 4, "seed": 9}
    SelectDedup(fields=["t"], method="semantic", model=model_folder, threshold=0.9).run(
        [pl.DataFrame({"t": [str(k) for k in range(50)]})], RunContext("t"))
    assert (seen["threshold"], seen["n_clusters"]) == (0.9, 7)     # default: isqrt(rows)
    assert str(op.model_identity()).startswith("files:")          # the weights' content
    assert SelectDedup(fields=["t"], method="minhash").model_identity() is None


def test_a_semantic_model_that_names_nothing_is_a_parameter_error() -> None:
    pytest.importorskip("dcc.ops.models.resolve")
    with pytest.raises(ParamError, match="model folder './nowhere' does not exist"):
        SelectDedup(fields=["t"], method="semantic", model="./nowhere")


# -- validation ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, message", [
    ({"method": "minhash", "threshold": 0.0}, "'threshold' must be in (0, 1]"),
    ({"method": "minhash", "threshold": 1.5}, "'threshold' must be in (0, 1]"),
    ({"method": "minhash", "num_perm": 8}, "'num_perm' must be >= 16"),
    ({"method": "minhash", "max_hamming": 2}, "'max_hamming' applies to method=\"simhash\""),
    ({"method": "simhash", "threshold": 0.5}, "'threshold' applies to method=\"minhash\" or"),
    ({"method": "exact", "ngram": 3}, "'ngram' applies to method=\"minhash\" or"),
    ({"method": "simhash", "model": "m"}, "'model' applies to method=\"semantic\" only"),
    ({"method": "minhash", "bands": 4}, "give 'bands' and 'rows_per_band' together"),
    ({"method": "minhash", "bands": 30, "rows_per_band": 5}, "must be <= num_perm (30 x 5"),
    ({"method": "semantic", "normalize": True}, "'normalize' does not apply"),
    ({"method": "simhash", "max_hamming": 9}, "'max_hamming' must be <= 8"),
    ({"method": "minhash", "unit": "token"}, "'unit' must be one of 'word', 'char'"),
])
def test_parameters_are_checked(kw: dict[str, Any], message: str) -> None:
    with pytest.raises(ParamError, match=message.replace("(", r"\(").replace(")", r"\)")):
        SelectDedup(fields=["t"], **kw)


def test_explicit_bands_are_used() -> None:
    ctx = RunContext("t")
    dedup(["a b c d e f g", "a b c d e f h"], ctx, method="minhash", bands=8, rows_per_band=16)
    assert (ctx.stats["bands"], ctx.stats["rows_per_band"]) == (8, 16)


RECIPE_BAD = """recipe nd_check
src = load.jsonl("rows.jsonl")
a = src | select.dedup(fields=["t"], method="minhash", threshold=1.5)
b = src | select.dedup(fields=["t"], method="minhash", max_hamming=2)
c = src | select.dedup(fields=["t"], method="minhash", num_perm=8)
export a to "a.jsonl"
export b to "b.jsonl"
export c to "c.jsonl"
"""

RECIPE_GOOD = """recipe nd_build
src = load.jsonl("rows.jsonl")
near = src | select.dedup(fields=["t"], method="minhash", threshold=0.8, seed=2)
export near to "out/near.jsonl"
"""


def test_dcc_check_reports_every_bad_parameter_at_its_argument(
        recipe_dir: Callable[..., Path], run_cli: Callable[..., tuple[int, str, str]]) -> None:
    root = recipe_dir({"r.recipe": RECIPE_BAD, "rows.jsonl": [{"t": "hello there"}]})
    code, _, err = run_cli("check", "r.recipe", cwd=root)
    assert code == 1, err
    lines = RECIPE_BAD.splitlines()
    for line, value, message in [
            (3, "1.5", "'threshold' must be in (0, 1] (got 1.5)"),
            (4, "2)", "'max_hamming' applies to method=\"simhash\" only"),
            (5, "8)", "'num_perm' must be >= 16 (got 8)")]:
        col = lines[line - 1].index(value) + 1
        assert f"r.recipe:{line}:{col}: error: select.dedup: {message}" in err, err


def test_dcc_build_runs_minhash_and_reports_its_stats(
        recipe_dir: Callable[..., Path], run_cli: Callable[..., tuple[int, str, str]]) -> None:
    body = " ".join(words(40, seed=41))
    rows = [{"t": body}, {"t": "something else entirely"}, {"t": body + " more"}, {"t": None}]
    root = recipe_dir({"r.recipe": RECIPE_GOOD, "rows.jsonl": rows})
    code, out, err = run_cli("build", "r.recipe", "--json", cwd=root)
    assert code == 0, err
    node = next(n for n in json.loads(out)["nodes"] if n["name"] == "near")
    assert (node["rows_in"], node["rows_out"]) == (4, 3)
    assert node["stats"]["duplicates"] == 1 and node["stats"]["verified_pairs"] == 1
    kept = [json.loads(x)["t"] for x in (root / "out/near.jsonl").read_text().splitlines()]
    assert kept == [body, "something else entirely", None]
