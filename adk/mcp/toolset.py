"""MCPToolset: the tools of an MCP server, as tools of an adk agent.

An :class:`MCPToolset` is a :class:`~adk.tools.provider.ToolProvider`: put it
in an agent's ``tools`` list and, at the start of each agent turn, the agent
asks it for the server's tools. Each comes back as an :class:`MCPTool`, an
ordinary adk tool (the server's input schema, validated with jsonschema), so
approval, interrupts and journaling work as for function tools: a resumed
run reuses the journaled result of an MCP call and never calls it again.

Connections are hosted on a thread of their own (see :mod:`adk.mcp._host`
for why); a server that dies is restarted on the next use, and a call it was
serving ends with a tool error the model reads.
"""

from __future__ import annotations

import atexit
import logging
import weakref
from collections.abc import Callable, Collection, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, TextIO

import anyio
import mcp_types
from mcp import MCPError

from adk.errors import ArgumentTypeError, ConfigurationError, ToolError
from adk.mcp._connection import ConnectionLost, Pool, ServerParams
from adk.mcp._host import Host
from adk.mcp._results import result_value
from adk.state.context import RunContext
from adk.tools.base import BaseTool, Tool, ToolContext, compiled_validator

logger = logging.getLogger("adk.mcp")

ToolFilter = Collection[str] | Callable[[mcp_types.Tool], bool]
"""Server tool names to keep, or a predicate of the server's tool description."""

ApprovalRule = bool | Collection[str] | Callable[[str, dict[str, Any]], bool]
"""All tools, some server tool names, or a predicate of (server tool name, arguments)."""

_LIVE: weakref.WeakSet[MCPToolset] = weakref.WeakSet()
_EXIT_TIMEOUT = 5.0


class MCPTool(BaseTool):
    """One tool of an MCP server; calling it sends ``tools/call`` to the server.

    ``name`` is what the model sees (the toolset's prefix + the server's
    name); ``server_name`` is the server's own name for it.
    """

    def __init__(self, toolset: MCPToolset, listed: mcp_types.Tool, name: str) -> None:
        schema = dict(listed.input_schema or {})
        schema.setdefault("type", "object")
        super().__init__(name, listed.description or listed.title or "", schema)
        self.server_name = listed.name
        self.listed = listed
        self._toolset = toolset
        self.requires_approval = toolset.approval_for(listed.name)
        try:
            self._check = compiled_validator(schema)
        except ConfigurationError as exc:
            raise ConfigurationError(
                f"MCP server {toolset.name!r}: tool {listed.name!r} has an invalid input "
                f"schema ({exc}); leave it out with tool_filter"
            ) from exc

    async def call(self, arguments: dict[str, Any], ctx: ToolContext) -> Any:
        """Call the tool on the server; server-side errors become a :class:`~adk.ToolError`."""
        return await self._toolset.call(self.server_name, arguments, ctx.run.run_id)


