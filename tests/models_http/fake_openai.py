"""A real OpenAI-compatible HTTP server on loopback with scripted misbehaviour, for tests.

`FakeOpenAI` serves `/v1/models`, `/v1/chat/completions`, `/v1/completions` (with
`echo` + `logprobs` when `score_mode == "echo"`) and `/v1/embeddings` from a stdlib
`ThreadingHTTPServer` in a background thread, HTTP/1.1 with keep-alive. It records every
request, counts connections and the most requests it had in flight at once, and takes a
script of actions for the next POSTs:

    server.push(("status", 429, {"Retry-After": "0"}))  # answer 429 (with headers) once
    server.push(("status", 500), ("status", 500))       # two 500s in a row
    server.push(("drop",))                              # close the connection, no answer
    server.push(("sleep", 0.5))                         # answer late (past a timeout)

Unscripted POSTs get a normal answer from `reply(body, index) -> str`. A `model` the server
does not list gets 404 with OpenAI's `model_not_found` (or vLLM's shape with
`vllm_errors=True`); with `api_key` set, a request without that bearer token gets 401.
Only 127.0.0.1 is ever bound.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from dcc.ops.models.openai_http import RetryPolicy

# Bounded retries without waiting of their own (a server's Retry-After is still honoured).
FAST = RetryPolicy(max_attempts=4, backoff_base=0.0, backoff_max=0.0, retry_after_max=1.0)


def default_reply(body: dict[str, Any], index: int) -> str:
    if "messages" in body:
        return "reply to: " + body["messages"][-1]["content"][:40]
    return "completion of: " + str(body.get("prompt"))[:40]


class FakeOpenAI:
    def __init__(self, models: tuple[str, ...] = ("m", "m2"), *, api_key: str | None = None,
                 created: int = 1700000000) -> None:
        self.models = [{"id": m, "object": "model", "created": created, "owned_by": "fake",
                        "root": f"/weights/{m}"} for m in models]
        self.api_key = api_key
        self.reply: Callable[[dict[str, Any], int], str] = default_reply
        self.script: deque[tuple[Any, ...]] = deque()
        self.requests: list[dict[str, Any]] = []
        self.delay = 0.0  # seconds every POST takes
        self.honour_n = True
        self.score_mode = "echo"  # echo | none | reject
        self.models_status = 200
        self.vllm_errors = False
        self.connections = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None  # clients that hung up
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)

    @property
    def port(self) -> int:
        return self.httpd.server_address[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def ref(self, model: str = "m") -> str:
        return f"openai:{self.url}#{model}"

    def push(self, *actions: tuple[Any, ...]) -> None:
        self.script.extend(actions)

    def posts(self, path: str | None = None) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["method"] == "POST"
                and (path is None or r["path"] == path)]

    def start(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    # -- answers -----------------------------------------------------------------------------
    def answer(self, method: str, path: str, headers: dict[str, str],
               body: dict[str, Any] | None) -> tuple[Any, ...]:
        """("json", status, payload, headers) or a scripted ("drop",) / ("sleep", s)."""
        if self.api_key is not None and headers.get("authorization") != f"Bearer {self.api_key}":
            return ("json", 401, {"error": {"message": "Incorrect API key provided",
                                            "type": "invalid_request_error",
                                            "code": "invalid_api_key"}}, {})
        if method == "GET" and path == "/v1/models":
            if self.models_status != 200:
                return ("json", self.models_status, {"detail": "Not Found"}, {})
            return ("json", 200, {"object": "list", "data": self.models}, {})
        if method != "POST":
            return ("json", 404, {"detail": "Not Found"}, {})
        if self.script:
            action = self.script.popleft()
            if action[0] == "status":
                status, extra = action[1], (action[2] if len(action) > 2 else {})
                return ("json", status, {"error": {"message": f"scripted {status}"}}, extra)
            if action[0] == "sleep":
                time.sleep(action[1])
            else:
                return action
        if self.delay:
            time.sleep(self.delay)
        assert body is not None
        if body.get("model") not in {m["id"] for m in self.models}:
            return ("json", 404, self._not_found(body.get("model")), {})
        handlers = {"/v1/chat/completions": self._chat, "/v1/completions": self._completions,
                    "/v1/embeddings": self._embeddings}
        if path not in handlers:
            return ("json", 404, {"detail": "Not Found"}, {})
        return handlers[path](body)

    def _not_found(self, model: Any) -> dict[str, Any]:
        message = f"The model `{model}` does not exist."
        if self.vllm_errors:
            return {"object": "error", "message": message, "type": "NotFoundError", "code": 404}
        return {"error": {"message": message, "type": "invalid_request_error",
                          "code": "model_not_found"}}

    def _n(self, body: dict[str, Any]) -> int:
        return int(body.get("n") or 1) if self.honour_n else 1

    def _chat(self, body: dict[str, Any]) -> tuple[Any, ...]:
        choices = [{"index": i, "finish_reason": "stop",
                    "message": {"role": "assistant", "content": self.reply(body, i)}}
                   for i in range(self._n(body))]
        return ("json", 200, {"object": "chat.completion", "model": body["model"],
                              "choices": list(reversed(choices))}, {})

    def _completions(self, body: dict[str, Any]) -> tuple[Any, ...]:
        if not body.get("echo"):
            choices = [{"index": i, "text": self.reply(body, i), "finish_reason": "stop"}
                       for i in range(self._n(body))]
            return ("json", 200, {"object": "text_completion", "choices": choices}, {})
        if self.score_mode == "reject":
            return ("json", 400, {"error": {"message": "echo is not supported"}}, {})
        prompt = body["prompt"]
        tokens = re.findall(r"\s*\S+", prompt) + [" X"]
        offsets, total = [], 0
        for t in tokens:
            offsets.append(total)
            total += len(t)
        logprobs = {"tokens": tokens, "text_offset": offsets,
                    "token_logprobs": [None] + [-0.5 * i for i in range(1, len(tokens))]}
        choice = {"index": 0, "text": prompt + " X", "finish_reason": "length",
                  "logprobs": logprobs if self.score_mode == "echo" else None}
        return ("json", 200, {"object": "text_completion", "choices": [choice]}, {})

    def _embeddings(self, body: dict[str, Any]) -> tuple[Any, ...]:
        data = [{"object": "embedding", "index": i, "embedding": [float(len(t)), 1.0, 0.0]}
                for i, t in enumerate(body["input"])]
        return ("json", 200, {"object": "list", "data": list(reversed(data))}, {})


def _handler(server: FakeOpenAI) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            # headers and body go out in two writes: without this, Nagle's algorithm and the
            # client's delayed ACK add 40 ms to every kept-alive answer
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            with server.lock:
                server.connections += 1

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            body = json.loads(raw) if raw else None
            headers = {k.lower(): v for k, v in self.headers.items()}
            with server.lock:
                server.requests.append({"method": method, "path": self.path,
                                        "headers": headers, "body": body})
                server.in_flight += 1
                server.max_in_flight = max(server.max_in_flight, server.in_flight)
            try:
                action = server.answer(method, self.path, headers, body)
            finally:
                with server.lock:
                    server.in_flight -= 1
            if action[0] == "drop":
                self.close_connection = True
                return
            _, status, payload, extra = action
            data = json.dumps(payload).encode()
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in extra.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
            except OSError:  # the client gave up (a timeout test)
                self.close_connection = True

    return Handler
