"""Runner: runs a root agent for an application and hands back its events."""

from __future__ import annotations

import uuid
from contextlib import aclosing
from collections.abc import AsyncIterator, Mapping, MutableMapping, Sequence
from typing import Any

from adk.agents.base import Agent, AgentInput, run_agent
from adk.errors import AgentRunError
from adk.events import AgentEvent
from adk.messages import Message, Usage
from adk.runner.context import RunContext
from adk.serving.layer import ServingLayer


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

    ``serving`` is the serving layer every model call goes through (the
    pass-through default if omitted); ``streaming`` makes chat-model agents
    yield partial delta events.
    """

    def __init__(
        self,
        agent: Agent,
        *,
        serving: ServingLayer | None = None,
        streaming: bool = False,
    ) -> None:
        if not isinstance(agent, Agent):
            raise TypeError(f"Runner needs an agent (name, description, run), got {agent!r}")
        self.agent = agent
        self.serving = serving if serving is not None else ServingLayer()
        self.streaming = streaming

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
    ) -> AsyncIterator[AgentEvent]:
        """Run the agent on ``messages`` (oldest first) and yield its events."""
        ctx = self._context(session_values, session_id, run_id, agent_options, streaming)
        agent_input = AgentInput(messages=list(messages))
        async with aclosing(run_agent(self.agent, agent_input, ctx)) as events:
            async for event in events:
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
        """Run to the end and return the result; an error event is raised as its exception.

        The live exception is raised when it is available (e.g. a
        :class:`~adk.MaxIterationsExceeded`), otherwise an
        :class:`~adk.AgentRunError` describing it.
        """
        messages = [Message.user(input)] if isinstance(input, str) else list(input)
        values: MutableMapping[str, Any] = session_values if session_values is not None else {}
        run_id = run_id or uuid.uuid4().hex
        events: list[AgentEvent] = []
        stream = self.run(
            messages,
            session_values=values,
            session_id=session_id,
            run_id=run_id,
            agent_options=agent_options,
            streaming=False,
        )
        async with aclosing(stream):
            async for event in stream:
                if event.error is not None:
                    exc = event.error.exception
                    if exc is not None:
                        raise exc
                    raise AgentRunError(event.error.type, event.error.message, event.error.run_path)
                events.append(event)
        return RunResult(run_id, events, values)

    def _context(
        self,
        session_values: MutableMapping[str, Any] | None,
        session_id: str | None,
        run_id: str | None,
        agent_options: Mapping[str, Mapping[str, Any]] | None,
        streaming: bool | None,
    ) -> RunContext:
        return RunContext.create(
            run_id=run_id,
            session_id=session_id,
            session_values=session_values,
            serving=self.serving,
            streaming=self.streaming if streaming is None else streaming,
            agent_options=agent_options,
            run_path=(self.agent.name,),
        )
