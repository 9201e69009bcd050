"""RunHandle: one run driven in a task group, with signals applied as they arrive.

``async with runner.start("...") as handle:`` starts the run; a task group
holds the task executing it and a watcher task listening for the run's
signals in the store (:mod:`adk.state.signals`), so another process can
signal the run by id. The handle's own methods (``cancel``, ``pause``,
``feedback``...) send the same signals, and apply every signal logged up to
theirs before returning: signals take effect in the order they were logged,
whoever sent them, and none is lost.

A run executes in segments: the first, and one per resume (``resume``,
``approve``/``reject``, ``retry``). :meth:`RunHandle.events` and
:meth:`RunHandle.result` follow the latest segment. Leaving the ``async
with`` block waits for a running segment to end (or cancels it if the block
raised) and stops the watcher: no task outlives the block.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Any

import anyio
import anyio.abc

from adk.agents.base import error_event
from adk.errors import RunCancelled, RunControlError
from adk.events import AgentEvent
from adk.runner.control import RunControl
from adk.runner.result import RunResult
from adk.runner.status import RunStatusInfo, begin_status, check_payload, check_signal
from adk.runner.tracking import outcome, record_outcome
from adk.state import signals
from adk.state.interrupts import Approval

if TYPE_CHECKING:
    from adk.runner.execution import RunExecution
    from adk.runner.runner import Runner
    from adk.state.context import RunContext

logger = logging.getLogger("adk.runner")
Prepare = Callable[[], Awaitable["RunExecution"]]


class _Segment:
    """One execution of the run: its events as they come, and when it ended."""

    def __init__(self) -> None:
        self.events: list[AgentEvent] = []
        self.done = anyio.Event()
        self.changed = anyio.Event()
        self.scope: anyio.CancelScope | None = None
        self.execution: RunExecution | None = None
        self.cancelled = False
        self.previous: RunStatusInfo | None = None
        """For a resumed segment: the run's status before it (restored if it cannot start)."""

    def add(self, event: AgentEvent) -> None:
        self.events.append(event)
        self.changed.set()
        self.changed = anyio.Event()

    def finish(self) -> None:
        self.done.set()
        self.changed.set()


