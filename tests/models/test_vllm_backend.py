"""The vLLM backend: against a faithful fake `vllm` everywhere, against real vLLM on a GPU.

`fake_vllm` computes with the tiny model through transformers, one unpadded request at a
time, so the backend's token plumbing (BOS, prefix and continuation ids, prompt_logprobs
positions, chat templates, seeds, order) is checked against the transformers backend's
numbers, not against numbers the fake made up.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import fake_vllm
from dcc.errors import ParamError
from dcc.ops.models import GenerationConfig
from dcc.ops.models import resolve as R
from dcc.ops.models.hf import ModelLoadError, _seed
from dcc.ops.models.vllm_offline import PIP, VLLMBackend, VLLMUnavailable

HERE = Path(__file__).resolve().parent
REAL_VLLM = importlib.util.find_spec("vllm") is not None and "fake" not in str(
    getattr(importlib.util.find_spec("vllm"), "origin", ""))


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setitem(sys.modules, "vllm", fake_vllm)
    monkeypatch.delenv("DCC_VLLM_ARGS", raising=False)
    fake_vllm.LLM.made.clear()
    R.clear_backends()
    yield fake_vllm
    R.clear_backends()


@pytest.fixture
def vllm_tiny(fake: Any, tiny_dir: Path) -> VLLMBackend:
    backend = R.resolve_model(f"vllm:{tiny_dir}")
    assert isinstance(backend, VLLMBackend)
    return backend


TEXTS = ["Natalia sold clips to 48 of her friends in April.",
         "She sold half as many clips in May. How many did she sell altogether?",
         "x", "Weng earns $12 an hour for babysitting."]


# -- references and identity --------------------------------------------------------------------
def test_vllm_references_parse_like_their_targets(tiny_dir: Path, tmp_path: Path) -> None:
    local = R.parse_ref(f"vllm:{tiny_dir}")
    assert local == R.ModelRef("local", str(tiny_dir), engine="vllm")
    assert str(local) == f"vllm:{tiny_dir}"
    # as the compiler hands it over: joined to the recipe's folder
    beside = R.parse_ref(os.path.normpath(f"{tiny_dir.parent}/vllm:./{tiny_dir.name}"))
    assert beside == local
    assert R.parse_ref(f"vllm:./{tiny_dir.name}", recipe_dir=tiny_dir.parent) == local
    hub = R.parse_ref(f"{tmp_path}/vllm:Qwen/Qwen2.5-7B-Instruct@v1")
    assert (hub.scheme, hub.location, hub.revision, hub.engine) == \
        ("hub", "Qwen/Qwen2.5-7B-Instruct", "v1", "vllm")
    for bad in ("vllm:", f"{tmp_path}/vllm:openai:http://h/v1#m", "vllm:./missing"):
        with pytest.raises(R.ModelNotFound):
            R.parse_ref(bad, recipe_dir=tmp_path)
    assert R.parse_ref(str(tiny_dir)).engine == "transformers"


def test_identity_is_the_weights_plus_the_engine(tiny_dir: Path, tiny_copy: Path) -> None:
    hf = R.model_identity(str(tiny_dir))
    assert R.model_identity(f"vllm:{tiny_dir}") == "vllm:" + hf
    assert R.model_identity(f"vllm:{tiny_copy}") == "vllm:" + hf  # content, not place
    backend = R.resolve_model(f"vllm:{tiny_dir}")
    assert backend.identity == "vllm:" + hf and backend is R.resolve_model(f"vllm:{tiny_dir}")
    assert backend is not R.resolve_model(str(tiny_dir))


def test_a_hub_snapshot_in_the_cache_is_loaded_from_its_folder(
        tmp_path: Path, tiny_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    commit = "0123456789abcdef0123456789abcdef01234567"
    snap = tmp_path / "hub" / "models--org--tiny" / "snapshots" / commit
    shutil.copytree(tiny_dir, snap)
    (tmp_path / "hub" / "models--org--tiny" / "refs").mkdir()
    (tmp_path / "hub" / "models--org--tiny" / "refs" / "main").write_text(commit)
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    R.clear_backends()
    backend = R.resolve_model("vllm:org/tiny")
    assert backend.identity == f"vllm:hf:org/tiny@{commit}" and backend.source == str(snap)


def test_embeddings_are_not_vllms(tiny_dir: Path, fake: Any) -> None:
    from dcc.ops.scorers import SelectKCenter

    with pytest.raises(R.ModelNotFound, match="drop the 'vllm:' prefix"):
        R.resolve_model(f"vllm:{tiny_dir}", kind="encoder")
    with pytest.raises(ParamError, match="embeddings are computed with transformers"):
        SelectKCenter(field="t", budget=2, model=f"vllm:{tiny_dir}")
    with pytest.raises(ModelLoadError, match="embedding operators use the transformers"):
        R.resolve_model(f"vllm:{tiny_dir}").embed(["a"])


# -- the engine ---------------------------------------------------------------------------------
def test_engine_arguments(vllm_tiny: VLLMBackend, tiny_dir: Path,
                          monkeypatch: pytest.MonkeyPatch) -> None:
    vllm_tiny.score([""], ["hi"])
    llm = fake_vllm.LLM.made[-1]
    assert {k: llm.kwargs[k] for k in ("model", "tokenizer", "seed", "dtype",
                                       "trust_remote_code")} == \
        {"model": str(tiny_dir), "tokenizer": str(tiny_dir), "seed": 0, "dtype": "auto",
         "trust_remote_code": False}
    monkeypatch.setenv("DCC_VLLM_ARGS", '{"max_model_len": 128, "gpu_memory_utilization": 0.4}')
    other = VLLMBackend(str(tiny_dir), identity="x", trust_remote_code=True)
    other.score([""], ["hi"])
    assert fake_vllm.LLM.made[-1].kwargs["gpu_memory_utilization"] == 0.4
    assert other.max_length == 128 and fake_vllm.LLM.made[-1].kwargs["trust_remote_code"]
    monkeypatch.setenv("DCC_VLLM_ARGS", "[1]")
    with pytest.raises(ModelLoadError, match="DCC_VLLM_ARGS must be a JSON object"):
        VLLMBackend(str(tiny_dir), identity="x").score([""], ["hi"])


def test_a_failing_engine_is_a_clear_error(fake: Any, tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(ModelLoadError, match="vLLM cannot load"):
        VLLMBackend(str(tmp_path), identity="x").generate(["hi"], GenerationConfig())


def test_scores_match_the_transformers_backend(vllm_tiny: VLLMBackend, tiny: Any) -> None:
    prefixes = ["", "Question: how many clips?\n", "", "A long prefix " * 20]
    conts = TEXTS
    mine = vllm_tiny.score(prefixes, conts)
    ref = tiny.score(prefixes, conts)
    for a, b in zip(mine, ref):
        assert len(a.logprobs) == len(b.logprobs) > 0
        assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)
    assert vllm_tiny.score(["x", ""], ["", ""])[0].logprobs == []
    sent = fake_vllm.LLM.made[-1].requests
    assert all(sp.prompt_logprobs == 1 and sp.max_tokens == 1 for _, sp in sent)
    assert sent[0][0][0] == vllm_tiny.tokenizer.eos_token_id  # BOS (the tiny model's EOS)


def test_too_long_is_cut_as_transformers_cuts(vllm_tiny: VLLMBackend, tiny: Any) -> None:
    long = " ".join(TEXTS * 20)  # far past the tiny model's 256 positions
    mine, ref = vllm_tiny.score(["", TEXTS[0]], [long, long]), tiny.score(["", TEXTS[0]],
                                                                          [long, long])
    for a, b in zip(mine, ref):  # vLLM keeps room for the one token it must generate
        assert len(a.logprobs) == 254 and len(b.logprobs) == 255  # 256 positions - BOS
        assert a.logprobs == pytest.approx(b.logprobs[:254], abs=1e-4)


def test_greedy_generation_matches_transformers_in_input_order(vllm_tiny: VLLMBackend,
                                                               tiny: Any) -> None:
    prompts = [TEXTS[1], "Janet's ducks lay 16 eggs per day.", TEXTS[3], "Q:"]
    cfg = GenerationConfig(max_new_tokens=12, n=2)
    mine = vllm_tiny.generate(prompts, cfg)
    assert mine == tiny.generate(prompts, cfg)
    assert all(len(m) == 2 and m[0] == m[1] for m in mine)  # greedy: one request, n copies
    assert len(fake_vllm.LLM.made[-1].requests) == 4
    assert vllm_tiny.generate(list(reversed(prompts)), cfg) == list(reversed(mine))


def test_sampling_seeds_stops_and_settings(vllm_tiny: VLLMBackend) -> None:
    cfg = GenerationConfig(max_new_tokens=10, temperature=0.9, top_p=0.95, n=3, seed=7,
                           stop=("\n",))
    three = vllm_tiny.generate(["Question:", TEXTS[0]], cfg)
    sent = fake_vllm.LLM.made[-1].requests
    assert [sp.seed for _, sp in sent] == [_seed(7, p, k) for p in ("Question:", TEXTS[0])
                                          for k in range(3)]
    assert all((sp.n, sp.temperature, sp.top_p, sp.max_tokens, sp.stop) ==
               (1, 0.9, 0.95, 10, ["\n"]) for _, sp in sent)
    assert all("\n" not in t for ts in three for t in ts)
    assert len(set(three[0])) > 1  # three samples, drawn apart
    two = vllm_tiny.generate(["Question:", TEXTS[0]],
                             GenerationConfig(max_new_tokens=10, temperature=0.9, top_p=0.95,
                                              n=2, seed=7, stop=("\n",)))
    assert two == [t[:2] for t in three]  # sample k does not depend on n


def test_chat_prompts_go_through_the_chat_template(vllm_tiny: VLLMBackend) -> None:
    chat = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2?"}]
    vllm_tiny.generate([chat], GenerationConfig(max_new_tokens=2))
    tok = vllm_tiny.tokenizer
    joined = tok.encode("Be brief.\n\n2+2?")  # no template: contents joined, as in hf.py
    assert fake_vllm.LLM.made[-1].requests[-1][0] == joined
    tok.chat_template = ("{% for m in messages %}<{{ m.role }}>{{ m.content }}\n{% endfor %}"
                         "{% if add_generation_prompt %}<assistant>{% endif %}")
    try:
        vllm_tiny.generate([chat], GenerationConfig(max_new_tokens=2))
    finally:
        tok.chat_template = None
    text = "<system>Be brief.\n<user>2+2?\n<assistant>"
    assert fake_vllm.LLM.made[-1].requests[-1][0] == tok.encode(text, add_special_tokens=False)


# -- as a user meets it -------------------------------------------------------------------------
RECIPE = """recipe v
raw = load.jsonl("d.jsonl")
hf = raw | select.perplexity(field="answer", model="./tiny", keep=0.5)
vl = raw | select.perplexity(field="answer", model="vllm:./tiny", keep=0.5)
export hf to "out/hf.jsonl"
export vl to "out/vl.jsonl"
"""
ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "DCC_DEVICE": "cpu"}


@pytest.fixture
def folder(recipe_dir: Callable, tiny_dir: Path, gsm8k: list[dict]) -> Path:
    rows = [{"answer": r["answer"]} for r in gsm8k[:10]]
    path = recipe_dir({"r.recipe": RECIPE, "d.jsonl": rows})
    shutil.copytree(tiny_dir, path / "tiny")
    return path


@pytest.mark.skipif(REAL_VLLM, reason="vLLM is installed here")
def test_without_vllm_the_build_says_how_to_get_it(folder: Path, run_cli: Callable) -> None:
    code, _, err = run_cli("check", "r.recipe", cwd=folder)
    assert code == 0, err  # checking and planning need no vLLM
    code, out, err = run_cli("plan", "r.recipe", "--json", cwd=folder, env=ENV, timeout=120)
    assert code == 0, err
    code, _, err = run_cli("build", "r.recipe", cwd=folder, env=ENV, timeout=180)
    assert code == 3 and "Traceback" not in err, err
    assert PIP in err and "vllm:" in err and "'vl'" in err
    with pytest.raises(VLLMUnavailable, match="not installed"):
        VLLMBackend("x", identity="x").generate(["hi"], GenerationConfig())


def test_build_with_the_fake_engine_picks_the_same_rows(folder: Path, run_cli: Callable,
                                                        tmp_path: Path) -> None:
    pkg = tmp_path / "site" / "vllm"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("from fake_vllm import *  # noqa\n"
                                     "from fake_vllm import __version__  # noqa\n")
    path = os.pathsep.join([str(HERE.parents[1]), str(HERE), str(tmp_path / "site")])
    code, out, err = run_cli("build", "r.recipe", "--json", cwd=folder,
                             env={**ENV, "PYTHONPATH": path}, timeout=300)
    assert code == 0, err
    nodes = {n["name"]: n for n in json.loads(out)["nodes"]}
    assert nodes["hf"]["key"] != nodes["vl"]["key"]  # another engine: cached apart
    assert nodes["hf"]["model_calls"] == nodes["vl"]["model_calls"] == 10
    read = [[json.loads(x) for x in (folder / "out" / f).read_text().splitlines()]
            for f in ("hf.jsonl", "vl.jsonl")]
    assert [r["answer"] for r in read[0]] == [r["answer"] for r in read[1]]
    assert [r["_ppl"] for r in read[1]] == pytest.approx([r["_ppl"] for r in read[0]],
                                                        rel=1e-4)


# -- real vLLM (GPU machines) -------------------------------------------------------------------
def _cuda() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except ImportError:
        return False


@pytest.mark.skipif(not REAL_VLLM or not _cuda(), reason="needs vLLM and a CUDA GPU")
def test_real_vllm_scores_and_generates_like_transformers(tiny_dir: Path, tiny: Any) -> None:
    R.clear_backends()
    backend = R.resolve_model(f"vllm:{tiny_dir}")
    mine, ref = backend.score(["", "Q: "], TEXTS[:2]), tiny.score(["", "Q: "], TEXTS[:2])
    for a, b in zip(mine, ref):
        assert len(a.logprobs) == len(b.logprobs)
        assert a.logprobs == pytest.approx(b.logprobs, abs=0.05)  # GPU kernels, bf16/fp32
    out = backend.generate(TEXTS[:3], GenerationConfig(max_new_tokens=8, n=2))
    assert len(out) == 3 and all(len(o) == 2 for o in out)
