"""The context step before each model call of a ChatModelAgent with a ContextPolicy.

One step, three parts, each decided live once and journaled (docs/context.md):
tool-result GC (adk.agents.context_gc), then compaction when GC was not
enough (adk.agents.compaction), then the check that no single message is
larger than the window. Replaying a call, the journaled decisions are applied
as they were and their events delivered again; nothing is counted or
summarised twice.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

from adk.agents.compaction import (
    COMPACTION_SUFFIX,
    CompactionPlan,
    ModelSummariser,
    fallback_summary,
    marker_message,
    plan_compaction,
    summarise,
    summary_message,
    truncated,
)
from adk.agents.context_gc import (
    CONTEXT_SUFFIX,
    TurnContext,
    aged_results,
    elide,
    gc_event,
    oversized_message,
)
from adk.agents.history import recorded_entries
from adk.errors import GuardrailTripped, UsageLimitExceeded
from adk.events import AgentEvent
from adk.messages import Message, Usage
from adk.state.context_policy import COMPACTION_COMPLETE, COMPACTION_STARTING, SummaryRequest

if TYPE_CHECKING:
    from adk.agents.chat_model import ChatModelAgent
    from adk.agents.turn import Turn


async def manage_context(
    agent: ChatModelAgent, turn: Turn, key: str
) -> AsyncGenerator[AgentEvent, None]:
    """Manage the context before model call ``key``; yields the events to deliver.

    An error event (a message larger than the usable window) ends the turn:
    the caller stops after delivering it.
    """
    state = turn.context
    assert state is not None
    journal = turn.journal
    live = journal.model_result(key) is None
    policy, specs = state.policy, turn.toolset.specs
    usable = state.window - policy.headroom
    tokens = -1  # counted on demand, live calls only
    collected = False  # GC ran live before this call
    decision = journal.value(key + CONTEXT_SUFFIX)
    if isinstance(decision, dict):  # GC taken here before: the same again
        turn.messages = elide(state, turn.messages, list(decision.get("elided", ())))
        yield gc_event(agent, turn, decision)
    elif live and policy.gc:
        tokens = state.counter(turn.messages, specs)
        aged = aged_results(state, turn.messages)
        batch = policy.gc_batch
        if aged and (tokens > policy.threshold * usable or (batch and len(aged) >= batch)):
            turn.messages = elide(state, turn.messages, aged)
            after = state.counter(turn.messages, specs)
            decision = {"elided": aged, "tokens_before": tokens, "tokens_after": after}
            journal.note_value(key + CONTEXT_SUFFIX, decision)
            yield gc_event(agent, turn, decision)
            tokens, collected = after, True
    compacted = journal.value(key + COMPACTION_SUFFIX)
    if isinstance(compacted, dict):
        for event in replayed_compaction(agent, turn, key, compacted):
            yield event
        return
    if not live:
        return
    if tokens < 0:
        tokens = state.counter(turn.messages, specs)
    # A step should leave room for many calls before the next one (rare steps keep the
    # prefix cache warm): when GC ran but left more than half the threshold, compact too,
    # if what compaction would summarise is worth it (a quarter of the threshold at least).
    limit = policy.threshold * usable
    if policy.compaction and (tokens > limit or (collected and tokens > limit / 2)):
        minimum = 0.0 if tokens > limit else limit / 4
        async for event in compact(agent, turn, key, tokens, minimum):
            yield event
        tokens = state.counter(turn.messages, specs)
    if tokens > usable:
        oversized = oversized_message(state, turn.messages)
        if oversized is not None:
            yield agent.error_event(turn.ctx, oversized)


async def compact(
    agent: ChatModelAgent, turn: Turn, key: str, before: int, minimum: float = 0.0
) -> AsyncGenerator[AgentEvent, None]:
    """Summarise the older messages now: starting event, summariser, journal, complete event.

    Nothing happens when there is nothing to summarise, or less than
    ``minimum`` tokens of it.
    """
    state = turn.context
    assert state is not None
    plan = plan_compaction(state, turn.messages)
    if plan is None:  # everything is recent or pinned: nothing to summarise
        return
    ctx = turn.ctx
    summarised = plan.summarised(turn.messages)
    if minimum and state.counter(summarised, ()) < minimum:
        return
    yield agent.custom_event(
        ctx,
        {"kind": COMPACTION_STARTING, "tokens_before": before, "messages": len(summarised)},
    )
    usable = state.window - state.policy.headroom
    max_tokens = max(64, int(0.15 * usable))
    error: str | None = None
    try:
        text, usage = await summary_of(agent, turn, key, summarised, max_tokens)
    except (UsageLimitExceeded, GuardrailTripped):
        raise  # the run's limits and guards end the run, as for any model call
    except Exception as exc:  # the documented fallback keeps the run going
        error = f"{type(exc).__name__}: {exc}"
        text, usage = fallback_summary(summarised, error), None
    text = truncated(text, max_tokens)
    marker = session_marker(turn, plan)
    keep_originals(state, summarised)
    turn.messages = plan.apply(turn.messages, text)
    after = state.counter(turn.messages, turn.toolset.specs)
    decision: dict[str, Any] = {
        **plan.as_value(),
        "summary": text,
        "tokens_before": before,
        "tokens_after": after,
        "summarised": len(summarised),
        "fallback": error is not None,
        "error": error,
        "usage": None if usage is None else [usage.prompt_tokens, usage.completion_tokens],
        "marker": marker,
    }
    turn.journal.note_value(key + COMPACTION_SUFFIX, decision)
    if turn.journal.step:
        await turn.journal.flush()
    charge(agent, turn, key, decision)
    yield complete_event(agent, turn, decision)


def replayed_compaction(
    agent: ChatModelAgent, turn: Turn, key: str, decision: dict[str, Any]
) -> list[AgentEvent]:
    """Apply a journaled compaction again; its two events, as first delivered."""
    state = turn.context
    assert state is not None
    plan = CompactionPlan.from_value(decision)
    keep_originals(state, plan.summarised(turn.messages))
    turn.messages = plan.apply(turn.messages, str(decision["summary"]))
    charge(agent, turn, key, decision)
    starting = {
        "kind": COMPACTION_STARTING,
        "tokens_before": decision["tokens_before"],
        "messages": decision["summarised"],
    }
    return [agent.custom_event(turn.ctx, starting), complete_event(agent, turn, decision)]


async def summary_of(
    agent: ChatModelAgent, turn: Turn, key: str, summarised: list[Message], max_tokens: int
) -> tuple[str, Usage | None]:
    """The summary of ``summarised``, folded over chunks the summariser's window can take."""
    state = turn.context
    assert state is not None
    summariser = state.policy.summariser or ModelSummariser()
    limit = int(0.5 * (state.window - state.policy.headroom))
    chunks: list[list[Message]] = [[]]
    size = 0
    for message in summarised:
        tokens = state.counter([message], ())
        if chunks[-1] and size + tokens > limit:
            chunks.append([])
            size = 0
        chunks[-1].append(message)
        size += tokens
    text, total = "", Usage()
    call_id = turn.call_prefix + key + COMPACTION_SUFFIX
    for index, chunk in enumerate(chunks):
        request = SummaryRequest(
            messages=tuple([summary_message(text), *chunk] if text else chunk),
            max_tokens=max_tokens,
            agent=agent.name,
            model=turn.model,
            stage=f"{agent.stage}.compaction",
            call_id=call_id if len(chunks) == 1 else f"{call_id}.{index}",
            ctx=turn.ctx,
        )
        text, usage = await summarise(summariser, request)
        if usage is not None:
            total = total + usage
    return text, total if total.total_tokens else None


