"""Runner: runs a root agent, checkpoints it when it pauses, and resumes it later."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Mapping, MutableMapping, Sequence
from contextlib import aclosing
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adk.agents.base import Agent
from adk.agents.tree import AgentTree
from adk.errors import ConfigurationError
from adk.events import AgentEvent
from adk.messages import Content, Message
from adk.runner.arguments import (
    check_invoke,
    check_query,
    check_resume,
    check_run,
    check_runner_settings,
    check_sessions,
    check_user_id,
    is_content,
)
from adk.runner.budgets import checked_usage_limits, with_limits
from adk.runner.execution import RunExecution
from adk.runner.preparation import new_run, resumed_run
from adk.runner.result import RunResult
from adk.runner.stored_runs import StoredRuns
from adk.serving.layer import ServingLayer
from adk.state.context_policy import ContextPolicy, checked_context
from adk.state.journal import Durability
from adk.state.lease import DEFAULT_LEASE_SECONDS
from adk.state.run_settings import DEFAULT_MAX_TRANSFERS, RunSettings
from adk.state.stores import CheckpointStore, open_store

if TYPE_CHECKING:
    from adk.agents.guardrails import Guardrail, GuardrailFunction
    from adk.agents.history import HistoryRewriter
    from adk.agents.middleware import Middleware
    from adk.runner.handle import RunHandle
    from adk.sessions.service import SessionService
    from adk.state.budgets import UsageLimits
    from adk.tracing import Tracing

Options = Mapping[str, Mapping[str, Any]]
logger = logging.getLogger("adk.runner")


class Runner(StoredRuns):
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
    - ``sessions``: where conversations given a ``session_id`` are kept: a
      :class:`~adk.sessions.SessionService`, a store or SQLite path for one,
      None for the checkpoint store (app name: the root agent's name), or
      False for no stored sessions (``session_id`` then only names the run's
      conversation for the serving layer).
    - ``keep_agent``: a session remembers which agent spoke last and its
      next turn starts there (after a transfer, the agent transferred to
      keeps the conversation); by default every turn starts at the root.
    - ``middleware``, ``input_guardrails``, ``output_guardrails``: hooks
      around every model and tool call of the run, and checks of the user's
      input and the root agent's answer (docs/middleware.md).
    - ``track_runs``: every run keeps a status record in the store (runs
      started with :meth:`start` always do; docs/control.md).
    - ``trajectories``: record every run's trajectory (its events, model
      requests and responses, tool calls, timings and usage) in the store,
      read back with :meth:`trajectory` (docs/evals.md).

    - ``usage_limits``: a :class:`~adk.UsageLimits` for every run (calls,
      tokens, cost, tool calls, wall time; per agent with ``agents=``); a run
      that would pass one stops with :class:`~adk.UsageLimitExceeded`,
      resumable with a raised limit (docs/budgets.md). Each run method takes
      ``usage_limits=`` too, replacing this one for that run.

    - ``tracing``: OpenTelemetry spans for every run (GenAI semantic
      conventions): True for the global tracer provider, or an
      :class:`adk.tracing.Tracing` (provider, ``record_content``); off by
      default. Needs the ``otel`` extra (docs/tracing.md).
    - ``context``: the :class:`~adk.ContextPolicy` of every ChatModelAgent
      that sets none (tool-result GC; docs/context.md); none by default.

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
        sessions: SessionService | CheckpointStore | str | Path | bool | None = None,
        keep_agent: bool = False,
        middleware: Sequence[Middleware] = (),
        input_guardrails: Sequence[Guardrail | GuardrailFunction] = (),
        output_guardrails: Sequence[Guardrail | GuardrailFunction] = (),
        track_runs: bool = False,
        trajectories: bool = False,
        usage_limits: UsageLimits | None = None,
        tracing: bool | Tracing | None = None,
        context: ContextPolicy | None = None,
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
            context=checked_context("Runner", context),
        )
        check_sessions(sessions)
        self._sessions_argument = sessions
        self._sessions: SessionService | bool | None = True  # True: not made yet
        self.keep_agent = keep_agent
        from adk.agents.run_guards import runner_guards

        self.guards = runner_guards(self.tree, middleware, input_guardrails, output_guardrails)
        self.usage_limits = checked_usage_limits(usage_limits, "Runner")
        """The usage limits of every run (None: no limits; docs/budgets.md)."""
        """The Runner's middleware and guardrails (None: none here nor on any agent)."""
        if not isinstance(track_runs, bool):
            raise TypeError(f"track_runs must be a bool, got {track_runs!r}")
        self.track_runs = track_runs
        """Keep every run's status in the store (docs/control.md)."""
        if not isinstance(trajectories, bool):
            raise TypeError(f"trajectories must be a bool, got {trajectories!r}")
        self.trajectories = trajectories
        """Record every run's trajectory in the store (docs/evals.md)."""
        self.tracing: Tracing | None = None
        """The Runner's tracing settings (None: off; docs/tracing.md)."""
        if tracing is not None and tracing is not False:
            from adk.tracing.config import tracing_setting

            self.tracing = tracing_setting(tracing)

    @property
    def sessions(self) -> SessionService | None:
        """Where stored sessions are kept (None with ``sessions=False``).

        Made on first use (a run with a ``session_id``, or the app asking):
        a Runner that never stores a session does not load the sessions code.
        """
        sessions = self._sessions
        if sessions is True:
            from adk.runner.session_turn import session_service

            sessions = session_service(self._sessions_argument, self.store, self.agent.name)
            self._sessions = sessions
        assert sessions is None or not isinstance(sessions, bool)
        return sessions

    # -- starting runs ----------------------------------------------------------------

    def query(
        self,
        text: Content,
        *,
        session_values: MutableMapping[str, Any] | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        run_id: str | None = None,
        agent_options: Options | None = None,
        streaming: bool | None = None,
        usage_limits: UsageLimits | None = None,
    ) -> AsyncGenerator[AgentEvent, None]:
        """Run the agent on one user message; yields every event (partial ones when streaming).

        ``text`` is a str, or the message's parts (``["Describe:", ImagePart(...)]``).

        ``session_values`` is the run's session state, used as is: values the
        agents set are visible in that mapping afterwards.

        With a ``session_id`` the run is one turn of a stored conversation
        (docs/sessions.md): the session's history and values are read first
        and what the turn added is appended when it ends. A new id starts a
        new session, owned by ``user_id`` (default ``""``). A turn that cannot
        start (the session is busy, paused at interrupts, or another user's)
        ends with one error event.
        """
        check_query(self.tree, text, session_values, agent_options)
        return self.run(
            [Message.user(text)],
            session_values=session_values,
            session_id=session_id,
            user_id=user_id,
            run_id=run_id,
            agent_options=agent_options,
            streaming=streaming,
            usage_limits=usage_limits,
        )

    async def run(
        self,
        messages: Sequence[Message],
        *,
        session_values: MutableMapping[str, Any] | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        run_id: str | None = None,
        agent_options: Options | None = None,
        streaming: bool | None = None,
        usage_limits: UsageLimits | None = None,
    ) -> AsyncGenerator[AgentEvent, None]:
        """Run the agent on ``messages`` (oldest first) and yield its events.

        ``session_id`` and ``user_id``: as for :meth:`query`.

        If agents interrupt, the last event is the Runner's interrupt event:
        its ``action.interrupted`` lists every pending interrupt and carries
        the checkpoint id to pass to :meth:`resume`.
        """
        check_run(self.tree, messages, session_values, agent_options)
        check_user_id(user_id)
        limits = checked_usage_limits(usage_limits, "run")
        prepared = new_run(
            self, messages, session_values, session_id, run_id, agent_options, streaming, user_id
        )
        with_limits(prepared[0], limits)
        execution = RunExecution(self.agent, *prepared)
        stream = execution.events()
        if self.track_runs:
            from adk.runner.control_api import tracked_stream

            stream = await tracked_stream(self, execution)
        async with aclosing(stream) as events:
            async for event in events:
                yield event

    async def invoke(
        self,
        input: Content | Sequence[Message],
        *,
        session_values: MutableMapping[str, Any] | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        run_id: str | None = None,
        agent_options: Options | None = None,
        usage_limits: UsageLimits | None = None,
    ) -> RunResult:
        """Run to the end (or to an interrupt) and return the result; raise if the run failed.

        ``session_id`` and ``user_id``: as for :meth:`query` (a turn that
        cannot start raises its :class:`~adk.sessions.SessionError`).

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
        messages = (
            [Message.user(input)] if isinstance(input, str) or is_content(input) else list(input)
        )
        # A streaming Runner streams model calls here too (partial events are dropped):
        # only streamed calls have a time to first token for the serving metrics.
        check_user_id(user_id)
        limits = checked_usage_limits(usage_limits, "invoke")
        prepared = new_run(
            self, messages, session_values, session_id, run_id, agent_options, None, user_id
        )
        with_limits(prepared[0], limits)
        if self.track_runs:
            from adk.runner.control_api import tracked_invoke

            return await tracked_invoke(self, RunExecution(self.agent, *prepared))
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
        usage_limits: UsageLimits | None = None,
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

        A run stopped by a usage limit resumes by its run id; pass a raised
        ``usage_limits`` (the run's earlier usage counts toward it).
        """
        check_resume("resume", self.tree, checkpoint_id, answers, session_values, agent_options)
        limits = checked_usage_limits(usage_limits, "resume")
        prepared = await resumed_run(
            self, checkpoint_id, answers, session_values, agent_options, streaming
        )
        with_limits(prepared[0], limits)
        async with aclosing(RunExecution(self.agent, *prepared).events()) as events:
            async for event in events:
                yield event

    async def resume_invoke(
        self,
        checkpoint_id: str,
        answers: Mapping[str, Any] | None = None,
        *,
        session_values: MutableMapping[str, Any] | None = None,
        agent_options: Options | None = None,
        usage_limits: UsageLimits | None = None,
    ) -> RunResult:
        """:meth:`resume` to the end (or the next interrupt), like :meth:`invoke`."""
        check_resume(
            "resume_invoke", self.tree, checkpoint_id, answers, session_values, agent_options
        )
        limits = checked_usage_limits(usage_limits, "resume_invoke")
        prepared = await resumed_run(
            self, checkpoint_id, answers, session_values, agent_options, False
        )
        with_limits(prepared[0], limits)
        return await RunExecution(self.agent, *prepared).result()

    # -- run control (docs/control.md) -----------------------------------------------

    def start(
        self,
        input: Content | Sequence[Message],
        *,
        session_values: MutableMapping[str, Any] | None = None,
        session_id: str | None = None,
        user_id: str | None = None,
        run_id: str | None = None,
        agent_options: Options | None = None,
    ) -> RunHandle:
        """A handle on a new run: ``async with runner.start("...") as handle:`` runs it.

        The handle gives the run id, its events and result, its status, and
        the signals (cancel, pause, resume, feedback, approve, reject, retry);
        other processes reach the run by id (:meth:`signal`). Arguments: as
        for :meth:`invoke`.
        """
        from adk.runner.control_api import start_handle

        return start_handle(self, input, session_values, session_id, user_id, run_id, agent_options)

    # -- managing checkpoints ---------------------------------------------------------

    async def close(self) -> None:
        """Close the tool providers of the agent tree, the checkpoint store and the session store.

        Every one is closed even if another fails; the first failure is raised after.
        """
        failures: list[Exception] = []
        for provider in self.tree.tool_providers():
            try:
                await provider.close()
            except Exception as exc:
                logger.warning("tool provider %r not closed cleanly: %r", provider.name, exc)
                failures.append(exc)
        await self.store.close()
        sessions = self._sessions
        if (
            not isinstance(sessions, bool)
            and sessions is not None
            and sessions.store is not self.store
        ):
            await sessions.store.close()
        if failures:
            raise failures[0]
