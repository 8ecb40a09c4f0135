"""`evolve(seed, rounds=N) { chain }`: run a chain round after round, growing a pool of rows
(generate -> judge -> select, Self-Instruct and Evol-Instruct style loops). This module holds
the operators the block is unrolled into: one start, then feed -> chain -> collect per round,
then the result.

    grown = evolve(best, rounds=3, mode="accumulate", until={"min_new": 10}) {
        synthesize.evol_instruct(model=teacher)
      | distill.respond(model=teacher)
      | select.judge(model=teacher, min_score=7)
    }

The compiler (`dcc.compiler.resolve`) unrolls the block into plain nodes, so each round has
its own keys: changing `rounds=3` to `rounds=4` adds round 4's nodes and leaves rounds 1-3
cached; changing the chain changes every round's chain nodes, so the build re-runs from round
1. Stochastic operators in the chain get their `seed` shifted by the round (round k runs with
seed + k - 1), so a round samples anew rather than replaying the round before; the request
memo still makes a rebuild of any round cost no model call.

Lineage: every row of the pool carries `_id` (text: "ROUND-INDEX", the seeds "0-0", "0-1",
...), `_round` (0 for the seeds) and `_parent` (the `_id` of the pool row it was made from,
null for the seeds and for rows a generator made from the whole pool). The feed sets
`_parent` to each fed row's `_id`; operators that derive a row from a row keep it; collect
stamps the new rows.

What a round adds: the chain's output rows, minus those already in the pool (compared on
every column whose name does not start with "_"), minus repeats within the round. So a chain
that only filters adds nothing, and a greedy model that answers the same way twice adds
nothing twice; `min_new` counts these new rows.

Modes: "accumulate" (default) feeds the whole pool to every round and returns the seeds plus
every round's new rows; "replace" feeds only the newest rows (the last round that added any,
the seeds at first) and returns those. `rounds=0` returns the seeds (with lineage columns).

Stopping early (`until`, a dict): `{"min_new": N}` stops when a round adds fewer than N new
rows; `{"score": "COL", "min_gain": G}` stops when the mean of COL over a round's new rows
does not exceed the mean over the round before's new rows (or the seeds', for round 1) by
more than G (default 0). A round after a stop is fed nothing, runs its chain over no rows
(no model calls) and adds nothing; its nodes are still in the plan, with 0 rows, and the feed
records `stopped` in its stats.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from dcc.ops.base import Combinator, DatasetOp, P, RunContext
from dcc.schema import Schema

if TYPE_CHECKING:
    import polars as pl

LINEAGE = ("_id", "_round", "_parent")
MODES = ("accumulate", "replace")
UNTIL_KEYS = ("min_new", "score", "min_gain")


BLOCK_PARAMS = (
    P("rounds", "int", doc="how many times the chain runs (0 returns the seed)", min=0,
      max=1000),
    P("mode", "str", "accumulate", doc="'accumulate': the pool grows and is fed whole; "
      "'replace': each round is fed the newest rows, and they are the result", choices=MODES),
    P("until", "dict", None, doc='stop early: {"min_new": N} and/or {"score": COLUMN, '
      '"min_gain": G}'),
)


def check_until(until: Any) -> str | None:
    """Why `until` is malformed, or None.

    >>> check_until({"min_new": 5}) is None
    True
    >>> check_until({"score": "_judge", "min_gain": 0.5}) is None
    True
    >>> check_until({"min_gain": 1})
    "'min_gain' needs 'score' (the column whose mean must improve)"
    """
    if until is None:
        return None
    if not isinstance(until, dict) or not until:
        return "'until' is a dict: {\"min_new\": N} and/or {\"score\": \"COLUMN\", \"min_gain\": G}"
    for key in until:
        if key not in UNTIL_KEYS:
            return f"'until' has no key '{key}' (its keys: {', '.join(UNTIL_KEYS)})"
    n = until.get("min_new")
    if n is not None and (isinstance(n, bool) or not isinstance(n, int) or n < 0):
        return f"'min_new' must be an integer >= 0 (got {n!r})"
    score = until.get("score")
    if score is not None and (not isinstance(score, str) or not score):
        return f"'score' must be a column name (got {score!r})"
    gain = until.get("min_gain")
    if gain is not None:
        if score is None:
            return "'min_gain' needs 'score' (the column whose mean must improve)"
        if isinstance(gain, bool) or not isinstance(gain, (int, float)):
            return f"'min_gain' must be a number (got {gain!r})"
    return None


class _EvolveOp:
    """Shared by the block's operators: they move whole rows, so they need every column."""

    def input_columns(self, needed: set[str] | None) -> set[str] | None:
        return None


