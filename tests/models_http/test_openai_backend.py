"""OpenAIBackend against a live loopback server: requests, retries, concurrency, errors.

Every test talks real HTTP to `FakeOpenAI` on 127.0.0.1; retries use a zero or tiny back-off
(or a recording `sleep`), so the whole file runs in a few seconds.
"""

from __future__ import annotations

import random
import socket
import time

import pytest
from fake_openai import FAST, FakeOpenAI

from dcc.errors import DccError, ParamError
from dcc.ops.models import GenerationConfig
from dcc.ops.models.openai_http import (
    AuthenticationError,
    CannotScoreError,
    EndpointError,
    ModelNotFoundError,
    OpenAIBackend,
    RequestFailedError,
    RetryPolicy,
    make_identity,
    parse_ref,
)

CFG = GenerationConfig(max_new_tokens=7, temperature=0.3, top_p=0.9, seed=42, stop=("###",))


# -- references ----------------------------------------------------------------------------------
def test_a_reference_splits_into_url_and_model() -> None:
    assert parse_ref("openai:https://api.example.com/v1#gpt-4o-mini") == \
        ("https://api.example.com/v1", "gpt-4o-mini")
    b = OpenAIBackend.from_ref("openai:http://127.0.0.1:8000/v1/#qwen2.5-0.5b")
    assert (b.url, b.model) == ("http://127.0.0.1:8000/v1", "qwen2.5-0.5b")


@pytest.mark.parametrize("ref, words", [
    ("openai:http://127.0.0.1:8000/v1", "names no model"),
    ("openai:127.0.0.1:8000/v1#m", "http:// or https://"),
    ("openai:ftp://h/v1#m", "http:// or https://"),
    ("openai:http://user:sk-secret@h/v1#m", "credentials"),
    ("Qwen/Qwen2.5-0.5B", "not an openai: reference"),
])
def test_a_bad_reference_is_a_param_error(ref: str, words: str) -> None:
    with pytest.raises(ParamError, match=words):
        parse_ref(ref)


# -- generate ------------------------------------------------------------------------------------
def test_messages_go_to_chat_and_strings_to_completions(fake: FakeOpenAI, backend) -> None:
    b = backend(fake)
    out = b.generate([[{"role": "system", "content": "S"}, {"role": "user", "content": "hi"}],
                      "plain"], CFG)
    assert out == [["reply to: hi"], ["completion of: plain"]]
    chat, comp = fake.posts("/v1/chat/completions"), fake.posts("/v1/completions")
    assert chat[0]["body"]["messages"] == [{"role": "system", "content": "S"},
                                           {"role": "user", "content": "hi"}]
    assert comp[0]["body"]["prompt"] == "plain"
    for body in (chat[0]["body"], comp[0]["body"]):
        assert {k: body[k] for k in ("model", "max_tokens", "temperature", "top_p", "n",
                                     "seed", "stop")} == \
            {"model": "m", "max_tokens": 7, "temperature": 0.3, "top_p": 0.9, "n": 1,
             "seed": 42, "stop": ["###"]}


def test_n_completions_come_back_in_index_order(fake: FakeOpenAI, backend) -> None:
    fake.reply = lambda body, i: f"choice {i}"
    out = backend(fake).generate(["p"], GenerationConfig(n=3))
    assert out == [["choice 0", "choice 1", "choice 2"]]  # the server sent them reversed
    assert len(fake.posts()) == 1


def test_a_server_that_ignores_n_is_asked_again_with_successive_seeds(fake: FakeOpenAI,
                                                                      backend) -> None:
    fake.honour_n = False
    fake.reply = lambda body, i: f"seed {body['seed']}"
    out = backend(fake).generate(["p"], GenerationConfig(n=3, seed=10))
    assert out == [["seed 10", "seed 11", "seed 12"]]
    assert [p["body"]["n"] for p in fake.posts()] == [3, 1, 1]


def test_results_keep_input_order_under_concurrency(fake: FakeOpenAI, backend) -> None:
    fake.reply = lambda body, i: body["prompt"].upper()
    fake.delay = 0.01
    prompts = [f"p{i}" for i in range(30)]
    assert backend(fake, max_concurrency=8).generate(prompts, CFG) == \
        [[p.upper()] for p in prompts]


