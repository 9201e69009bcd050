"""The postprocess half of a ChatModelAgent step: what a reply or its tool results mean.

:meth:`ChatModelAgent.run <adk.ChatModelAgent.run>` is a short step loop
(get the reply, run its tool calls, then ask this module what follows).
Each function here returns the events to deliver and whether the turn is
over, so the loop stays the one place that yields; none of them awaits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adk.agents.output import FINAL_RESULT_TOOL, OutputInvalid, correction, output_error
from adk.agents.turn import Turn, ending_last, one_transfer
from adk.errors import MaxIterationsExceeded
from adk.events import AgentAction, AgentEvent, Interrupted
from adk.messages import Message
from adk.state.context import RunContext
from adk.tools.batch import order_for_delivery
from adk.tools.execution import ToolOutcome

if TYPE_CHECKING:
    from adk.agents.chat_model import ChatModelAgent

Step = tuple[list[AgentEvent], bool]
"""The events a step delivers, and whether they end the turn."""


def answered(agent: ChatModelAgent, turn: Turn, reply: Message) -> Step:
    """A reply without tool calls: the answer, or (structured output) a correction round.

    Without ``output_type`` the reply is the answer. With one, a valid reply
    is delivered with its value; an invalid one is delivered as it is (it
    happened, and its tokens count) and then either ends the turn with an
    :class:`~adk.OutputValidationError` (retries spent) or the turn goes on
    with a correction queued for the next model call.
    """
    ctx, output = turn.ctx, agent.output
    if output is None:
        store_output(agent, ctx, reply.content)
        return [agent.event(ctx, message=reply)], True
    try:
        value = output.parse_text(reply.content)
    except OutputInvalid as exc:
        errors = exc.errors
        if agent.mode == "tool":
            errors = [f"give your answer by calling the {FINAL_RESULT_TOOL} tool", *errors]
        events = [agent.event(ctx, message=reply)]
        turn.output_failures += 1
        if turn.output_failures > agent.output_retries:
            error = output_error(output, reply.content, errors, turn.output_failures)
            return [*events, agent.error_event(ctx, error)], True
        turn.messages = [*turn.messages, reply, Message.user(correction(errors))]
        return events, False
    store_output(agent, ctx, reply.content, value)
    return [agent.event(ctx, message=reply, value=value)], True


def tools_ran(
    agent: ChatModelAgent, turn: Turn, reply: Message, outcomes: list[ToolOutcome]
) -> Step:
    """The reply's tool results: delivered, then a pause, the turn's end, or the next call.

    Calls waiting for an answer pause the turn (the completed ones are
    delivered first); an exit, transfer, break-loop or return-directly
    result ends it (delivered last); otherwise the results join the
    conversation for the next model call.
    """
    ctx = turn.ctx
    completed = one_transfer(order_for_delivery(outcomes))
    if len(completed) < len(outcomes):  # some calls wait for an answer
        events = [
            agent.event(ctx, message=outcome.message, action=outcome.merged_action())
            for outcome in completed
        ]
        pending = tuple(info for outcome in outcomes for info in outcome.interrupts)
        events.append(
            agent.event(ctx, action=AgentAction(interrupted=Interrupted(interrupts=pending)))
        )
        return events, True
    ending = turn_end(agent, completed)
    value = ending_value(agent, ending)
    events = []
    for outcome in ending_last(completed, ending):
        action = outcome.merged_action()
        if outcome is ending and value is not None:
            events.append(agent.event(ctx, message=outcome.message, action=action, value=value))
        else:
            events.append(agent.event(ctx, message=outcome.message, action=action))
    if ending is not None:
        if not any(action.transfer_to_agent for action in ending.actions):
            store_output(agent, ctx, ending.message.content, value)
        return events, True
    if agent.output is not None:
        failure = failed_final_result(agent, turn, reply, completed)
        if failure is not None:
            return [*events, failure], True
    turn.messages = [*turn.messages, reply, *[outcome.message for outcome in completed]]
    return events, False


def out_of_iterations(agent: ChatModelAgent, turn: Turn) -> AgentEvent:
    """The error event of a turn that used all its model calls without a final answer."""
    return agent.error_event(
        turn.ctx,
        MaxIterationsExceeded(
            f"agent {agent.name!r} made {turn.max_iterations} model calls without a final "
            "answer (raise max_iterations if the task needs more tool rounds)"
        ),
    )


def turn_end(agent: ChatModelAgent, outcomes: list[ToolOutcome]) -> ToolOutcome | None:
    """The outcome that ends this turn (exit, transfer, break-loop, return-directly)."""
    for outcome in outcomes:
        if not outcome.actions:
            continue
        for action in outcome.actions:
            if action.exit or action.transfer_to_agent is not None or action.break_loop:
                return outcome
    for outcome in outcomes:
        if not outcome.failed and (
            outcome.return_directly or outcome.message.name in agent.return_directly
        ):
            return outcome
    return None


def ending_value(agent: ChatModelAgent, ending: ToolOutcome | None) -> Any:
    """The validated value of a turn ended by a successful ``final_result`` call, else None."""
    output = agent.output
    if output is None or ending is None or ending.failed:
        return None
    if ending.message.name != FINAL_RESULT_TOOL:
        return None
    return output.parse_text(ending.message.content)


def failed_final_result(
    agent: ChatModelAgent, turn: Turn, reply: Message, outcomes: list[ToolOutcome]
) -> AgentEvent | None:
    """Count invalid ``final_result`` calls; the error event once retries are spent."""
    assert agent.output is not None
    failed = [o for o in outcomes if o.failed and o.message.name == FINAL_RESULT_TOOL]
    if not failed:
        return None
    turn.output_failures += len(failed)
    if turn.output_failures <= agent.output_retries:
        return None
    last = failed[-1]
    raw = reply.tool_calls[last.index].arguments if last.index < len(reply.tool_calls) else ""
    error = output_error(agent.output, raw, [last.message.content], turn.output_failures)
    return agent.error_event(turn.ctx, error)


def store_output(agent: ChatModelAgent, ctx: RunContext, text: str, value: Any = None) -> None:
    """Set ``output_key``: the answer's text, or the validated value as JSON-able data."""
    if agent.output_key:
        if value is not None and agent.output is not None:
            ctx.set(agent.output_key, agent.output.dump(value))
        else:
            ctx.set(agent.output_key, text)
