"""Tools without a ToolContext parameter: the context is only built when a call needs it."""

from __future__ import annotations

from typing import Any

import pytest

from adk import ChatModelAgent, Interrupt, Runner, ScriptedModel, ToolCall, ToolContext, tool
from adk.models.base import ModelRequest
from adk.state.addressing import interrupt_id

pytestmark = pytest.mark.anyio


def script(request: ModelRequest) -> Any:
    last = request.messages[-1]
    if last.role == "tool":
        return f"done: {last.content}"
    return ToolCall(id="c1", name="ask", arguments='{"topic": "seats"}')


async def pending_of(ask: Any) -> Any:
    runner = Runner(ChatModelAgent("agent", model=ScriptedModel(script), tools=[ask]))
    result = await runner.invoke("go")
    [pending] = result.interrupts
    return runner, result, pending


async def test_a_plain_function_interrupts_like_one_that_takes_its_context() -> None:
    @tool
    def ask(topic: str) -> str:
        """Ask about a topic."""
        raise Interrupt(f"what about {topic}?")

    @tool(name="ask")
    def ask_with_context(topic: str, ctx: ToolContext) -> str:
        """Ask about a topic."""
        if ctx.answer is None:
            raise Interrupt(f"what about {topic}?")
        return f"{topic}: {ctx.answer}"

    _, _, plain = await pending_of(ask)
    runner, first, with_context = await pending_of(ask_with_context)
    assert plain.address == with_context.address == ("agent", "ask:c1")
    assert plain.id == with_context.id == interrupt_id(("agent", "ask:c1"), "0")
    assert plain.info == with_context.info == "what about seats?"
    assert first.checkpoint_id is not None
    resumed = await runner.resume_invoke(first.checkpoint_id, {with_context.id: "window"})
    assert resumed.text == "done: seats: window"


async def test_a_plain_function_with_approval_runs_once_approved() -> None:
    calls: list[str] = []

    @tool(requires_approval=True)
    def ask(topic: str) -> str:
        """Ask about a topic."""
        calls.append(topic)
        return f"{topic}: ok"

    runner, first, pending = await pending_of(ask)
    assert pending.info["type"] == "approval" and calls == []
    assert first.checkpoint_id is not None
    resumed = await runner.resume_invoke(first.checkpoint_id, {pending.id: "approve"})
    assert resumed.text == "done: seats: ok" and calls == ["seats"]
