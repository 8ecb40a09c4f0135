"""OpenAI-compatible HTTP backend: `openai:URL#MODEL` (vLLM, llama.cpp, Ollama, TGI, OpenAI).

A reference names the API root and the served model, e.g.
`openai:http://127.0.0.1:8000/v1#qwen2.5-0.5b`. The API key comes from the environment only
(`DCC_OPENAI_API_KEY`, else `OPENAI_API_KEY`; no key sends no Authorization header), never
from a recipe, a reference or a cache entry, so recipes and caches can be shared safely.

* `generate` posts message lists to `/chat/completions` and plain strings to `/completions`
  (n, temperature, top_p, max_tokens, seed, stop); a server that ignores `n` is asked again
  for the missing completions, one each, with seeds seed+1, seed+2, ...
* `score` posts `prefix + continuation` to `/completions` with `echo=true, logprobs=1` and
  keeps the log-probabilities of the tokens that start inside the continuation (a token that
  straddles the boundary counts with the prefix). Chat-only endpoints cannot do this; they
  raise `CannotScoreError`.
* `embed` posts batches to `/embeddings` and L2-normalises the vectors.

Transport is the standard library (`http.client`, a small pool of keep-alive connections,
a `ThreadPoolExecutor` for concurrency): no client package is needed and nothing beyond
JSON over HTTP is used. Settings come from keyword arguments, else the environment:

    DCC_OPENAI_MAX_CONCURRENCY  requests in flight per call (default 8)
    DCC_OPENAI_TIMEOUT          seconds to connect and per socket read (default 120)
    DCC_OPENAI_MAX_ATTEMPTS     tries per request, the first included (default 6)
    DCC_OPENAI_BACKOFF_BASE     first back-off in seconds (default 1.0)
    DCC_OPENAI_BACKOFF_MAX      longest back-off in seconds (default 30)

They change how results are fetched, never what they are, so none of them is in a key.
`RetryPolicy` says exactly what is retried and how long it waits.

Identity. A remote model has no weight files to hash, so `identity` is the URL, the model
name and the server's `/models` entry for it (id, owned_by, root, parent, and created when it
is a real date rather than the time of the request, as vLLM reports it). A server that swaps
the weights behind an unchanged name and entry is INVISIBLE to the cache: the old results are
served. Serve versioned names (`--served-model-name qwen2.5-0.5b-instruct-2024-09`) and
change the name when the weights change, or force a re-run with `dcc build --resample`.

This module is longer than the house ~300 lines because the retry loop, the error messages
and the three endpoints share one transport; splitting them would spread one protocol over
several files.
"""

from __future__ import annotations

import functools
import http.client
import json
import os
import random
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from dcc.errors import DccError, ParamError, UsageError
from dcc.ops.models import GenerationConfig, Prompt, TokenScores

PREFIX = "openai:"
KEY_ENV = ("DCC_OPENAI_API_KEY", "OPENAI_API_KEY")
RETRY_STATUSES = frozenset({408, 409, 429}) | frozenset(range(500, 600))
# A /models "created" this close to now is the time of the request (vLLM, llama.cpp), not a
# property of the model, and would change every key: it is left out of the identity.
VOLATILE_CREATED_S = 600
EMBED_BATCH = 64


class OpenAIHTTPError(DccError):
    """A request to an OpenAI-compatible server failed; the message says why and what to do."""

    exit_code = 3


class AuthenticationError(OpenAIHTTPError):
    """HTTP 401/403: no key, or a key the server does not accept."""


class ModelNotFoundError(OpenAIHTTPError):
    """The server does not serve the model the reference names."""


