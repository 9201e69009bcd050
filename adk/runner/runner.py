"""Runner: runs a root agent for an application and hands back its events."""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, AsyncIterator, Mapping, MutableMapping, Sequence
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from adk.agents.base import Agent, AgentInput
from adk.agents.flow import run_agent
from adk.agents.tree import AgentTree
from adk.errors import AgentRunError
from adk.events import AgentEvent, ErrorInfo
from adk.messages import Message, Usage
from adk.runner.context import DEFAULT_MAX_TRANSFERS, RunContext, RunSettings
from adk.serving.layer import ServingLayer

if TYPE_CHECKING:
    from adk.agents.history import HistoryRewriter


class RunResult:
    """The outcome of a finished run: its non-partial events, final message and usage."""

    __slots__ = ("events", "run_id", "session_values")

    def __init__(
        self, run_id: str, events: list[AgentEvent], session_values: MutableMapping[str, Any]
    ) -> None:
        self.run_id = run_id
        self.events = events
        self.session_values = session_values

    @property
    def output(self) -> Message | None:
        """The last message of the run (the final answer), if any."""
        for event in reversed(self.events):
            if event.message is not None:
                return event.message
        return None

    @property
    def text(self) -> str:
        """The final answer's text ("" if the run produced no message)."""
        output = self.output
        return output.content if output is not None else ""

    @property
    def errors(self) -> list[ErrorInfo]:
        """Errors the run contained without failing (e.g. a failed parallel branch)."""
        return [event.error for event in self.events if event.error is not None]

    @property
    def usage(self) -> Usage:
        """Tokens used by every model call of the run."""
        total = Usage()
        for event in self.events:
            message = event.message
            if message is not None and message.usage is not None:
                total = total + message.usage
        return total

    def __repr__(self) -> str:
        return f"RunResult(run_id={self.run_id!r}, events={len(self.events)}, text={self.text!r})"


class Runner:
    """Runs ``agent`` as the root of a run.

    - ``serving``: the serving layer every model call goes through (the
      pass-through default if omitted).
    - ``streaming``: chat-model agents yield partial delta events.
    - ``history_rewriter``: replaces how earlier events become the next
      agent's input (see :func:`adk.default_history_rewriter`).
    - ``skip_transfer_messages``: drop transfer calls and results from the
      history agents see.
    - ``max_transfers``: transfers one run may make before it fails.

    The agent tree is computed here, once: agent names must be unique in it.
    """

    def __init__(
        self,
        agent: Agent,
        *,
        serving: ServingLayer | None = None,
        streaming: bool = False,
        history_rewriter: HistoryRewriter | None = None,
        skip_transfer_messages: bool = False,
        max_transfers: int = DEFAULT_MAX_TRANSFERS,
    ) -> None:
        if not isinstance(agent, Agent):
            raise TypeError(f"Runner needs an agent (name, description, run), got {agent!r}")
        self.agent = agent
        self.serving = serving if serving is not None else ServingLayer()
        self.streaming = streaming
        self.tree = AgentTree(agent)
        self.settings = RunSettings(
            history_rewriter=history_rewriter,
            skip_transfer_messages=skip_transfer_messages,
            max_transfers=max_transfers,
        )

    def query(
        self,
        text: str,
        *,
        session_values: MutableMapping[str, Any] | None = None,
        session_id: str | None = None,
        run_id: str | None = None,
        agent_options: Mapping[str, Mapping[str, Any]] | None = None,
        streaming: bool | None = None,
    ) -> AsyncIterator[AgentEvent]:
        """Run the agent on one user message; yields every event (partial ones when streaming).

        ``session_values`` is the run's session state, used as is: values the
        agents set are visible in that mapping afterwards.
        """
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
        agent_options: Mapping[str, Mapping[str, Any]] | None = None,
        streaming: bool | None = None,
    ) -> AsyncGenerator[AgentEvent, None]:
        """Run the agent on ``messages`` (oldest first) and yield its events."""
        ctx = self._context(messages, session_values, session_id, run_id, agent_options, streaming)
        stream = run_agent(self.agent, AgentInput(messages=list(messages)), ctx)
        async with aclosing(stream):
            async for event in stream:
                yield event

    async def invoke(
        self,
        input: str | Sequence[Message],
        *,
        session_values: MutableMapping[str, Any] | None = None,
        session_id: str | None = None,
        run_id: str | None = None,
        agent_options: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> RunResult:
        """Run to the end and return the result; if the run failed, raise its error.

        A run fails when its root agent ends in error (a failed sequential
        step, a model error...). The live exception is raised when available
        (e.g. :class:`~adk.MaxIterationsExceeded`), otherwise an
        :class:`~adk.AgentRunError`. Errors the run contained (a failed
        parallel branch, an agent tool's error reported to its caller) do not
        raise: they are in :attr:`RunResult.errors`.
        """
        messages = [Message.user(input)] if isinstance(input, str) else list(input)
        values: MutableMapping[str, Any] = session_values if session_values is not None else {}
        ctx = self._context(messages, values, session_id, run_id, agent_options, False)
        events: list[AgentEvent] = []
        stream = run_agent(self.agent, AgentInput(messages=messages), ctx)
        async with aclosing(stream):
            async for event in stream:
                events.append(event)
        if ctx.failed:
            error = next(e.error for e in reversed(events) if e.error is not None)
            if error.exception is not None:
                raise error.exception
            raise AgentRunError(error.type, error.message, error.run_path)
        return RunResult(ctx.run_id, events, values)

    def _context(
        self,
        messages: Sequence[Message],
        session_values: MutableMapping[str, Any] | None,
        session_id: str | None,
        run_id: str | None,
        agent_options: Mapping[str, Mapping[str, Any]] | None,
        streaming: bool | None,
    ) -> RunContext:
        return RunContext.create(
            run_id=run_id or os.urandom(16).hex(),
            session_id=session_id,
            session_values=session_values,
            serving=self.serving,
            streaming=self.streaming if streaming is None else streaming,
            agent_options=agent_options,
            run_path=(self.agent.name,),
            root_input=messages,
            settings=self.settings,
            tree=self.tree,
        )
