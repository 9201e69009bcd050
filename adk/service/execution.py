"""execute_job: one segment of a service run, executed from the store alone.

Called by the embedded queue in the server process and by ``adk worker``
processes alike. It reads the run's records, decides what this job is (a
new run, a continuation after answers, a resume or a retry, or the recovery
of a run whose executor died), executes it with the service's Runner for the
agent and workspace (``durability="step"``: nothing completed runs twice),
appends every complete event to the run's event log as it goes, applies the
signals logged for the run (cancel, pause, feedback), and records the
outcome. A job delivered twice does nothing the second time; a job whose run
another live executor holds raises :class:`~adk.state.lease.RunInProgress`
(the queue tries again later).
"""

from __future__ import annotations

import logging
import os
import socket
import time
from contextlib import aclosing
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
from pydantic_core import to_jsonable_python

from adk.agents.base import error_event
from adk.errors import RunCancelled
from adk.events import AgentEvent
from adk.messages import Message
from adk.runner.checkpoint import CheckpointNotFound
from adk.runner.control import RunControl
from adk.runner.execution import RunExecution
from adk.runner.preparation import new_run, resumed_run
from adk.runner.tracking import outcome
from adk.service.eventlog import EventLog, event_data
from adk.service.jobs import RunJob
from adk.service.records import RunRecords, RunState
from adk.state.lease import RunInProgress
from adk.state.signals import Signal, SignalListener, read_signals

if TYPE_CHECKING:
    from adk.runner.runner import Runner
    from adk.service.service import Service

logger = logging.getLogger("adk.service")


async def execute_job(service: Service, job: RunJob) -> str:
    """Execute ``job``'s segment of its run; the status the run stopped at.

    Returns the run's current status at once for a job that has nothing to
    do (the run stopped, finished or was cancelled meanwhile; ``"missing"``
    if the run's records are gone).
    """
    store = service.store_of(job.workspace)
    runner = service.runner(job.workspace, job.agent)
    records = RunRecords(store, job.run_id, runner.checkpoint_ttl)
    state = await records.state()
    if state is None:
        logger.warning("run %s (workspace %s): no records, job dropped", job.run_id, job.workspace)
        return "missing"
    if state.status not in ("queued", "running"):
        return state.status  # stopped or finished: a job delivered again
    recovering = state.status == "running"
    if not recovering and not await records.claim(f"start:{state.segment}", attempt=job.attempt):
        holder = await records.claim_of(f"start:{state.segment}")
        if holder is not None and holder.get("cancelled"):
            return "cancelled"
        recovering = True  # another executor took this segment: running, or dead
    log = EventLog(store, job.run_id, runner.checkpoint_ttl)
    try:
        execution = await _prepare(runner, job, state, records, recovering)
    except RunInProgress:
        raise
    except Exception as exc:  # the segment cannot start: the run fails with the reason
        event = error_event(runner.agent.name, _bare_ctx(job.run_id, runner), exc)
        await log.append_event(event)
        return await _stop(records, log, state, "failed", None, event, event)
    return await _Segment(runner, execution, records, log, state, recovering).run()


async def _prepare(
    runner: Runner, job: RunJob, state: RunState, records: RunRecords, recovering: bool
) -> RunExecution:
    """The execution of this segment (raises RunInProgress if a live executor holds it)."""
    options = job.options
    agent_options = options.get("agent_options") or None
    resume = options.get("resume")
    answers = resume.get("answers") if isinstance(resume, dict) else None
    if recovering:
        try:
            prepared = await resumed_run(runner, job.run_id, answers, None, agent_options, None)
            return RunExecution(runner.agent, *prepared)
        except CheckpointNotFound:  # nothing journaled yet: whoever claimed it may be starting it
            holder = await records.claim_of(f"start:{state.segment}")
            if state.segment > 1 or (holder is not None and _alive(holder, runner.resume_lease)):
                raise RunInProgress(
                    f"run {job.run_id!r} is being started by another executor ({holder})"
                ) from None
    elif state.segment > 1:  # a continuation: answers, resume or retry
        checkpoint = (
            state.checkpoint_id if resume is not None and state.checkpoint_id else job.run_id
        )
        prepared = await resumed_run(runner, checkpoint, answers, None, agent_options, None)
        return RunExecution(runner.agent, *prepared)
    prepared = new_run(
        runner,
        input_messages(job.input),
        None,
        job.session_id,
        job.run_id,
        agent_options,
        None,
        options.get("user_id"),
    )
    return RunExecution(runner.agent, *prepared)


def input_messages(value: list[dict[str, Any]] | str) -> list[Message]:
    """A job's input as messages (a str is one user message)."""
    if isinstance(value, str):
        return [Message.user(value)]
    return [Message.model_validate(item) for item in value]


