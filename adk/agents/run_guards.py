"""A run's middleware and guardrail state, and the Runner's part: its settings, its answer.

The Runner builds :class:`RunGuards` once (None when neither it nor any agent
of its tree has middleware or guardrails: runs then carry no state at all);
each run gets a :class:`GuardState` in its context. :func:`guarded_run` wraps
the Runner's event stream: a :class:`~adk.GuardrailTripped` error event ends
the run, and the run's final answer passes the Runner's output guardrails
before it is delivered. The model-call side is in ``adk.agents.guarding``.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable
from contextlib import aclosing
from typing import Any

import anyio

from adk.agents.base import Agent, error_event
from adk.agents.guardrails import RUN_SCOPE, Guardrail, checked_guardrails, run_guardrails
from adk.agents.middleware import Middleware, ToolInvoker, checked_middleware
from adk.agents.tree import AgentTree, known_tree
from adk.errors import GuardrailTripped
from adk.events import AgentEvent
from adk.state.context import RunContext


class RunGuards:
    """A Runner's middleware and guardrails, fixed when the Runner is built."""

    __slots__ = ("input_guardrails", "middleware", "output_guardrails")

    def __init__(
        self,
        middleware: tuple[Middleware, ...],
        input_guardrails: tuple[Guardrail, ...],
        output_guardrails: tuple[Guardrail, ...],
    ) -> None:
        self.middleware = middleware
        self.input_guardrails = input_guardrails
        self.output_guardrails = output_guardrails

    @classmethod
    def of(
        cls,
        middleware: tuple[Middleware, ...],
        input_guardrails: tuple[Guardrail, ...],
        output_guardrails: tuple[Guardrail, ...],
        tree: AgentTree,
    ) -> RunGuards | None:
        """The Runner's settings; None when neither it nor any agent of ``tree`` has any."""
        if middleware or input_guardrails or output_guardrails or _guarded(tree):
            return cls(middleware, input_guardrails, output_guardrails)
        return None


def runner_guards(
    tree: AgentTree,
    middleware: Iterable[Any],
    input_guardrails: Iterable[Any],
    output_guardrails: Iterable[Any],
) -> RunGuards | None:
    """The Runner's arguments checked (errors name them); None when there is nothing to do."""
    return RunGuards.of(
        checked_middleware("Runner", middleware),
        checked_guardrails("Runner", "input_guardrails", input_guardrails),
        checked_guardrails("Runner", "output_guardrails", output_guardrails),
        tree,
    )


def _guarded(tree: AgentTree) -> bool:
    """Whether an agent of ``tree`` (or inside its agent tools) has middleware or guardrails."""
    pending: list[Agent] = [agent for name in tree.names() if (agent := tree.get(name))]
    seen: set[int] = set()
    while pending:
        agent = pending.pop()
        if id(agent) in seen:
            continue
        seen.add(id(agent))
        for attribute in ("middleware", "input_guardrails", "output_guardrails"):
            if getattr(agent, attribute, ()):
                return True
        pending.extend(getattr(agent, "sub_agents", ()))
        tools: Any = getattr(agent, "tools", {})
        for tool in tools.values() if isinstance(tools, dict) else ():
            inner = getattr(tool, "agent", None)
            if isinstance(inner, Agent):
                pending.append(inner)
    return False


class GuardState:
    """One run's middleware and guardrail state (shared with its agent-tool sub-runs)."""

    __slots__ = ("_gate", "_invokers", "config", "input_done", "tripped")

    def __init__(self, config: RunGuards | None) -> None:
        self.config = config
        self.input_done = config is None or not config.input_guardrails
        """Whether the Runner's input guardrails have passed (or there are none)."""
        self.tripped: GuardrailTripped | None = None
        """The trip that ends this run, once one happened."""
        self._gate: anyio.Event | None = None
        self._invokers: dict[tuple[int, str], ToolInvoker | None] = {}

    def tool_invoker(self, ctx: RunContext, agent_name: str) -> ToolInvoker | None:
        """The tool middleware chain of ``agent_name`` in ``ctx``'s tree (None: no middleware)."""
        key = (id(ctx.tree), agent_name)
        try:
            return self._invokers[key]
        except KeyError:
            pass
        tree = known_tree(ctx)
        agent = tree.get(agent_name) if tree is not None else None
        chain = (
            *(self.config.middleware if self.config is not None else ()),
            *getattr(agent, "middleware", ()),
        )
        invoker = self._invokers[key] = ToolInvoker(chain, agent_name) if chain else None
        return invoker

    async def check_run_input(self, ctx: RunContext) -> None:
        """Run the Runner's input guardrails once per run; concurrent callers wait for them."""
        while not self.input_done:
            gate = self._gate
            if gate is not None:
                await gate.wait()
                continue
            assert self.config is not None
            gate = self._gate = anyio.Event()
            try:
                await run_guardrails(
                    self.config.input_guardrails, "input", ctx, ctx.root_input, RUN_SCOPE
                )
                self.input_done = True
            except GuardrailTripped as trip:
                self.input_done = True
                if self.tripped is None:  # before the gate opens: the waiters must see it
                    self.tripped = trip
                raise
            finally:
                self._gate = None  # not done (the caller was cancelled): the next call runs them
                gate.set()
        if self.tripped is not None:
            raise self.tripped.again()


def record_trip(ctx: RunContext, trip: GuardrailTripped) -> None:
    """Remember the run's trip: every later model call of the run raises it."""
    state = ctx.guards
    if state is None:
        state = GuardState(None)
        ctx.set_guards(state)
    if state.tripped is None:
        state.tripped = trip


def guarded_run(
    stream: AsyncGenerator[AgentEvent, None], ctx: RunContext
) -> AsyncGenerator[AgentEvent, None]:
    """The Runner's event stream, ended by a trip, with its final answer checked first.

    ``stream`` itself when the run has no middleware or guardrails. Otherwise
    a :class:`~adk.GuardrailTripped` error event (from any depth) is the
    run's last event, and with Runner output guardrails each message event
    is held until the next event arrives: the last one, the run's answer, is
    checked before it is delivered (a trip replaces it with the error event).
    """
    state = ctx.guards
    if state is None:
        return stream
    return _guarded_run(stream, ctx, state)


async def _guarded_run(
    stream: AsyncGenerator[AgentEvent, None], ctx: RunContext, state: GuardState
) -> AsyncGenerator[AgentEvent, None]:
    guardrails = state.config.output_guardrails if state.config is not None else ()
    held: AgentEvent | None = None
    async with aclosing(stream) as events:
        async for event in events:
            if held is not None:
                yield held
                held = None
            error = event.error
            if error is not None and isinstance(error.exception, GuardrailTripped):
                ctx.failed = True
                yield event
                return
            if guardrails and error is None and event.message is not None and not event.partial:
                held = event
                continue
            yield event
    if held is None:
        return
    assert held.message is not None
    try:
        await run_guardrails(guardrails, "output", ctx, held.message, RUN_SCOPE)
    except Exception as exc:
        if isinstance(exc, GuardrailTripped):
            record_trip(ctx, exc)
        ctx.failed = True
        failure = error_event(ctx.run_path[-1] if ctx.run_path else "", ctx, exc)
        ctx.record(failure)
        yield failure
        return
    yield held
