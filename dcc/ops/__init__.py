"""The operator registry: every operator the compiler can name, built-in or third-party.

Built-in families are imported on first use (they import polars only inside methods, so this
stays cheap); third-party operators register through the `dcc.ops` entry-point group, each
entry point naming an `Op` subclass or a module that registers its own.
"""

from __future__ import annotations

import importlib

from dcc.ops.base import Op

_REGISTRY: dict[str, type[Op]] = {}
_LOADED = False
_BUILTIN_MODULES = (
    "dcc.ops.sources",
    "dcc.ops.select",
    "dcc.ops.rewrite",
    "dcc.ops.combinators",
    "dcc.ops.columns",
    "dcc.ops.prompted",
    "dcc.ops.rules",
    "dcc.ops.textedit",
    "dcc.ops.scorers",
    "dcc.ops.synthesize",
    "dcc.ops.distill",
    "dcc.ops.evolve",
    "dcc.ops.plumbing",
    "dcc.ops.branches",
    "dcc.ops.quality",
    "dcc.ops.gopher",
    "dcc.ops.c4",
    "dcc.ops.markup",
    "dcc.ops.computed",
)


def register(cls: type[Op]) -> type[Op]:
    """Class decorator: make an operator nameable from recipes."""
    if not cls.name:
        raise ValueError(f"{cls.__qualname__} has no name")
    _REGISTRY[cls.name] = cls
    return cls


def _load() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for mod in _BUILTIN_MODULES:
        importlib.import_module(mod)
    _load_entry_points()


def _load_entry_points() -> None:
    from importlib.metadata import entry_points

    for ep in entry_points(group="dcc.ops"):
        obj = ep.load()
        if isinstance(obj, type) and issubclass(obj, Op):
            register(obj)


def get(name: str) -> type[Op] | None:
    _load()
    return _REGISTRY.get(name)


def names() -> list[str]:
    _load()
    return sorted(_REGISTRY)


def families() -> set[str]:
    """First components of dotted operator names (select, rewrite, load, ...)."""
    return {n.split(".")[0] for n in names() if "." in n}
