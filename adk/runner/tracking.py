"""Keeping a run's status record while it executes (handles and ``Runner(track_runs=True)``).

:func:`tracked_events` wraps one execution: ``running`` before it starts,
its outcome after (completed, failed, paused, interrupted, cancelled). The
last write is shielded from cancellation, so a cancelled run still ends with
a whole status record.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import TYPE_CHECKING

import anyio

from adk.events import AgentEvent
from adk.runner.control import is_pause
from adk.runner.status import RunStatusInfo, Status, write_status

if TYPE_CHECKING:
    from adk.runner.execution import RunExecution
    from adk.runner.result import RunResult
    from adk.state.stores.base import CheckpointStore


def outcome(failed: bool, last: AgentEvent | None) -> tuple[Status, str | None, str | None]:
    """``(status, error type, checkpoint id)`` of an execution that ended with event ``last``."""
    if last is not None and last.action is not None and last.action.interrupted is not None:
        interrupted = last.action.interrupted
        if interrupted.checkpoint_id is not None and not failed:
            pauses = all(is_pause(info.info) for info in interrupted.interrupts)
            return ("paused" if pauses else "interrupted"), None, interrupted.checkpoint_id
    if failed:
        error = last.error.type if last is not None and last.error is not None else None
        return "failed", error, None
    return "completed", None, None


async def record_outcome(
    store: CheckpointStore,
    info: RunStatusInfo,
    status: Status,
    error: str | None,
    checkpoint_id: str | None,
    ttl: float | None,
) -> RunStatusInfo:
    """Write the execution's outcome, shielded: a cancellation never leaves it half done."""
    with anyio.CancelScope(shield=True):
        written = await write_status(
            store, info, status, error=error, checkpoint_id=checkpoint_id, ttl=ttl
        )
    return written


async def tracked_events(
    execution: RunExecution, store: CheckpointStore, info: RunStatusInfo, ttl: float | None
) -> AsyncGenerator[AgentEvent, None]:
    """The execution's events, with its status record kept (``Runner(track_runs=True)``)."""
    last: AgentEvent | None = None
    done = False
    try:
        async with aclosing(execution.events()) as events:
            async for event in events:
                if not event.partial:
                    last = event
                yield event
        done = True
    finally:
        if done:
            status, error, checkpoint = outcome(execution.ctx.failed, last)
        else:  # closed early or cancelled: the run did not finish
            status, error, checkpoint = "cancelled", None, None
        await record_outcome(store, info, status, error, checkpoint, ttl)


async def tracked_result(
    execution: RunExecution, store: CheckpointStore, info: RunStatusInfo, ttl: float | None
) -> RunResult:
    """:meth:`RunExecution.result` with its status record kept (``Runner(track_runs=True)``)."""
    try:
        result = await execution.result()
    except Exception as exc:
        await record_outcome(store, info, "failed", type(exc).__name__, None, ttl)
        raise
    except BaseException:
        await record_outcome(store, info, "cancelled", None, None, ttl)
        raise
    last = result.events[-1] if result.events else None
    status, error, checkpoint = outcome(False, last)
    await record_outcome(store, info, status, error, checkpoint, ttl)
    return result
