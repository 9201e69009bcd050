"""Agents the CLI tests run through the real ``python -m adk`` process (offline, scripted)."""

from __future__ import annotations

import anyio

from adk import ChatModelAgent, ModelRequest, ParallelAgent, ScriptedModel, ToolCall, tool


@tool(requires_approval=True)
def refund(amount: int) -> str:
    """Refund a customer (a person approves every refund)."""
    return f"refunded {amount} EUR"


def _support_model(request: ModelRequest) -> str | list[ToolCall]:
    """Asks for a refund of 30, then reports what the tool said."""
    last = request.messages[-1]
    if last.role == "user":
        return [ToolCall(id="r1", name="refund", arguments='{"amount": 30}')]
    return f"Done: {last.content}"


support = ChatModelAgent(
    "support", model=ScriptedModel(_support_model, chunk_chars=4), tools=[refund]
)
"""A support agent whose refund needs approval."""


def _writer(name: str) -> ChatModelAgent:
    return ChatModelAgent(name, model=ScriptedModel(lambda request: f"{name} wrote a paragraph."))


fanout = ParallelAgent("research", sub_agents=[_writer("alpha"), _writer("beta"), _writer("gamma")])
"""A fan-out of three branches."""


async def _stuck(request: ModelRequest) -> str:
    print("MODEL CALLED", flush=True)
    await anyio.sleep(3600)
    return "too late"


slow = ChatModelAgent("slow", model=ScriptedModel(_stuck))
"""An agent whose model call never returns (Ctrl-C cancels it)."""

not_an_agent = 42
