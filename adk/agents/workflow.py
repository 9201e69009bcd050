"""Workflow agents: Sequential, Loop and Parallel composition of sub-agents.

They never call a model; they transform their children's event streams and
act on the control actions they carry (exit, break-loop, interrupt) and on
failures (``ctx.failed`` of a child's context).
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Iterable, Sequence
from contextlib import aclosing
from typing import ClassVar

from adk._streams import merged
from adk.agents.base import Agent, AgentInput, BaseAgent
from adk.agents.flow import run_agent
from adk.agents.history import input_messages
from adk.errors import ArgumentTypeError, ConfigurationError
from adk.events import AgentEvent, BreakLoop
from adk.state.context import RunContext


def _check_children(name: str, sub_agents: Iterable[Agent]) -> tuple[Agent, ...]:
    """The children of workflow agent ``name``, checked: agents, distinct names, not ``name``."""
    if isinstance(sub_agents, Agent | str) or not isinstance(sub_agents, Iterable):
        given = f"{type(sub_agents).__name__} {sub_agents!r}"
        if isinstance(sub_agents, Agent):
            given = f"a single agent {sub_agents.name!r}; write [{sub_agents.name}]"
        raise ArgumentTypeError(
            f"workflow agent {name!r}: sub_agents must be a list of agents, got {given}"
        )
    children = tuple(sub_agents)
    if not children:
        raise ConfigurationError(f"workflow agent {name!r} needs at least one sub-agent")
    seen: set[str] = set()
    for child in children:
        if not isinstance(child, Agent):
            raise ArgumentTypeError(f"workflow agent {name!r}: {child!r} is not an agent")
        if child.name in seen:
            raise ConfigurationError(
                f"workflow agent {name!r} has two sub-agents named {child.name!r}"
            )
        if child.name == name:
            raise ConfigurationError(
                f"workflow agent {name!r} has a sub-agent named like itself; "
                "agent names must be unique within a tree"
            )
        seen.add(child.name)
    return children


class _Stop:
    """Why a sequence of children stopped early (None: it ran to the end)."""

    __slots__ = ("reason",)

    def __init__(self) -> None:
        self.reason: str | None = None


async def _run_in_sequence(
    children: Sequence[Agent],
    ctx: RunContext,
    stop: _Stop,
    on_break: Callable[[BreakLoop], None] | None = None,
) -> AsyncGenerator[AgentEvent, None]:
    """Run ``children`` one after another on the shared history.

    Stops after a child that failed, exited, was interrupted or asked to break
    a loop (``on_break`` lets a loop mark the break handled as it passes).
    """
    for child in children:
        child_ctx = ctx.child(child.name)
        child_input = AgentInput(messages=input_messages(child_ctx, child.name))
        async with aclosing(run_agent(child, child_input, child_ctx)) as events:
            async for event in events:
                action = event.action
                if action is not None:
                    if action.exit:
                        stop.reason = "exit"
                    elif action.interrupted is not None:
                        stop.reason = "interrupt"
                    elif action.break_loop is not None and not action.break_loop.done:
                        if on_break is not None:
                            on_break(action.break_loop)
                        stop.reason = "break"
                yield event
        if child_ctx.failed:
            stop.reason = "error"
        if stop.reason is not None:
            return


class SequentialAgent(BaseAgent):
    """Runs its sub-agents in order; each sees the earlier ones' output in its history.

    Stops early when a child fails (the sequence fails too), exits (the whole
    run ends), is interrupted, or breaks a loop (the enclosing loop handles
    it).
    """

    workflow: ClassVar[bool] = True

    def __init__(self, name: str, sub_agents: Iterable[Agent], *, description: str = "") -> None:
        super().__init__(name, description)
        self.sub_agents = _check_children(name, sub_agents)

    async def run(self, input: AgentInput, ctx: RunContext) -> AsyncIterator[AgentEvent]:
        """Run the children in order."""
        stop = _Stop()
        async with aclosing(_run_in_sequence(self.sub_agents, ctx, stop)) as events:
            async for event in events:
                yield event
        if stop.reason == "error":
            ctx.failed = True


class LoopAgent(BaseAgent):
    """Repeats its sub-agents in sequence, up to ``max_iterations`` times (0: no limit).

    A child's break-loop action ends the loop once that child's remaining
    events are out; the action is marked ``done`` with the iteration number
    (1-based) so an enclosing loop ignores it. Exit ends the whole run; an
    error or an interrupt ends the loop.
    """

    workflow: ClassVar[bool] = True

    def __init__(
        self,
        name: str,
        sub_agents: Iterable[Agent],
        *,
        max_iterations: int = 0,
        description: str = "",
    ) -> None:
        super().__init__(name, description)
        if isinstance(max_iterations, bool) or not isinstance(max_iterations, int):
            raise ArgumentTypeError(
                f"loop agent {name!r}: max_iterations must be an int, "
                f"got {type(max_iterations).__name__} {max_iterations!r} (0: no limit)"
            )
        if max_iterations < 0:
            raise ConfigurationError(
                f"loop agent {name!r}: max_iterations must be >= 0 (0: no limit), "
                f"got {max_iterations}"
            )
        self.sub_agents = _check_children(name, sub_agents)
        self.max_iterations = max_iterations

    async def run(self, input: AgentInput, ctx: RunContext) -> AsyncIterator[AgentEvent]:
        """Run the children again and again until a break, exit, error or the limit."""
        iteration = 0
        while self.max_iterations == 0 or iteration < self.max_iterations:
            iteration += 1
            stop = _Stop()

            def mark(action: BreakLoop, at: int = iteration) -> None:
                action.done = True
                action.current_iterations = at

            async with aclosing(_run_in_sequence(self.sub_agents, ctx, stop, mark)) as events:
                async for event in events:
                    yield event
            if stop.reason == "error":
                ctx.failed = True
            if stop.reason is not None:
                return


class ParallelAgent(BaseAgent):
    """Runs its sub-agents concurrently on the same input; their events interleave.

    Each branch waits until its event was taken (no unbounded buffering).
    A failing branch ends alone: the others run on, and agents after the
    parallel step see every branch's output. An exit from any branch ends
    the whole run (the other branches are cancelled).
    """

    workflow: ClassVar[bool] = True

    def __init__(self, name: str, sub_agents: Iterable[Agent], *, description: str = "") -> None:
        super().__init__(name, description)
        self.sub_agents = _check_children(name, sub_agents)

    async def run(self, input: AgentInput, ctx: RunContext) -> AsyncIterator[AgentEvent]:
        """Run every branch at once and forward events as they come."""
        branches = []
        for child in self.sub_agents:
            child_ctx = ctx.child(child.name)
            child_input = AgentInput(messages=input_messages(child_ctx, child.name))
            branches.append(_branch(child, child_input, child_ctx))
        async with aclosing(merged(branches)) as events:
            async for event in events:
                yield event
                if event.action is not None and event.action.exit:
                    return


def _branch(
    agent: Agent, input: AgentInput, ctx: RunContext
) -> Callable[[Callable[[AgentEvent], Awaitable[None]]], Awaitable[None]]:
    async def produce(send: Callable[[AgentEvent], Awaitable[None]]) -> None:
        async with aclosing(run_agent(agent, input, ctx)) as events:
            async for event in events:
                await send(event)

    return produce
