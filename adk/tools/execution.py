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

from collections.abc import Awaitable, Callable
from typing import Any

import pydantic_core

from adk.content import PART_TYPES
from adk.errors import GuardrailTripped, MiddlewareError, ToolError, UsageLimitExceeded
from adk.events import AgentAction, AgentEvent, InterruptInfo
from adk.messages import Message, ToolCall
from adk.state.addressing import APPROVAL_KEY, interrupt_id
from adk.state.context import RunContext
from adk.state.interrupts import Approval, Interrupt
from adk.state.journal import ToolRecord, start_recording, stop_recording
from adk.state.serde import dumps
from adk.tools.base import ArgumentsInvalid, Tool, ToolContext
from adk.tools.toolbox import Toolbox, ToolTraits

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


_PARTS = frozenset(PART_TYPES)


def render_result(value: Any) -> str | list[Any]:
    """Turn a tool's return value into the content of its tool message.

    Strings pass through; anything else becomes compact JSON (pydantic models,
    dataclasses, enums, dates included), falling back to ``str`` per value.
    A part (``ImagePart``...) or a list or tuple holding parts gives a list of
    parts (other items rendered as text), for a tool message with parts
    (docs/multimodal.md).
    """
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    kind = type(value)
    if kind in _PARTS:  # exact types: isinstance on pydantic classes is slow
        return [value]
    if (kind is list or kind is tuple) and any(type(item) in _PARTS for item in value):
        return [
            item
            if type(item) is str or type(item) in _PARTS
            else pydantic_core.to_json(item, fallback=str).decode()
            for item in value
        ]
    return pydantic_core.to_json(value, fallback=str).decode()


async def run_tool_call(
    call: ToolCall,
    toolbox: Toolbox,
    ctx: RunContext,
    agent_name: str,
    *,
    key: str,
    index: int = 0,
    raise_errors: bool = False,
    emit: Emit | None = None,
) -> ToolOutcome:
    """Run one tool call and return its outcome; errors become error messages for the model.

    The steps: replay a journaled outcome, or resolve the tool and check the
    arguments, ask for approval if the tool requires it, then call it.
    """
    recorded = ctx.journal.tool_result(key)
    account = ctx._shared.account
    if account is not None and account.counts_tools:  # usage limits (adk.state.budgets)
        account.before_tool(agent_name, recorded is not None)
    if recorded is not None:
        return _replayed(recorded, call, ctx, index)
    checked = _checked_call(call, toolbox, index, raise_errors)
    if isinstance(checked, ToolOutcome):
        return checked
    tool, traits, arguments, raw_arguments = checked
    call_ctx = _CallContext(ctx, agent_name, call, emit, key)
    if traits.approval is not False and traits.needs_approval(arguments):
        approved = _approved_arguments(tool, call_ctx, raw_arguments, arguments, index)
        if isinstance(approved, ToolOutcome):
            if approved.interrupts or not ctx.journal.step:
                return approved
            await ctx.journal.flush()  # a rejection (or a bad edit) is a completed call
            return approved
        arguments = approved
    recorder, tracer = ctx._shared.recorder, ctx._shared.tracer
    if recorder is not None or tracer is not None:
        run = _invoke(tool, traits, arguments, call_ctx, index, raise_errors)
        if tracer is not None:  # Runner(tracing=...): the call in an execute_tool span
            run = tracer.tool_call(run, call, ctx, agent_name, key, tool)
        if recorder is None:
            return await run
        # Runner(trajectories=True): adk.agents.recording
        return await recorder.tool_call(run, call, key, agent_name)  # type: ignore[no-any-return]
    return await _invoke(tool, traits, arguments, call_ctx, index, raise_errors)