def keep_originals(state: TurnContext, summarised: list[Message]) -> None:
    """Remember the summarised tool results, so ``recall`` can still return them."""
    originals = state.originals
    for message in summarised:
        call_id = message.tool_call_id
        if message.role == "tool" and call_id and call_id not in originals:
            originals[call_id] = message


def charge(agent: ChatModelAgent, turn: Turn, key: str, decision: dict[str, Any]) -> None:
    """Add the summariser's usage (live or replayed) to the run's account."""
    account = turn.ctx._shared.account
    usage = decision.get("usage")
    if account is None or not usage:
        return
    call_id = turn.call_prefix + key + COMPACTION_SUFFIX
    account.charge(
        agent.name, turn.model, Usage(prompt_tokens=usage[0], completion_tokens=usage[1]), call_id
    )


def complete_event(agent: ChatModelAgent, turn: Turn, decision: dict[str, Any]) -> AgentEvent:
    """The ``compaction_complete`` event; with the history marker when one was made."""
    before, after = decision["tokens_before"], decision["tokens_after"]
    payload = {
        "kind": COMPACTION_COMPLETE,
        "tokens_before": before,
        "tokens_after": after,
        "tokens_saved": before - after,
        "summarised": decision["summarised"],
        "fallback": decision["fallback"],
        "error": decision["error"],
        "summary": decision["summary"],
    }
    marker = decision.get("marker")
    if not marker:
        return agent.custom_event(turn.ctx, payload)
    kept, distances = marker
    message = marker_message(str(decision["summary"]), kept, distances)
    return agent.event(turn.ctx, message=message, custom=payload)


def session_marker(turn: Turn, plan: CompactionPlan) -> list[Any] | None:
    """``[kept, pinned distances]`` of the history entries this compaction keeps, if mappable.

    The history (a session's turns, the run's input and events) gets a marker
    entry, so later agents and turns see the summary instead of what it
    replaced. That needs the kept messages found among the recorded entries;
    when they are not (another agent's messages rewritten for this one), the
    compaction stays within this turn.
    """
    entries = recorded_entries(turn.ctx)
    messages = turn.messages
    first = find_entry(entries, messages[plan.cut], len(entries))
    if first is None:
        return None
    distances = []
    for index in plan.pinned:
        found = find_entry(entries, messages[index], first)
        if found is None:
            return None
        distances.append(len(entries) - found)
    return [len(entries) - first, distances]


def find_entry(entries: list[Any], message: Message, before: int) -> int | None:
    """The index of the last entry before ``before`` holding ``message``, or None."""
    for index in range(before - 1, -1, -1):
        if entries[index][1] == message:
            return index
    return None
