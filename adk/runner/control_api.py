"""The Runner's run-control methods, kept here so that a Runner that never uses them loads none.

``Runner.start``, ``run_status``, ``signal`` and ``track_runs=True`` call
into this module (imported on first use).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from adk.errors import RunControlError
from adk.events import AgentEvent
from adk.messages import Content, Message
from adk.runner.arguments import check_invoke, check_user_id, is_content
from adk.runner.checkpoint import CheckpointNotFound, list_checkpoints, split_checkpoint_id
from adk.runner.execution import RunExecution
from adk.runner.handle import RunHandle
from adk.runner.preparation import new_run
from adk.runner.status import (
    RunStatusInfo,
    begin_status,
    check_payload,
    check_signal,
    read_status,
)
from adk.runner.tracking import tracked_events, tracked_result
from adk.state import signals
from adk.state.stores.base import CheckpointStore

if TYPE_CHECKING:
    from adk.runner.result import RunResult
    from adk.runner.runner import Options, Runner


def start_handle(
    runner: Runner,
    input: Content | Sequence[Message],
    session_values: MutableMapping[str, Any] | None,
    session_id: str | None,
    user_id: str | None,
    run_id: str | None,
    agent_options: Options | None,
) -> RunHandle:
    """The handle of a new run (prepared now: bad arguments raise here, not in the block)."""
    check_invoke(runner.tree, input, session_values, agent_options)
    check_user_id(user_id)
    messages = [Message.user(input)] if isinstance(input, str) or is_content(input) else list(input)
    prepared = new_run(
        runner, messages, session_values, session_id, run_id, agent_options, None, user_id
    )

    async def prepare() -> RunExecution:
        return RunExecution(runner.agent, *prepared)

    return RunHandle(runner, prepared[0].run_id, prepare)


async def run_status(store: CheckpointStore, run_id: str) -> RunStatusInfo:
    """The status of ``run_id``, or :class:`~adk.CheckpointNotFound`."""
    run_id = split_checkpoint_id(run_id)[0]
    info = await read_status(store, run_id)
    if info is None:
        raise CheckpointNotFound(f"no run {run_id!r} in the store (never tracked, or deleted)")
    return info


async def send(
    store: CheckpointStore, ttl: float | None, run_id: str, kind: str, payload: dict[str, Any]
) -> Any:
    """Check that signal ``kind`` applies to ``run_id`` now, then log it; the logged signal.

    ``ttl``: the Runner's checkpoint ttl (the signal log lives as long as the run's records).
    """
    info = await read_status(store, run_id)
    check_signal(run_id, info, kind)
    assert info is not None
    if not info.controlled:
        raise RunControlError(
            run_id,
            info.status,
            kind,
            "the run was not started with Runner.start: nothing listens for its signals",
        )
    pending: dict[str, Any] = {}
    if kind in ("approve", "reject") and info.checkpoint_id is not None:
        for checkpoint in await list_checkpoints(store, run_id):
            if checkpoint.id == info.checkpoint_id:
                pending = {i.id: i.info for i in checkpoint.interrupts}
    check_payload(run_id, info, kind, payload, pending)
    return await signals.send_signal(store, run_id, kind, payload, ttl=ttl)


async def _begin(runner: Runner, execution: RunExecution) -> RunStatusInfo:
    return await begin_status(
        runner.store,
        execution.ctx.run_id,
        runner.agent.name,
        durability=runner.durability,
        controlled=False,
        ttl=runner.checkpoint_ttl,
    )


async def tracked_stream(
    runner: Runner, execution: RunExecution
) -> AsyncGenerator[AgentEvent, None]:
    """``Runner.run``'s events with a status record (``track_runs=True``)."""
    info = await _begin(runner, execution)
    return tracked_events(execution, runner.store, info, runner.checkpoint_ttl)


async def tracked_invoke(runner: Runner, execution: RunExecution) -> RunResult:
    """``Runner.invoke`` with a status record (``track_runs=True``)."""
    info = await _begin(runner, execution)
    return await tracked_result(execution, runner.store, info, runner.checkpoint_ttl)
