"""History rewriting: what the next agent sees of what happened before it.

An agent's input is the run's root input plus every recorded non-partial
message. Its own messages keep their roles; other agents' assistant and tool
messages become user-role context ("For context: [planner] said: ...") so
that a model never sees tool calls it did not make.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from adk.agents.compaction import parse_marker
from adk.events import HistoryEntry as HistoryEntry
from adk.messages import Message
from adk.state.context import RunContext

TRANSFER_TOOL_NAME = "transfer_to_agent"


HistoryRewriter = Callable[[Sequence[HistoryEntry], str], list[Message]]
"""A pure function from history entries and the name of the agent about to run to its input."""


def recorded_entries(ctx: RunContext) -> list[HistoryEntry]:
    """The session's earlier turns, the run's root input and recorded messages, as recorded."""
    entries = [HistoryEntry(None, message) for message in ctx.root_input]
    prior = ctx.prior
    if prior:
        entries[:0] = prior
    for event in ctx.events:
        message = event.message
        if message is not None:
            entries.append(HistoryEntry(event.agent_name, message, event.action))
    return entries


def history_entries(ctx: RunContext) -> list[HistoryEntry]:
    """The history as agents see it, oldest first; a compaction's summary replaces its part."""
    return compacted_view(recorded_entries(ctx))


def compacted_view(entries: list[HistoryEntry]) -> list[HistoryEntry]:
    """``entries`` with the last compaction marker applied (adk.agents.compaction).

    The marker's summary comes first (as user input), then the pinned entries
    and the entries the compaction kept, then what came after it; older
    markers are dropped (the last summary folded them in).
    """
    for position in range(len(entries) - 1, -1, -1):
        message = entries[position][1]
        if message.name is None or message.role != "user":  # fast path: not a marker
            continue
        marker = parse_marker(message)
        if marker is not None:
            break
    else:
        return entries
    kept, distances = marker
    start = max(0, position - kept)
    pinned = sorted({position - d for d in distances if 0 <= position - d < start})
    summary = HistoryEntry(None, Message.user(message.content))
    rest = [*(entries[i] for i in pinned), *entries[start:position], *entries[position + 1 :]]
    return [summary, *(entry for entry in rest if parse_marker(entry[1]) is None)]


def is_transfer_message(entry: HistoryEntry) -> bool:
    """True for the tool call and tool result of a transfer."""
    message = entry.message
    if message.role == "tool":
        return message.name == TRANSFER_TOOL_NAME
    if message.role == "assistant" and message.tool_calls:
        return all(call.name == TRANSFER_TOOL_NAME for call in message.tool_calls)
    return False


def as_context(entry: HistoryEntry) -> Message | None:
    """Another agent's message rewritten as a user-role context message (None if empty).

    A message with parts (a tool's image...) keeps them, after the context line.
    """
    message, who = entry.message, entry.agent_name
    if message.parts:
        if message.role == "tool":
            lead = f"For context: [{who}] tool '{message.name}' returned result:"
        else:
            lead = f"For context: [{who}] said:"
        return Message.user([lead, *message.parts])
    if message.role == "tool":
        return Message.user(
            f"For context: [{who}] tool '{message.name}' returned result: {message.content}"
        )
    parts = []
    if message.content:
        parts.append(f"For context: [{who}] said: {message.content}")
    for call in message.tool_calls:
        parts.append(
            f"For context: [{who}] called tool '{call.name}' with arguments: {call.arguments}"
        )
    if not parts:
        return None
    return Message.user("\n".join(parts))


def default_history_rewriter(entries: Sequence[HistoryEntry], agent_name: str) -> list[Message]:
    """Keep the root input and ``agent_name``'s own messages; turn others' into context.

    Others' context that was recorded between one of the agent's own tool
    calls and its results (parallel branches talk at the same time) is moved
    after those results: chat APIs require tool results right after the call.
    """
    messages: list[Message] = []
    append = messages.append
    deferred: list[Message] = []
    open_calls: set[str] = set()
    for entry in entries:  # runs over the whole conversation: kept lean
        author, message = entry[0], entry[1]
        if author is None or author == agent_name:
            append(message)
            if message.tool_calls:
                if message.role == "assistant":
                    open_calls = {call.id for call in message.tool_calls}
            elif open_calls and message.role == "tool":
                open_calls.discard(message.tool_call_id)
            if deferred and not open_calls:
                messages.extend(deferred)
                deferred.clear()
            continue
        if message.role == "system":
            continue
        rewritten = as_context(entry)
        if rewritten is not None:
            (deferred if open_calls else messages).append(rewritten)
    messages.extend(deferred)
    return messages


def input_messages(ctx: RunContext, agent_name: str) -> list[Message]:
    """The input of ``agent_name`` starting now: the history rewritten for it."""
    settings = ctx.settings
    entries = history_entries(ctx)
    if settings.skip_transfer_messages:
        entries = [entry for entry in entries if not is_transfer_message(entry)]
    rewriter = settings.history_rewriter or default_history_rewriter
    return rewriter(entries, agent_name)
