"""Tool-result GC for a ChatModelAgent with a :class:`~adk.ContextPolicy` (docs/context.md).

Planned with the serving layer's prefix cache: the prompt is not rewritten
every iteration. GC runs in rare, large steps, only when a call's prompt
would pass the policy's threshold (or ``gc_batch`` results have aged), and
then elides *every* tool result older than the max age at once. Between two
GC steps the conversation only grows at its end, so the prompt prefix stays
byte-identical and the engine's KV cache stays warm.

An elided result becomes a stub naming the tool, the call id and the size,
and saying how to get it back (the ``recall`` tool, or calling the tool
again). The decision (which call ids, at which model call) is journaled as a
value under ``<model call key>|context``: a resumed or replayed run applies
the same decision without counting tokens again.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from adk.errors import ContextWindowExceededError
from adk.events import AgentEvent
from adk.messages import Message
from adk.state.context_policy import GC_COMPLETE, ContextPolicy, Counter
from adk.tools.function import FunctionTool

if TYPE_CHECKING:
    from adk.agents.chat_model import ChatModelAgent
    from adk.agents.turn import Toolset, Turn

CONTEXT_SUFFIX = "|context"
"""Journal values ``<model call key>|context`` hold the GC decision taken there."""

RECALL_TOOL_NAME = "recall"
"""The built-in tool that returns an elided tool result by call id."""


class TurnContext:
    """One turn's context state: policy, window, counter, and the originals GC elided."""

    __slots__ = ("counter", "originals", "policy", "window")

    def __init__(self, policy: ContextPolicy, window: int, counter: Counter) -> None:
        self.policy = policy
        self.window = window
        self.counter = counter
        self.originals: dict[str, Message] = {}
        """Elided tool results by call id (what ``recall`` returns)."""

    def recall(self, messages: list[Message], call_id: str) -> str:
        """The original result of tool call ``call_id`` in this turn."""
        original = self.originals.get(call_id)
        if original is not None:
            return original.content
        for message in messages:
            if message.role == "tool" and message.tool_call_id == call_id:
                return message.content
        return f"Error: no tool result with call id {call_id!r} in this conversation"


async def start_context(turn: Turn, policy: ContextPolicy) -> None:
    """Set up ``turn``'s context management: window, counter, and the ``recall`` tool."""
    window, counter = await policy.for_model(turn.model)
    turn.context = TurnContext(policy, window, counter)
    if policy.gc:
        turn.toolset = recall_toolset(turn.toolset, turn)


def recall_toolset(toolset: Toolset, turn: Turn) -> Toolset:
    """``toolset`` plus a ``recall`` tool bound to ``turn`` (unless it has one already)."""
    from adk.agents.turn import Toolset

    if RECALL_TOOL_NAME in toolset.tools:
        return toolset

    def recall(call_id: str) -> str:
        """Return the full result of an earlier tool call whose result was elided.

        Args:
            call_id: the call id named in the elided result's stub.
        """
        state = turn.context
        if state is None:
            return "Error: nothing was elided in this conversation"
        return state.recall(turn.messages, call_id)

    tool = FunctionTool(recall, name=RECALL_TOOL_NAME, run_in_thread=False)
    return Toolset({**toolset.tools, RECALL_TOOL_NAME: tool}, toolset.instruction)


def stub(message: Message, chars: int) -> Message:
    """The short tool message that stands for the elided ``message``."""
    call_id = message.tool_call_id or ""
    name = message.name or "tool"
    text = (
        f"[elided tool result: {name} call {call_id}, {chars} characters. "
        f"Call recall(call_id={json.dumps(call_id)}) for the full result, "
        f"or call {name} again.]"
    )
    return Message.tool(text, tool_call_id=call_id, name=name)


def aged_results(state: TurnContext, messages: list[Message]) -> list[str]:
    """Call ids of tool results followed by at least max-age replies (not pinned, not stubs)."""
    max_age = state.policy.tool_result_max_age
    pinned = state.policy.pinned
    found: list[str] = []
    replies = 0
    for message in reversed(messages):
        if message.role == "assistant":
            replies += 1
        elif message.role == "tool" and replies >= max_age:
            call_id = message.tool_call_id
            if not call_id or call_id in state.originals:
                continue
            if pinned is not None and pinned(message):
                continue
            found.append(call_id)
    found.reverse()
    return found


def elide(state: TurnContext, messages: list[Message], call_ids: list[str]) -> list[Message]:
    """``messages`` with the results of ``call_ids`` replaced by stubs (originals kept)."""
    wanted = set(call_ids)
    out: list[Message] = []
    for message in messages:
        call_id = message.tool_call_id
        if message.role == "tool" and call_id in wanted and call_id not in state.originals:
            assert call_id is not None
            state.originals[call_id] = message
            message = stub(message, len(message.content))
        out.append(message)
    return out


def gc_event(agent: ChatModelAgent, turn: Turn, decision: dict[str, Any]) -> AgentEvent:
    """The ``gc_complete`` event of a GC step (``event.output.custom``)."""
    return agent.custom_event(turn.ctx, {"kind": GC_COMPLETE, **decision})


def oversized_message(
    state: TurnContext, messages: list[Message]
) -> ContextWindowExceededError | None:
    """The error for the first message that alone does not fit the usable window, if any."""
    usable = state.window - state.policy.headroom
    for index, message in enumerate(messages):
        size = state.counter([message], ())
        if size > usable:
            error = ContextWindowExceededError(
                f"message {index} ({message.role}"
                + (f" {message.name!r}" if message.name else "")
                + f") is {size} tokens, more than the whole usable context window "
                f"({state.window} tokens less {state.policy.headroom} headroom): "
                "shorten it or raise the window"
            )
            error.details = {"index": index, "role": message.role, "tokens": size}
            return error
    return None