class EndpointError(OpenAIHTTPError):
    """The server answered with an error that retrying cannot fix (400, 404, bad JSON)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        self.status = status
        super().__init__(message)


class CannotScoreError(OpenAIHTTPError):
    """The endpoint cannot return the log-probabilities of given text."""


class RequestFailedError(OpenAIHTTPError):
    """Transient failures (429, 5xx, timeouts, dropped connections) outlasted every retry."""


def parse_ref(ref: str) -> tuple[str, str]:
    """Split `openai:URL#MODEL` into the API root (no trailing slash) and the model name.

    >>> parse_ref("openai:http://127.0.0.1:8000/v1/#Qwen/Qwen2.5-0.5B-Instruct")
    ('http://127.0.0.1:8000/v1', 'Qwen/Qwen2.5-0.5B-Instruct')
    >>> parse_ref("openai:http://127.0.0.1:8000/v1")
    Traceback (most recent call last):
    ...
    dcc.errors.ParamError: model 'openai:http://127.0.0.1:8000/v1' names no model: write openai:URL#MODEL, e.g. openai:http://127.0.0.1:8000/v1#qwen2.5-0.5b
    """
    example = "write openai:URL#MODEL, e.g. openai:http://127.0.0.1:8000/v1#qwen2.5-0.5b"
    if not ref.startswith(PREFIX):
        raise ParamError(f"model '{ref}' is not an openai: reference; {example}")
    url, _, model = ref[len(PREFIX):].partition("#")
    if not model.strip():
        raise ParamError(f"model '{ref}' names no model: {example}")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ParamError(f"model '{ref}' needs an http:// or https:// URL; {example}")
    if parts.username or parts.password:
        raise ParamError(f"model '{ref}' carries credentials in its URL; remove them and set "
                         "OPENAI_API_KEY (or DCC_OPENAI_API_KEY) in the environment instead")
    return url.rstrip("/"), model.strip()


def api_key_from_env() -> tuple[str | None, str | None]:
    """(key, name of the variable it came from), or (None, None)."""
    for name in KEY_ENV:
        value = os.environ.get(name, "").strip()
        if value:
            return value, name
    return None, None


@dataclass(frozen=True)
class RetryPolicy:
    """What is retried, how often, and how long to wait in between.

    Retried: HTTP 408, 409, 429 and every 5xx; connection errors (refused, reset, dropped
    before a response) and timeouts. Not retried: every other status (400, 401, 403, 404,
    422, ...). A request is tried at most `max_attempts` times in all. Before try k+1 (after
    k failures) it waits the server's Retry-After (seconds or an HTTP date; or
    retry-after-ms), capped at `retry_after_max`, when the response carries one; otherwise
    `min(backoff_max, backoff_base * 2**(k-1))` times a random factor in [0.5, 1) (jitter,
    so that many clients do not retry in lockstep).

    >>> p = RetryPolicy(backoff_base=1.0, backoff_max=4.0)
    >>> [round(p.delay(k, None, random.Random(0)), 3) for k in (1, 2, 3, 4)]
    [0.922, 1.844, 3.689, 3.689]
    >>> p.delay(1, 90.0, random.Random(0))  # Retry-After: 90, capped at retry_after_max
    60.0
    """

    max_attempts: int = 6
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    retry_after_max: float = 60.0

    def delay(self, failures: int, retry_after: float | None, rng: random.Random) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_max)
        cap = min(self.backoff_max, self.backoff_base * 2 ** (failures - 1))
        return cap * (0.5 + 0.5 * rng.random())


def _env_number(name: str, default: float, kind: type = float) -> Any:
    raw = os.environ.get(name)
    if raw is None or not raw.strip():
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise UsageError(f"{name} must be {kind.__name__} (got {raw!r})") from None
    least = 0 if name.startswith("DCC_OPENAI_BACKOFF") else 1 if kind is int else 1e-9
    if value < least:
        raise UsageError(f"{name} must be {'>= 0' if least == 0 else '> 0'} (got {raw!r})")
    return value


class _Transport:
    """JSON over HTTP with a pool of keep-alive connections and the retry loop."""

    def __init__(self, base_url: str, api_key: str | None, key_source: str | None,
                 timeout: float, policy: RetryPolicy, pool_size: int,
                 sleep: Callable[[float], Any] | None = None) -> None:
        parts = urlsplit(base_url)
        self.base_url = base_url
        self._https = parts.scheme == "https"
        self._host, self._port = parts.hostname or "", parts.port
        self._prefix = parts.path.rstrip("/")
        self._api_key, self._key_source = api_key, key_source
        self.timeout, self.policy, self._pool_size = timeout, policy, pool_size
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._rng = random.Random()
        self._sleep = sleep
        self.stats = {"requests": 0, "retries": 0}

    # -- connections -------------------------------------------------------------------------
    def _acquire(self, fresh: bool) -> tuple[http.client.HTTPConnection, bool]:
        if not fresh:
            with self._lock:
                if self._idle:
                    return self._idle.pop(), True
        cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
        return cls(self._host, self._port, timeout=self.timeout), False

    def _release(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < self._pool_size:
                self._idle.append(conn)
                return
        conn.close()

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _once(self, method: str, path: str, body: bytes | None
              ) -> tuple[int, http.client.HTTPMessage, bytes]:
        headers = {"Accept": "application/json", "User-Agent": "dcc-recipes"}
        if body is not None:
            headers["Content-Type"] = "application/json"
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        fresh = False
        while True:
            conn, reused = self._acquire(fresh)
            try:
                conn.request(method, self._prefix + path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
            except (ConnectionError, http.client.BadStatusLine) as e:
                conn.close()
                if reused and not isinstance(e, ConnectionRefusedError):
                    fresh = True  # a kept-alive connection the server had closed: redial once
                    continue
                raise
            except BaseException:
                conn.close()
                raise
            if resp.will_close:
                conn.close()
            else:
                self._release(conn)
            return resp.status, resp.headers, data

    # -- the retry loop ----------------------------------------------------------------------
    def call(self, method: str, path: str, payload: Any = None, *,
             abort: threading.Event | None = None, attempts: int | None = None,
             on_error: Callable[[int, Any, str], OpenAIHTTPError] | None = None) -> Any:
        """The parsed JSON of a 2xx answer; retries transient failures per the policy, and
        raises an `OpenAIHTTPError` (through `on_error` for non-retryable statuses)."""
        body = None if payload is None else json.dumps(payload).encode()
        limit = attempts or self.policy.max_attempts
        url, started, failures = self.base_url + path, time.monotonic(), 0
        while True:
            with self._lock:
                self.stats["requests"] += 1
            retry_after = None
            try:
                status, headers, data = self._once(method, path, body)
            except ssl.SSLCertVerificationError as e:
                raise OpenAIHTTPError(f"cannot verify the TLS certificate of {url}: {e}") from None
            except (OSError, http.client.HTTPException) as e:
                problem = _describe_exception(e, self.timeout)
            else:
                if 200 <= status < 300:
                    return _parse_json(data, url, status)
                detail = _error_detail(data)
                if status not in RETRY_STATUSES:
                    handler = on_error or self.status_error
                    raise handler(status, _json_or_none(data), detail)
                problem = f"HTTP {status}" + (f": {detail}" if detail else "")
                retry_after = _retry_after(headers)
            failures += 1
            if failures >= limit or (abort is not None and abort.is_set()):
                spent = time.monotonic() - started
                hint = " (is the server running?)" if "refused" in problem else ""
                raise RequestFailedError(f"{method} {url} failed after {failures} attempt(s) "
                                         f"over {spent:.1f} s: {problem}{hint}")
            with self._lock:
                self.stats["retries"] += 1
                wait = self.policy.delay(failures, retry_after, self._rng)
            if self._sleep is not None:
                self._sleep(wait)
            elif abort is not None:
                abort.wait(wait)
            else:
                time.sleep(wait)
            if abort is not None and abort.is_set():
                raise RequestFailedError(f"{method} {url}: cancelled (another request of "
                                         "the same batch failed)")

    def status_error(self, status: int, data: Any, detail: str) -> OpenAIHTTPError:
        """The error for a status that retrying cannot fix."""
        said = f"HTTP {status}" + (f": {detail}" if detail else "")
        if status in (401, 403):
            if self._api_key:
                fix = (f"the key in {self._key_source} was rejected; set OPENAI_API_KEY (or "
                       "DCC_OPENAI_API_KEY) to a key this server accepts")
            else:
                fix = "set OPENAI_API_KEY (or DCC_OPENAI_API_KEY) in the environment"
            return AuthenticationError(f"authentication failed for {self.base_url} ({said}): "
                                       f"{fix}")
        return EndpointError(f"{self.base_url} answered {said}", status)


class OpenAIBackend:
    """A `ModelBackend` that calls an OpenAI-compatible server over HTTP.

    `OpenAIBackend.from_ref("openai:http://127.0.0.1:8000/v1#qwen2.5-0.5b")` or
    `OpenAIBackend(url, model, max_concurrency=..., timeout=..., retry=RetryPolicy(...))`;
    arguments left out come from the DCC_OPENAI_* variables (module docstring), the key from
    DCC_OPENAI_API_KEY or OPENAI_API_KEY unless `api_key` is given (only Python callers can).
    Nothing is sent until a method or `identity` is used.
    """

    # Calls whose every request is its own HTTP request, so its reply cannot depend on the
    # requests sent with it: a model group (dcc.ops.models.pool) may send them together with
    # other nodes' requests. Embeddings go out several texts per request: not listed.
    independent_requests = frozenset({"generate", "score"})

    def __init__(self, url: str, model: str, *, api_key: str | None = None,
                 max_concurrency: int | None = None, timeout: float | None = None,
                 retry: RetryPolicy | None = None, embed_batch: int = EMBED_BATCH,
                 sleep: Callable[[float], Any] | None = None) -> None:
        self.url, self.model = url.rstrip("/"), model
        key, source = (api_key, "the api_key argument") if api_key else api_key_from_env()
        self.max_concurrency = max_concurrency or _env_number(
            "DCC_OPENAI_MAX_CONCURRENCY", 8, int)
        self.retry = retry or RetryPolicy(
            max_attempts=_env_number("DCC_OPENAI_MAX_ATTEMPTS", 6, int),
            backoff_base=_env_number("DCC_OPENAI_BACKOFF_BASE", 1.0),
            backoff_max=_env_number("DCC_OPENAI_BACKOFF_MAX", 30.0))
        self.timeout = timeout or _env_number("DCC_OPENAI_TIMEOUT", 120.0)
        self.embed_batch = embed_batch
        self._http = _Transport(self.url, key, source, self.timeout, self.retry,
                                self.max_concurrency, sleep)
        self._identity: str | None = None
        self._lock = threading.Lock()

    @classmethod
    def from_ref(cls, ref: str, *, options: dict[str, Any] | None = None,
                 **kwargs: Any) -> OpenAIBackend:
        """A backend for `openai:URL#MODEL`. `options` (the build's run options) is accepted
        for the resolver's sake; no option is read from it, least of all a key."""
        url, model = parse_ref(ref)
        return cls(url, model, **kwargs)

    def __repr__(self) -> str:
        return f"OpenAIBackend({self.url!r}, {self.model!r})"

    @property
    def stats(self) -> dict[str, int]:
        """Requests sent and retries made so far (retries are also requests)."""
        return dict(self._http.stats)

    def close(self) -> None:
        self._http.close()

    # -- identity ----------------------------------------------------------------------------
    @property
    def identity(self) -> str:
        """`openai:URL#MODEL` plus the server's /models entry for it, as canonical JSON."""
        with self._lock:
            if self._identity is None:
                self._identity = make_identity(self.url, self.model, self.model_entry())
            return self._identity

    def list_models(self, attempts: int | None = None) -> list[dict[str, Any]] | None:
        """The server's /models entries, or None when it has no such listing."""
        def no_listing(status: int, data: Any, detail: str) -> OpenAIHTTPError:
            return _NoListing() if status not in (401, 403) else \
                self._http.status_error(status, data, detail)

        try:
            data = self._http.call("GET", "/models", attempts=attempts, on_error=no_listing)
        except _NoListing:
            return None
        entries = data.get("data") if isinstance(data, dict) else data
        if not isinstance(entries, list):
            return None
        return [e for e in entries if isinstance(e, dict) and isinstance(e.get("id"), str)]

    def model_entry(self) -> dict[str, Any] | None:
        """This model's /models entry; None when the server lists no models or not this one
        (some servers, llama.cpp among them, answer for any name)."""
        entries = self.list_models() or []
        return next((e for e in entries if e["id"] == self.model), None)

    # -- generate ----------------------------------------------------------------------------
    def generate(self, prompts: Sequence[Prompt], config: GenerationConfig) -> list[list[str]]:
        """`config.n` completions per prompt, in input order, `max_concurrency` at a time."""
        return self._parallel([functools.partial(self._generate_one, p, config)
                               for p in prompts])

    def request_body(self, prompt: Prompt, config: GenerationConfig) -> tuple[str, dict]:
        """(endpoint path, JSON body) of one generation request.

        >>> b = OpenAIBackend("http://127.0.0.1:1/v1", "m")
        >>> b.request_body("Hi", GenerationConfig(max_new_tokens=5, seed=3, stop=("\\n",)))
        ('/completions', {'model': 'm', 'max_tokens': 5, 'temperature': 0.0, 'top_p': 1.0, \
'n': 1, 'seed': 3, 'stop': ['\\n'], 'prompt': 'Hi'})
        """
        body: dict[str, Any] = {"model": self.model, "max_tokens": config.max_new_tokens,
                                "temperature": config.temperature, "top_p": config.top_p,
                                "n": config.n, "seed": config.seed}
        if config.stop:
            body["stop"] = list(config.stop)
        if isinstance(prompt, str):
            return "/completions", {**body, "prompt": prompt}
        return "/chat/completions", {**body, "messages": [dict(m) for m in prompt]}

    def _generate_one(self, prompt: Prompt, config: GenerationConfig,
                      abort: threading.Event) -> list[str]:
        path, body = self.request_body(prompt, config)
        texts = self._choices(self._post(path, body, abort), path)
        for extra in range(len(texts), config.n):  # the server ignored n
            again = {**body, "n": 1, "seed": config.seed + extra}
            texts += self._choices(self._post(path, again, abort), path)[:1]
        return texts[:config.n]

    def _choices(self, data: Any, path: str) -> list[str]:
        choices = data.get("choices") if isinstance(data, dict) else None
        if not isinstance(choices, list) or not choices:
            raise EndpointError(f"{self.url}{path} answered without 'choices': "
                                f"{_short(json.dumps(data))}")
        out = []
        for c in sorted(choices, key=lambda c: c.get("index", 0) if isinstance(c, dict) else 0):
            c = c if isinstance(c, dict) else {}
            text = (c.get("message") or {}).get("content") if path == "/chat/completions" \
                else c.get("text")
            out.append(text if isinstance(text, str) else "")
        return out

    def _post(self, path: str, body: dict, abort: threading.Event | None) -> Any:
        return self._http.call("POST", path, body, abort=abort, on_error=self._request_error)

    def _request_error(self, status: int, data: Any, detail: str) -> OpenAIHTTPError:
        """401/403 and other statuses as the transport says; a 404 or model_not_found becomes
        a ModelNotFoundError listing what the server serves (when /models answers)."""
        err = data.get("error") if isinstance(data, dict) else None
        code = (err.get("code") if isinstance(err, dict) else None) or \
            (data.get("code") if isinstance(data, dict) else None)
        if status == 404 or code == "model_not_found":
            try:
                served = self.list_models(attempts=1)
            except OpenAIHTTPError:
                served = None
            ids = None if served is None else [e["id"] for e in served]
            if code == "model_not_found" or (ids is not None and self.model not in ids) or \
                    ("model" in detail.lower() and "not" in detail.lower()):
                listing = (f"; it serves: {', '.join(ids[:20])}" if ids else
                           "; its /models lists none" if ids == [] else "")
                return ModelNotFoundError(f"model '{self.model}' not found at {self.url} "
                                          f"(HTTP {status}: {detail or 'not found'}){listing}")
            if status == 404:
                return EndpointError(f"{self.url} has no such endpoint (HTTP 404: "
                                     f"{detail or 'not found'}); the URL should be the API "
                                     "root, usually ending in /v1", status)
        return self._http.status_error(status, data, detail)

    # -- score -------------------------------------------------------------------------------
    def score(self, prefixes: Sequence[str], continuations: Sequence[str]) -> list[TokenScores]:
        """Log-probabilities of each continuation's tokens given its prefix, via
        /completions with echo=true and logprobs; `CannotScoreError` where that is refused."""
        if len(prefixes) != len(continuations):
            raise ValueError(f"score: {len(prefixes)} prefixes for {len(continuations)} "
                             "continuations")
        return self._parallel([functools.partial(self._score_one, p, c)
                               for p, c in zip(prefixes, continuations)])

    def _score_one(self, prefix: str, continuation: str, abort: threading.Event) -> TokenScores:
        if not continuation:
            return TokenScores([])
        text = prefix + continuation
        body = {"model": self.model, "prompt": text, "echo": True, "logprobs": 1,
                "max_tokens": 1, "temperature": 0.0}
        try:
            data = self._post("/completions", body, abort)
        except EndpointError as e:
            raise self._cannot_score(f"it answered {e}") from None
        choice = (data.get("choices") or [{}])[0] if isinstance(data, dict) else {}
        lp = choice.get("logprobs") if isinstance(choice, dict) else None
        lp = lp if isinstance(lp, dict) else {}
        values = lp.get("token_logprobs")
        if not isinstance(values, list):
            raise self._cannot_score("its answer has no logprobs.token_logprobs")
        offsets = lp.get("text_offset")
        if not isinstance(offsets, list):
            tokens = lp.get("tokens")
            if not isinstance(tokens, list):
                raise self._cannot_score("its logprobs have neither text_offset nor tokens")
            offsets = list(_cumulative([len(t) for t in tokens]))
        start, end = len(prefix), len(text)
        if not any(isinstance(o, int) and o < end for o in offsets):
            raise self._cannot_score("it did not echo the prompt's tokens")
        return TokenScores([float(v) for o, v in zip(offsets, values)
                            if isinstance(o, int) and start <= o < end and v is not None])

    def _cannot_score(self, why: str) -> CannotScoreError:
        return CannotScoreError(
            f"this endpoint cannot score: {self.url}#{self.model} does not return prompt "
            f"log-probabilities from /completions with echo=true and logprobs ({why}); use a "
            "server that does (vLLM does) or a local model")

    # -- embed -------------------------------------------------------------------------------
    def embed(self, texts: Sequence[str]) -> Any:
        """An (n, d) float32 array of L2-normalised embeddings from /embeddings."""
        import numpy as np

        batches = [list(texts[i:i + self.embed_batch])
                   for i in range(0, len(texts), self.embed_batch)]
        parts = self._parallel([functools.partial(self._embed_batch, b) for b in batches])
        vectors = [v for part in parts for v in part]
        if not vectors:
            return np.zeros((0, 0), dtype=np.float32)
        arr = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(arr, axis=1, keepdims=True)
        return arr / np.where(norms == 0, 1.0, norms)

    def _embed_batch(self, batch: list[str], abort: threading.Event) -> list[list[float]]:
        body = {"model": self.model, "input": batch, "encoding_format": "float"}
        data = self._post("/embeddings", body, abort)
        items = data.get("data") if isinstance(data, dict) else None
        if not isinstance(items, list) or len(items) != len(batch):
            raise EndpointError(f"{self.url}/embeddings answered {len(items or [])} "
                                f"embeddings for {len(batch)} texts")
        items = sorted(items, key=lambda d: d.get("index", 0))
        return [item["embedding"] for item in items]

    # -- concurrency -------------------------------------------------------------------------
    def _parallel(self, jobs: list[Callable[[threading.Event], Any]]) -> list[Any]:
        """Run jobs `max_concurrency` at a time, results in input order. On the first failure
        the jobs not started are cancelled, running ones stop before their next retry, and
        that failure is raised."""
        abort = threading.Event()
        if len(jobs) <= 1:
            return [job(abort) for job in jobs]
        workers = min(self.max_concurrency, len(jobs))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="dcc-openai") as pool:
            futures = [pool.submit(job, abort) for job in jobs]
            try:
                wait(futures, return_when=FIRST_EXCEPTION)
            finally:  # an error, or Ctrl-C while waiting
                failed = [f for f in futures if f.done() and not f.cancelled()
                          and f.exception() is not None]
                if failed or not all(f.done() for f in futures):
                    abort.set()
                    for f in futures:
                        f.cancel()
            if failed:
                raise failed[0].exception()  # type: ignore[misc]
            return [f.result() for f in futures]


