"""Running the tool calls of one model response: decode, validate, call, report.

Failures the model can fix (invalid JSON, schema violations, an unknown tool
name, an exception inside the tool) become tool-result messages that say what
went wrong, so the model can correct itself and the run goes on.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from typing import Any

import anyio
import pydantic_core

from adk._streams import Producer, merged
from adk.errors import ToolError
from adk.events import AgentAction, AgentEvent
from adk.messages import Message, ToolCall
from adk.runner.context import RunContext
from adk.tools.base import ArgumentsInvalid, Tool, ToolContext


class ToolOutcome:
    """The result of one tool call: the tool message and the actions the tool sent."""

    __slots__ = ("actions", "failed", "message", "return_directly")

    def __init__(
        self,
        message: Message,
        actions: list[AgentAction],
        *,
        return_directly: bool = False,
        failed: bool = False,
    ) -> None:
        self.message = message
        self.actions = actions
        self.return_directly = return_directly
        self.failed = failed

    def merged_action(self) -> AgentAction | None:
        """The tool's actions as one action (later fields win), or None."""
        if not self.actions:
            return None
        if len(self.actions) == 1:
            return self.actions[0]
        merged: dict[str, Any] = {}
        for action in self.actions:
            merged.update(action.model_dump(exclude_defaults=True))
        return AgentAction.model_validate(merged)


def render_result(value: Any) -> str:
    """Turn a tool's return value into the text of its tool message.

    Strings pass through; anything else becomes compact JSON (pydantic models,
    dataclasses, enums, dates included), falling back to ``str`` per value.
    """
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return pydantic_core.to_json(value, fallback=str).decode()


async def run_tool_call(
    call: ToolCall,
    tools: Mapping[str, Tool],
    ctx: RunContext,
    agent_name: str,
    *,
    raise_errors: bool = False,
    emit: Callable[[AgentEvent], Awaitable[None]] | None = None,
) -> ToolOutcome:
    """Run one tool call and return its outcome; errors become error messages for the model."""
    tool = tools.get(call.name)
    if tool is None:
        available = ", ".join(sorted(tools)) or "none"
        return _failure(
            call,
            f"there is no tool named '{call.name}'. Available tools: {available}.",
            raise_errors,
        )
    try:
        arguments = call.parsed_arguments()
    except ValueError as exc:
        return _failure(
            call,
            f"the arguments of tool '{call.name}' are not a valid JSON object ({exc}). "
            "Send a JSON object that matches the tool's schema.",
            raise_errors,
        )
    try:
        arguments = tool.validate(arguments)
    except ArgumentsInvalid as exc:
        return _failure(
            call,
            f"invalid arguments for tool '{call.name}': {exc}. "
            "Fix the arguments and call the tool again.",
            raise_errors,
        )
    tool_ctx = ToolContext(
        ctx, agent_name=agent_name, tool_name=call.name, call_id=call.id, emit=emit
    )
    try:
        value = await tool.call(arguments, tool_ctx)
    except Exception as exc:
        if raise_errors:
            raise
        return _failure(call, f"tool '{call.name}' raised {type(exc).__name__}: {exc}", False)
    message = Message.tool(render_result(value), tool_call_id=call.id, name=call.name)
    return ToolOutcome(message, tool_ctx.actions, return_directly=tool.return_directly)


def _failure(call: ToolCall, text: str, raise_errors: bool) -> ToolOutcome:
    if raise_errors:
        raise ToolError(text)
    message = Message.tool(f"Error: {text}", tool_call_id=call.id, name=call.name)
    return ToolOutcome(message, [], failed=True)


async def run_tool_calls(
    calls: Sequence[ToolCall],
    tools: Mapping[str, Tool],
    ctx: RunContext,
    agent_name: str,
    *,
    raise_errors: bool = False,
) -> list[ToolOutcome]:
    """Run ``calls`` concurrently; outcomes come back in the order of the calls."""
    if len(calls) == 1:
        return [await run_tool_call(calls[0], tools, ctx, agent_name, raise_errors=raise_errors)]
    outcomes: list[ToolOutcome | None] = [None] * len(calls)
    failures: list[Exception] = []

    async def one(index: int, call: ToolCall) -> None:
        try:
            outcomes[index] = await run_tool_call(
                call, tools, ctx, agent_name, raise_errors=raise_errors
            )
        except Exception as exc:  # only with raise_errors: re-raised below, unwrapped
            failures.append(exc)

    async with anyio.create_task_group() as group:
        for index, call in enumerate(calls):
            group.start_soon(one, index, call)
    if failures:
        raise failures[0]
    return [outcome for outcome in outcomes if outcome is not None]


def emits_events(calls: Sequence[ToolCall], tools: Mapping[str, Tool]) -> bool:
    """True if one of the called tools forwards events while it runs (e.g. an AgentTool)."""
    return any(getattr(tools.get(call.name), "emits_events", False) for call in calls)


async def stream_tool_calls(
    calls: Sequence[ToolCall],
    tools: Mapping[str, Tool],
    ctx: RunContext,
    agent_name: str,
    *,
    raise_errors: bool = False,
) -> AsyncGenerator[AgentEvent | list[ToolOutcome], None]:
    """Like :func:`run_tool_calls`, yielding the events tools forward while they run.

    The last item is the list of outcomes, in the order of the calls.
    """
    outcomes: list[ToolOutcome | None] = [None] * len(calls)
    failures: list[Exception] = []

    def producer(index: int, call: ToolCall) -> Producer[AgentEvent]:
        async def produce(send: Callable[[AgentEvent], Awaitable[None]]) -> None:
            try:
                outcomes[index] = await run_tool_call(
                    call, tools, ctx, agent_name, raise_errors=raise_errors, emit=send
                )
            except Exception as exc:  # only with raise_errors: re-raised below, unwrapped
                failures.append(exc)

        return produce

    producers = [producer(index, call) for index, call in enumerate(calls)]
    async with aclosing(merged(producers)) as events:
        async for event in events:
            yield event
    if failures:
        raise failures[0]
    yield [outcome for outcome in outcomes if outcome is not None]
