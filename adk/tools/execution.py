"""Running the tool calls of one model response: decode, validate, approve, call, journal.

Failures the model can fix (invalid JSON, schema violations, an unknown tool
name, an exception inside the tool) become tool-result messages that say what
went wrong, so the model can correct itself and the run goes on. A tool that
interrupts (or awaits approval) yields an outcome carrying the pending
interrupts instead of a result. Completed calls are journaled under a
deterministic key, so a resumed run reuses their results instead of calling
them again.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from contextlib import aclosing
from typing import Any

import anyio
import pydantic_core

from adk._streams import Producer, merged
from adk.errors import ToolError
from adk.events import AgentAction, AgentEvent, InterruptInfo
from adk.messages import Message, ToolCall
from adk.state.context import RunContext
from adk.state.interrupts import Approval, Interrupt, interrupt_id
from adk.state.journal import RunJournal, ToolRecord, start_recording, stop_recording
from adk.state.serde import dumps
from adk.tools.base import ArgumentsInvalid, Tool, ToolContext
from adk.tools.function import FunctionTool

Emit = Callable[[AgentEvent], Awaitable[None]]
_NO_UPDATES: dict[str, Any] = {}


class ToolOutcome:
    """The result of one tool call: its message and actions, or the interrupts it is waiting on.

    ``replayed_seq`` is set when the result came from the journal (the call
    completed in an earlier execution of the run).
    """

    __slots__ = (
        "actions",
        "failed",
        "index",
        "interrupts",
        "message",
        "replayed_seq",
        "return_directly",
    )

    def __init__(
        self,
        message: Message,
        actions: list[AgentAction],
        *,
        return_directly: bool = False,
        failed: bool = False,
        interrupts: tuple[InterruptInfo, ...] = (),
        index: int = 0,
        replayed_seq: int | None = None,
    ) -> None:
        self.message = message
        self.actions = actions
        self.return_directly = return_directly
        self.failed = failed
        self.interrupts = interrupts
        self.index = index
        self.replayed_seq = replayed_seq

    def merged_action(self) -> AgentAction | None:
        """The tool's actions as one action (later fields win), or None."""
        if not self.actions:
            return None
        if len(self.actions) == 1:
            return self.actions[0]
        merged_fields: dict[str, Any] = {}
        for action in self.actions:
            merged_fields.update(action.model_dump(exclude_defaults=True))
        return AgentAction.model_validate(merged_fields)


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


def needs_approval(tool: Tool, arguments: dict[str, Any]) -> bool:
    """Whether ``tool`` must be approved before it runs with ``arguments``."""
    rule = getattr(tool, "requires_approval", False)
    if callable(rule):
        return bool(rule(arguments))
    return bool(rule)


