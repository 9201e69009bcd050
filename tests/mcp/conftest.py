"""Tests here run on both anyio backends, against real MCP servers in subprocesses."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("mcp")

from adk.mcp import MCPToolset

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DEMO_SERVER = str(HERE / "demo_server.py")


asyncio_only = pytest.mark.parametrize("anyio_backend", ["asyncio"])
"""For tests whose subject does not depend on the caller's backend (a server start is ~1 s)."""


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


@pytest.fixture
def call_log(tmp_path: Path) -> Path:
    """The file where the demo server's ``record`` tool appends one line per call."""
    return tmp_path / "calls.log"


def demo_toolset(call_log: Path | None = None, **options: Any) -> MCPToolset:
    """An MCPToolset on the demo server over stdio."""
    env = {"ADK_MCP_LOG": str(call_log)} if call_log is not None else {}
    return MCPToolset(sys.executable, [DEMO_SERVER], env=env, **options)


def process_alive(pid: int) -> bool:
    """Whether the process ``pid`` still runs (a zombie counts as ended)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as stat:
            return stat.read().split()[2] != "Z"
    except OSError:
        return False


def wait_until_gone(pid: int, limit: float = 10.0) -> bool:
    """Wait (bounded) for ``pid`` to end; the SDK's shutdown is asynchronous."""
    deadline = time.monotonic() + limit
    while process_alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def http_server(script: str, env: dict[str, str] | None = None) -> Iterator[str]:
    """Run ``script http PORT`` on loopback until the block ends; yield its MCP url."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, script, "http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **(env or {})},
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{script} did not start serving HTTP") from None
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="module")
def http_url() -> Iterator[str]:
    """The demo server over streamable HTTP on loopback, for the module's tests."""
    with http_server(DEMO_SERVER) as url:
        yield url


def logged(call_log: Path) -> list[str]:
    """The labels the demo server's ``record`` tool wrote, in order ([] if none)."""
    return call_log.read_text(encoding="utf-8").splitlines() if call_log.exists() else []
