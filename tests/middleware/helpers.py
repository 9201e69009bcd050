"""Middleware and models shared by the middleware and guardrail tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio

from adk import (
    AgentEvent,
    Message,
    Middleware,
    ModelChunk,
    ModelRequest,
    ModelResponse,
    Runner,
    ToolCallInfo,
    tool,
)


class Recorder(Middleware):
    """Logs ``<label>:<hook> <agent>`` before and after every call it wraps."""

    def __init__(self, label: str, log: list[str]) -> None:
        self.label = label
        self.log = log

    async def model_call(self, request: ModelRequest, call_next: Any) -> ModelResponse:
        self.log.append(f"{self.label}>model {request.agent_name}")
        response: ModelResponse = await call_next(request)
        self.log.append(f"{self.label}<model {request.agent_name}")
        return response

    async def tool_call(self, call: ToolCallInfo, call_next: Any) -> Any:
        self.log.append(f"{self.label}>tool {call.agent_name}:{call.name}")
        result = await call_next(call)
        self.log.append(f"{self.label}<tool {call.agent_name}:{call.name}")
        return result


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


async def collect(runner: Runner, text: str, **kwargs: Any) -> list[AgentEvent]:
    """Every event of a run (errors included: the iterator must not raise)."""
    return [event async for event in runner.query(text, **kwargs)]


def errors(events: list[AgentEvent]) -> list[str]:
    return [event.error.type for event in events if event.error is not None]


def texts(events: list[AgentEvent]) -> list[str]:
    """The non-partial assistant texts delivered."""
    return [
        event.text
        for event in events
        if event.message is not None
        and not event.partial
        and event.message.role == "assistant"
        and event.text
    ]


class WaitingModel:
    """A model whose call never returns by itself: it waits on an event, noting cancellation."""

    def __init__(self) -> None:
        self.started = anyio.Event()
        self.cancelled = False
        self.calls = 0

    async def generate(self, request: ModelRequest) -> ModelResponse:
        self.calls += 1
        self.started.set()
        try:
            await anyio.Event().wait()
        except anyio.get_cancelled_exc_class():
            self.cancelled = True
            raise
        raise AssertionError("unreachable")

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelChunk]:
        yield ModelChunk(content="never ")
        await self.generate(request)


class StreamedThenSignal:
    """Streams ``text`` in words, then sets :attr:`streamed` (the whole answer went out)."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.streamed = anyio.Event()
        self.calls = 0

    async def generate(self, request: ModelRequest) -> ModelResponse:
        self.calls += 1
        return ModelResponse(message=Message.assistant(self.text))

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelChunk]:
        self.calls += 1
        for word in self.text.split(" "):
            yield ModelChunk(content=word + " ")
        self.streamed.set()