async def run_tool_call(
    call: ToolCall,
    tools: Mapping[str, Tool],
    ctx: RunContext,
    agent_name: str,
    *,
    key: str,
    index: int = 0,
    raise_errors: bool = False,
    emit: Emit | None = None,
) -> ToolOutcome:
    """Run one tool call and return its outcome; errors become error messages for the model."""
    journal = ctx.journal
    recorded = journal.tool_result(key)
    if recorded is not None:
        for name, value in recorded.updates.items():
            ctx.set(name, value)
        return ToolOutcome(
            Message.tool(recorded.content, tool_call_id=call.id, name=call.name),
            recorded.actions,
            return_directly=recorded.return_directly,
            failed=recorded.failed,
            index=index,
            replayed_seq=recorded.seq,
        )
    tool = tools.get(call.name)
    if tool is None:
        available = ", ".join(sorted(tools)) or "none"
        return _failure(
            call,
            index,
            f"there is no tool named '{call.name}'. Available tools: {available}.",
            raise_errors,
        )
    try:
        arguments = call.parsed_arguments()
    except ValueError as exc:
        return _failure(
            call,
            index,
            f"the arguments of tool '{call.name}' are not a valid JSON object ({exc}). "
            "Send a JSON object that matches the tool's schema.",
            raise_errors,
        )
    raw_arguments = arguments
    try:
        arguments = tool.validate(arguments)
    except ArgumentsInvalid as exc:
        return _failure(
            call,
            index,
            f"invalid arguments for tool '{call.name}': {exc}. "
            "Fix the arguments and call the tool again.",
            raise_errors,
        )
    # A plain function without a ToolContext parameter never sees its context, so for it
    # the context is built only if the call is approved or interrupted.
    plain = type(tool) is FunctionTool and not tool.uses_context
    tool_ctx = None if plain else _tool_context(ctx, agent_name, call, emit, key)
    if getattr(tool, "requires_approval", False) is not False and needs_approval(tool, arguments):
        if tool_ctx is None:
            tool_ctx = _tool_context(ctx, agent_name, call, emit, key)
        approval_id = interrupt_id(tool_ctx.address, "approval")
        if approval_id not in journal.answers:
            # The arguments as the model sent them (JSON), not as converted for the call.
            info = {"type": "approval", "tool": call.name, "arguments": raw_arguments}
            return _interrupted(call, index, (_pending(approval_id, tool_ctx.address, info),))
        decision = Approval.parse(journal.answers[approval_id])
        if decision.decision == "reject":
            reason = f": {decision.message}" if decision.message else ""
            text = f"The user rejected this call to '{call.name}'{reason}"
            return await _flushed(journal, _complete(journal, key, call, index, text, [], {}, True))
        if decision.decision == "edit":
            try:
                arguments = tool.validate(dict(decision.arguments or {}))
            except ArgumentsInvalid as exc:
                text = f"Error: the arguments the user edited for '{call.name}' are invalid: {exc}"
                outcome = _complete(journal, key, call, index, text, [], {}, True)
                return await _flushed(journal, outcome)
    # Session writes are journaled with the call; a tool that cannot reach the run's
    # context (a plain function without a ToolContext parameter) cannot make any.
    recording = getattr(tool, "uses_context", True)
    updates, token = start_recording() if recording else (_NO_UPDATES, None)
    try:
        if tool_ctx is None:
            assert type(tool) is FunctionTool
            value = await tool.call(arguments, None)
        else:
            value = await tool.call(arguments, tool_ctx)
    except Interrupt as signal:
        if signal.nested:
            return _interrupted(call, index, signal.nested)
        if tool_ctx is None:
            tool_ctx = _tool_context(ctx, agent_name, call, emit, key)
        signal_key = signal.key if signal.key is not None else tool_ctx.interrupt_key()
        pending_id = interrupt_id(tool_ctx.address, signal_key)
        return _interrupted(call, index, (_pending(pending_id, tool_ctx.address, signal.info),))
    except Exception as exc:
        if raise_errors:
            raise
        text = f"Error: tool '{call.name}' raised {type(exc).__name__}: {exc}"
        outcome = _complete(journal, key, call, index, text, [], updates, True)
    else:
        outcome = _complete(
            journal,
            key,
            call,
            index,
            render_result(value),
            tool_ctx.actions if tool_ctx is not None else [],
            updates,
            False,
            tool.return_directly,
        )
    finally:
        if token is not None:
            stop_recording(token)
    if journal.step:
        await journal.flush()
    return outcome


def _tool_context(
    ctx: RunContext, agent_name: str, call: ToolCall, emit: Emit | None, key: str
) -> ToolContext:
    return ToolContext(
        ctx, agent_name=agent_name, tool_name=call.name, call_id=call.id, emit=emit, call_key=key
    )


def _pending(pending_id: str, address: tuple[str, ...], info: Any) -> InterruptInfo:
    dumps(info)  # fail now, with a clear message, if the info cannot be checkpointed
    return InterruptInfo(id=pending_id, address=address, info=info)


def _interrupted(call: ToolCall, index: int, interrupts: tuple[InterruptInfo, ...]) -> ToolOutcome:
    message = Message.tool("", tool_call_id=call.id, name=call.name)
    return ToolOutcome(message, [], interrupts=interrupts, index=index)


def _complete(
    journal: RunJournal,
    key: str,
    call: ToolCall,
    index: int,
    text: str,
    actions: list[AgentAction],
    updates: dict[str, Any],
    failed: bool,
    return_directly: bool = False,
) -> ToolOutcome:
    """Journal a completed call and return its outcome (the caller flushes in step mode)."""
    journal.note_tool(
        key,
        ToolRecord(
            text, failed=failed, return_directly=return_directly, actions=actions, updates=updates
        ),
    )
    message = Message.tool(text, tool_call_id=call.id, name=call.name)
    return ToolOutcome(
        message, actions, return_directly=return_directly, failed=failed, index=index
    )


async def _flushed(journal: RunJournal, outcome: ToolOutcome) -> ToolOutcome:
    """``outcome`` once its journal record is stored (durability ``"step"``)."""
    if journal.step:
        await journal.flush()
    return outcome


