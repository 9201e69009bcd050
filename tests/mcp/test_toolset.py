"""MCPToolset against the demo server: listing, calls through an agent, errors, crashes."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio
import pytest

from adk import ChatModelAgent, ConfigurationError, Runner, ScriptedModel, ToolCall
from adk.errors import ArgumentTypeError
from adk.mcp import MCPTool, MCPToolset
from adk.messages import Message
from adk.runner.result import RunResult

from .conftest import DEMO_SERVER, asyncio_only, demo_toolset, wait_until_gone

pytestmark = pytest.mark.anyio


def tool_messages(result: RunResult) -> list[Message]:
    """The tool-result messages of a run, in order."""
    return [
        e.message
        for e in result.events
        if e.message is not None and e.message.role == "tool" and not e.partial
    ]


def agent_with(toolset: MCPToolset, *answers: object) -> ChatModelAgent:
    return ChatModelAgent("assistant", model=ScriptedModel(list(answers)), tools=[toolset])


@asyncio_only
async def test_tools_are_listed_with_their_schemas_filtered_and_prefixed() -> None:
    toolset = demo_toolset(prefix="demo_", tool_filter=["add", "refuse"])
    model = ScriptedModel(["ok"])
    runner = Runner(ChatModelAgent("assistant", model=model, tools=[toolset]))
    try:
        await runner.invoke("hi")
    finally:
        await runner.close()
    specs = {spec.name: spec for spec in model.requests[0].tools}
    assert sorted(specs) == ["demo_add", "demo_refuse"]
    add = specs["demo_add"]
    assert add.description == "Add two integers."
    assert add.parameters["required"] == ["a", "b"]
    assert add.parameters["properties"]["a"]["type"] == "integer"


@asyncio_only
async def test_a_predicate_filter_sees_the_server_tool() -> None:
    toolset = demo_toolset(tool_filter=lambda tool: "integers" in (tool.description or ""))
    model = ScriptedModel(["ok"])
    runner = Runner(ChatModelAgent("assistant", model=model, tools=[toolset]))
    try:
        await runner.invoke("hi")
    finally:
        await runner.close()
    assert [spec.name for spec in model.requests[0].tools] == ["add"]


async def test_a_call_runs_on_the_server_and_the_model_reads_the_result() -> None:
    toolset = demo_toolset(prefix="m_")
    agent = agent_with(toolset, ToolCall.of("m_add", a=2, b=5), "2 + 5 = 7")
    runner = Runner(agent)
    try:
        result = await runner.invoke("add 2 and 5")
    finally:
        await runner.close()
    [message] = tool_messages(result)
    assert (message.name, message.content) == ("m_add", "7")
    assert result.text == "2 + 5 = 7"


@asyncio_only
async def test_invalid_arguments_are_refused_before_the_server_is_called() -> None:
    toolset = demo_toolset()
    agent = agent_with(toolset, ToolCall.of("add", a="two", b=5), "sorry")
    runner = Runner(agent)
    try:
        result = await runner.invoke("add")
    finally:
        await runner.close()
    [message] = tool_messages(result)
    assert message.content.startswith("Error: invalid arguments for tool 'add'")
    assert "'two' is not of type 'integer'" in message.content


@asyncio_only
async def test_an_error_result_becomes_a_tool_error_the_model_reads() -> None:
    toolset = demo_toolset()
    agent = agent_with(toolset, ToolCall.of("refuse", reason="not today"), "understood")
    runner = Runner(agent)
    try:
        result = await runner.invoke("try it")
    finally:
        await runner.close()
    [message] = tool_messages(result)
    assert message.content.startswith("Error: tool 'refuse' raised ToolError")
    assert "refused: not today" in message.content
    assert result.text == "understood"


@asyncio_only
async def test_images_become_a_placeholder_next_to_the_text() -> None:
    toolset = demo_toolset()
    runner = Runner(agent_with(toolset, ToolCall.of("picture"), "done"))
    try:
        result = await runner.invoke("draw")
    finally:
        await runner.close()
    [message] = tool_messages(result)
    assert message.content.splitlines() == ["a tiny picture", "[image: image/png, about 24 bytes]"]


async def test_a_server_that_dies_mid_call_gives_a_tool_error_and_is_restarted() -> None:
    toolset = demo_toolset()
    model = ScriptedModel([ToolCall.of("pid"), ToolCall.of("crash"), ToolCall.of("pid"), "ok"])
    runner = Runner(ChatModelAgent("assistant", model=model, tools=[toolset]))
    try:
        result = await runner.invoke("crash it")
    finally:
        await runner.close()
    before, crashed, after = tool_messages(result)
    assert "the MCP server 'demo_server' stopped while running 'crash'" in crashed.content
    assert crashed.content.startswith("Error:")
    assert int(before.content) != int(after.content)  # a new server process answered
    assert wait_until_gone(int(after.content))  # and runner.close() ended it
    assert result.text == "ok"


async def test_a_server_that_died_between_turns_is_restarted_when_tools_are_listed() -> None:
    toolset = demo_toolset()
    runner = Runner(agent_with(toolset, ToolCall.of("pid"), "first", ToolCall.of("pid"), "second"))
    try:
        first = await runner.invoke("pid?")
        first_pid = int(tool_messages(first)[0].content)
        import os
        import signal

        os.kill(first_pid, signal.SIGKILL)
        assert wait_until_gone(first_pid)
        second = await runner.invoke("pid again?")
    finally:
        await runner.close()
    second_pid = int(tool_messages(second)[0].content)
    assert second_pid != first_pid
    assert second.text == "second"


@asyncio_only
async def test_a_call_over_its_timeout_is_cancelled_and_reported() -> None:
    toolset = demo_toolset(call_timeout=0.3)
    model = ScriptedModel([[ToolCall.of("nap", seconds=30)], ToolCall.of("add", a=1, b=1), "ok"])
    runner = Runner(ChatModelAgent("assistant", model=model, tools=[toolset]))
    try:
        result = await runner.invoke("nap")
    finally:
        await runner.close()
    napped, added = tool_messages(result)
    assert "did not answer within 0.3 s" in napped.content
    assert added.content == "2"  # the connection still works


@asyncio_only
async def test_streamable_http_server_on_loopback(http_url: str) -> None:
    toolset = MCPToolset(url=http_url, prefix="web_")
    assert toolset.name == http_url
    runner = Runner(agent_with(toolset, ToolCall.of("web_add", a=20, b=22), "42"))
    try:
        result = await runner.invoke("add")
    finally:
        await runner.close()
    [message] = tool_messages(result)
    assert message.content == "42"


@asyncio_only
async def test_the_same_tool_objects_are_listed_while_the_server_is_unchanged() -> None:
    toolset = demo_toolset()
    runner = Runner(agent_with(toolset, "one", "two"))

    class Ctx:
        run_id = "r"

    try:
        first = await toolset.list_tools(Ctx())  # type: ignore[arg-type]
        second = await toolset.list_tools(Ctx())  # type: ignore[arg-type]
    finally:
        await runner.close()
    assert [id(tool) for tool in first] == [id(tool) for tool in second]
    assert all(isinstance(tool, MCPTool) for tool in first)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(ConfigurationError, match=r"exactly one of command= .* or url="):
        MCPToolset()
    with pytest.raises(ConfigurationError, match="exactly one of"):
        MCPToolset("python", url="http://127.0.0.1:1/mcp")
    with pytest.raises(ConfigurationError, match="scope must be 'runner' or 'run'"):
        MCPToolset("python", scope="turn")  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="tool_filter must be a list of tool names"):
        MCPToolset("python", tool_filter="add")
    with pytest.raises(ArgumentTypeError, match="args must be a list of strings"):
        MCPToolset("python", "server.py")
    with pytest.raises(ConfigurationError, match="call_timeout must be a positive number"):
        MCPToolset("python", call_timeout=0)
    with pytest.raises(ConfigurationError, match="url must be http"):
        MCPToolset(url="127.0.0.1:8000/mcp")


@asyncio_only
async def test_a_server_that_cannot_start_ends_the_turn_with_an_error_event(
    tmp_path: Path,
) -> None:
    toolset = MCPToolset(sys.executable, [str(tmp_path / "missing.py")], connect_timeout=20)
    runner = Runner(agent_with(toolset, "never"))
    try:
        events = [event async for event in runner.query("hi")]
    finally:
        await runner.close()
    errors = [event.error for event in events if event.error is not None]
    assert errors, "the run should end with an error event"
    assert "tool provider 'missing' could not list its tools" in errors[-1].message


def test_the_demo_server_path_exists() -> None:
    assert Path(DEMO_SERVER).is_file()


@asyncio_only
async def test_two_toolsets_on_one_agent_need_prefixes_when_names_clash() -> None:
    first, second = demo_toolset(), demo_toolset(prefix="b_", tool_filter=["add"])
    model = ScriptedModel([[ToolCall.of("add", a=1, b=2), ToolCall.of("b_add", a=3, b=4)], "ok"])
    runner = Runner(ChatModelAgent("assistant", model=model, tools=[first, second]))
    try:
        with anyio.fail_after(60):
            result = await runner.invoke("add twice")
    finally:
        await runner.close()
    assert [m.content for m in tool_messages(result)] == ["3", "7"]
