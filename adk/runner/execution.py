"""One execution of a run: drive the root agent, drop replayed events, checkpoint if paused."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Callable
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

import anyio

from adk.agents.base import Agent, AgentInput, error_event
from adk.agents.flow import run_agent
from adk.agents.history import input_messages
from adk.agents.recording import encode_event
from adk.agents.run_guards import guarded_run
from adk.agents.tree import AgentTree, tree_of
from adk.errors import AgentRunError
from adk.events import AgentAction, AgentEvent, Interrupted, InterruptInfo
from adk.runner.budgets import budgeted, stopped
from adk.runner.checkpoint import Checkpointer, run_exists
from adk.runner.result import RunResult
from adk.state.context import RunContext
from adk.state.interrupts import InterruptAnswerUnread
from adk.state.journal import RunJournal
from adk.state.lease import RunLease
from adk.state.serde import SerializationError
from adk.state.stores.base import CheckpointStore
from adk.tools.provider import ToolProvider

if TYPE_CHECKING:
    from adk.runner.session_turn import SessionBinding, SessionRequest

logger = logging.getLogger("adk.runner")


class RunExecution:
    """Runs the root agent once (a new run, or a resumed one) and settles the outcome."""

    def __init__(
        self,
        agent: Agent,
        ctx: RunContext,
        journal: RunJournal,
        checkpointer: Checkpointer,
        session: SessionRequest | None = None,
    ) -> None:
        self.agent = agent
        self.ctx = ctx
        self.journal = journal
        self.checkpointer = checkpointer
        self.pending: dict[str, InterruptInfo] = {}
        self._check_id = isinstance(checkpointer, NewRunCheckpointer) and checkpointer.explicit_id
        """The app chose this new run's id: make sure no stored run has it before starting."""
        self.session: SessionBinding | None = None
        """Set when the run is a turn of a stored session."""
        if session is not None:
            from adk.runner.session_turn import SessionBinding  # loaded by the first session

            self.session = SessionBinding(session, ctx)
        self._start_first = self._check_id or session is not None
        self._session_steps = session is not None and journal.step
        """A stored session's turn under ``durability="step"`` appends as it goes."""

    def _trace(self) -> None:
        """Start the run's root span if the run is traced (Runner(tracing=...), adk.tracing)."""
        tracer = self.ctx._shared.tracer
        if tracer is not None:
            tracer.start_run(self.agent.name, self.ctx, self.checkpointer)

    def _deliverable(self, event: AgentEvent) -> bool:
        """Note the event's interrupts; False for an event replayed from before a resume."""
        action = event.action
        if action is not None and action.interrupted is not None:
            for info in action.interrupted.interrupts:
                self.pending.setdefault(info.id, info)
        return not self.journal.take_replayed(event)

    async def _start(self) -> AgentEvent | None:
        """Refuse a new run whose explicit id is taken, take its session; the error event if not."""
        checkpointer = self.checkpointer
        new = checkpointer if isinstance(checkpointer, NewRunCheckpointer) else None
        try:
            if self._check_id and new is not None:
                await new.refuse_taken_id()
            if self.session is not None:
                await self.session.begin(new)
        except Exception as exc:
            return self._run_error(exc)
        return None

    async def _step(self, event: AgentEvent) -> None:
        """Append a completed message of a session turn to the session as it goes.

        A failed append is only logged: the turn's last append writes
        everything not yet appended.
        """
        if event.message is None or event.partial or self.session is None:
            return
        try:
            await self.session.step()
        except Exception as exc:
            logger.warning("run %s: session append failed: %r", self.ctx.run_id, exc)

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
            # A usage limit stops the run resumable: checkpointed, not finished (budgets.py).
            limited = not paused and stopped(self.ctx) is not None
            status = "paused" if paused or limited else "failed" if failed_before else "finished"
            await self.ctx.serving.run_finished(self.ctx.run_id, status)
            final = None
            if paused:
                final = await self._pause()
            elif limited:
                await self.checkpointer.checkpoint(self.journal, ())
            elif self.checkpointer.meta_written or self.journal.step or self.journal.expecting:
                await self._close()
            recorder = self.ctx._shared.recorder
            if recorder is not None:  # Runner(trajectories=True): adk.agents.recording
                if final is not None:
                    recorder.events.append(encode_event(final))
                await recorder.save(self.checkpointer.store, self.checkpointer.namespace, status)
            tracer = self.ctx._shared.tracer
            if tracer is not None:  # Runner(tracing=...): the root span's outcome
                tracer.settled(status, final)
            if self.session is not None:
                await self.session.settle(final)
            return final
        except Exception as exc:
            if failed_before:
                logger.warning("run %s: could not record its failure: %r", self.ctx.run_id, exc)
                return None
            return self._run_error(exc)

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

    def _guarded_stream(self) -> AsyncGenerator[AgentEvent, None]:
        """The root agent's events through the run's guards (and its trajectory recorder)."""
        stream = guarded_run(budgeted(self._root_stream(), self.ctx), self.ctx)
        recorder = self.ctx._shared.recorder
        return stream if recorder is None else recorder.watch(stream, self.journal)

    def _root_stream(self) -> AsyncGenerator[AgentEvent, None]:
        ctx = self.ctx
        if self.session is not None and self.session.request.keep_agent:
            tree = tree_of(ctx, self.agent)
            path = self.session.held_by(tree)
            if path is not None:
                return self._held_stream(tree, path)
        if ctx.prior:  # a session's turn: the conversation so far, as the root agent sees it
            return run_agent(
                self.agent, AgentInput(messages=input_messages(ctx, self.agent.name)), ctx
            )
        return run_agent(self.agent, AgentInput(messages=list(ctx.root_input)), ctx)

    async def _held_stream(
        self, tree: AgentTree, path: list[str]
    ) -> AsyncGenerator[AgentEvent, None]:
        """The turn of a session whose conversation an agent below the root holds.

        It runs as if the agents above had transferred to it (its run path
        names them), so a transfer back up returns to them.
        """
        ctx = self.ctx
        for name in path[1:]:
            ctx = ctx.child(name)
        agent = tree.get(path[-1])
        assert agent is not None
        messages = input_messages(ctx, agent.name)
        async with aclosing(run_agent(agent, AgentInput(messages=messages), ctx)) as stream:
            async for event in stream:
                yield event
        if ctx.failed:
            self.ctx.failed = True

    async def events(self) -> AsyncGenerator[AgentEvent, None]:
        """Every event to deliver, ending with the interrupt event if the run paused."""
        self._trace()
        try:
            final = await self._start() if self._start_first else None
            if final is None:
                async with aclosing(self._guarded_stream()) as stream:
                    async for event in stream:
                        if self._deliverable(event):
                            yield event
                        if self._session_steps:
                            await self._step(event)
                final = await self._settle()
        finally:
            await self._let_go()
        if final is not None:
            yield final

    async def _let_go(self) -> None:
        """Release the run's lease and its session if this execution still holds them.

        If the store cannot be reached they are left to expire by themselves.
        Tool providers are told the run ended (they release what they held for it).
        The run's root span ends here, however the run ended (adk.tracing).
        """
        tracer = self.ctx._shared.tracer
        if tracer is not None:
            tracer.end_run(self.ctx)
        tree = self.ctx.tree
        providers = tree.tool_providers() if isinstance(tree, AgentTree) else ()
        if providers:
            await _end_run(providers, self.ctx.run_id)
        lease = self.checkpointer.lease
        if lease is not None and lease.held:
            with anyio.CancelScope(shield=True):
                try:
                    await lease.release()
                except Exception as exc:
                    logger.warning("run %s: lease not released: %r", self.ctx.run_id, exc)
        if self.session is not None:
            with anyio.CancelScope(shield=True):
                try:
                    await self.session.release()
                except Exception as exc:
                    logger.warning("run %s: session not released: %r", self.ctx.run_id, exc)

    async def result(self) -> RunResult:
        """Run to the end; raise the error of a failed run."""
        ctx = self.ctx
        events: list[AgentEvent] = []
        deliverable = self._deliverable
        self._trace()
        try:
            final = await self._start() if self._start_first else None
            if final is None:
                async with aclosing(self._guarded_stream()) as stream:
                    async for event in stream:
                        output = event.output
                        if output is not None and output.partial:
                            continue
                        if self._session_steps:
                            await self._step(event)
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
        return RunResult(
            ctx.run_id, events, ctx.session_values, ctx.events, ctx.serving, ctx.account
        )