class MCPToolset:
    """The tools of one MCP server, listed when an agent's turn starts.

    Where the server is (exactly one of):

    - ``command`` (+ ``args``, ``env``, ``cwd``): run it as a subprocess and
      talk over stdio. The SDK passes only a minimal environment (PATH,
      HOME...) plus ``env``. The server's stderr goes to ``stderr`` (a file
      with a descriptor; default ``sys.stderr``).
    - ``url`` (+ ``headers``): a streamable-HTTP endpoint, e.g.
      ``"http://127.0.0.1:8000/mcp"``.

    Which tools, under which names:

    - ``tool_filter``: server tool names to keep, or a predicate of the
      server's ``mcp_types.Tool`` (e.g. on its annotations);
    - ``prefix``: prepended to every tool name the model sees (use it when
      two servers have tools of the same name);
    - ``requires_approval``: ``True`` for every tool, server tool names, or a
      predicate of (server tool name, arguments); approved calls work as for
      any adk tool (see human-in-the-loop.md).

    Lifecycle: ``scope="runner"`` (default) keeps one connection open until
    ``Runner.close()`` (or :meth:`close`); ``scope="run"`` opens one per run
    and closes it when the run ends. A connection whose server died is
    reopened on next use.

    Timeouts (seconds): ``connect_timeout`` to start and handshake,
    ``list_timeout`` to list tools, ``call_timeout`` per call (None: none).
    A call that times out is cancelled and the model reads a tool error.
    """

    def __init__(
        self,
        command: str | None = None,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        url: str | None = None,
        headers: Mapping[str, str] | None = None,
        name: str | None = None,
        tool_filter: ToolFilter | None = None,
        prefix: str = "",
        scope: Literal["runner", "run"] = "runner",
        requires_approval: ApprovalRule = False,
        connect_timeout: float = 30.0,
        list_timeout: float = 30.0,
        call_timeout: float | None = 120.0,
        stderr: TextIO | None = None,
    ) -> None:
        timeout = _seconds("connect_timeout", connect_timeout)
        self._params = _server_params(command, args, env, cwd, url, headers, stderr, timeout)
        if not isinstance(prefix, str):
            raise ArgumentTypeError(f"MCPToolset: prefix must be a string, got {prefix!r}")
        if scope not in ("runner", "run"):
            raise ConfigurationError(f"MCPToolset: scope must be 'runner' or 'run', not {scope!r}")
        self.name = name or _default_name(command, args, url)
        self.prefix = prefix
        self.scope = scope
        self._filter = _checked_filter(tool_filter)
        self._approval = _checked_approval(requires_approval)
        self.list_timeout = _seconds("list_timeout", list_timeout)
        self.call_timeout = None if call_timeout is None else _seconds("call_timeout", call_timeout)
        self._host = Host(self.name)
        self._pool = Pool(self._params)
        self._tools: dict[str, MCPTool] = {}

    def __repr__(self) -> str:
        where = self._params.url or " ".join([self._params.command or "", *self._params.args])
        return f"MCPToolset(name={self.name!r}, server={where!r}, scope={self.scope!r})"

    def approval_for(self, server_name: str) -> bool | Callable[[dict[str, Any]], bool]:
        """The ``requires_approval`` of the tool the server calls ``server_name``."""
        rule = self._approval
        if isinstance(rule, bool):
            return rule
        if callable(rule):
            predicate = rule
            return lambda arguments: bool(predicate(server_name, arguments))
        return server_name in rule

    def _key(self, run_id: str) -> str:
        return run_id if self.scope == "run" else ""

    # -- ToolProvider ------------------------------------------------------------------

    async def list_tools(self, ctx: RunContext) -> Sequence[Tool]:
        """The server's tools (filtered and prefixed) for a turn of the run ``ctx``."""
        _LIVE.add(self)
        listed = await self._host.run(self._list_on_host, self._key(ctx.run_id))
        tools: list[Tool] = []
        for server_tool in listed:
            if self._filter is not None and not self._filter(server_tool):
                continue
            tools.append(self._tool_for(server_tool))
        return tools

    def _tool_for(self, listed: mcp_types.Tool) -> MCPTool:
        """The MCPTool for ``listed`` (the same object while the server lists it unchanged)."""
        known = self._tools.get(listed.name)
        if known is not None and known.listed == listed:
            return known
        tool = self._tools[listed.name] = MCPTool(self, listed, self.prefix + listed.name)
        return tool

    async def _list_on_host(self, key: str) -> list[mcp_types.Tool]:
        group = self._host.task_group
        connection = await self._pool.acquire(key, group)
        try:
            return await connection.list_tools(self.list_timeout)
        except ConnectionLost:  # the server died while idle: start it again, list again
            connection = await self._pool.acquire(key, group)
            return await connection.list_tools(self.list_timeout)

    async def end_run(self, run_id: str) -> None:
        """Close the connection of the run ``run_id`` (``scope="run"`` only)."""
        if self.scope == "run" and self._host.running:
            with anyio.CancelScope(shield=True):
                await self._host.run(self._pool.release, run_id)

    async def close(self) -> None:
        """Close every connection (stdio servers exit) and stop the host thread.

        The toolset can be used again afterwards: it reconnects.
        """
        if not self._host.running:
            return
        with anyio.CancelScope(shield=True):
            try:
                await self._host.run(self._pool.close_all)
            finally:
                await self._host.stop()
                _LIVE.discard(self)

    # -- calls --------------------------------------------------------------------------

    async def call(self, server_name: str, arguments: dict[str, Any], run_id: str) -> Any:
        """Call the server's tool ``server_name``; failures raise :class:`~adk.ToolError`."""
        _LIVE.add(self)
        try:
            result = await self._host.run(
                self._call_on_host, self._key(run_id), server_name, arguments
            )
        except ConnectionLost as exc:
            raise ToolError(
                f"the MCP server {self.name!r} stopped while running {server_name!r} "
                f"(connection lost: {exc}); "
                "the call may or may not have taken effect. The server is restarted on the "
                "next call."
            ) from exc
        except TimeoutError as exc:
            raise ToolError(
                f"the MCP tool {server_name!r} did not answer within {self.call_timeout} s; "
                "the call was cancelled"
            ) from exc
        except MCPError as exc:
            raise ToolError(f"the MCP server {self.name!r} refused the call: {exc}") from exc
        return result_value(result, server_name)

    async def _call_on_host(
        self, key: str, server_name: str, arguments: dict[str, Any]
    ) -> mcp_types.CallToolResult:
        connection = await self._pool.acquire(key, self._host.task_group)
        return await connection.call_tool(server_name, arguments, self.call_timeout)

    def _close_at_exit(self) -> None:
        """Close the connections from an ``atexit`` hook (the program forgot ``close()``)."""
        if self._host.running:
            try:
                self._host.run_blocking(self._pool.close_all, timeout=_EXIT_TIMEOUT)
            except Exception as exc:  # pragma: no cover - best effort at exit
                logger.debug("MCP toolset %r not closed at exit: %r", self.name, exc)


