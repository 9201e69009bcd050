"""Runner: runs a root agent, checkpoints it when it pauses, and resumes it later."""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, MutableMapping, Sequence
from contextlib import aclosing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adk.agents.base import Agent
from adk.agents.tree import AgentTree
from adk.errors import ConfigurationError
from adk.events import AgentEvent
from adk.messages import Message
from adk.runner.arguments import (
    check_invoke,
    check_query,
    check_resume,
    check_run,
    check_runner_settings,
)
from adk.runner.checkpoint import (
    CheckpointAlreadyResumed,
    Checkpointer,
    check_resumable,
    claim_name,
    list_checkpoints,
    load_run,
    namespace,
    new_meta,
    split_checkpoint_id,
)
from adk.runner.execution import NewRunCheckpointer, RunExecution, checked
from adk.runner.records import CheckpointInfo
from adk.runner.result import RunResult
from adk.serving.layer import ServingLayer
from adk.state.context import (
    DEFAULT_MAX_TRANSFERS,
    RunContext,
    RunSettings,
    _RunShared,
    new_run_id,
)
from adk.state.journal import Durability, RunJournal
from adk.state.lease import DEFAULT_LEASE_SECONDS, RunLease
from adk.state.serde import SerializationError, dumps
from adk.state.stores import CheckpointStore, open_store

if TYPE_CHECKING:
    from adk.agents.history import HistoryRewriter

Options = Mapping[str, Mapping[str, Any]]
_EMPTY_VALUES = dumps({})
_NO_OPTIONS: Options = {}


