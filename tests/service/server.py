"""A real server for the tests: uvicorn on a free loopback port, in a thread."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import uvicorn

from adk.service import Service, create_app
from tests.service.apps import wait_until


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


class LiveServer:
    """``service`` served over HTTP until :meth:`stop`; ``client(key)`` talks to it."""

    def __init__(self, service: Service, port: int | None = None) -> None:
        self.service = service
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            create_app(service), host="127.0.0.1", port=self.port, log_level="warning"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        wait_until(lambda: self.server.started or not self.thread.is_alive())
        assert self.server.started, "the server did not start"

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=10.0)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        assert not self.thread.is_alive(), "the server did not stop"


def sse(client: httpx.Client, run_id: str, **headers: str) -> list[dict[str, Any]]:
    """Every SSE message of the run's stream until it ends: ``{id, event, data}``."""
    messages: list[dict[str, Any]] = []
    current: dict[str, Any] = {}
    with client.stream("GET", f"/runs/{run_id}/events", headers=headers) as response:
        assert response.status_code == 200, response.read()
        assert response.headers["content-type"].startswith("text/event-stream")
        for line in response.iter_lines():
            if not line:
                if current:
                    messages.append(current)
                current = {}
            elif line.startswith("id: "):
                current["id"] = int(line[4:])
            elif line.startswith("event: "):
                current["event"] = line[7:]
            elif line.startswith("data: "):
                current["data"] = json.loads(line[6:])
    return messages


def wait_status(client: httpx.Client, run_id: str, *statuses: str) -> dict[str, Any]:
    """The run's view once its status is one of ``statuses``."""
    view: dict[str, Any] = {}

    def reached() -> bool:
        nonlocal view
        view = client.get(f"/runs/{run_id}").json()
        return view["status"] in statuses

    wait_until(reached)
    return view


def serve(service: Service) -> Iterator[LiveServer]:
    server = LiveServer(service)
    try:
        yield server
    finally:
        server.stop()