class _NoListing(OpenAIHTTPError):
    """Internal: the server has no /models listing."""


def make_identity(url: str, model: str, entry: dict[str, Any] | None,
                  now: float | None = None) -> str:
    """The key's model identity for a remote model.

    >>> make_identity("http://h/v1", "m", {"id": "m", "created": 1700000000,
    ...               "owned_by": "vllm", "root": "/w/qwen", "permission": []}, now=1.8e9)
    'openai:http://h/v1#m {"created":1700000000,"id":"m","owned_by":"vllm","root":"/w/qwen"}'
    >>> make_identity("http://h/v1", "m", {"id": "m", "created": 1799999990}, now=1.8e9)
    'openai:http://h/v1#m {"id":"m"}'
    >>> make_identity("http://h/v1", "m", None)
    'openai:http://h/v1#m'
    """
    base = f"{PREFIX}{url}#{model}"
    if not entry:
        return base
    fields = {k: entry[k] for k in ("id", "created", "owned_by", "root", "parent")
              if isinstance(entry.get(k), (str, int, float)) and not isinstance(entry[k], bool)}
    created = fields.get("created")
    if isinstance(created, (int, float)) and \
            abs(created - (time.time() if now is None else now)) < VOLATILE_CREATED_S:
        del fields["created"]
    return base + " " + json.dumps(fields, sort_keys=True, separators=(",", ":"))