class Runner:
    """Runs ``agent`` as the root of a run.

    - ``serving``: the serving layer every model call goes through (the
      pass-through default if omitted).
    - ``streaming``: chat-model agents yield partial delta events.
    - ``checkpoint_store``: where paused runs are kept: a store object, a
      SQLite file path, or None for an in-memory store (resumable only in
      this process).
    - ``durability``: ``"interrupt"`` writes at interrupts; ``"step"`` also
      journals every completed model and tool call before the run moves on,
      so a run killed at any point can be resumed from the store.
    - ``checkpoint_ttl``: seconds after which a run's records expire.
    - ``resume_lease``: seconds a process's claim on a stored run lasts
      without renewal (renewed at every journal write); a run whose process
      died can be resumed once it expires, or at once from the same machine.
    - ``history_rewriter``, ``skip_transfer_messages``, ``max_transfers``:
      how agents see each other's output, and the transfer limit.

    The agent tree is computed here, once: agent names must be unique in it.
    """

    def __init__(
        self,
        agent: Agent,
        *,
        serving: ServingLayer | None = None,
        streaming: bool = False,
        checkpoint_store: CheckpointStore | str | Path | None = None,
        durability: Durability = "interrupt",
        checkpoint_ttl: float | None = None,
        resume_lease: float = DEFAULT_LEASE_SECONDS,
        history_rewriter: HistoryRewriter | None = None,
        skip_transfer_messages: bool = False,
        max_transfers: int = DEFAULT_MAX_TRANSFERS,
    ) -> None:
        check_runner_settings(checkpoint_ttl, resume_lease, max_transfers)
        if not isinstance(agent, Agent):
            raise TypeError(f"Runner needs an agent (name, description, run), got {agent!r}")
        if durability not in ("interrupt", "step"):
            raise ConfigurationError(
                f"durability must be 'interrupt' or 'step', not {durability!r}"
            )
        self.agent = agent
        self.serving = serving if serving is not None else ServingLayer()
        self.streaming = streaming
        self.store = open_store(checkpoint_store)
        self.durability: Durability = durability
        self.checkpoint_ttl = checkpoint_ttl
        self.resume_lease = resume_lease
        self.tree = AgentTree(agent)
        self._root_path = (agent.name,)
        self.settings = RunSettings(
            history_rewriter=history_rewriter,
            skip_transfer_messages=skip_transfer_messages,
            max_transfers=max_transfers,
        )

    # -- starting runs ----------------------------------------------------------------

    def query(
        self,
        text: str,
        *,
        session_values: MutableMapping[str, Any] | None = None,
        session_id: str | None = None,
        run_id: str | None = None,
        agent_options: Options | None = None,
        streaming: bool | None = None,
    ) -> AsyncIterator[AgentEvent]:
        """Run the agent on one user message; yields every event (partial ones when streaming).

        ``session_values`` is the run's session state, used as is: values the
        agents set are visible in that mapping afterwards.
        """
        check_query(self.tree, text, session_values, agent_options)
        return self.run(
            [Message.user(text)],
            session_values=session_values,
            session_id=session_id,
            run_id=run_id,
            agent_options=agent_options,
            streaming=streaming,
        )

    async def run(
        self,
        messages: Sequence[Message],
        *,
        session_values: MutableMapping[str, Any] | None = None,
        session_id: str | None = None,
        run_id: str | None = None,
        agent_options: Options | None = None,
        streaming: bool | None = None,
    ) -> AsyncGenerator[AgentEvent, None]:
        """Run the agent on ``messages`` (oldest first) and yield its events.

        If agents interrupt, the last event is the Runner's interrupt event:
        its ``action.interrupted`` lists every pending interrupt and carries
        the checkpoint id to pass to :meth:`resume`.
        """
        check_run(self.tree, messages, session_values, agent_options)
        prepared = self._prepare_run(
            messages, session_values, session_id, run_id, agent_options, streaming
        )
        async with aclosing(RunExecution(self.agent, *prepared).events()) as events:
            async for event in events:
                yield event

    def _prepare_run(
        self,
        messages: Sequence[Message],
        session_values: MutableMapping[str, Any] | None,
        session_id: str | None,
        run_id: str | None,
        agent_options: Options | None,
        streaming: bool | None,
    ) -> tuple[RunContext, RunJournal, Checkpointer]:
        explicit_id = bool(run_id)
        if not run_id:
            run_id = new_run_id()
        elif "/" in run_id:
            raise ConfigurationError(f"run id {run_id!r} must not contain '/'")
        values: MutableMapping[str, Any] = session_values if session_values is not None else {}
        stream_mode = self.streaming if streaming is None else streaming
        journal = RunJournal(durability=self.durability)
        ctx = self._context(
            messages, values, session_id, run_id, agent_options, stream_mode, journal
        )
        # Snapshot the starting values now (agents will change them); a value that cannot
        # be checkpointed only matters if the run is ever checkpointed.
        encoded_values: bytes | SerializationError = _EMPTY_VALUES
        if values:
            try:
                encoded_values = dumps(dict(values))
            except SerializationError as exc:
                encoded_values = exc
        # The metadata builder must not hold the context: the journal holds the
        # checkpointer, so that would be a reference cycle, and every run's objects would
        # wait for the garbage collector instead of being freed when the run ends.
        root_input, session = ctx.root_input, session_id or ""
        checkpointer = NewRunCheckpointer(
            self.store,
            run_id,
            lambda: new_meta(
                root=self.agent.name,
                tree=self.tree,
                root_input=root_input,
                values=checked(encoded_values),
                streaming=stream_mode,
                durability=self.durability,
                session_id=session,
            ),
            self.checkpoint_ttl,
            RunLease(self.store, run_id, self.resume_lease),
            explicit_id=explicit_id,
        )
        journal.sink = checkpointer
        return ctx, journal, checkpointer

    async def invoke(
        self,
        input: str | Sequence[Message],
        *,
        session_values: MutableMapping[str, Any] | None = None,
        session_id: str | None = None,
        run_id: str | None = None,
        agent_options: Options | None = None,
    ) -> RunResult:
        """Run to the end (or to an interrupt) and return the result; raise if the run failed.

        A run fails when its root agent ends in error (a failed sequential
        step, a model error...). The live exception is raised when available
        (e.g. :class:`~adk.MaxIterationsExceeded`), otherwise an
        :class:`~adk.AgentRunError`. Errors the run contained (a failed
        parallel branch, an agent tool's error reported to its caller) do not
        raise: they are in :attr:`RunResult.errors`. A paused run returns
        normally with :attr:`RunResult.interrupts` and
        :attr:`RunResult.checkpoint_id`.
        """
        check_invoke(self.tree, input, session_values, agent_options)
        messages = [Message.user(input)] if isinstance(input, str) else list(input)
        # A streaming Runner streams model calls here too (partial events are dropped):
        # only streamed calls have a time to first token for the serving metrics.
        prepared = self._prepare_run(
            messages, session_values, session_id, run_id, agent_options, None
        )
        return await RunExecution(self.agent, *prepared).result()

    # -- resuming ---------------------------------------------------------------------

    async def resume(
        self,
        checkpoint_id: str,
        answers: Mapping[str, Any] | None = None,
        *,
        session_values: MutableMapping[str, Any] | None = None,
        agent_options: Options | None = None,
        streaming: bool | None = None,
    ) -> AsyncGenerator[AgentEvent, None]:
        """Continue a paused run and yield its new events.

        ``checkpoint_id`` comes from the interrupt event (or is a run id, to
        resume a run killed under ``durability="step"`` from its journal).
        ``answers`` maps interrupt ids to answers; interrupts left unanswered
        pause again, in a new checkpoint. Completed model calls, tool calls
        and parallel branches are not run again. The session values and the
        streaming mode of the run are restored; ``session_values``, if given,
        is filled with them and used as the run's mapping.

        A checkpoint can be resumed once: a second resume (from any process)
        raises :class:`~adk.CheckpointAlreadyResumed`.
        """
        check_resume("resume", self.tree, checkpoint_id, answers, session_values, agent_options)
        prepared = await self._prepare_resume(
            checkpoint_id, answers, session_values, agent_options, streaming
        )
        async with aclosing(RunExecution(self.agent, *prepared).events()) as events:
            async for event in events:
                yield event

    async def _prepare_resume(
        self,
        checkpoint_id: str,
        answers: Mapping[str, Any] | None,
        session_values: MutableMapping[str, Any] | None,
        agent_options: Options | None,
        streaming: bool | None,
    ) -> tuple[RunContext, RunJournal, Checkpointer]:
        loaded = await load_run(self.store, checkpoint_id)
        given = dict(answers or {})
        check_resumable(loaded, checkpoint_id, given, self.tree)
        # Every record is decoded before the checkpoint is claimed: a damaged one raises
        # CheckpointCorrupted (naming the run, the record and the field) and uses nothing up.
        journal = RunJournal(durability=loaded.meta.durability, answers={**loaded.answers, **given})
        for chunk in loaded.chunks:
            chunk.load_into(journal)
        journal.expect_reads(given)
        values: MutableMapping[str, Any] = loaded.session_values()
        claim = claim_name(checkpoint_id)
        if claim is None and loaded.status == "interrupted" and loaded.checkpoint is not None:
            # A paused run resumed by its run id uses up its latest checkpoint.
            claim = claim_name(loaded.checkpoint.id)
        # A checkpoint is answered once (a permanent claim); a run id (crash recovery) is
        # guarded only by the lease, so a resume that dies does not block the next one.
        if claim is not None and not await self.store.put_if_absent(
            namespace(loaded.run_id), claim, dumps({"by": os.getpid()}), ttl=self.checkpoint_ttl
        ):
            raise CheckpointAlreadyResumed(
                f"checkpoint {checkpoint_id!r} was already resumed; resume the checkpoint of "
                "its latest interrupt instead (Runner.checkpoints lists them)"
            )
        if session_values is not None:
            session_values.clear()
            session_values.update(values)
            values = session_values
        stream_mode = loaded.meta.streaming if streaming is None else streaming
        ctx = self._context(
            loaded.root_input,
            values,
            loaded.meta.session_id or None,
            loaded.run_id,
            agent_options,
            stream_mode,
            journal,
        )
        checkpointer = Checkpointer(
            self.store,
            loaded.run_id,
            loaded.meta,
            ttl=self.checkpoint_ttl,
            next_chunk=len(loaded.chunks),
            next_checkpoint=loaded.checkpoint_count + 1,
            meta_written=True,
            lease=RunLease(self.store, loaded.run_id, self.resume_lease),
        )
        checkpointer.stored_answers.update(loaded.answers)
        journal.sink = checkpointer
        assert checkpointer.lease is not None
        # Last: nothing below can fail and leave it held.
        await checkpointer.lease.acquire(released=loaded.released_lease)
        return ctx, journal, checkpointer

    async def resume_invoke(
        self,
        checkpoint_id: str,
        answers: Mapping[str, Any] | None = None,
        *,
        session_values: MutableMapping[str, Any] | None = None,
        agent_options: Options | None = None,
    ) -> RunResult:
        """:meth:`resume` to the end (or the next interrupt), like :meth:`invoke`."""
        check_resume(
            "resume_invoke", self.tree, checkpoint_id, answers, session_values, agent_options
        )
        prepared = await self._prepare_resume(
            checkpoint_id, answers, session_values, agent_options, False
        )
        return await RunExecution(self.agent, *prepared).result()

    # -- managing checkpoints ---------------------------------------------------------

    async def checkpoints(self, run_id: str | None = None) -> list[CheckpointInfo]:
        """Checkpoints in the store (of one run, or of all runs), oldest first per run.

        Each is a :class:`~adk.runner.records.CheckpointInfo`: ``id``,
        ``run_id``, ``interrupts``, ``created`` (a UNIX time), ``resumed``
        (whether it was already resumed) and ``error``. A checkpoint whose
        record cannot be read is listed with ``error`` set (and no
        interrupts) instead of failing the listing, so one damaged record
        does not hide the others.
        """
        return await list_checkpoints(self.store, run_id)

    async def close(self) -> None:
        """Close the checkpoint store (its connections)."""
        await self.store.close()

    async def delete_run(self, run_id: str) -> None:
        """Delete every record of ``run_id`` (its journal and checkpoints)."""
        run_id = split_checkpoint_id(run_id)[0]
        await self.store.delete(namespace(run_id))
        await self.store.delete(f"lease:{run_id}")

    # -- one execution ----------------------------------------------------------------

    def _context(
        self,
        messages: Sequence[Message],
        values: MutableMapping[str, Any],
        session_id: str | None,
        run_id: str | None,
        agent_options: Options | None,
        streaming: bool,
        journal: RunJournal,
    ) -> RunContext:
        # RunContext.create without its defaulting: every value is known here.
        shared = _RunShared(
            run_id or new_run_id(),
            session_id or "",
            values,
            self.serving,
            streaming,
            agent_options or _NO_OPTIONS,
            self.settings,
            messages,
            self.tree,
            journal,
        )
        return RunContext(shared, self._root_path)
