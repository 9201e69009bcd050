"""The Runner's side of usage budgets: each run's account, and the stop at a limit.

Every run gets a :class:`~adk.state.budgets.UsageAccount` (its usage total is
what ``RunResult.usage`` reports). With limits, a
:class:`~adk.UsageLimitExceeded` from any depth (a nested agent, an agent
tool, one parallel branch) ends the run: every later check raises it again,
calls already in flight in other branches complete (and are journaled), the
run's last event is the limit's error event, and the execution checkpoints
the run (``_settle``) so that
``runner.resume(run_id, usage_limits=...)`` with a raised limit continues
from its journal: completed calls replay (their usage counts again toward the
run's account, since limits are per run) and only the refused call is new.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing

from adk.agents.base import error_event
from adk.errors import UsageLimitExceeded
from adk.events import AgentEvent
from adk.state.budgets import UsageAccount, UsageLimits
from adk.state.context import RunContext


def checked_usage_limits(value: object, where: str) -> UsageLimits | None:
    """``value`` if it is a :class:`~adk.UsageLimits` or None, else a TypeError naming ``where``."""
    if value is None or isinstance(value, UsageLimits):
        return value
    raise TypeError(f"{where} usage_limits must be an adk.UsageLimits or None, got {value!r}")


def with_limits(ctx: RunContext, limits: UsageLimits | None) -> None:
    """Give the run of ``ctx`` an account with a run method's ``limits`` (None: the Runner's)."""
    if limits is not None:
        ctx.set_operations(account=UsageAccount(limits, ctx.serving, ctx.run_id))


def stopped(ctx: RunContext) -> UsageLimitExceeded | None:
    """The limit that stopped the run of ``ctx``, if one did."""
    account = ctx.account
    return None if account is None else account.exceeded


def budgeted(
    stream: AsyncGenerator[AgentEvent, None], ctx: RunContext
) -> AsyncGenerator[AgentEvent, None]:
    """The run's event stream, ended by a usage-limit error event (``stream`` without limits)."""
    account = ctx.account
    if account is None or not account.limited:
        return stream
    return _budgeted(stream, ctx)


async def _budgeted(
    stream: AsyncGenerator[AgentEvent, None], ctx: RunContext
) -> AsyncGenerator[AgentEvent, None]:
    # Not cut at the first stop: calls other branches have in flight complete and are
    # journaled (not paid for twice on resume); every later check of the run raises again,
    # so the agents wind down by themselves.
    last_was_stop = False
    async with aclosing(stream) as events:
        async for event in events:
            error = event.error
            last_was_stop = error is not None and isinstance(error.exception, UsageLimitExceeded)
            yield event
    exceeded = stopped(ctx)
    if exceeded is None:
        return
    ctx.failed = True
    if not last_was_stop:  # a branch answered after the stop: the stop is still the last word
        final = error_event(ctx.run_path[-1] if ctx.run_path else "", ctx, exceeded.again())
        ctx.record(final)
        yield final
