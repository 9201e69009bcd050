"""A loopback HTTP server that answers one byte at a time, for timeout tests.

A stalled proxy or an overloaded provider can keep a connection alive by
sending a byte now and then. An HTTP client's read timeout restarts with
every byte, so a client that has only that never gives up: the answer takes
as long as the server likes. This server does exactly that, for real, over
TCP on loopback: every request gets the same scripted HTTP response, of
which the first ``burst`` bytes are sent at once and the rest one byte every
``interval`` seconds; after ``duration`` seconds of dripping (or when the
response is all sent) the connection is closed.

Build the response with :func:`completion_response` (a JSON
``chat.completion``) or :func:`stream_response` (server-sent events, with
:func:`stream_burst` to send the first events at once)::

    with DripServer(completion_response("hi"), interval=1, duration=20) as server:
        ...  # point a client at server.base_url; then check server.requests
"""

from __future__ import annotations

import json
import socket
import socketserver
import threading
import time
from contextlib import suppress
from typing import Any

_HEAD_END = b"\r\n\r\n"


class DripServer:
    """Answers every HTTP request with ``response``, dripped after a ``burst`` of bytes.

    ``requests`` counts the requests received (each attempt of a client is one);
    ``bytes_sent`` is what all connections sent so far.
    """

    def __init__(
        self,
        response: bytes,
        *,
        burst: int = 0,
        interval: float = 1.0,
        duration: float = 20.0,
    ) -> None:
        if interval <= 0 or duration < 0 or burst < 0:
            raise ValueError("interval must be positive, duration and burst not negative")
        self.response = response
        self.burst = burst
        self.interval = interval
        self.duration = duration
        self.requests = 0
        self.bytes_sent = 0
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server = _TCPServer(("127.0.0.1", 0), _DripHandler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        """The OpenAI base URL (``http://127.0.0.1:<port>/v1``) to give a client as ``api_base``."""
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> DripServer:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.close_connections()
        self._server.server_close()
        self._thread.join(timeout=5)

    def serve(self, connection: socket.socket) -> None:
        """Read one request from ``connection``, then send the response: burst, then drip."""
        if not _read_request(connection):
            return
        with self._lock:
            self.requests += 1
        connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._send(connection, self.response[: self.burst])
        deadline = time.monotonic() + self.duration
        for offset in range(self.burst, len(self.response)):
            if self._stopping.wait(self.interval) or time.monotonic() > deadline:
                return
            self._send(connection, self.response[offset : offset + 1])

    def _send(self, connection: socket.socket, data: bytes) -> None:
        connection.sendall(data)
        with self._lock:
            self.bytes_sent += len(data)


class _TCPServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, address: tuple[str, int], handler: type[_DripHandler], owner: DripServer
    ) -> None:
        self.owner = owner
        self.connections: set[socket.socket] = set()
        super().__init__(address, handler)

    def close_connections(self) -> None:
        for connection in list(self.connections):
            with suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that gave up (closed its end) is the expected case, not an error."""


class _DripHandler(socketserver.BaseRequestHandler):
    server: _TCPServer

    def handle(self) -> None:
        self.server.connections.add(self.request)
        try:
            self.server.owner.serve(self.request)
        except OSError:
            pass  # the client timed out and hung up
        finally:
            self.server.connections.discard(self.request)


def _read_request(connection: socket.socket) -> bool:
    """Read one HTTP request (head and ``Content-Length`` body); ``False`` if the client left."""
    data = b""
    while _HEAD_END not in data:
        piece = connection.recv(65536)
        if not piece:
            return False
        data += piece
    head, _, body = data.partition(_HEAD_END)
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        piece = connection.recv(65536)
        if not piece:
            return False
        body += piece
    return True


def completion_response(content: str, *, model: str = "test-model") -> bytes:
    """A whole HTTP response carrying a JSON ``chat.completion`` with ``content``."""
    body = json.dumps(
        {
            "id": "chatcmpl-drip",
            "object": "chat.completion",
            "created": 0,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": content},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
        }
    ).encode()
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


def stream_response(pieces: list[str], *, model: str = "test-model") -> bytes:
    """A whole HTTP response streaming ``pieces`` as SSE ``chat.completion.chunk`` events.

    The events are a role chunk, one chunk per piece, a finish chunk and
    ``[DONE]``; the body ends when the connection closes.
    """
    head = (
        "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
        "Cache-Control: no-cache\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + b"".join(_events(pieces, model))


def stream_burst(pieces: list[str], events: int, *, model: str = "test-model") -> int:
    """How many bytes of ``stream_response(pieces)`` hold the head and the first ``events``."""
    return len(stream_response(pieces, model=model)) - sum(
        len(event) for event in _events(pieces, model)[events:]
    )


def _events(pieces: list[str], model: str) -> list[bytes]:
    def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
        data = {
            "id": "chatcmpl-drip",
            "object": "chat.completion.chunk",
            "created": 0,
            "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
        return f"data: {json.dumps(data)}\n\n".encode()

    return [
        chunk({"role": "assistant", "content": ""}),
        *(chunk({"content": piece}) for piece in pieces),
        chunk({}, "stop"),
        b"data: [DONE]\n\n",
    ]
