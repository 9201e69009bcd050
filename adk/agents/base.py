"""The Agent protocol, AgentInput, and BaseAgent for agents written in application code."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

from adk.errors import ArgumentTypeError, ConfigurationError
from adk.events import AgentAction, AgentEvent, AgentOutput, ErrorInfo, Interrupted
from adk.messages import Message, trusted
from adk.state.context import RunContext

_OUTPUT_FIELDS = frozenset({"message", "partial", "custom"})
_VALUE_OUTPUT_FIELDS = frozenset({"message", "partial", "custom", "value"})
_EVENT_FIELDS = frozenset({"agent_name", "run_path", "output", "action"})


@dataclass(slots=True)
class AgentInput:
    """What an agent is asked: the conversation so far, oldest first.

    (A plain dataclass: one is built for every agent a run starts, and it is
    never parsed from outside data; the run's input is checkpointed as messages.)
    """

    messages: list[Message]


@runtime_checkable
class Agent(Protocol):
    """Anything with a name, a description and a ``run`` that yields events.

    Agents are reusable values: the same object may serve many concurrent runs
    and appear in many trees, so all run state belongs in the
    :class:`~adk.RunContext` and never on the agent.
    """

    name: str
    description: str

    def run(self, input: AgentInput, ctx: RunContext) -> AsyncIterator[AgentEvent]:
        """Run the agent on ``input`` and yield its events."""
        ...


def check_agent_name(name: str) -> str:
    """Check an agent name: non-empty, no surrounding spaces, no ``/`` (it separates run paths)."""
    if not isinstance(name, str) or not name or name.strip() != name or "/" in name:
        raise ConfigurationError(
            f"invalid agent name {name!r}: use a non-empty name without '/' or surrounding spaces"
        )
    return name


class BaseAgent(ABC):
    """Base class for agents written in application code.

    Override ``async def run(self, input, ctx)`` and yield events built with
    the helpers below; they stamp each event with the agent's name and the
    run path from ``ctx``::

        class Greeter(BaseAgent):
            async def run(self, input, ctx):
                yield self.text_event(ctx, f"Hello, {ctx.get('user', 'stranger')}!")
    """

    name: str
    description: str
    workflow: ClassVar[bool] = False
    """True for workflow agents (Sequential/Parallel/Loop): children cannot transfer to them."""

    def __init__(self, name: str, description: str = "") -> None:
        """Check and set the name and description (``TypeError`` if not strings)."""
        if not isinstance(name, str):
            raise ArgumentTypeError(f"agent name must be a str, got {type(name).__name__} {name!r}")
        if not isinstance(description, str):
            raise ArgumentTypeError(
                f"agent {name!r}: description must be a str, "
                f"got {type(description).__name__} {description!r}"
            )
        self.name = check_agent_name(name)
        self.description = description

    @abstractmethod
    def run(self, input: AgentInput, ctx: RunContext) -> AsyncIterator[AgentEvent]:
        """Run the agent; implement as an ``async def`` generator."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"

    def event(
        self,
        ctx: RunContext,
        *,
        message: Message | None = None,
        partial: bool = False,
        custom: Any = None,
        action: AgentAction | None = None,
        value: Any = None,
    ) -> AgentEvent:
        """An event of this agent with any combination of output and action."""
        name = self.name
        if (
            type(name) is str
            and (message is None or isinstance(message, Message))
            and (action is None or isinstance(action, AgentAction))
            and (partial is False or partial is True)
        ):
            # The common case: every value is already what validation would make of it.
            output = None
            if message is not None or custom is not None or value is not None:
                output = trusted(
                    AgentOutput,
                    {"message": message, "partial": partial, "custom": custom, "value": value},
                    set(_OUTPUT_FIELDS if value is None else _VALUE_OUTPUT_FIELDS),
                )
            return trusted(
                AgentEvent,
                {
                    "agent_name": name,
                    "run_path": ctx.run_path,
                    "output": output,
                    "action": action,
                    "error": None,
                },
                set(_EVENT_FIELDS),
            )
        output = None
        if message is not None or custom is not None or value is not None:
            output = AgentOutput(message=message, partial=partial, custom=custom)
            if value is not None:
                output = AgentOutput(message=message, partial=partial, custom=custom, value=value)
        return AgentEvent(agent_name=name, run_path=ctx.run_path, output=output, action=action)

    def message_event(
        self, ctx: RunContext, message: Message, *, partial: bool = False
    ) -> AgentEvent:
        """An event outputting ``message``."""
        return self.event(ctx, message=message, partial=partial)

    def text_event(self, ctx: RunContext, text: str) -> AgentEvent:
        """An event outputting an assistant message with ``text``."""
        return self.event(ctx, message=Message.assistant(text))

    def action_event(self, ctx: RunContext, action: AgentAction) -> AgentEvent:
        """An event carrying only ``action``."""
        return self.event(ctx, action=action)

    def exit_event(self, ctx: RunContext) -> AgentEvent:
        """An event that ends the whole run."""
        return self.event(ctx, action=AgentAction.exit_run())

    def transfer_event(self, ctx: RunContext, dest: str) -> AgentEvent:
        """An event that transfers control to the agent named ``dest``."""
        return self.event(ctx, action=AgentAction.transfer(dest))

    def break_loop_event(self, ctx: RunContext) -> AgentEvent:
        """An event that breaks the enclosing loop agent."""
        return self.event(ctx, action=AgentAction.break_loop_from(self.name))

    def interrupt_event(self, ctx: RunContext, info: Any, *, key: str = "") -> AgentEvent:
        """An event that pauses the run until someone answers ``info``.

        Yield it and return. When the run is resumed with an answer, this
        agent runs again and ``ctx.answer_for(key)`` returns the answer; use a
        different ``key`` for each question the agent may ask.
        """
        pending = ctx.interrupt_info(info, key)
        return self.event(ctx, action=AgentAction(interrupted=Interrupted(interrupts=(pending,))))

    def custom_event(self, ctx: RunContext, payload: Any) -> AgentEvent:
        """An event outputting a custom payload."""
        return self.event(ctx, custom=payload)

    def error_event(self, ctx: RunContext, exc: BaseException) -> AgentEvent:
        """The error event reporting ``exc``; yield it as the last event of the run."""
        return error_event(self.name, ctx, exc)


def error_event(agent_name: str, ctx: RunContext, exc: BaseException) -> AgentEvent:
    """The error event of ``agent_name`` reporting ``exc`` at ``ctx.run_path``."""
    return AgentEvent(
        agent_name=agent_name,
        run_path=ctx.run_path,
        error=ErrorInfo.from_exception(exc, ctx.run_path),
    )