class _CallContext:
    """One call's place in the run; its ToolContext is built only if the call needs one."""

    __slots__ = ("_tool_ctx", "agent_name", "call", "emit", "journal", "key", "run")

    def __init__(
        self, run: RunContext, agent_name: str, call: ToolCall, emit: Emit | None, key: str
    ) -> None:
        self.run = run
        self.journal = run.journal
        self.agent_name = agent_name
        self.call = call
        self.emit = emit
        self.key = key
        self._tool_ctx: ToolContext | None = None

    @property
    def tool_ctx(self) -> ToolContext:
        """The call's ToolContext (its address names the call's interrupts)."""
        if self._tool_ctx is None:
            call = self.call
            self._tool_ctx = ToolContext(
                self.run,
                agent_name=self.agent_name,
                tool_name=call.name,
                call_id=call.id,
                emit=self.emit,
                call_key=self.key,
            )
        return self._tool_ctx

    def complete(
        self,
        index: int,
        text: str | list[Any],
        actions: list[AgentAction],
        updates: dict[str, Any],
        failed: bool,
        return_directly: bool = False,
    ) -> ToolOutcome:
        """Journal the completed call and return its outcome (flushed by the caller).

        ``text``: the result's text, or its parts (:func:`render_result`).
        """
        call = self.call
        message = Message.tool(text, tool_call_id=call.id, name=call.name)
        record = ToolRecord(
            message.content,
            failed=failed,
            return_directly=return_directly,
            actions=actions,
            updates=updates,
            parts=message.parts,  # () for a text result
        )
        self.journal.note_tool(self.key, record)
        return ToolOutcome(
            message, actions, return_directly=return_directly, failed=failed, index=index
        )


def _replayed(recorded: ToolRecord, call: ToolCall, ctx: RunContext, index: int) -> ToolOutcome:
    """The outcome of a call that completed in an earlier execution (its writes re-applied)."""
    for name, value in recorded.updates.items():
        ctx.set(name, value)
    return ToolOutcome(
        Message.tool(recorded.parts or recorded.content, tool_call_id=call.id, name=call.name),
        recorded.actions,
        return_directly=recorded.return_directly,
        failed=recorded.failed,
        index=index,
        replayed_seq=recorded.seq,
    )


def _checked_call(
    call: ToolCall, toolbox: Toolbox, index: int, raise_errors: bool
) -> tuple[Tool, ToolTraits, dict[str, Any], dict[str, Any]] | ToolOutcome:
    """The tool, its traits, validated and raw arguments; or the error the model reads."""
    tool = toolbox.tools.get(call.name)
    if tool is None:
        available = ", ".join(sorted(toolbox.tools)) or "none"
        text = f"there is no tool named '{call.name}'. Available tools: {available}."
        return _failure(call, index, text, raise_errors)
    try:
        raw_arguments = call.parsed_arguments()
    except ValueError as exc:
        text = (
            f"the arguments of tool '{call.name}' are not a valid JSON object ({exc}). "
            "Send a JSON object that matches the tool's schema."
        )
        return _failure(call, index, text, raise_errors)
    try:
        arguments = tool.validate(raw_arguments)
    except ArgumentsInvalid as exc:
        text = (
            f"invalid arguments for tool '{call.name}': {exc}. "
            "Fix the arguments and call the tool again."
        )
        return _failure(call, index, text, raise_errors)
    return tool, toolbox.traits[call.name], arguments, raw_arguments


def _approved_arguments(
    tool: Tool,
    call_ctx: _CallContext,
    raw_arguments: dict[str, Any],
    arguments: dict[str, Any],
    index: int,
) -> dict[str, Any] | ToolOutcome:
    """The arguments to run with once approved; else the pending or rejected outcome."""
    call, address = call_ctx.call, call_ctx.tool_ctx.address
    approval_id = interrupt_id(address, APPROVAL_KEY)
    journal = call_ctx.journal
    if not journal.has_answer(approval_id):
        # The arguments as the model sent them (JSON), not as converted for the call.
        info = {"type": "approval", "tool": call.name, "arguments": raw_arguments}
        return _interrupted(call, index, (_pending(approval_id, address, info),))
    decision = Approval.parse(journal.answer(approval_id))
    if decision.decision == "reject":
        reason = f": {decision.message}" if decision.message else ""
        text = f"The user rejected this call to '{call.name}'{reason}"
        return call_ctx.complete(index, text, [], {}, True)
    if decision.decision == "edit":
        try:
            return tool.validate(dict(decision.arguments or {}))
        except ArgumentsInvalid as exc:
            text = f"Error: the arguments the user edited for '{call.name}' are invalid: {exc}"
            return call_ctx.complete(index, text, [], {}, True)
    return arguments