# -- helpers -------------------------------------------------------------------------------------
def _cumulative(lengths: list[int]) -> list[int]:
    out, total = [], 0
    for n in lengths:
        out.append(total)
        total += n
    return out


def _short(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def _json_or_none(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def _parse_json(data: bytes, url: str, status: int) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        raise EndpointError(f"{url} answered HTTP {status} with a body that is not JSON: "
                            f"{_short(data.decode('utf-8', 'replace'))!r}", status) from None


def _error_detail(data: bytes) -> str:
    """The server's own words about an error: OpenAI's error.message, vLLM's message,
    FastAPI's detail, or the start of the body."""
    parsed = _json_or_none(data)
    if isinstance(parsed, dict):
        err = parsed.get("error")
        for cand in ((err.get("message") if isinstance(err, dict) else err),
                     parsed.get("message"), parsed.get("detail")):
            if isinstance(cand, str) and cand.strip():
                return _short(cand)
    return _short(data.decode("utf-8", "replace"))


def _retry_after(headers: http.client.HTTPMessage) -> float | None:
    ms = headers.get("retry-after-ms")
    if ms:
        try:
            return float(ms) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        return parsedate_to_datetime(value).timestamp() - time.time()
    except (TypeError, ValueError, IndexError):
        return None


def _describe_exception(e: BaseException, timeout: float) -> str:
    if isinstance(e, TimeoutError):
        return f"no answer within the {timeout:g} s timeout"
    if isinstance(e, ConnectionRefusedError):
        return "connection refused"
    if isinstance(e, http.client.RemoteDisconnected):
        return "the server closed the connection without answering"
    if isinstance(e, (ConnectionError, http.client.IncompleteRead)):
        return f"the connection dropped ({type(e).__name__})"
    return f"{type(e).__name__}: {e}"
