"""adk agents as the tools of an MCP server, for other MCP clients.

Each agent becomes one tool named after it, taking ``{"request": string}``
like :class:`~adk.AgentTool`; a call runs the agent through a
:class:`~adk.Runner` (one per agent, kept for the server's lifetime) and
returns the run's final text. A run that fails, or pauses for a person's
answer (an MCP call cannot give one), is an ``isError`` result whose text says
why. The server is the SDK's ``MCPServer``, so every transport it offers works.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Annotated, Any, Literal

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError as MCPToolError
from pydantic import Field

from adk.agents.base import Agent
from adk.errors import ArgumentTypeError, ConfigurationError
from adk.runner.runner import Runner

Transport = Literal["stdio", "streamable-http"]

RequestText = Annotated[str, Field(description="what you ask the agent to do")]


def agent_server(
    agents: Agent | Sequence[Agent],
    *,
    name: str = "adk",
    runner_factory: Callable[[Agent], Runner] | None = None,
) -> tuple[MCPServer, list[Runner]]:
    """An ``MCPServer`` whose tools run ``agents``, and the Runners behind them.

    ``runner_factory`` builds each agent's Runner (default ``Runner(agent)``;
    pass your own for a checkpoint store, a serving layer...). Close the
    runners when the server stops (:func:`serve` does).
    """
    listed = _checked_agents(agents)
    server: MCPServer = MCPServer(name)
    runners: list[Runner] = []
    for agent in listed:
        runner = runner_factory(agent) if runner_factory is not None else Runner(agent)
        runners.append(runner)
        server.add_tool(
            _ask(runner),
            name=agent.name,
            description=agent.description or f"Ask the agent {agent.name!r}.",
            structured_output=False,
        )
    return server, runners


def _ask(runner: Runner) -> Callable[[RequestText], Awaitable[str]]:
    """The tool function of one agent: run it on ``request``, return its final text."""

    async def ask(request: RequestText) -> str:
        try:
            result = await runner.invoke(request)
        except Exception as exc:
            raise MCPToolError(f"the agent failed: {type(exc).__name__}: {exc}") from exc
        if result.interrupts:
            raise MCPToolError(
                "the agent paused for a person's answer, which an MCP call cannot give "
                f"(run {result.run_id}, checkpoint {result.checkpoint_id})"
            )
        return result.text

    return ask


def serve(
    agents: Agent | Sequence[Agent],
    *,
    name: str = "adk",
    transport: Transport = "stdio",
    host: str = "127.0.0.1",
    port: int = 8000,
    path: str = "/mcp",
    runner_factory: Callable[[Agent], Runner] | None = None,
) -> None:
    """Serve ``agents`` as MCP tools until the server stops (blocking; it runs its own loop).

    ``transport="stdio"`` (for a client that starts this program) or
    ``"streamable-http"`` (listening on ``host``:``port`` at ``path``).
    """
    if transport not in ("stdio", "streamable-http"):
        raise ConfigurationError(
            f"serve: transport must be 'stdio' or 'streamable-http', not {transport!r}"
        )
    server, runners = agent_server(agents, name=name, runner_factory=runner_factory)

    async def main() -> None:
        try:
            if transport == "stdio":
                await server.run_stdio_async()
            else:
                await server.run_streamable_http_async(
                    host=host, port=port, streamable_http_path=path
                )
        finally:
            with anyio.CancelScope(shield=True):
                for runner in runners:
                    await runner.close()

    anyio.run(main)


def _checked_agents(agents: Any) -> list[Agent]:
    listed = [agents] if isinstance(agents, Agent) else agents
    if isinstance(listed, str) or not isinstance(listed, Sequence) or not listed:
        raise ArgumentTypeError(f"serve: expected an agent or a list of agents, got {agents!r}")
    names: set[str] = set()
    for index, agent in enumerate(listed):
        if not isinstance(agent, Agent):
            raise ArgumentTypeError(
                f"serve: agents[{index}] is not an agent, got {type(agent).__name__} {agent!r}"
            )
        if agent.name in names:
            raise ConfigurationError(f"serve: two agents are named {agent.name!r}")
        names.add(agent.name)
    return list(listed)