async def _invoke(
    tool: Tool,
    traits: ToolTraits,
    arguments: dict[str, Any],
    call_ctx: _CallContext,
    index: int,
    raise_errors: bool,
) -> ToolOutcome:
    """Call the tool; journal its result, its error, or return the interrupt it raised."""
    # Session writes are journaled with the call; a tool that cannot reach the run's
    # context (a plain function without a ToolContext parameter) cannot make any.
    updates, token = start_recording() if traits.uses_context else (_NO_UPDATES, None)
    tool_ctx = None if traits.plain else call_ctx.tool_ctx
    # Middleware (docs/middleware.md) reaches the call through the run context: tools sit
    # below agents. None, the common case, costs one attribute check.
    invoker = call_ctx.run.tool_invoker(call_ctx.agent_name)
    try:
        if invoker is None:
            value = await tool.call(arguments, tool_ctx)  # type: ignore[arg-type]
        else:
            value = await invoker(tool, arguments, call_ctx.call.id, call_ctx.run, tool_ctx)
    except Interrupt as signal:
        return _raised_interrupt(signal, call_ctx, index)
    except (MiddlewareError, GuardrailTripped, UsageLimitExceeded):
        raise  # a middleware's own failure ends the agent (the tool's errors are reported)
    except Exception as exc:
        if raise_errors:
            raise
        tracer = call_ctx.run._shared.tracer
        if tracer is not None:  # the error's type, for the call's span (adk.tracing)
            tracer.tool_errors[call_ctx.key] = type(exc).__name__
        text = f"Error: tool '{call_ctx.call.name}' raised {type(exc).__name__}: {exc}"
        outcome = call_ctx.complete(index, text, [], updates, True)
    else:
        actions = tool_ctx.actions if tool_ctx is not None else []
        content = render_result(value)
        outcome = call_ctx.complete(index, content, actions, updates, False, tool.return_directly)
    finally:
        if token is not None:
            stop_recording(token)
    journal = call_ctx.journal
    if journal.step:
        await journal.flush()
    return outcome


def _raised_interrupt(signal: Interrupt, call_ctx: _CallContext, index: int) -> ToolOutcome:
    """The outcome of a call that raised :class:`~adk.Interrupt` (its own, or nested ones)."""
    if signal.nested:
        return _interrupted(call_ctx.call, index, signal.nested)
    tool_ctx = call_ctx.tool_ctx
    signal_key = signal.key if signal.key is not None else tool_ctx.interrupt_key()
    address = tool_ctx.address
    pending = _pending(interrupt_id(address, signal_key), address, signal.info)
    return _interrupted(call_ctx.call, index, (pending,))


def _pending(pending_id: str, address: tuple[str, ...], info: Any) -> InterruptInfo:
    dumps(info)  # fail now, with a clear message, if the info cannot be checkpointed
    return InterruptInfo(id=pending_id, address=address, info=info)


def _interrupted(call: ToolCall, index: int, interrupts: tuple[InterruptInfo, ...]) -> ToolOutcome:
    message = Message.tool("", tool_call_id=call.id, name=call.name)
    return ToolOutcome(message, [], interrupts=interrupts, index=index)


def _failure(call: ToolCall, index: int, text: str, raise_errors: bool) -> ToolOutcome:
    if raise_errors:
        raise ToolError(text)
    message = Message.tool(f"Error: {text}", tool_call_id=call.id, name=call.name)
    return ToolOutcome(message, [], failed=True, index=index)