def test_requests_overlap_up_to_max_concurrency(fake: FakeOpenAI, backend) -> None:
    fake.delay = 0.4
    t0 = time.monotonic()
    backend(fake, max_concurrency=4).generate([f"p{i}" for i in range(8)], CFG)
    elapsed = time.monotonic() - t0
    assert fake.max_in_flight == 4  # overlapping, and never more than allowed
    assert elapsed < 8 * 0.4 * 0.6  # well under the serial time (3.2 s): about 0.8 s


def test_connections_are_kept_alive_and_reused(fake: FakeOpenAI, backend) -> None:
    b = backend(fake)
    for i in range(5):
        b.generate([f"p{i}"], CFG)
    assert len(fake.posts()) == 5 and fake.connections == 1


# -- retries -------------------------------------------------------------------------------------
def test_429_then_200_is_retried_honouring_retry_after(fake: FakeOpenAI, backend) -> None:
    fake.push(("status", 429, {"Retry-After": "0.3"}))
    b = backend(fake)  # FAST: no back-off of its own, so the wait is the server's
    t0 = time.monotonic()
    assert b.generate(["p"], CFG) == [["completion of: p"]]
    assert time.monotonic() - t0 >= 0.3
    assert len(fake.posts()) == 2 and b.stats["retries"] == 1


def test_retry_after_ms_and_the_cap_on_retry_after(fake: FakeOpenAI, backend) -> None:
    waits: list[float] = []
    fake.push(("status", 429, {"retry-after-ms": "250"}), ("status", 503, {"Retry-After": "999"}))
    b = backend(fake, sleep=waits.append,
                retry=RetryPolicy(max_attempts=3, backoff_base=0.0, retry_after_max=2.0))
    assert b.generate(["p"], CFG) == [["completion of: p"]]
    assert waits == [0.25, 2.0]


def test_500_then_200_is_retried(fake: FakeOpenAI, backend) -> None:
    fake.push(("status", 500), ("status", 502))
    b = backend(fake)
    assert b.generate(["p"], CFG) == [["completion of: p"]]
    assert len(fake.posts()) == 3 and b.stats["retries"] == 2


def test_retries_are_bounded_and_back_off_exponentially(fake: FakeOpenAI, backend) -> None:
    waits: list[float] = []
    fake.push(*[("status", 500)] * 10)
    policy = RetryPolicy(max_attempts=4, backoff_base=0.1, backoff_max=0.3)
    b = backend(fake, retry=policy, sleep=waits.append)
    with pytest.raises(RequestFailedError, match=r"after 4 attempt\(s\).*HTTP 500"):
        b.generate(["p"], CFG)
    assert len(fake.posts()) == 4 and len(waits) == 3
    for k, w in enumerate(waits, start=1):  # min(cap, base * 2**(k-1)) x [0.5, 1)
        full = min(0.3, 0.1 * 2 ** (k - 1))
        assert full * 0.5 <= w < full


def test_the_back_off_formula() -> None:
    p = RetryPolicy(backoff_base=0.5, backoff_max=10.0)
    rng = random.Random(1)
    for k in range(1, 10):
        d = p.delay(k, None, rng)
        assert min(10.0, 0.5 * 2 ** (k - 1)) * 0.5 <= d < min(10.0, 0.5 * 2 ** (k - 1))
    assert len({round(p.delay(3, None, rng), 6) for _ in range(20)}) > 1  # jittered
    assert p.delay(1, 3.0, rng) == 3.0 and p.delay(1, -5.0, rng) == 0.0


def test_a_client_error_is_not_retried(fake: FakeOpenAI, backend) -> None:
    fake.push(("status", 400))
    with pytest.raises(EndpointError, match="HTTP 400: scripted 400"):
        backend(fake).generate(["p"], CFG)
    assert len(fake.posts()) == 1


def test_a_slow_answer_times_out_and_is_retried(fake: FakeOpenAI, backend) -> None:
    fake.push(("sleep", 0.6))
    b = backend(fake, timeout=0.2)
    assert b.generate(["p"], CFG) == [["completion of: p"]]
    assert len(fake.posts()) == 2


