"""A small, real OpenAI-compatible chat-completions server for tests.

It speaks HTTP on loopback (stdlib ``ThreadingHTTPServer`` in a background
thread), so model clients are exercised end to end: litellm, the openai SDK,
httpx, JSON and server-sent events, status codes and headers.

- ``POST /v1/chat/completions``: a JSON ``chat.completion``, or with
  ``"stream": true`` an SSE stream of ``chat.completion.chunk`` events
  (content pieces, tool-call deltas, a finish chunk, a usage chunk when
  ``stream_options.include_usage`` is set) ending with ``data: [DONE]``.
- ``GET /v1/models``: the one model the server pretends to be.

What it answers is scripted: a queue of :class:`Reply` objects used in order,
then (when the queue is empty) a handler function of the parsed request body.
Every request body is recorded, so tests can count attempts and inspect what
was sent. Subclass :class:`OpenAIServer` and override :meth:`~OpenAIServer.respond`
or :meth:`~OpenAIServer.usage_for` to grow smarter behaviour (e.g. a
prefix-cache model); :meth:`~OpenAIServer.answering` wraps the sending of each
successful answer (in-flight accounting, simulated latency),
:meth:`~OpenAIServer.route` adds other endpoints and
:meth:`~OpenAIServer.pieces` chooses how streamed text is split
(``tests/support/engine_server.py`` uses all three).

Usage::

    with start_server(Reply.error(429), Reply.text("hi")) as server:
        ...  # point a client at server.base_url; then check len(server.requests)
"""

from __future__ import annotations

import hashlib
import itertools
import json
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Body = dict[str, Any]
Handler = Callable[[Body], "Reply | str"]
"""Answers a request body with a reply (a string is a plain text reply)."""


@dataclass(frozen=True)
class ScriptedCall:
    """One tool call the scripted model makes; ``arguments`` is JSON text."""

    name: str
    arguments: str = "{}"
    id: str | None = None


@dataclass(frozen=True)
class Reply:
    """One scripted answer of the server: text and/or tool calls, or an HTTP error.

    - ``status``: 200 for an answer; anything else sends ``error_body`` as the JSON
      body (an OpenAI-style ``{"error": {...}}``).
    - ``headers``: extra response headers (e.g. ``Retry-After``).
    - ``prompt_tokens``/``completion_tokens``: reported usage (``None``:
      estimated from the text); ``cached_tokens`` goes to
      ``usage.prompt_tokens_details.cached_tokens``.
    - ``delay``: seconds to wait before answering (for timeout tests).
    - ``chunk_chars``: size of the streamed content and argument pieces.
    - ``disconnect_after``: when streaming, drop the connection after this
      many SSE events (for mid-stream failure tests).
    """

    content: str = ""
    tool_calls: tuple[ScriptedCall, ...] = ()
    status: int = 200
    error_body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int = 0
    model: str | None = None
    delay: float = 0.0
    chunk_chars: int = 4
    disconnect_after: int | None = None

    @classmethod
    def text(cls, content: str, **options: Any) -> Reply:
        """A plain text answer."""
        return cls(content=content, **options)

    @classmethod
    def call(
        cls,
        name: str,
        arguments: Mapping[str, Any] | str = "{}",
        *,
        id: str | None = None,
        **options: Any,
    ) -> Reply:
        """An answer calling one tool; ``arguments`` is a mapping or JSON text."""
        return cls.calls(ScriptedCall(name, _json_text(arguments), id), **options)

    @classmethod
    def calls(cls, *calls: ScriptedCall, content: str = "", **options: Any) -> Reply:
        """An answer calling several tools (optionally with some text)."""
        return cls(content=content, tool_calls=tuple(calls), **options)

    @classmethod
    def error(
        cls,
        status: int,
        message: str = "",
        *,
        type: str | None = None,
        code: str | None = None,
        retry_after: float | str | None = None,
        **options: Any,
    ) -> Reply:
        """An HTTP error with an OpenAI-style JSON body and an optional ``Retry-After``."""
        headers = dict(options.pop("headers", {}))
        if retry_after is not None:
            headers["Retry-After"] = str(retry_after)
        body = {
            "message": message or f"scripted error {status}",
            "type": type or _ERROR_TYPES.get(status, "api_error"),
            "param": None,
            "code": code,
        }
        return cls(status=status, error_body=body, headers=headers, **options)


