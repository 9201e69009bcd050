"""One execution of a run: drive the root agent, drop replayed events, checkpoint if paused."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import Any

import anyio

from adk.agents.base import Agent, AgentInput, error_event
from adk.agents.flow import run_agent
from adk.errors import AgentRunError
from adk.events import AgentAction, AgentEvent, Interrupted, InterruptInfo
from adk.runner.checkpoint import Checkpointer, run_exists
from adk.runner.result import RunResult
from adk.state.context import RunContext
from adk.state.interrupts import InterruptAnswerUnread
from adk.state.journal import RunJournal
from adk.state.lease import RunLease
from adk.state.serde import SerializationError
from adk.state.stores.base import CheckpointStore

logger = logging.getLogger("adk.runner")


class RunExecution:
    """Runs the root agent once (a new run, or a resumed one) and settles the outcome."""

    def __init__(
        self, agent: Agent, ctx: RunContext, journal: RunJournal, checkpointer: Checkpointer
    ) -> None:
        self.agent = agent
        self.ctx = ctx
        self.journal = journal
        self.checkpointer = checkpointer
        self.pending: dict[str, InterruptInfo] = {}
        self._check_id = isinstance(checkpointer, NewRunCheckpointer) and checkpointer.explicit_id
        """The app chose this new run's id: make sure no stored run has it before starting."""

    def _deliverable(self, event: AgentEvent) -> bool:
        """Note the event's interrupts; False for an event replayed from before a resume."""
        action = event.action
        if action is not None and action.interrupted is not None:
            for info in action.interrupted.interrupts:
                self.pending.setdefault(info.id, info)
        return not self.journal.take_replayed(event)

    async def _start(self) -> AgentEvent | None:
        """Refuse a new run whose explicit id is taken; the error event if refused."""
        checkpointer = self.checkpointer
        assert isinstance(checkpointer, NewRunCheckpointer)
        try:
            await checkpointer.refuse_taken_id()
        except Exception as exc:
            return self._run_error(exc)
        return None

    def _run_error(self, exc: Exception) -> AgentEvent:
        """The run's last event for a failure outside its agents (the store, the run id)."""
        self.ctx.failed = True
        return error_event(self.agent.name, self.ctx, exc)

    async def _settle(self) -> AgentEvent | None:
        """Checkpoint or close the run; a store failure here becomes the run's last event.

        When the run had already failed, its own error event was its last
        word: a failure to record that is only logged.
        """
        failed_before = self.ctx.failed
        try:
            paused = bool(self.pending) and not failed_before
            status = "paused" if paused else "failed" if failed_before else "finished"
            await self.ctx.serving.run_finished(self.ctx.run_id, status)
            if paused:
                return await self._pause()
            if self.checkpointer.meta_written or self.journal.step or self.journal.expecting:
                await self._close()
        except Exception as exc:
            if failed_before:
                logger.warning("run %s: could not record its failure: %r", self.ctx.run_id, exc)
                return None
            return self._run_error(exc)
        return None

    async def _pause(self) -> AgentEvent:
        """Checkpoint the paused run; the Runner's interrupt event."""
        interrupts = tuple(self.pending.values())
        checkpoint_id = await self.checkpointer.checkpoint(self.journal, interrupts)
        _refuse_unread_answers(self.journal, interrupts, checkpoint_id)
        name = self.agent.name
        return AgentEvent(
            agent_name=name,
            run_path=(name,),
            action=AgentAction(
                interrupted=Interrupted(interrupts=interrupts, checkpoint_id=checkpoint_id)
            ),
        )

    async def _close(self) -> None:
        """Record the end of a run that has records in the store (nothing for the others)."""
        journal = self.journal
        unread = journal.unread()
        if unread:
            logger.warning("run %s ended without reading answers to %s", self.ctx.run_id, unread)
        if self.checkpointer.meta_written or journal.step:
            await self.checkpointer.finish(journal, "failed" if self.ctx.failed else "finished")

    def _root_stream(self) -> AsyncGenerator[AgentEvent, None]:
        return run_agent(self.agent, AgentInput(messages=list(self.ctx.root_input)), self.ctx)

    async def events(self) -> AsyncGenerator[AgentEvent, None]:
        """Every event to deliver, ending with the interrupt event if the run paused."""
        try:
            final = await self._start() if self._check_id else None
            if final is None:
                async with aclosing(self._root_stream()) as stream:
                    async for event in stream:
                        if self._deliverable(event):
                            yield event
                final = await self._settle()
        finally:
            await self._let_go()
        if final is not None:
            yield final

    async def _let_go(self) -> None:
        """Release the run's lease if this execution still holds it (error, cancellation).

        If the store cannot be reached the lease is left to expire by itself.
        """
        lease = self.checkpointer.lease
        if lease is not None and lease.held:
            with anyio.CancelScope(shield=True):
                try:
                    await lease.release()
                except Exception as exc:
                    logger.warning("run %s: lease not released: %r", self.ctx.run_id, exc)

    async def result(self) -> RunResult:
        """Run to the end; raise the error of a failed run."""
        ctx = self.ctx
        events: list[AgentEvent] = []
        deliverable = self._deliverable
        try:
            final = await self._start() if self._check_id else None
            if final is None:
                async with aclosing(self._root_stream()) as stream:
                    async for event in stream:
                        output = event.output
                        if output is not None and output.partial:
                            continue
                        if event.action is None and not self.journal.replayed:
                            events.append(event)  # the common case, without the checks below
                        elif deliverable(event):
                            events.append(event)
                final = await self._settle()
        finally:
            await self._let_go()
        if final is not None:
            events.append(final)
        if ctx.failed:
            error = next(e.error for e in reversed(events) if e.error is not None)
            if error.exception is not None:
                raise error.exception
            raise AgentRunError(error.type, error.message, error.run_path)
        return RunResult(ctx.run_id, events, ctx.session_values, ctx.events, ctx.serving)