class EvolveStart(_EvolveOp, DatasetOp):
    """The seeds, stamped as round 0: `_id` "0-INDEX", `_round` 0, `_parent` null."""

    name = "evolve.start"
    version = 1
    params = ()

    def writes(self) -> list[str]:
        return list(LINEAGE)

    def output_schema(self, inputs: list[Schema]) -> Schema:
        return _with_lineage(inputs[0])

    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        return _stamp(inputs[0].drop(LINEAGE, strict=False), 0, parents=None)


class EvolveFeed(_EvolveOp, DatasetOp):
    """The rows round `round` starts from, with `_parent` set to each row's `_id` (and `_id`,
    `_round` removed: collect stamps what the round makes); no rows once the loop stopped."""

    name = "evolve.feed"
    version = 1
    params = (
        P("round", "int", doc="the round this feeds (1, 2, ...)", min=1),
        P("mode", "str", "accumulate", doc="feed the whole pool, or the newest rows",
          choices=MODES),
        P("until", "dict", None, doc="when to stop early"),
    )

    def validate(self) -> list[tuple[str | None, str]]:
        msg = check_until(self.p["until"])
        return [("until", msg)] if msg else []

    def reads(self) -> list[str]:
        score = (self.p["until"] or {}).get("score")
        return ["_round", "_id", *([score] if score else [])]

    def output_schema(self, inputs: list[Schema]) -> Schema:
        score = (self.p["until"] or {}).get("score")
        if self.p["round"] == 2 and score and not inputs[0].has(score):
            from dcc.errors import ParamError

            have = ", ".join(sorted(inputs[0].columns)) or "none"
            raise ParamError(f"evolve: until's score column '{score}' is made neither by the "
                             f"chain nor by the seed (the pool's columns: {have})")
        return inputs[0].without("_id", "_round").with_columns(_parent="str")

    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        import polars as pl

        pool = inputs[0]
        newest = pool["_round"].max() if pool.height else None
        reason = self.stop_reason(pool)
        if reason is not None:
            ctx.stats["stopped"] = reason
            fed = pool.head(0)
        elif self.p["mode"] == "replace":
            fed = pool.filter(pl.col("_round") == newest)
        else:
            fed = pool
        return fed.with_columns(pl.col("_id").alias("_parent")).drop("_id", "_round")

    def stop_reason(self, pool: pl.DataFrame) -> str | None:
        """Why round `round` does not run, or None. The previous round is round - 1."""
        import polars as pl

        k = self.p["round"]
        if k == 1:
            return None
        until = self.p["until"] or {}
        last = pool.filter(pl.col("_round") == k - 1)
        min_new = until.get("min_new")
        if min_new is not None and last.height < min_new:
            return f"round {k - 1} added {last.height} new rows (min_new={min_new})"
        score = until.get("score")
        if score is None:
            return None
        if last.height == 0:
            return f"round {k - 1} added no rows to score"
        before = pool.filter(pl.col("_round") == k - 2)
        now, prev = _mean(last, score), _mean(before, score)
        gain = until.get("min_gain") or 0
        if now is None:
            return f"round {k - 1}'s new rows have no '{score}'"
        if prev is not None and now - prev <= gain:
            return (f"mean {score} went from {prev:.4g} to {now:.4g} in round {k - 1} "
                    f"(min_gain={gain})")
        return None