def test_timeouts_are_bounded_too(fake: FakeOpenAI, backend) -> None:
    fake.push(("sleep", 0.5), ("sleep", 0.5))
    b = backend(fake, timeout=0.15, retry=RetryPolicy(max_attempts=2, backoff_base=0.0))
    t0 = time.monotonic()
    with pytest.raises(RequestFailedError, match=r"after 2 attempt\(s\).*0.15 s timeout"):
        b.generate(["p"], CFG)
    assert time.monotonic() - t0 < 1.5


def test_a_dropped_connection_is_retried(fake: FakeOpenAI, backend) -> None:
    fake.push(("drop",))
    b = backend(fake)
    assert b.generate(["p"], CFG) == [["completion of: p"]]
    assert len(fake.posts()) == 2


def test_connections_dropped_every_time_fail_with_a_clear_message(fake: FakeOpenAI,
                                                                 backend) -> None:
    fake.push(*[("drop",)] * 10)
    b = backend(fake, retry=RetryPolicy(max_attempts=3, backoff_base=0.0))
    with pytest.raises(RequestFailedError, match="closed the connection without answering"):
        b.generate(["p"], CFG)
    assert len(fake.posts()) <= 6  # 3 attempts (a kept-alive socket may be redialled once)


def test_a_refused_connection_says_so() -> None:
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    b = OpenAIBackend(f"http://127.0.0.1:{port}/v1", "m",
                      retry=RetryPolicy(max_attempts=2, backoff_base=0.0))
    with pytest.raises(RequestFailedError, match=r"connection refused \(is the server running"):
        b.generate(["p"], CFG)


def test_one_failure_stops_the_batch(fake: FakeOpenAI, backend) -> None:
    fake.delay = 0.05
    fake.push(("status", 401))  # not retryable: the whole call fails at once
    with pytest.raises(AuthenticationError):
        backend(fake, max_concurrency=2).generate([f"p{i}" for i in range(40)], CFG)
    assert len(fake.posts()) < 40


# -- authentication and missing models -----------------------------------------------------------
def test_no_key_for_a_server_that_needs_one(backend) -> None:
    server = FakeOpenAI(api_key="sk-right").start()
    try:
        with pytest.raises(AuthenticationError) as e:
            backend(server).generate(["p"], CFG)
        msg = str(e.value)
        assert msg.startswith(f"authentication failed for {server.url}")
        assert "set OPENAI_API_KEY" in msg and "Incorrect API key" in msg
        assert e.value.exit_code == 3 and isinstance(e.value, DccError)
        assert len(server.posts()) == 1  # never retried
    finally:
        server.stop()


def test_a_wrong_key_names_where_it_came_from(monkeypatch: pytest.MonkeyPatch, backend) -> None:
    server = FakeOpenAI(api_key="sk-right").start()
    try:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
        with pytest.raises(AuthenticationError, match="the key in OPENAI_API_KEY was rejected"):
            backend(server).identity  # noqa: B018 - /models needs the key too
    finally:
        server.stop()


def test_the_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch, backend) -> None:
    server = FakeOpenAI(api_key="sk-right").start()
    try:
        monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong")
        monkeypatch.setenv("DCC_OPENAI_API_KEY", "sk-right")  # the dcc-specific one wins
        b = backend(server)
        assert b.generate(["p"], CFG) == [["completion of: p"]]
        assert server.posts()[0]["headers"]["authorization"] == "Bearer sk-right"
        assert "sk-right" not in b.identity and "sk-right" not in repr(b)
    finally:
        server.stop()


def test_no_key_sends_no_authorization_header(fake: FakeOpenAI, backend) -> None:
    backend(fake).generate(["p"], CFG)
    assert "authorization" not in fake.posts()[0]["headers"]


