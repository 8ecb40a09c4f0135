"""Node keys built from named parts, so a key can be explained as well as compared.

A key is the digest of the canonical bytes of its parts: operator name and version, the code
fingerprint, the parameters, the model identity, the seed and the CONTENT hashes of the inputs
(never upstream keys: a step that re-runs and yields the same output stops the rebuild there).
Display names stay out, so renaming a binding keeps the cache warm.

`KEY_SCHEMA` salts every key. It changes only when the meaning of a key changes (a new part, a
new encoding), not with the package version, so a release that leaves keys alone keeps caches
warm. The engine stores `to_dict()` of the last build of each node, and `dcc why` feeds it to
`diff_parts` to say which part changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from dcc.cache.hashing import canonical_bytes, digest

KEY_SCHEMA = 1


class _Missing:
    """Marks a part or parameter that one side of a diff does not have."""

    def __repr__(self) -> str:
        return "<missing>"

    def __bool__(self) -> bool:
        return False


MISSING: Any = _Missing()

_SCALARS = ("op", "op_version", "code")
_TAIL = ("model", "seed")


@dataclass(frozen=True)
class KeyParts:
    """Everything that decides a node's output, and nothing that does not.

    >>> parts = KeyParts(op="select.length", op_version=1, code="c0de", params={"min": 5},
    ...                  model=None, seed=None, inputs=("ab" * 16,))
    >>> len(parts.key())
    32
    >>> KeyParts.from_dict(parts.to_dict()).key() == parts.key()
    True
    """

    op: str
    op_version: int
    code: str
    params: dict[str, Any]
    model: str | None
    seed: int | None
    inputs: tuple[str, ...]

    def __post_init__(self) -> None:
        # Accept any sequence (a JSON list) but hold a tuple, so equal parts compare equal.
        object.__setattr__(self, "inputs", tuple(self.inputs))
        for i, content in enumerate(self.inputs):
            if not isinstance(content, str):
                raise TypeError(f"inputs[{i}] must be a content hash str (got {content!r})")

    def _payload(self) -> dict[str, Any]:
        return {
            "schema": KEY_SCHEMA,
            "op": self.op,
            "op_version": self.op_version,
            "code": self.code,
            "params": self.params,
            "model": self.model,
            "seed": self.seed,
            "inputs": list(self.inputs),
        }

    def key(self) -> str:
        """The node key: xxh3-128 of the canonical bytes of every part plus KEY_SCHEMA."""
        return digest(canonical_bytes(self._payload()))

    def memo_key(self) -> str:
        """The key without inputs: what per-row memo entries are filed under (RowMemo)."""
        return digest(canonical_bytes(self._payload(), exclude=("inputs",)))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict of the parts (plus the key schema), for the last-build record."""
        data = self._payload()
        data["params"] = dict(self.params)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> KeyParts:
        """Rebuild parts from `to_dict()` output (after a JSON round trip too)."""
        return cls(
            op=data["op"],
            op_version=data["op_version"],
            code=data["code"],
            params=dict(data["params"]),
            model=data.get("model"),
            seed=data.get("seed"),
            inputs=tuple(data["inputs"]),
        )


def _same(a: Any, b: Any) -> bool:
    if a is MISSING or b is MISSING:
        return a is b
    try:
        return canonical_bytes(a) == canonical_bytes(b)
    except TypeError:
        return bool(a == b)


def diff_parts(old: dict[str, Any], new: KeyParts) -> list[tuple[str, Any, Any]]:
    """Which parts changed between a stored `to_dict()` and new parts, as (part, old, new).

    Parameters are compared one by one ("params.min"), inputs position by position
    ("inputs[0]"); a side that lacks a part or parameter shows `MISSING`.

    >>> old = KeyParts("select.length", 1, "c", {"min": 5}, None, None, ("a" * 32,)).to_dict()
    >>> new = KeyParts("select.length", 1, "c", {"min": 6}, None, None, ("b" * 32,))
    >>> [name for name, _, _ in diff_parts(old, new)]
    ['params.min', 'inputs[0]']
    """
    cur = new.to_dict()
    changes: list[tuple[str, Any, Any]] = []
    for name in ("schema", *_SCALARS):
        if not _same(old.get(name, MISSING), cur[name]):
            changes.append((name, old.get(name, MISSING), cur[name]))
    old_params = old.get("params") or {}
    for pname in sorted(set(old_params) | set(new.params)):
        a, b = old_params.get(pname, MISSING), new.params.get(pname, MISSING)
        if not _same(a, b):
            changes.append((f"params.{pname}", a, b))
    for name in _TAIL:
        if not _same(old.get(name, MISSING), cur[name]):
            changes.append((name, old.get(name, MISSING), cur[name]))
    old_inputs = list(old.get("inputs") or [])
    for i in range(max(len(old_inputs), len(new.inputs))):
        a = old_inputs[i] if i < len(old_inputs) else MISSING
        b = new.inputs[i] if i < len(new.inputs) else MISSING
        if a != b:
            changes.append((f"inputs[{i}]", a, b))
    return changes


__all__ = ["KEY_SCHEMA", "MISSING", "KeyParts", "diff_parts"]
