"""Operator code fingerprints read class sources from one parse per module: the text must be
exactly what inspect.getsource gives, or every cache key would silently change."""

from __future__ import annotations

import inspect

import dcc.ops as ops
from dcc.ops.base import Op, class_source


def test_class_source_equals_inspect_for_every_operator_and_base() -> None:
    classes = {klass for name in ops.names() for klass in ops.get(name).__mro__
               if klass is not object and klass.__module__.startswith("dcc")}
    assert len(classes) > 50
    for klass in sorted(classes, key=lambda k: (k.__module__, k.__qualname__)):
        assert class_source(klass) == inspect.getsource(klass), klass.__qualname__


def test_a_class_defined_in_a_function_falls_back_to_inspect() -> None:
    def make() -> type:
        class Local(Op):
            name = "test.local"
        return Local

    local = make()
    assert class_source(local) == inspect.getsource(local)
