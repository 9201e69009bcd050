"""Shared pieces of the run-control tests: a gate a tool or model waits on, and a small agent."""

from __future__ import annotations

from typing import Any

import anyio

from adk import ChatModelAgent, ScriptedModel, ToolCall, tool
from adk.models.base import ModelRequest


class Gate:
    """Something a tool or model waits at: ``entered`` is set when it arrives."""

    def __init__(self) -> None:
        self.entered = anyio.Event()
        self.release = anyio.Event()

    async def wait(self) -> None:
        self.entered.set()
        await self.release.wait()


def gated_agent(gate: Gate, answers: list[Any]) -> tuple[ChatModelAgent, ScriptedModel, list[str]]:
    """An agent whose ``step`` tool waits at ``gate`` (each call), scripted by ``answers``."""
    ran: list[str] = []

    @tool
    async def step(name: str) -> str:
        """Do one step."""
        ran.append(name)
        await gate.wait()
        return f"did {name}"

    model = ScriptedModel(answers)
    return ChatModelAgent("worker", model=model, tools=[step]), model, ran


def call(name: str, call_id: str = "c1") -> ToolCall:
    return ToolCall(id=call_id, name="step", arguments=f'{{"name": "{name}"}}')


def user_texts(request: ModelRequest) -> list[str]:
    return [m.content for m in request.messages if m.role == "user"]
