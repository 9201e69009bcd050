"""Middleware around tool calls: arguments, results, short-circuits, errors, streaming tools."""

from __future__ import annotations

from typing import Any

import pytest

from adk import (
    ChatModelAgent,
    Middleware,
    Runner,
    ScriptedModel,
    ToolCall,
    ToolCallInfo,
    ToolContext,
    tool,
)

from .helpers import add, collect, errors, texts

pytestmark = pytest.mark.anyio

CALLS: list[str] = []


@tool
def lookup(city: str, ctx: ToolContext) -> str:
    """Weather in a city (notes each real call)."""
    CALLS.append(city)
    ctx.set("last_city", city)
    return f"sunny in {city}"


@tool
def explode(reason: str) -> str:
    """Always fails."""
    raise ValueError(f"cannot do {reason}")


class Double(Middleware):
    async def before_tool(self, call: ToolCallInfo) -> ToolCallInfo:
        if call.name != "add":
            return call
        return call.replace(arguments={k: v * 2 for k, v in call.arguments.items()})

    async def after_tool(self, call: ToolCallInfo, result: Any) -> Any:
        return f"result={result}"


async def test_tool_middleware_changes_arguments_and_results() -> None:
    model = ScriptedModel([ToolCall.of("add", a=1, b=2), "done"])
    result = await Runner(
        ChatModelAgent("calc", model=model, tools=[add], middleware=[Double()])
    ).invoke("x")
    tool_messages = [e.message for e in result.events if e.message and e.message.role == "tool"]
    assert [m.content for m in tool_messages] == ["result=6"]
    assert model.requests[1].messages[-1].content == "result=6"  # what the model read


class CachedWeather(Middleware):
    async def tool_call(self, call: ToolCallInfo, call_next: Any) -> Any:
        if call.name == "lookup" and call.arguments["city"] == "Paris":
            return {"cached": True, "text": "sunny in Paris"}
        return await call_next(call)


async def test_tool_middleware_short_circuits_the_tool() -> None:
    CALLS.clear()
    model = ScriptedModel(
        [[ToolCall.of("lookup", city="Paris"), ToolCall.of("lookup", city="Oslo")], "ok"]
    )
    values: dict[str, Any] = {}
    runner = Runner(ChatModelAgent("w", model=model, tools=[lookup]), middleware=[CachedWeather()])
    result = await runner.invoke("weather?", session_values=values)
    assert CALLS == ["Oslo"]  # Paris was answered by the middleware
    contents = {e.text for e in result.events if e.message and e.message.role == "tool"}
    assert contents == {'{"cached":true,"text":"sunny in Paris"}', "sunny in Oslo"}
    assert values["last_city"] == "Oslo"


async def test_a_tool_error_through_middleware_is_still_reported_to_the_model() -> None:
    seen: list[str] = []

    class Watch(Middleware):
        async def tool_call(self, call: ToolCallInfo, call_next: Any) -> Any:
            try:
                return await call_next(call)
            except ValueError as exc:
                seen.append(str(exc))
                raise

    model = ScriptedModel([ToolCall.of("explode", reason="x"), "sorry"])
    runner = Runner(ChatModelAgent("e", model=model, tools=[explode], middleware=[Watch()]))
    events = await collect(runner, "go")
    assert errors(events) == []
    assert seen == ["cannot do x"]
    assert "raised ValueError: cannot do x" in model.requests[1].messages[-1].content
    assert texts(events)[-1] == "sorry"


class Refuse(Middleware):
    async def before_tool(self, call: ToolCallInfo) -> ToolCallInfo:
        raise PermissionError(f"{call.name} is not allowed")


@pytest.mark.parametrize("streaming", [False, True])
async def test_a_raising_tool_middleware_ends_the_agent(streaming: bool) -> None:
    CALLS.clear()
    model = ScriptedModel([ToolCall.of("lookup", city="Paris"), "never"])
    agent = ChatModelAgent("w", model=model, tools=[lookup], middleware=[Refuse()])
    events = await collect(Runner(agent, streaming=streaming), "x")
    assert errors(events) == ["MiddlewareError"]
    assert events[-1].error is not None and "PermissionError" in events[-1].error.message
    assert CALLS == []
    assert model.calls == 1