class EvolveCollect(_EvolveOp, Combinator):
    """The pool after round `round`: the pool before it (first input), then the round's new
    rows (second input) stamped with `_id`, `_round` and `_parent`."""

    name = "evolve.collect"
    version = 1
    n_inputs = 2
    params = (P("round", "int", doc="the round whose rows these are", min=1),)

    def writes(self) -> list[str]:
        return list(LINEAGE)

    def output_schema(self, inputs: list[Schema]) -> Schema:
        return _with_lineage(Schema.union(inputs))

    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        import polars as pl

        pool, made = inputs
        parents = made["_parent"] if "_parent" in made.columns else None
        made = made.drop(LINEAGE, strict=False)
        content = [c for c in dict.fromkeys([*pool.columns, *made.columns])
                   if not c.startswith("_")]
        fresh = _new_rows(pool, made, content)
        ctx.stats["made"] = made.height
        ctx.stats["new"] = int(fresh.sum())
        if parents is not None:
            parents = parents.filter(pl.Series(fresh))
        new = _stamp(made.filter(pl.Series(fresh)), self.p["round"], parents)
        tmp = "__dcc_evolve_row__"
        return pl.concat([pool.with_row_index(tmp), new.with_row_index(tmp)],
                         how="diagonal_relaxed").drop(tmp)


class EvolveResult(_EvolveOp, DatasetOp):
    """What the block returns: the whole pool ("accumulate") or its newest rows ("replace")."""

    name = "evolve.result"
    version = 1
    params = (P("mode", "str", "accumulate", doc="return the pool or the newest rows",
                choices=MODES),)

    def output_schema(self, inputs: list[Schema]) -> Schema:
        return inputs[0]

    def run(self, inputs: list[pl.DataFrame], ctx: RunContext) -> pl.DataFrame:
        import polars as pl

        pool = inputs[0]
        if self.p["mode"] == "accumulate" or pool.height == 0:
            return pool
        return pool.filter(pl.col("_round") == pool["_round"].max())


# -- helpers -------------------------------------------------------------------------------------
def _with_lineage(schema: Schema) -> Schema:
    return schema.with_columns(_id="str", _round="int", _parent="str")


def _stamp(df: pl.DataFrame, round_: int, parents: pl.Series | None) -> pl.DataFrame:
    import polars as pl

    ids = pl.Series("_id", [f"{round_}-{i}" for i in range(df.height)], dtype=pl.String)
    parent = (parents.cast(pl.String).alias("_parent") if parents is not None
              else pl.Series("_parent", [None] * df.height, dtype=pl.String))
    return df.with_columns(ids, pl.lit(round_, dtype=pl.Int64).alias("_round"), parent)


def _new_rows(pool: pl.DataFrame, made: pl.DataFrame, content: list[str]) -> Any:
    """A boolean numpy mask over `made`: rows whose content is in neither the pool nor an
    earlier row of `made`. Content is compared as canonical JSON of the non-"_" columns, so
    types that polars would hash differently (1 and 1.0 from two sources) compare as JSON
    does."""
    import json

    import numpy as np

    def keys(df: pl.DataFrame) -> list[str]:
        cols = [c for c in content if c in df.columns]
        return [json.dumps([row.get(c) for c in content], sort_keys=True, default=str)
                for row in df.select(cols).iter_rows(named=True)]

    seen = set(keys(pool))
    mask = np.zeros(made.height, dtype=bool)
    for i, key in enumerate(keys(made)):
        if key not in seen:
            seen.add(key)
            mask[i] = True
    return mask


def _mean(df: pl.DataFrame, column: str) -> float | None:
    if column not in df.columns or df.height == 0:
        return None
    value = df[column].cast(float, strict=False).mean()
    return None if value is None else float(value)


__all__ = ["BLOCK_PARAMS", "EvolveCollect", "EvolveFeed", "EvolveResult", "EvolveStart", "LINEAGE", "MODES",
           "check_until"]