def _failure(call: ToolCall, index: int, text: str, raise_errors: bool) -> ToolOutcome:
    if raise_errors:
        raise ToolError(text)
    message = Message.tool(f"Error: {text}", tool_call_id=call.id, name=call.name)
    return ToolOutcome(message, [], failed=True, index=index)


def emits_events(calls: Sequence[ToolCall], tools: Mapping[str, Tool]) -> bool:
    """True if one of the called tools forwards events while it runs (e.g. an AgentTool)."""
    return any(getattr(tools.get(call.name), "emits_events", False) for call in calls)


def order_for_delivery(outcomes: list[ToolOutcome]) -> list[ToolOutcome]:
    """Completed results in a replay-stable order: journaled ones first (in journal order).

    A resumed run re-delivers the results that completed before the
    interrupt in the same positions, so the journal can tell which events
    the caller has already seen.
    """
    for outcome in outcomes:
        if outcome.replayed_seq is not None or outcome.interrupts:
            break
    else:
        return outcomes  # the common case: nothing replayed, nothing pending
    return sorted(
        (o for o in outcomes if not o.interrupts),
        key=lambda o: (0, o.replayed_seq, 0) if o.replayed_seq is not None else (1, 0, o.index),
    )


def tool_call_key(model_call_key: str, index: int) -> str:
    """The journal key of the ``index``-th tool call of a model call's response."""
    return f"{model_call_key}|t{index}"


class _Batch:
    """The calls of one model response, run concurrently, outcomes kept in call order."""

    def __init__(
        self,
        calls: Sequence[ToolCall],
        tools: Mapping[str, Tool],
        ctx: RunContext,
        agent_name: str,
        key_prefix: str,
        raise_errors: bool,
    ) -> None:
        self.calls = calls
        self.tools = tools
        self.ctx = ctx
        self.agent_name = agent_name
        self.key_prefix = key_prefix
        self.raise_errors = raise_errors
        self.outcomes: list[ToolOutcome | None] = [None] * len(calls)
        self.failures: list[Exception] = []

    async def run_one(self, index: int, emit: Emit | None = None) -> None:
        try:
            self.outcomes[index] = await run_tool_call(
                self.calls[index],
                self.tools,
                self.ctx,
                self.agent_name,
                key=tool_call_key(self.key_prefix, index),
                index=index,
                raise_errors=self.raise_errors,
                emit=emit,
            )
        except Exception as exc:  # only with raise_errors: re-raised unwrapped by results()
            self.failures.append(exc)

    def results(self) -> list[ToolOutcome]:
        if self.failures:
            raise self.failures[0]
        return [outcome for outcome in self.outcomes if outcome is not None]


async def run_tool_calls(
    calls: Sequence[ToolCall],
    tools: Mapping[str, Tool],
    ctx: RunContext,
    agent_name: str,
    *,
    key_prefix: str = "",
    raise_errors: bool = False,
) -> list[ToolOutcome]:
    """Run ``calls`` concurrently; outcomes come back in the order of the calls."""
    if len(calls) == 1:
        key = tool_call_key(key_prefix, 0)
        return [
            await run_tool_call(
                calls[0], tools, ctx, agent_name, key=key, raise_errors=raise_errors
            )
        ]
    batch = _Batch(calls, tools, ctx, agent_name, key_prefix, raise_errors)
    async with anyio.create_task_group() as group:
        for index in range(len(calls)):
            group.start_soon(batch.run_one, index)
    return batch.results()


async def stream_tool_calls(
    calls: Sequence[ToolCall],
    tools: Mapping[str, Tool],
    ctx: RunContext,
    agent_name: str,
    *,
    key_prefix: str = "",
    raise_errors: bool = False,
) -> AsyncGenerator[AgentEvent | list[ToolOutcome], None]:
    """Like :func:`run_tool_calls`, yielding the events tools forward while they run.

    The last item is the list of outcomes, in the order of the calls.
    """
    batch = _Batch(calls, tools, ctx, agent_name, key_prefix, raise_errors)

    def producer(index: int) -> Producer[AgentEvent]:
        async def produce(send: Emit) -> None:
            await batch.run_one(index, send)

        return produce

    async with aclosing(merged([producer(i) for i in range(len(calls))])) as events:
        async for event in events:
            yield event
    yield batch.results()