@pytest.mark.parametrize("vllm", [False, True])
def test_an_unknown_model_lists_what_the_server_serves(fake: FakeOpenAI, backend,
                                                       vllm: bool) -> None:
    fake.vllm_errors = vllm
    with pytest.raises(ModelNotFoundError) as e:
        backend(fake, model="qwen-typo").generate(["p"], CFG)
    msg = str(e.value)
    assert f"model 'qwen-typo' not found at {fake.url}" in msg
    assert "it serves: m, m2" in msg and "does not exist" in msg
    assert len(fake.posts()) == 1  # a missing model is not retried


def test_a_wrong_path_is_not_a_missing_model(fake: FakeOpenAI) -> None:
    b = OpenAIBackend(f"http://127.0.0.1:{fake.port}", "m", retry=FAST)  # no /v1
    fake.models_status = 404
    with pytest.raises(EndpointError, match="no such endpoint.*ending in /v1"):
        b.generate(["p"], CFG)


# -- identity ------------------------------------------------------------------------------------
def test_identity_is_url_model_and_the_models_entry(fake: FakeOpenAI, backend) -> None:
    b = backend(fake)
    assert b.identity == (f'openai:{fake.url}#m {{"created":1700000000,"id":"m",'
                          '"owned_by":"fake","root":"/weights/m"}')
    assert backend(fake, model="m2").identity != b.identity
    gets = [r for r in fake.requests if r["method"] == "GET"]
    assert len(gets) == 2  # one /models look-up per backend: identity is cached


def test_identity_without_a_models_listing(fake: FakeOpenAI, backend) -> None:
    fake.models_status = 404
    assert backend(fake).identity == f"openai:{fake.url}#m"


def test_identity_of_an_unlisted_model_is_just_its_name(fake: FakeOpenAI, backend) -> None:
    assert backend(fake, model="anything").identity == f"openai:{fake.url}#anything"


def test_a_created_stamp_of_now_is_left_out() -> None:
    now = time.time()
    server = FakeOpenAI(created=int(now)).start()  # vLLM stamps the time of the request
    try:
        ident = OpenAIBackend(server.url, "m", retry=FAST).identity
        assert "created" not in ident and '"root":"/weights/m"' in ident
    finally:
        server.stop()
    assert make_identity("u", "m", {"id": "m", "created": 1}, now=now) == \
        'openai:u#m {"created":1,"id":"m"}'


# -- score and embed -----------------------------------------------------------------------------
def test_score_returns_the_continuation_tokens_logprobs(fake: FakeOpenAI, backend) -> None:
    out = backend(fake).score(["one two", "a", "x"], [" three four", " b", ""])
    # tokens: "one"(None) " two"(-0.5) " three"(-1.0) " four"(-1.5) " X"(generated)
    assert out[0].logprobs == [-1.0, -1.5]
    assert out[1].logprobs == [-0.5]
    assert out[2].logprobs == []  # empty continuation: nothing to ask
    bodies = sorted((p["body"] for p in fake.posts("/v1/completions")),
                    key=lambda b: b["prompt"])  # sent concurrently: in any order
    assert [b["prompt"] for b in bodies] == ["a b", "one two three four"]
    assert all(b["echo"] is True and b["logprobs"] == 1 for b in bodies)
    assert len(fake.posts()) == 2


@pytest.mark.parametrize("mode", ["none", "reject"])
def test_an_endpoint_that_cannot_score_says_so(fake: FakeOpenAI, backend, mode: str) -> None:
    fake.score_mode = mode
    with pytest.raises(CannotScoreError, match="this endpoint cannot score"):
        backend(fake).score(["a"], [" b"])


def test_embed_batches_orders_and_normalises(fake: FakeOpenAI, backend) -> None:
    vecs = backend(fake, embed_batch=2).embed(["a", "bbb", "cc", "d", "eeee"])
    assert vecs.shape == (5, 3) and str(vecs.dtype) == "float32"
    assert [round(float(v), 4) for v in (vecs ** 2).sum(axis=1)] == [1.0] * 5
    assert vecs[1][0] == pytest.approx(3 / (10 ** 0.5), rel=1e-6)  # [3, 1, 0] normalised
    assert len(fake.posts("/v1/embeddings")) == 3
    assert sorted(p["body"]["input"] for p in fake.posts("/v1/embeddings")) == \
        [["a", "bbb"], ["cc", "d"], ["eeee"]]
