"""Model references: parsing, identities, one backend per model, hub ids from a local cache."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import pytest

from dcc.ops.models import resolve as R


def test_parse_ref_kinds(tmp_path: Path, tiny_dir: Path) -> None:
    assert R.parse_ref(str(tiny_dir)) == R.ModelRef("local", str(tiny_dir))
    beside = R.parse_ref(f"./{tiny_dir.name}", recipe_dir=tiny_dir.parent)
    assert beside == R.ModelRef("local", str(tiny_dir))
    with pytest.raises(R.ModelNotFound, match="does not exist"):
        R.parse_ref("./tiny", recipe_dir=tmp_path)
    assert R.parse_ref("Qwen/Qwen2.5-0.5B-Instruct") == R.ModelRef(
        "hub", "Qwen/Qwen2.5-0.5B-Instruct")
    assert R.parse_ref("org/name@v1.0").revision == "v1.0"
    ep = "openai:http://127.0.0.1:8000/v1#qwen"
    assert R.parse_ref(ep) == R.ModelRef("openai", ep)
    # what the compiler makes of them (joined to the recipe's folder)
    assert R.parse_ref(os.path.normpath(f"{tmp_path}/{ep}")).location == ep
    assert R.parse_ref(f"{tmp_path}/Qwen/Qwen2.5-0.5B") == R.ModelRef("hub", "Qwen/Qwen2.5-0.5B")
    packaged = R.parse_ref(None)
    assert packaged.scheme == "local" and packaged.location.endswith("model")
    assert R.parse_ref(f"{tmp_path}/all-MiniLM-L6-v2") == packaged
    assert R.parse_ref(f"{tmp_path}/sentence-transformers/all-MiniLM-L6-v2") == packaged
    with pytest.raises(R.ModelNotFound, match="does not exist"):
        R.parse_ref("./missing")


def test_folder_identity_is_content_not_place(tiny_dir: Path, tiny_copy: Path) -> None:
    cache: dict[str, Any] = {}
    a = R.model_identity(str(tiny_dir), cache)
    assert a.startswith("files:") and a == R.model_identity(str(tiny_copy))
    (tiny_copy / "README.md").write_text("notes do not change what the model computes\n")
    assert R.model_identity(str(tiny_copy)) == a
    cfg = tiny_copy / "config.json"
    cfg.write_text(cfg.read_text().replace('"n_head": 4', '"n_head": 2'))
    assert R.model_identity(str(tiny_copy)) != a
    with pytest.raises(R.ModelNotFound, match="no config.json"):
        R.model_identity(str(tiny_copy.parent))


def test_one_backend_per_model_and_options(tiny_dir: Path) -> None:
    a = R.resolve_model(str(tiny_dir))
    assert R.resolve_model(str(tiny_dir)) is a
    assert a.trust_remote_code is False
    trusted = R.resolve_model(str(tiny_dir), options={"trust_remote_code": True})
    assert trusted is not a and trusted.trust_remote_code is True
    assert trusted.identity == a.identity


def fake_hub_cache(root: Path, repo: str, model_dir: Path, commit: str) -> Path:
    """The HF cache layout transformers reads offline: refs/main -> snapshots/<commit>/."""
    folder = root / f"models--{repo.replace('/', '--')}"
    (folder / "refs").mkdir(parents=True)
    (folder / "refs" / "main").write_text(commit)
    shutil.copytree(model_dir, folder / "snapshots" / commit)
    return root


def test_hub_id_loads_offline_from_the_local_cache(tmp_path: Path, tiny_dir: Path,
                                                   monkeypatch: pytest.MonkeyPatch,
                                                   tiny: Any) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    monkeypatch.setenv("HF_HUB_CACHE", str(fake_hub_cache(tmp_path / "hub", "dcc-test/tiny",
                                                          tiny_dir, commit)))
    assert R.cached_commit("dcc-test/tiny") == commit
    assert R.model_identity("dcc-test/tiny") == f"hf:dcc-test/tiny@{commit}"
    # as the compiler passes it: joined to a recipe folder that has no such subfolder
    assert R.parse_ref(str(tmp_path / "recipes" / "dcc-test" / "tiny")).location == \
        "dcc-test/tiny"
    hub = R.resolve_model("dcc-test/tiny", options={"device": "cpu"})
    assert hub.identity == f"hf:dcc-test/tiny@{commit}" and hub.revision == commit
    text = "Natalia sold 48/2 = 24 clips in May."
    assert hub.score([""], [text])[0].logprobs == pytest.approx(
        tiny.score([""], [text])[0].logprobs, abs=1e-5)
    with pytest.raises(R.ModelNotFound, match="not in the local HF cache"):
        R.model_identity("dcc-test/absent")


def test_openai_refs_go_to_the_http_backend() -> None:
    pytest.importorskip("dcc.ops.models.openai_http")
    backend = R.resolve_model("openai:http://127.0.0.1:9/v1#some-model")
    assert type(backend).__name__ == "OpenAIBackend"