class RunHandle:
    """A run in progress: its id, events, result, status, and the signals it takes.

    Made by :meth:`adk.Runner.start`; use it as ``async with``. Signals
    (``cancel``, ``pause``, ``resume``, ``feedback``, ``approve``,
    ``reject``, ``retry``) raise :class:`~adk.RunControlError` when they do
    not apply to the run's status.
    """

    def __init__(self, runner: Runner, run_id: str, prepare: Prepare) -> None:
        self.runner = runner
        self.run_id = run_id
        self._prepare_first = prepare
        self._info: RunStatusInfo | None = None
        self._control = RunControl()
        self._segment = _Segment()
        self._group: anyio.abc.TaskGroup | None = None
        self._lock = anyio.Lock()
        self._applied = 0
        """Seq of the last signal applied (signals from the store)."""
        self._applied_changed = anyio.Event()
        self._pending: dict[str, Any] = {}
        """Interrupts the run waits on (id -> info), when interrupted."""

    # -- lifecycle --------------------------------------------------------------------

    async def __aenter__(self) -> RunHandle:
        runner = self.runner
        self._info = await begin_status(
            runner.store,
            self.run_id,
            runner.agent.name,
            durability=runner.durability,
            controlled=True,
            ttl=runner.checkpoint_ttl,
        )
        group = anyio.create_task_group()
        await group.__aenter__()
        self._group = group
        group.start_soon(self._drive, self._segment, self._prepare_first)
        group.start_soon(self._watch)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool | None:
        group = self._group
        assert group is not None
        try:
            segment = self._segment
            if exc is None:
                await segment.done.wait()
            else:  # the block failed or was cancelled: so is the run, recorded as such
                segment.cancelled = True
                if segment.scope is not None:
                    segment.scope.cancel()
                with anyio.CancelScope(shield=True):
                    await segment.done.wait()
        finally:
            group.cancel_scope.cancel()  # the watcher
            if isinstance(exc, Exception):  # the block's own error propagates, not wrapped
                await group.__aexit__(None, None, None)
            else:
                await group.__aexit__(exc_type, exc, tb)
        return None

    # -- reading ----------------------------------------------------------------------

    async def events(self) -> AsyncIterator[AgentEvent]:
        """The events of the latest segment as they come, until it stops (ends or pauses)."""
        segment, seen = self._segment, 0
        while True:
            changed = segment.changed
            while seen < len(segment.events):
                seen += 1
                yield segment.events[seen - 1]
            if segment.done.is_set():
                return
            await changed.wait()

    async def result(self) -> RunResult:
        """Wait until the latest segment stops; its result (like :meth:`adk.Runner.invoke`'s).

        A failed or cancelled run is not raised: its last event is the error event.
        """
        segment = self._segment
        await segment.done.wait()
        execution = segment.execution
        if execution is None:
            return RunResult(self.run_id, list(segment.events), {})
        ctx = execution.ctx
        return RunResult(
            self.run_id,
            list(segment.events),
            ctx.session_values,
            ctx.events,
            ctx.serving,
            ctx.account,
        )

    @property
    def applied_seq(self) -> int:
        """The seq of the last signal from the store applied to the run (0: none yet).

        Compare with the ``seq`` of :meth:`adk.Runner.signal`'s result to know
        that a signal from elsewhere took effect.
        """
        return self._applied

    async def wait_applied(self, seq: int) -> None:
        """Wait until the signal numbered ``seq`` (and every one before it) was applied.

        ``seq`` is that of the :class:`~adk.Signal` :meth:`adk.Runner.signal` returned.
        """
        while self._applied < seq:
            await self._applied_changed.wait()

    async def status(self) -> RunStatusInfo:
        """The run's status as stored (:meth:`adk.Runner.run_status`)."""
        return await self.runner.run_status(self.run_id)

    # -- signals ----------------------------------------------------------------------

    async def cancel(self) -> None:
        """Cancel the run: in-flight calls are cancelled; it ends with a RunCancelled event."""
        await self._signal("cancel", {})

    async def pause(self) -> None:
        """Pause at the next safe point: in-flight calls finish, then the run checkpoints."""
        await self._signal("pause", {})

    async def resume(self) -> None:
        """Resume a paused run (nothing completed runs again)."""
        await self._signal("resume", {})

    async def feedback(self, text: str) -> None:
        """Add a user message before the run's next model call (paused: after it resumes)."""
        if not isinstance(text, str):
            raise TypeError(f"feedback text must be a str, got {type(text).__name__}")
        await self._signal("feedback", {"text": text})

    async def approve(self, interrupt_id: str) -> None:
        """Approve the pending approval ``interrupt_id``; the run resumes."""
        await self._signal("approve", {"interrupt_id": interrupt_id})

    async def reject(self, interrupt_id: str, reason: str = "") -> None:
        """Reject the pending approval ``interrupt_id`` (the model reads ``reason``)."""
        await self._signal("reject", {"interrupt_id": interrupt_id, "reason": reason})

    async def retry(self) -> None:
        """Continue a failed run from its journal (needs ``durability="step"``)."""
        await self._signal("retry", {})

    async def _signal(self, kind: str, payload: dict[str, Any]) -> None:
        check_signal(self.run_id, self._info, kind)
        assert self._info is not None
        check_payload(self.run_id, self._info, kind, payload, self._pending)
        async with self._lock:
            sent = await signals.send_signal(
                self.runner.store, self.run_id, kind, payload, ttl=self.runner.checkpoint_ttl
            )
            logged = await signals.read_signals(self.runner.store, self.run_id, self._applied)
            for signal in logged:
                if signal.seq <= sent.seq:
                    await self._apply_logged(signal.seq, signal.kind, dict(signal.payload))

    async def _watch(self) -> None:
        """Apply the signals other processes log for this run, in order."""
        while True:
            try:
                async with signals.SignalListener(
                    self.runner.store, self.run_id, after_seq=self._applied
                ) as listener:
                    while True:
                        signal = await listener.next()
                        async with self._lock:
                            await self._apply_logged(signal.seq, signal.kind, dict(signal.payload))
            except Exception as exc:  # the store is down: listen again a little later
                logger.warning("run %s: signal listener failed: %r", self.run_id, exc)
                await anyio.sleep(1.0)

    async def _apply_logged(self, seq: int, kind: str, payload: dict[str, Any]) -> None:
        if seq <= self._applied:
            return
        self._applied = seq
        changed, self._applied_changed = self._applied_changed, anyio.Event()
        changed.set()
        try:
            assert self._info is not None
            check_signal(self.run_id, self._info, kind)
            check_payload(self.run_id, self._info, kind, payload, self._pending)
        except RunControlError as exc:
            logger.warning("run %s: signal %s not applied: %s", self.run_id, seq, exc)
            return
        await self._apply(kind, payload)

    async def _apply(self, kind: str, payload: dict[str, Any]) -> None:
        """Act on one signal that applies to the run's current status."""
        info = self._info
        assert info is not None
        segment = self._segment
        if kind == "cancel":
            if info.status == "running" and segment.scope is not None:
                segment.cancelled = True
                segment.scope.cancel()
            else:
                await self._set(info, "cancelled", None, None)
        elif kind == "pause":
            self._control.pause_requested = True
        elif kind == "feedback":
            self._control.feedback.append(str(payload.get("text", "")))
        elif kind == "resume":
            self._continue(info.checkpoint_id or self.run_id, None)
        elif kind in ("approve", "reject"):
            interrupt_id = str(payload["interrupt_id"])
            answer = (
                Approval.approve()
                if kind == "approve"
                else Approval.reject(str(payload.get("reason", "")))
            )
            self._continue(info.checkpoint_id or self.run_id, {interrupt_id: answer})
        elif kind == "retry":
            self._continue(self.run_id, None)

    def _continue(self, checkpoint_id: str, answers: dict[str, Any] | None) -> None:
        """Start the next segment: the run resumed from ``checkpoint_id`` with ``answers``."""
        from adk.runner.execution import RunExecution
        from adk.runner.preparation import resumed_run

        runner = self.runner
        assert self._info is not None and self._group is not None

        async def prepare() -> RunExecution:
            prepared = await resumed_run(runner, checkpoint_id, answers, None, None, None)
            return RunExecution(runner.agent, *prepared)

        segment = _Segment()
        segment.previous = self._info
        self._info = replace(self._info, status="running")
        self._segment = segment
        self._group.start_soon(self._drive, segment, prepare)

    async def _set(
        self, info: RunStatusInfo, status: Any, error: str | None, checkpoint: str | None
    ) -> None:
        self._info = await record_outcome(
            self.runner.store, info, status, error, checkpoint, self.runner.checkpoint_ttl
        )

    # -- one segment --------------------------------------------------------------------

    async def _drive(self, segment: _Segment, prepare: Prepare) -> None:
        """Execute one segment in a cancel scope, then record how it stopped."""
        control = self._control
        control.pause_requested = False
        last: AgentEvent | None = None
        execution: RunExecution | None = None
        try:
            with anyio.CancelScope() as scope:
                segment.scope = scope
                if segment.cancelled:
                    scope.cancel()
                try:
                    execution = await prepare()
                except Exception as exc:
                    self._fail_to_start(segment, exc)
                    return
                segment.execution = execution
                execution.ctx.set_operations(control=control)
                if segment.previous is not None:  # resumed: stored as running again
                    await self._set(segment.previous, "running", None, None)
                async with aclosing(execution.events()) as events:
                    async for event in events:
                        if not event.partial:
                            last = event
                        segment.add(event)
            info = self._info
            assert info is not None
            if scope.cancelled_caught or segment.cancelled:
                cancelled = RunCancelled(f"run {self.run_id!r} was cancelled by a signal")
                name = self.runner.agent.name
                root = _root_ctx(self.run_id, name, execution)
                segment.add(error_event(name, root, cancelled))
                await self._set(info, "cancelled", "RunCancelled", None)
            elif execution is not None:
                status, error, checkpoint = outcome(execution.ctx.failed, last)
                self._pending = _pending_of(last)
                await self._set(info, status, error, checkpoint)
        finally:
            segment.finish()

    def _fail_to_start(self, segment: _Segment, exc: Exception) -> None:
        """A resume that could not start (taken by another process...): its error, status kept."""
        name = self.runner.agent.name
        segment.add(error_event(name, _root_ctx(self.run_id, name, None), exc))
        if segment.previous is not None:
            self._info = segment.previous
        logger.warning("run %s: could not continue: %r", self.run_id, exc)


def _pending_of(last: AgentEvent | None) -> dict[str, Any]:
    if last is None or last.action is None or last.action.interrupted is None:
        return {}
    return {info.id: info.info for info in last.action.interrupted.interrupts}


def _root_ctx(run_id: str, root: str, execution: RunExecution | None) -> RunContext:
    """The root context of the segment's run (a bare one if it never started)."""
    if execution is not None:
        return execution.ctx
    from adk.state.context import RunContext

    return RunContext.create(run_id=run_id, run_path=(root,))