@atexit.register
def _close_live_toolsets() -> None:
    for toolset in list(_LIVE):
        toolset._close_at_exit()


def _server_params(
    command: str | None,
    args: Sequence[str],
    env: Mapping[str, str] | None,
    cwd: str | Path | None,
    url: str | None,
    headers: Mapping[str, str] | None,
    stderr: TextIO | None,
    connect_timeout: float,
) -> ServerParams:
    if (command is None) == (url is None):
        raise ConfigurationError(
            "MCPToolset needs exactly one of command= (a stdio server) or url= (streamable HTTP)"
        )
    if isinstance(args, str):
        raise ArgumentTypeError(f"MCPToolset: args must be a list of strings, got {args!r}")
    if url is not None:
        if not url.startswith(("http://", "https://")):
            raise ConfigurationError(f"MCPToolset: url must be http(s)://..., got {url!r}")
        if args or env is not None or cwd is not None:
            raise ConfigurationError("MCPToolset: args, env and cwd are for command= servers")
        return ServerParams(url=url, headers=dict(headers or {}), connect_timeout=connect_timeout)
    if headers:
        raise ConfigurationError("MCPToolset: headers are for url= servers")
    return ServerParams(
        command=command,
        args=tuple(str(arg) for arg in args),
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stderr=stderr,
        connect_timeout=connect_timeout,
    )


def _default_name(command: str | None, args: Sequence[str], url: str | None) -> str:
    if url is not None:
        return url
    script = next((a for a in args if not a.startswith("-")), None)
    return Path(script).stem if script else Path(command or "mcp").name


def _seconds(argument: str, value: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
        raise ConfigurationError(f"MCPToolset: {argument} must be a positive number of seconds")
    return float(value)


def _checked_filter(tool_filter: ToolFilter | None) -> Callable[[mcp_types.Tool], bool] | None:
    if tool_filter is None:
        return None
    if callable(tool_filter):
        return tool_filter
    if isinstance(tool_filter, str) or not isinstance(tool_filter, Collection):
        raise ArgumentTypeError(
            f"MCPToolset: tool_filter must be a list of tool names or a predicate, "
            f"got {tool_filter!r}"
        )
    names = frozenset(tool_filter)
    return lambda tool: tool.name in names


def _checked_approval(rule: ApprovalRule) -> ApprovalRule:
    if isinstance(rule, bool) or callable(rule):
        return rule
    if isinstance(rule, str) or not isinstance(rule, Collection):
        raise ArgumentTypeError(
            "MCPToolset: requires_approval must be True/False, a list of tool names or a "
            f"predicate (name, arguments), got {rule!r}"
        )
    return frozenset(rule)
