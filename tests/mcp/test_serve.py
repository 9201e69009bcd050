"""adk.mcp.serve: adk agents as tools of an MCP server, called by the SDK's client."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from mcp import Client, StdioServerParameters

from adk import ChatModelAgent, ConfigurationError, Runner, ScriptedModel, ToolCall
from adk.errors import ArgumentTypeError
from adk.mcp import MCPToolset, agent_server, serve

from .conftest import HERE, ROOT, asyncio_only, http_server
from .test_toolset import tool_messages

pytestmark = pytest.mark.anyio

AGENT_SERVER = str(HERE / "agent_server.py")
ENV = {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}


@asyncio_only
async def test_agents_are_tools_of_an_mcp_server_over_stdio() -> None:
    params = StdioServerParameters(command=sys.executable, args=[AGENT_SERVER], env=ENV)
    async with Client(params) as client:
        listed = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert sorted(listed) == ["banker", "broken", "echo"]
        assert listed["echo"].description == "Repeats the request."
        assert listed["echo"].input_schema["required"] == ["request"]
        answer = await client.call_tool("echo", {"request": "hello over MCP"})
        assert not answer.is_error
        assert [block.text for block in answer.content] == ["echo: hello over MCP"]  # type: ignore[union-attr]
        failed = await client.call_tool("broken", {"request": "anything"})
        assert failed.is_error
        assert "the agent failed: ModelError: the model is down" in failed.content[0].text  # type: ignore[union-attr]
        paused = await client.call_tool("banker", {"request": "send 5"})
        assert paused.is_error
        assert "paused for a person's answer" in paused.content[0].text  # type: ignore[union-attr]


@asyncio_only
async def test_an_adk_agent_calls_an_adk_agent_through_mcp() -> None:
    remote = MCPToolset(sys.executable, [AGENT_SERVER], env=ENV, tool_filter=["echo"])
    model = ScriptedModel([ToolCall.of("echo", request="ping"), "the echo said ping"])
    runner = Runner(ChatModelAgent("caller", model=model, tools=[remote]))
    try:
        result = await runner.invoke("call the echo agent")
    finally:
        await runner.close()
    [message] = tool_messages(result)
    assert message.content == "echo: ping"


@asyncio_only
async def test_agents_over_streamable_http_on_loopback() -> None:
    with http_server(AGENT_SERVER, ENV) as url:
        remote = MCPToolset(url=url, prefix="remote_", tool_filter=["echo"])
        model = ScriptedModel([ToolCall.of("remote_echo", request="over http"), "ok"])
        runner = Runner(ChatModelAgent("caller", model=model, tools=[remote]))
        try:
            result = await runner.invoke("call it")
        finally:
            await runner.close()
    [message] = tool_messages(result)
    assert message.content == "echo: over http"


def test_serve_checks_its_arguments() -> None:
    agent = ChatModelAgent("a", model=ScriptedModel(["x"]))
    with pytest.raises(ConfigurationError, match="transport must be 'stdio' or 'streamable-http'"):
        serve(agent, transport="sse")  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match=r"agents\[1\] is not an agent"):
        agent_server([agent, "b"])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="two agents are named 'a'"):
        agent_server([agent, agent])
    server, runners = agent_server(agent, name="solo")
    assert server.name == "solo" and [r.agent for r in runners] == [agent]


def test_a_stdio_agent_server_exits_when_its_client_goes_away() -> None:
    process = subprocess.Popen(
        [sys.executable, AGENT_SERVER],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **ENV},
    )
    assert process.stdin is not None
    process.stdin.close()
    assert process.wait(30) == 0
