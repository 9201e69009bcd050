"""Tool providers: tools listed when a turn starts, closed by the Runner, told when runs end."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from adk import (
    AgentTool,
    ChatModelAgent,
    FunctionTool,
    Runner,
    ScriptedModel,
    SequentialAgent,
    Tool,
    ToolCall,
    ToolError,
)
from adk.state.context import RunContext
from adk.tools.provider import ToolProvider

pytestmark = pytest.mark.anyio


def shout(text: str) -> str:
    """Say ``text`` loudly."""
    return text.upper()


def whisper(text: str) -> str:
    """Say ``text`` quietly."""
    return text.lower()


class Provider:
    """A provider whose tool list can change between turns; it records what it was told."""

    def __init__(self, name: str = "p", tools: Sequence[Tool] = (), fail: bool = False) -> None:
        self.name = name
        self.tools = list(tools)
        self.fail = fail
        self.listed = 0
        self.ended: list[str] = []
        self.closed = 0

    async def list_tools(self, ctx: RunContext) -> Sequence[Tool]:
        self.listed += 1
        if self.fail:
            raise ConnectionError("server went away")
        return self.tools

    async def end_run(self, run_id: str) -> None:
        self.ended.append(run_id)

    async def close(self) -> None:
        self.closed += 1


def test_a_provider_is_a_tool_provider_not_a_tool() -> None:
    provider = Provider()
    assert isinstance(provider, ToolProvider)
    agent = ChatModelAgent("a", model=ScriptedModel(["hi"]), tools=[provider, shout])
    assert agent.providers == (provider,)
    assert list(agent.tools) == ["shout"]


async def test_listed_tools_are_offered_and_called() -> None:
    provider = Provider(tools=[FunctionTool(shout)])
    model = ScriptedModel([ToolCall.of("shout", text="hey"), "done"])
    agent = ChatModelAgent("a", model=model, tools=[provider, whisper])
    runner = Runner(agent)
    result = await runner.invoke("go")
    assert result.text == "done"
    assert [spec.name for spec in model.requests[0].tools] == ["shout", "whisper"]
    assert model.requests[1].messages[-1].content == "HEY"
    assert provider.listed == 1
    assert provider.ended == [result.run_id]


async def test_the_tool_list_is_asked_for_every_turn() -> None:
    provider = Provider(tools=[FunctionTool(shout)])
    model = ScriptedModel(["one", "two"])
    agent = ChatModelAgent("a", model=model, tools=[provider])
    runner = Runner(agent)
    await runner.invoke("go")
    provider.tools = [FunctionTool(whisper)]
    await runner.invoke("again")
    assert [spec.name for spec in model.requests[1].tools] == ["whisper"]
    assert provider.listed == 2


async def test_a_provider_that_cannot_list_ends_the_turn_with_a_tool_error() -> None:
    provider = Provider(name="weather-server", fail=True)
    model = ScriptedModel(["never"])
    runner = Runner(ChatModelAgent("a", model=model, tools=[provider]))
    events = [event async for event in runner.query("go")]
    assert events[-1].error is not None
    assert events[-1].error.type == "ToolError"
    assert "weather-server" in events[-1].error.message
    assert "server went away" in events[-1].error.message
    assert model.calls == 0
    with pytest.raises(ToolError):
        await runner.invoke("go")


async def test_a_listed_name_clash_is_an_error_naming_the_provider() -> None:
    provider = Provider(name="dup", tools=[FunctionTool(shout)])
    runner = Runner(ChatModelAgent("a", model=ScriptedModel(["x"]), tools=[provider, shout]))
    events = [event async for event in runner.query("go")]
    assert events[-1].error is not None
    assert "'dup'" in events[-1].error.message and "'shout'" in events[-1].error.message


async def test_runner_close_closes_providers_in_workflows_and_agent_tools() -> None:
    outer = Provider("outer")
    inner = Provider("inner")
    helper = ChatModelAgent("helper", model=ScriptedModel(["h"]), tools=[inner])
    first = ChatModelAgent("first", model=ScriptedModel(["f"]), tools=[outer, AgentTool(helper)])
    second = ChatModelAgent("second", model=ScriptedModel(["s"]), tools=[outer])
    runner = Runner(SequentialAgent("seq", [first, second]))
    await runner.close()
    assert (outer.closed, inner.closed) == (1, 1)


async def test_close_goes_on_after_a_provider_fails_and_raises_after() -> None:
    class Broken(Provider):
        async def close(self) -> None:
            raise OSError("cannot close")

    good = Provider("good")
    runner = Runner(
        SequentialAgent(
            "seq",
            [
                ChatModelAgent("a", model=ScriptedModel(["x"]), tools=[Broken("bad")]),
                ChatModelAgent("b", model=ScriptedModel(["y"]), tools=[good]),
            ],
        )
    )
    with pytest.raises(OSError, match="cannot close"):
        await runner.close()
    assert good.closed == 1


async def test_end_run_is_told_when_a_run_pauses_or_fails(tmp_path: Any) -> None:
    provider = Provider(tools=[FunctionTool(shout, requires_approval=True)])
    model = ScriptedModel([ToolCall.of("shout", text="x"), RuntimeError("model down")])
    runner = Runner(ChatModelAgent("a", model=model, tools=[provider]))
    paused = await runner.invoke("go")
    assert paused.interrupts
    assert provider.ended == [paused.run_id]
    with pytest.raises(RuntimeError):
        await runner.resume_invoke(
            paused.checkpoint_id or "", {paused.interrupts[0].id: {"approved": True}}
        )
    assert provider.ended == [paused.run_id, paused.run_id]
