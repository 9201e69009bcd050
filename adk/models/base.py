"""The model-facing contract: requests, responses, streaming chunks and the ChatModel protocol."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

from adk.messages import Message, ToolCall, Usage


class ToolSpec(BaseModel):
    """What the model is told about one tool: name, description, JSON schema of its arguments."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(slots=True, kw_only=True)
class ModelRequest:
    """Everything one model call needs, and who is asking.

    The serving layer sees the whole request: the messages, the tools, the
    call parameters, and the identity of the caller (run, session, agent path,
    stage) so that it can route, cache and account per run and per agent.
    (A plain dataclass: it is built for every model call and never parsed
    from outside data.)
    """

    messages: list[Message]
    tools: list[ToolSpec] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    stream: bool = False
    run_id: str = ""
    session_id: str = ""
    agent_name: str = ""
    agent_path: tuple[str, ...] = ()
    stage: str = ""
    """The workflow stage this call belongs to; defaults to the agent name."""
    call_id: str = ""
    """Stable id of this call within the run (the same when a resumed run retries it)."""
    priority: int = 0
    """Scheduling priority where the backend orders its queue by priority (higher first)."""
    cache: str = "auto"
    """Cache policy of this call: ``"auto"`` (the workflow policy decides), ``"preserve"``
    or ``"flush"``."""
    cache_breakpoints: tuple[int, ...] = ()
    """Indexes of messages after which a provider should cache the prompt
    (Anthropic-style ``cache_control``; set by the serving layer)."""


@dataclass(slots=True, kw_only=True)
class ModelResponse:
    """The complete answer of one model call."""

    message: Message
    usage: Usage = field(default_factory=Usage)
    finish_reason: str | None = None
    model: str = ""


@dataclass(slots=True, kw_only=True)
class ToolCallDelta:
    """A fragment of a streamed tool call; fragments with the same ``index`` belong together."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(slots=True, kw_only=True)
class ModelChunk:
    """One piece of a streamed model answer."""

    content: str = ""
    tool_calls: tuple[ToolCallDelta, ...] = ()
    usage: Usage | None = None
    finish_reason: str | None = None
    model: str = ""


@runtime_checkable
class ChatModel(Protocol):
    """A chat model: one complete answer, or the same answer as a stream of chunks."""

    async def generate(self, request: ModelRequest) -> ModelResponse:
        """Return the complete answer to ``request``."""
        ...

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelChunk]:
        """Yield the answer to ``request`` chunk by chunk."""
        ...


class ChunkAssembler:
    """Accumulates streamed chunks into the :class:`ModelResponse` they add up to."""

    __slots__ = ("_calls", "_content", "_finish", "_model", "_usage")

    def __init__(self) -> None:
        self._content: list[str] = []
        self._calls: dict[int, list[str | list[str] | None]] = {}
        self._usage: Usage | None = None
        self._finish: str | None = None
        self._model = ""

    def add(self, chunk: ModelChunk) -> None:
        """Fold one chunk in."""
        if chunk.content:
            self._content.append(chunk.content)
        for delta in chunk.tool_calls:
            slot = self._calls.get(delta.index)
            if slot is None:
                slot = self._calls[delta.index] = [None, None, []]
            if delta.id:
                slot[0] = delta.id
            if delta.name:
                slot[1] = delta.name
            if delta.arguments:
                args = slot[2]
                assert isinstance(args, list)
                args.append(delta.arguments)
        if chunk.usage is not None:
            self._usage = chunk.usage
        if chunk.finish_reason:
            self._finish = chunk.finish_reason
        if chunk.model:
            self._model = chunk.model

    def response(self) -> ModelResponse:
        """The complete response assembled so far."""
        calls = []
        for index in sorted(self._calls):
            call_id, name, args = self._calls[index]
            assert isinstance(args, list)
            calls.append(
                ToolCall(
                    id=str(call_id) if call_id else f"call_{index}",
                    name=str(name or ""),
                    arguments="".join(args) or "{}",
                )
            )
        usage = self._usage or Usage()
        message = Message.assistant("".join(self._content), tool_calls=calls, usage=usage)
        return ModelResponse(
            message=message, usage=usage, finish_reason=self._finish, model=self._model
        )
