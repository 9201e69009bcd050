"""Running the tool calls of one model response together.

The calls of one response run concurrently; their outcomes come back in the
order of the calls, or, when the run is replaying, in an order that puts
results that completed before a pause first, so a resumed run delivers them
where the caller already saw them.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from contextlib import aclosing

import anyio

from adk._streams import Producer, merged
from adk.events import AgentEvent
from adk.messages import ToolCall
from adk.state.addressing import tool_call_key
from adk.state.context import RunContext
from adk.tools.execution import Emit, ToolOutcome, run_tool_call
from adk.tools.toolbox import Toolbox


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


class _Batch:
    """The calls of one model response, run concurrently, outcomes kept in call order."""

    def __init__(
        self,
        calls: Sequence[ToolCall],
        toolbox: Toolbox,
        ctx: RunContext,
        agent_name: str,
        key_prefix: str,
        raise_errors: bool,
    ) -> None:
        self.calls = calls
        self.toolbox = toolbox
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
                self.toolbox,
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
    toolbox: Toolbox,
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
                calls[0], toolbox, ctx, agent_name, key=key, raise_errors=raise_errors
            )
        ]
    batch = _Batch(calls, toolbox, ctx, agent_name, key_prefix, raise_errors)
    async with anyio.create_task_group() as group:
        for index in range(len(calls)):
            group.start_soon(batch.run_one, index)
    return batch.results()


async def stream_tool_calls(
    calls: Sequence[ToolCall],
    toolbox: Toolbox,
    ctx: RunContext,
    agent_name: str,
    *,
    key_prefix: str = "",
    raise_errors: bool = False,
) -> AsyncGenerator[AgentEvent | list[ToolOutcome], None]:
    """Like :func:`run_tool_calls`, yielding the events tools forward while they run.

    The last item is the list of outcomes, in the order of the calls.
    """
    batch = _Batch(calls, toolbox, ctx, agent_name, key_prefix, raise_errors)

    def producer(index: int) -> Producer[AgentEvent]:
        async def produce(send: Emit) -> None:
            await batch.run_one(index, send)

        return produce

    async with aclosing(merged([producer(i) for i in range(len(calls))])) as events:
        async for event in events:
            yield event
    yield batch.results()