_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "server_error",
    503: "service_unavailable",
}


@dataclass(frozen=True)
class RouteResponse:
    """The answer of an extra endpoint (see :meth:`OpenAIServer.route`).

    ``data`` is sent as JSON unless it is a string, which is sent as is with
    ``content_type`` (e.g. Prometheus text).
    """

    status: int = 200
    data: Any = None
    content_type: str = "application/json"
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Received:
    """One request the server received."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: Body


class OpenAIServer:
    """An OpenAI-compatible server on ``host`` (loopback) and a free port.

    ``replies`` are answered in order; after them ``handler`` (a function of
    the request body) answers; with neither, a request gets a 400 error
    saying the script is exhausted. Start with :meth:`start` (or use it as a
    context manager, or :func:`start_server`); :meth:`stop` shuts it down.
    """

    def __init__(
        self,
        replies: Iterable[Reply | str] = (),
        *,
        handler: Handler | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.handler = handler
        self._address = (host, port)
        self._lock = threading.Lock()
        self._queue: deque[Reply] = deque(_as_reply(item) for item in replies)
        self._received: list[Received] = []
        self.errors: list[BaseException] = []
        """Exceptions raised by ``handler`` (each was answered with a 500)."""
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._bound_port: int | None = None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> OpenAIServer:
        """Bind and serve in a background thread; returns ``self``."""
        if self._httpd is not None:
            raise RuntimeError("server already started")
        self._stopping.clear()
        host, port = self._address
        # A restart comes back on the same port, like a restarted process behind a fixed URL.
        self._httpd = _HTTPServer((host, port or self._bound_port or 0), _RequestHandler, self)
        self._bound_port = int(self._httpd.server_address[1])
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"openai-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, drop open connections and wait for handler threads to end."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> OpenAIServer:
        return self.start() if self._httpd is None else self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port; still known after :meth:`stop`, so a stopped server keeps its URL."""
        if self._bound_port is None:
            raise RuntimeError("server not started")
        return self._bound_port

    @property
    def url(self) -> str:
        """``http://host:port`` of the server."""
        return f"http://{self._address[0]}:{self.port}"

    @property
    def base_url(self) -> str:
        """The OpenAI base URL (``.../v1``) to give a client as ``api_base``."""
        return f"{self.url}/v1"

    # -- scripting and recording ---------------------------------------------------------------

    def enqueue(self, *replies: Reply | str) -> None:
        """Append replies to the queue."""
        with self._lock:
            self._queue.extend(_as_reply(item) for item in replies)

    @property
    def pending(self) -> int:
        """How many queued replies are not used yet."""
        with self._lock:
            return len(self._queue)

    @property
    def requests(self) -> list[Body]:
        """The bodies of the chat-completion requests received so far, oldest first."""
        with self._lock:
            return [r.body for r in self._received if r.path.endswith("/chat/completions")]

    @property
    def received(self) -> list[Received]:
        """Every request received so far (method, path, headers, body)."""
        with self._lock:
            return list(self._received)

    def record(self, received: Received) -> None:
        """Record one request (called by the request handler)."""
        with self._lock:
            self._received.append(received)

    def respond(self, body: Body) -> Reply:
        """The reply to one chat-completion request: next queued one, else the handler's."""
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        if self.handler is not None:
            return _as_reply(self.handler(body))
        count = len(self.requests)
        return Reply.error(400, f"openai_server: no scripted reply left for request #{count}")

    def usage_for(self, body: Body, reply: Reply) -> Body:
        """The ``usage`` object reported for ``reply`` to ``body`` (estimated unless scripted)."""
        prompt = reply.prompt_tokens
        if prompt is None:
            prompt = _estimate(json.dumps(body.get("messages", [])))
            prompt += _estimate(json.dumps(body.get("tools", []))) if body.get("tools") else 0
        completion = reply.completion_tokens
        if completion is None:
            completion = _estimate(reply.content) + sum(
                _estimate(c.name) + _estimate(c.arguments) for c in reply.tool_calls
            )
        return {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": reply.cached_tokens},
        }

    def wait(self, seconds: float) -> None:
        """Sleep up to ``seconds``, returning early when the server stops."""
        self._stopping.wait(seconds)

    @property
    def stopping(self) -> bool:
        """Whether :meth:`stop` was called (a subclass's long work should give up)."""
        return self._stopping.is_set()

    # -- hooks for subclasses --------------------------------------------------------------------

    def answering(self, body: Body, reply: Reply) -> AbstractContextManager[Reply]:
        """Wraps the sending of one successful (status 200) answer; yields the reply to send.

        Runs after :meth:`respond` and the reply's ``delay``; the ``with`` block is
        the whole response, streamed or not, so code after the ``yield`` runs when it
        is sent or the client went away. A subclass can account a request as in
        flight, simulate work before the first byte, or return an enriched reply.
        The default yields ``reply`` unchanged.
        """
        return nullcontext(reply)

    def route(self, method: str, path: str, body: Body) -> RouteResponse | None:
        """Answer a request to a path other than the chat-completions one; ``None``: 404.

        ``path`` includes the query string; ``body`` is the parsed JSON body (``{}``
        for GET). ``GET /v1/models`` is answered by the base class when this returns
        ``None``.
        """
        return None

    def pieces(self, text: str, reply: Reply) -> Iterator[str]:
        """The pieces ``text`` (content or tool arguments) is streamed in.

        They must add up to ``text``. The default cuts ``reply.chunk_chars`` characters.
        """
        return _pieces(text, max(1, reply.chunk_chars))

    # -- OpenAI payloads -------------------------------------------------------------------------

    def completion(self, body: Body, reply: Reply) -> Body:
        """The non-streaming ``chat.completion`` object for ``reply``."""
        content = reply.content if reply.content or not reply.tool_calls else None
        message: Body = {"role": "assistant", "content": content}
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": _call_id(call, index),
                    "type": "function",
                    "function": {"name": call.name, "arguments": call.arguments},
                }
                for index, call in enumerate(reply.tool_calls)
            ]
        return {
            **self._envelope(body, reply, "chat.completion"),
            "choices": [{"index": 0, "message": message, "finish_reason": _finish(reply)}],
            "usage": self.usage_for(body, reply),
        }

    def chunks(self, body: Body, reply: Reply) -> Iterator[Body]:
        """The streamed ``chat.completion.chunk`` objects for ``reply``."""
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        base = self._envelope(body, reply, "chat.completion.chunk")
        if include_usage:
            base["usage"] = None

        def chunk(delta: Body, finish: str | None = None) -> Body:
            return {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

        yield chunk({"role": "assistant", "content": ""})
        for piece in self.pieces(reply.content, reply):
            yield chunk({"content": piece})
        for index, call in enumerate(reply.tool_calls):
            head = {"name": call.name, "arguments": ""}
            yield chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": _call_id(call, index),
                            "type": "function",
                            "function": head,
                        }
                    ]
                }
            )
            for piece in self.pieces(call.arguments, reply):
                yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
        yield chunk({}, _finish(reply))
        if include_usage:
            yield {**base, "choices": [], "usage": self.usage_for(body, reply)}

    def _envelope(self, body: Body, reply: Reply, kind: str) -> Body:
        digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:24]
        return {
            "id": f"chatcmpl-{digest}",
            "object": kind,
            "created": int(time.time()),
            "model": reply.model or str(body.get("model") or "test-model"),
            "system_fingerprint": "fp_openai_server",
        }


