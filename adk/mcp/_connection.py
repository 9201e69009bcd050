"""MCP sessions hosted on the host loop: open, list, call, notice a dead server, close.

Everything here runs on the :class:`~adk.mcp._host.Host` loop, one task per
connection, so the SDK's context managers are entered and exited by the same
task. A connection whose server died (or whose transport failed) is marked
broken and torn down; the pool opens a new one on next use.
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import anyio
import mcp_types
from anyio.abc import TaskStatus
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client

logger = logging.getLogger("adk.mcp")

_PROBE_TIMEOUT = 5.0


class ConnectionLost(Exception):
    """The connection to the MCP server ended (the server exited or the transport failed)."""


@dataclass(frozen=True)
class ServerParams:
    """Where the server is: a command to run over stdio, or a streamable-HTTP url."""

    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] | None = None
    cwd: str | Path | None = None
    url: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    stderr: TextIO | None = None
    connect_timeout: float = 30.0

    def transport(self) -> AbstractAsyncContextManager[Any]:
        """A fresh SDK transport context for these parameters."""
        if self.command is not None:
            params = StdioServerParameters(
                command=self.command,
                args=list(self.args),
                env=dict(self.env) if self.env is not None else None,
                cwd=self.cwd,
            )
            return stdio_client(params, errlog=self.stderr or sys.stderr)
        assert self.url is not None
        return _http_transport(self.url, dict(self.headers))


@asynccontextmanager
async def _http_transport(url: str, headers: dict[str, str]) -> AsyncIterator[Any]:
    import httpx2

    timeout = httpx2.Timeout(30.0, read=300.0)
    async with (
        httpx2.AsyncClient(headers=headers, timeout=timeout) as http,
        streamable_http_client(url, http_client=http) as streams,
    ):
        yield streams


class Connection:
    """One MCP session, kept open by a task on the host loop until :meth:`close`."""

    def __init__(self, params: ServerParams) -> None:
        self._params = params
        self._stop = anyio.Event()
        self._done = anyio.Event()
        self.client: Client | None = None
        self.broken = False

    async def open(self, group: anyio.abc.TaskGroup) -> None:
        """Start the server (or connect to it) and run the MCP handshake; raise if it fails."""
        await group.start(self._serve)

    async def _serve(self, *, task_status: TaskStatus[None]) -> None:
        # The SDK's contexts open task groups, so the connect deadline is one scope around
        # everything (cancel scopes must nest), lifted once the handshake is done.
        timeout = self._params.connect_timeout
        started = False
        try:
            with anyio.CancelScope(deadline=anyio.current_time() + timeout) as scope:
                async with Client(self._params.transport()) as c:
                    self.client = c
                    scope.deadline = math.inf
                    started = True
                    task_status.started()
                    await self._stop.wait()
            if scope.cancelled_caught and not started:
                raise TimeoutError(f"the MCP server did not connect within {timeout} s")
        except Exception as exc:
            if not started:
                raise
            logger.warning("MCP connection ended with an error: %r", exc)
        finally:
            self.client = None
            self.broken = True
            self._done.set()

    def _live(self) -> Client:
        client = self.client
        if client is None or self.broken:
            raise ConnectionLost("the connection is closed")
        return client

    async def _list(self, client: Client) -> list[mcp_types.Tool]:
        """Every tool the server lists, all pages, asked of the server (not the SDK's cache)."""
        tools: list[mcp_types.Tool] = []
        cursor: str | None = None
        for _ in range(1000):
            page = await client.list_tools(cursor=cursor, cache_mode="bypass")
            tools.extend(page.tools)
            cursor = page.next_cursor
            if cursor is None:
                break
        return tools

    async def alive(self) -> bool:
        """Whether the server still answers (a tools/list round-trip; ping is deprecated)."""
        try:
            with anyio.fail_after(_PROBE_TIMEOUT):
                await self._list(self._live())
        except Exception:
            self.mark_broken()
            return False
        return True

    async def list_tools(self, time_limit: float) -> list[mcp_types.Tool]:
        """Every tool the server lists now; a server that is gone raises ConnectionLost."""
        client = self._live()
        try:
            with anyio.fail_after(time_limit):
                return await self._list(client)
        except TimeoutError as exc:
            raise TimeoutError(f"the server did not list its tools within {time_limit} s") from exc
        except Exception as exc:
            raise await self._failure(exc) from exc

    async def call_tool(
        self, name: str, arguments: dict[str, Any], time_limit: float | None
    ) -> mcp_types.CallToolResult:
        """Call ``name``; a server that died raises :class:`ConnectionLost`."""
        client = self._live()
        try:
            with anyio.fail_after(time_limit):
                return await client.call_tool(name, arguments)
        except TimeoutError:
            raise
        except Exception as exc:
            raise await self._failure(exc) from exc

    async def _failure(self, exc: Exception) -> Exception:
        """``exc``, or :class:`ConnectionLost` when the server is gone."""
        if isinstance(exc, MCPError) and exc.code != mcp_types.CONNECTION_CLOSED:
            return exc  # the server answered with an error: the connection is fine
        if isinstance(exc, TimeoutError):
            return exc
        if isinstance(exc, MCPError) or not await self.alive():
            self.mark_broken()
            return ConnectionLost(str(exc) or type(exc).__name__)
        return exc

    def mark_broken(self) -> None:
        """Stop using this connection; its task tears the session and transport down."""
        self.broken = True
        self._stop.set()

    async def close(self) -> None:
        """Close the session and the transport (a stdio server process is ended)."""
        self.mark_broken()
        with anyio.CancelScope(shield=True):
            await self._done.wait()


class Pool:
    """The open connections of one toolset, by key ("" or a run id), on the host loop."""

    def __init__(self, params: ServerParams) -> None:
        self._params = params
        self._connections: dict[str, Connection] = {}
        self._locks: dict[str, anyio.Lock] = {}

    async def acquire(self, key: str, group: anyio.abc.TaskGroup) -> Connection:
        """The live connection for ``key``, opened (or reopened) if needed."""
        lock = self._locks.setdefault(key, anyio.Lock())
        async with lock:
            connection = self._connections.get(key)
            if connection is not None and not connection.broken:
                return connection
            if connection is not None:
                await connection.close()
            connection = Connection(self._params)
            await connection.open(group)
            self._connections[key] = connection
            return connection

    async def release(self, key: str) -> None:
        """Close the connection for ``key`` (if any)."""
        connection = self._connections.pop(key, None)
        self._locks.pop(key, None)
        if connection is not None:
            await connection.close()

    async def close_all(self) -> None:
        """Close every connection."""
        keys: Sequence[str] = list(self._connections)
        for key in keys:
            await self.release(key)
