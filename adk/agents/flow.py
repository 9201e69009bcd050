"""Running one agent as a unit of a run: errors as data, history recording, transfers.

Every place that runs an agent (the Runner, workflow agents, agent tools)
goes through :func:`run_agent`, so these rules hold at every depth:

- an exception the agent raises becomes its last event (an error event);
- the agent's own non-partial events are recorded in the run's history at
  the moment they are produced (events of deeper agents were recorded by
  their own ``run_agent``);
- when the agent's last control action is a transfer, the destination is
  looked up in the run's agent tree and runs next, on the shared history,
  with its name appended to the run path.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from adk.agents.base import Agent, AgentInput, error_event
from adk.agents.history import input_messages
from adk.agents.tree import AgentTree, tree_of
from adk.errors import AdkError
from adk.events import AgentAction, AgentEvent
from adk.state.context import RunContext


class TransferError(AdkError):
    """A transfer named an agent that is not in the run's agent tree."""


class TransferLimitExceeded(AdkError):
    """A run made more transfers than its limit (e.g. two agents handing a task back and forth)."""


def is_control(action: AgentAction | None) -> bool:
    """True if ``action`` steers control flow (exit, transfer, break-loop, interrupt)."""
    return action is not None and (
        action.exit
        or action.transfer_to_agent is not None
        or action.break_loop is not None
        or action.interrupted is not None
    )


async def run_agent(
    agent: Agent, input: AgentInput, ctx: RunContext
) -> AsyncGenerator[AgentEvent, None]:
    """Run ``agent`` (and the agents it transfers to) with errors as data.

    The stream ends after the agent's own first error event, whether it
    yielded it or raised; ``ctx.failed`` then tells the caller the unit
    failed (a composite sets it on its own context when it gives up because
    a child failed). Cancellation is never swallowed.
    """
    tree = tree_of(ctx, agent)
    tracer = ctx._shared.tracer
    current, current_input, current_ctx = agent, input, ctx
    while True:
        transfer_to: str | None = None
        own_path = current_ctx.run_path
        current_ctx.enter(current.name)
        invocation, journal, seq = current_ctx.invocation, current_ctx.journal, 0
        record = current_ctx.events.append
        stream = current.run(current_input, current_ctx)
        if tracer is not None:  # Runner(tracing=...): the invocation in an invoke_agent span
            stream = tracer.agent_stream(current.name, current_ctx, stream)
        raised: Exception | None = None
        try:
            async for event in stream:
                if event.run_path == own_path:
                    action, output = event.action, event.output
                    if output is None or not output.partial:
                        record(event)
                        # Interrupt events are where a resumed run diverges: not counted.
                        if action is None or action.interrupted is None:
                            if journal.count_event(invocation, seq):
                                journal.mark_replayed(event)
                            seq += 1
                    if action is not None and is_control(action):
                        target = action.transfer_to_agent
                        transfer_to = target.dest if target is not None else None
                    if event.error is not None:
                        ctx.failed = True
                        yield event
                        return
                yield event
        except Exception as exc:
            raised = exc
        finally:
            aclose = getattr(stream, "aclose", None)
            if aclose is not None:
                await aclose()
        if raised is not None:
            yield _failure(current, current_ctx, ctx, raised)
            return
        if current_ctx.failed:
            ctx.failed = True
            return
        if transfer_to is None:
            return
        dest = _transfer_destination(tree, current, current_ctx, transfer_to)
        if not isinstance(dest, Agent):
            yield _failure(current, current_ctx, ctx, dest)
            return
        current_ctx = _destination_context(ctx, current_ctx, dest.name)
        current_input = AgentInput(messages=input_messages(current_ctx, dest.name))
        current = dest


def _transfer_destination(
    tree: AgentTree, sender: Agent, sender_ctx: RunContext, dest: str
) -> Agent | AdkError:
    """The agent ``sender`` transferred to, or the error that stops the transfer."""
    agent = tree.get(dest)
    if agent is None:
        known = ", ".join(tree.names())
        return TransferError(
            f"agent {sender.name!r} transferred to {dest!r}, which is not in "
            f"the agent tree of {tree.root.name!r} (agents: {known})"
        )
    count = sender_ctx.count_transfer()
    limit = sender_ctx.settings.max_transfers
    if count > limit:
        return TransferLimitExceeded(
            f"run made more than {limit} transfers (last: {sender.name!r} -> "
            f"{agent.name!r}, path {'/'.join(sender_ctx.run_path)}); agents may be handing "
            "the task back and forth; raise Runner(max_transfers=...) if this is intended"
        )
    return agent


def _destination_context(unit_ctx: RunContext, sender_ctx: RunContext, dest: str) -> RunContext:
    """The context a transfer's destination runs with.

    A transfer to an agent already on this chain's run path is a return: the
    path is cut back to it (``router/billing`` back to ``router`` is
    ``router``). Any other destination is appended (``router/tech``). So a
    run path names the agents that handed the conversation down to the
    emitter, and back-and-forth does not make it grow.
    """
    path = sender_ctx.run_path
    first = len(unit_ctx.run_path) - 1  # the chain's first agent; above it is not ours
    for position in range(len(path) - 1, first - 1, -1):
        if path[position] == dest:
            return sender_ctx.back_to(len(path) - 1 - position)
    return sender_ctx.child(dest)


def _failure(
    agent: Agent, agent_ctx: RunContext, unit_ctx: RunContext, exc: Exception
) -> AgentEvent:
    """The error event ending ``agent``'s unit: recorded in history, the unit marked failed."""
    event = error_event(agent.name, agent_ctx, exc)
    agent_ctx.record(event)
    unit_ctx.failed = True
    return event