def _refuse_unread_answers(
    journal: RunJournal, interrupts: tuple[InterruptInfo, ...], checkpoint_id: str
) -> None:
    """Raise :class:`InterruptAnswerUnread` if a pending interrupt's given answer went unread."""
    unread = set(journal.unread())
    again = [info for info in interrupts if info.id in unread]
    if not again:
        return
    where = ", ".join(f"{info.id} at {'/'.join(info.address)}" for info in again)
    raise InterruptAnswerUnread(
        f"interrupt {where} was answered, but the code that raised it paused again without "
        "reading the answer: a tool reads it with ctx.interrupt(info) or ctx.answer (keys "
        "count questions in order), a custom agent with ctx.answer_for(key) using the key "
        f"it interrupted with. Fix the code, then resume checkpoint {checkpoint_id!r} "
        "(the pending interrupts are kept there) with the answer again"
    )


class NewRunCheckpointer(Checkpointer):
    """The checkpointer of a new run: its metadata record is built only if ever written."""

    def __init__(
        self,
        store: CheckpointStore,
        run_id: str,
        build_meta: Callable[[], dict[str, Any]],
        ttl: float | None,
        lease: RunLease,
        *,
        explicit_id: bool = False,
    ) -> None:
        super().__init__(store, run_id, {}, ttl=ttl, lease=lease)
        self._build_meta = build_meta
        self.explicit_id = explicit_id
        """The app chose the run id (a generated id cannot be taken: no check is needed)."""

    async def refuse_taken_id(self) -> None:
        """Raise :class:`RunExists` if a run with this id is already in the store.

        Checked before the run starts, so a refused run calls no model or tool;
        two new runs racing for one id are still kept apart when the metadata
        is written (only if absent).
        """
        if await self.store.get(self.namespace, "meta") is not None:
            raise run_exists(self.run_id)

    async def ensure_meta(self) -> None:
        """Build and write the metadata record before the first journal chunk."""
        if not self.meta_written:
            self._meta = self._build_meta()
        await super().ensure_meta()


def checked(encoded: bytes | SerializationError) -> bytes:
    """The encoded starting session values, or the error that kept them from encoding."""
    if isinstance(encoded, SerializationError):
        raise SerializationError(f"the run's session values cannot be checkpointed: {encoded}")
    return encoded