class _HTTPServer(ThreadingHTTPServer):
    """Tracks open connections so that ``stop`` can close idle keep-alive ones."""

    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], owner: OpenAIServer
    ) -> None:
        self.owner = owner
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Ignore connections the client dropped (timeouts, early closes); report the rest."""
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body are separate writes: with Nagle on, a keep-alive client's delayed
    # ACK would stall every response by ~40 ms.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request log lines."""

    def do_GET(self) -> None:
        owner = self.server.owner
        owner.record(Received("GET", self.path, dict(self.headers.items()), {}))
        routed = owner.route("GET", self.path, {})
        if routed is not None:
            self._send_routed(routed)
        elif self.path.rstrip("/") == "/v1/models":
            data = {"object": "list", "data": [{"id": "test-model", "object": "model"}]}
            self._send_json(200, data)
        else:
            self._send_json(404, {"error": {"message": f"no route {self.path}"}})

    def do_POST(self) -> None:
        owner = self.server.owner
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError as exc:
            body = {"_raw": raw.decode("utf-8", "replace")}
            owner.record(Received("POST", self.path, dict(self.headers.items()), body))
            self._send_json(400, {"error": {"message": f"invalid JSON: {exc}"}})
            return
        owner.record(Received("POST", self.path, dict(self.headers.items()), body))
        if self.path.rstrip("/") != "/v1/chat/completions":
            routed = owner.route("POST", self.path, body)
            if routed is not None:
                self._send_routed(routed)
            else:
                self._send_json(404, {"error": {"message": f"no route {self.path}"}})
            return
        try:
            reply = owner.respond(body)
        except Exception as exc:  # a bug in a test's handler: say so instead of hanging up
            owner.errors.append(exc)
            reply = Reply.error(500, f"openai_server handler raised {exc!r}")
        if reply.delay > 0:
            owner.wait(reply.delay)
        if reply.status != 200:
            self._send_json(reply.status, {"error": dict(reply.error_body or {})}, reply.headers)
            return
        with owner.answering(body, reply) as answer:
            if body.get("stream"):
                self._send_stream(owner.chunks(body, answer), answer)
            else:
                self._send_json(200, owner.completion(body, answer), answer.headers)

    def _send_routed(self, routed: RouteResponse) -> None:
        if isinstance(routed.data, str):
            payload = routed.data.encode()
            self.send_response(routed.status)
            self.send_header("Content-Type", routed.content_type)
            self.send_header("Content-Length", str(len(payload)))
            for name, value in routed.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(payload)
        else:
            self._send_json(routed.status, routed.data, routed.headers)

    def _send_json(self, status: int, data: Any, headers: Mapping[str, str] = {}) -> None:
        payload = json.dumps(data).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _send_stream(self, chunks: Iterator[Body], reply: Reply) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        # Lazily, so that a subclass pacing its chunks (simulated decoding) is seen pacing.
        events = itertools.chain(
            (f"data: {json.dumps(chunk)}\n\n" for chunk in chunks), ["data: [DONE]\n\n"]
        )
        for count, event in enumerate(events):
            if reply.disconnect_after is not None and count >= reply.disconnect_after:
                self.close_connection = True
                self.wfile.flush()
                self.connection.shutdown(socket.SHUT_RDWR)
                return
            data = event.encode()
            self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


@contextmanager
def start_server(*replies: Reply | str, handler: Handler | None = None) -> Iterator[OpenAIServer]:
    """Run an :class:`OpenAIServer` for the duration of a ``with`` block."""
    server = OpenAIServer(replies, handler=handler)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _as_reply(item: Reply | str) -> Reply:
    return Reply.text(item) if isinstance(item, str) else item


def _json_text(arguments: Mapping[str, Any] | str) -> str:
    return arguments if isinstance(arguments, str) else json.dumps(dict(arguments))


def _finish(reply: Reply) -> str:
    return reply.finish_reason or ("tool_calls" if reply.tool_calls else "stop")


def _call_id(call: ScriptedCall, index: int) -> str:
    """The call's id, or a deterministic one (same for streamed and non-streamed answers)."""
    if call.id:
        return call.id
    digest = hashlib.sha256(f"{index}:{call.name}:{call.arguments}".encode()).hexdigest()
    return f"call_{digest[:24]}"


def _pieces(text: str, size: int) -> Iterator[str]:
    for start in range(0, len(text), size):
        yield text[start : start + size]


def _estimate(text: str) -> int:
    return (len(text) + 3) // 4