async def _end_run(providers: list[ToolProvider], run_id: str) -> None:
    """Tell every provider that ``run_id`` ended; a failure is logged, never raised."""
    with anyio.CancelScope(shield=True):
        for provider in providers:
            try:
                await provider.end_run(run_id)
            except Exception as exc:
                logger.warning(
                    "run %s: tool provider %r: end_run failed: %r", run_id, provider.name, exc
                )


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
        build_meta: Callable[[bytes, int, str], dict[str, Any]],
        ttl: float | None,
        lease: RunLease,
        *,
        explicit_id: bool = False,
        start_values: bytes | SerializationError,
    ) -> None:
        super().__init__(store, run_id, {}, ttl=ttl, lease=lease)
        self._build_meta = build_meta
        self.start_values = start_values
        """The session values the run started with, encoded (or why they could not be)."""
        self.session_seq = 0
        """For a stored session's turn: the session's next batch number when it started."""
        self.session_user = ""
        """For a stored session's turn: the user who owns the session."""
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
            values = checked(self.start_values)
            self._meta = self._build_meta(values, self.session_seq, self.session_user)
        await super().ensure_meta()


def checked(encoded: bytes | SerializationError) -> bytes:
    """The encoded starting session values, or the error that kept them from encoding."""
    if isinstance(encoded, SerializationError):
        raise SerializationError(f"the run's session values cannot be checkpointed: {encoded}")
    return encoded
