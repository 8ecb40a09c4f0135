"""One fingerprint mechanism for operators' helper modules (`dcc.ops.base.HelperCode`) and
one request-seed derivation (`dcc.ops.models.memo.request_seed`)."""

from __future__ import annotations

import dcc.ops.compression as compression
import dcc.ops.textgen as textgen
from dcc.engine.keys import _code_memo_key
from dcc.ops.distill_data import DistillCompress
from dcc.ops.models.memo import request_seed
from dcc.ops.synthesize import SelfInstruct
from dcc.ops.teacher import sample_seed
from dcc.ops.textgen import derive_seed


def test_helper_modules_are_in_the_fingerprint_and_its_memo_key() -> None:
    assert "def plan(" in DistillCompress.code_source()
    assert "def numbered_items" in SelfInstruct.code_source()
    # editing a helper module (not in the operator's MRO) must re-fingerprint it
    assert compression.__file__ in str(_code_memo_key(DistillCompress))
    assert textgen.__file__ in str(_code_memo_key(SelfInstruct))


def test_the_seeds_are_the_ones_requests_were_memoized_under() -> None:
    """Both families derive through request_seed, with the values they had before (a
    changed seed is a changed request: every memoized reply would be asked again)."""
    assert sample_seed(7, 0) == 7
    assert sample_seed(7, 1) == request_seed({"seed": 7, "sample": 1}) == 1248560672
    assert derive_seed(0, "round", 1) == request_seed([0, "round", 1]) == 1965820343