def _alive(holder: dict[str, Any], lease_seconds: float) -> bool:
    """Whether the executor that claimed a segment may still be starting it."""
    if holder.get("host") == socket.gethostname() and isinstance(holder.get("pid"), int):
        if holder["pid"] == os.getpid():
            return False  # this process: a job that died here is not running any more
        try:
            os.kill(holder["pid"], 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return time.time() - float(holder.get("at", 0.0)) < lease_seconds


@dataclass
class _Cancel:
    """Whether a cancel signal arrived, and the scope to cancel."""

    requested: bool = False
    scope: anyio.CancelScope | None = None

    def fire(self) -> None:
        self.requested = True
        if self.scope is not None:
            self.scope.cancel()


class _Segment:
    """One execution: events to the log, signals applied, outcome recorded."""

    def __init__(
        self,
        runner: Runner,
        execution: RunExecution,
        records: RunRecords,
        log: EventLog,
        state: RunState,
        recovering: bool,
    ) -> None:
        self.runner = runner
        self.execution = execution
        self.records = records
        self.log = log
        self.state = state
        self.recovering = recovering
        self.control = RunControl()
        self.cancel = _Cancel()
        self.last: AgentEvent | None = None
        self.answer: AgentEvent | None = None

    async def run(self) -> str:
        """Execute, then record how the segment stopped."""
        self.execution.ctx.set_operations(control=self.control)
        replayed = await self._logged_tail() if self.recovering else []
        state = self.state
        state.status, state.error, state.interrupts = "running", None, []
        await self.records.write_state(state)
        await self.log.append_status("running", segment=state.segment, recovered=self.recovering)
        applied = await self._catch_up()
        async with anyio.create_task_group() as group:
            group.start_soon(self._listen, applied)
            try:
                with anyio.CancelScope() as scope:
                    self.cancel.scope = scope
                    if self.cancel.requested:
                        scope.cancel()
                    await self._stream(replayed)
            finally:
                group.cancel_scope.cancel()
        if self.cancel.requested:
            name = self.runner.agent.name
            cancelled = RunCancelled(f"run {self.records.run_id!r} was cancelled by a signal")
            event = error_event(name, self.execution.ctx, cancelled)
            with anyio.CancelScope(shield=True):
                await self.log.append_event(event)
                await _stop(self.records, self.log, state, "cancelled", None, event, None)
            return "cancelled"
        status, _, checkpoint = outcome(self.execution.ctx.failed, self.last)
        with anyio.CancelScope(shield=True):
            await _stop(self.records, self.log, state, status, checkpoint, self.last, self.answer)
        return status

    async def _stream(self, replayed: list[dict[str, Any]]) -> None:
        async with aclosing(self.execution.events()) as events:
            async for event in events:
                if event.partial:
                    continue
                self.last = event
                if event.message is not None or event.value is not None:
                    self.answer = event
                data = event_data(event)
                if replayed:  # a recovered run delivers again what followed its last journal write
                    if data in replayed:
                        del replayed[: replayed.index(data) + 1]
                        continue
                    replayed = []
                await self.log.append("event", data)

    async def _logged_tail(self) -> list[dict[str, Any]]:
        """The events logged since the dead executor's segment began (what may come again)."""
        tail: list[dict[str, Any]] = []
        for entry in await self.log.read():
            if entry.kind == "status" and entry.data.get("status") == "running":
                tail = []
            elif entry.kind == "event":
                tail.append(entry.data)
        return tail

    async def _catch_up(self) -> int:
        """Apply the signals logged while no executor listened (feedback to a paused run)."""
        applied = await self.records.applied()
        for signal in await read_signals(self.records.store, self.records.run_id, applied):
            await self._apply(signal)
            applied = signal.seq
        return applied

    async def _apply(self, signal: Signal) -> None:
        if signal.kind == "cancel":
            self.cancel.fire()
        elif signal.kind == "pause":
            self.control.pause_requested = True
        elif signal.kind == "feedback":
            self.control.feedback.append(str(signal.payload.get("text", "")))
        await self.records.set_applied(signal.seq)

    async def _listen(self, after: int) -> None:
        """Apply the run's signals (cancel, pause, feedback) in log order, from any sender."""
        store, run_id = self.records.store, self.records.run_id
        while True:
            try:
                async with SignalListener(store, run_id, after_seq=after) as listener:
                    while True:
                        signal = await listener.next()
                        await self._apply(signal)
                        after = signal.seq
            except Exception as exc:  # the store is down: listen again a little later
                logger.warning("run %s: signal listener failed: %r", run_id, exc)
                await anyio.sleep(1.0)


async def _stop(
    records: RunRecords,
    log: EventLog,
    state: RunState,
    status: str,
    checkpoint_id: str | None,
    last: AgentEvent | None,
    answer: AgentEvent | None,
) -> str:
    """Record the status a segment stopped at (state record, then the log's status entry)."""
    state.status, state.checkpoint_id = status, checkpoint_id
    error = last.error if last is not None else None
    state.error = {"type": error.type, "message": error.message} if error is not None else None
    interrupted = last.action.interrupted if last is not None and last.action else None
    state.interrupts = (
        [to_jsonable_python(i.model_dump(), fallback=repr) for i in interrupted.interrupts]
        if interrupted is not None and status in ("interrupted", "paused")
        else []
    )
    if answer is not None:
        state.text = answer.text
        value = answer.value
        state.output = (
            to_jsonable_python(value, fallback=repr) if value is not None else answer.text
        )
    await records.write_state(state)
    details: dict[str, Any] = {"segment": state.segment}
    if state.error is not None:
        details["error"] = state.error
    if state.interrupts:
        details["interrupts"] = state.interrupts
    await log.append_status(status, **details)
    return status


def _bare_ctx(run_id: str, runner: Runner) -> Any:
    from adk.state.context import RunContext

    return RunContext.create(run_id=run_id, run_path=(runner.agent.name,))
