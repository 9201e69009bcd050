"""Events: what an agent's ``run`` yields.

An agent run is an async iterator of :class:`AgentEvent`. An event carries
output (a :class:`~adk.messages.Message`, or a custom payload), an action that
drives control flow (exit, transfer, break-loop, interrupt, custom), or an
error. Errors are data: a failing agent yields one error event and stops.
"""

from __future__ import annotations

import traceback
from typing import Any, NamedTuple

from pydantic import BaseModel, ConfigDict, PrivateAttr

from adk.messages import Message

RunPath = tuple[str, ...]
"""Names of the agents from the root of the run down to the emitting agent."""


class TransferToAgent(BaseModel):
    """Hand the conversation to the agent named ``dest``."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    dest: str


class BreakLoop(BaseModel):
    """Ask the enclosing loop agent to stop after the current child.

    The loop that handles it sets ``done=True`` and records the iteration it
    stopped at, so that outer loops ignore the action.
    """

    model_config = ConfigDict(defer_build=True)

    from_agent: str
    done: bool = False
    current_iterations: int = 0


class InterruptInfo(BaseModel):
    """One pending interrupt: where a human or an external system must answer.

    ``id`` is stable across resumes, ``address`` is the path of agent and
    tool-call segments leading to it, ``info`` is JSON-serialisable data for
    whoever answers.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    id: str
    address: tuple[str, ...] = ()
    info: Any = None


class Interrupted(BaseModel):
    """The run stopped for answers to ``interrupts`` (the flat list of root causes)."""

    model_config = ConfigDict(frozen=True, defer_build=True)

    interrupts: tuple[InterruptInfo, ...]
    checkpoint_id: str | None = None


class AgentAction(BaseModel):
    """Control flow carried on the event stream.

    At most one of the fields is normally set. Build them with the class
    methods: ``AgentAction.exit_run()``, ``AgentAction.transfer("billing")``,
    ``AgentAction.break_loop("checker")``.
    """

    model_config = ConfigDict(defer_build=True)

    exit: bool = False
    transfer_to_agent: TransferToAgent | None = None
    break_loop: BreakLoop | None = None
    interrupted: Interrupted | None = None
    custom: Any = None

    @classmethod
    def exit_run(cls) -> AgentAction:
        """End the whole run."""
        return cls(exit=True)

    @classmethod
    def transfer(cls, dest: str) -> AgentAction:
        """Transfer control to the agent named ``dest``."""
        return cls(transfer_to_agent=TransferToAgent(dest=dest))

    @classmethod
    def break_loop_from(cls, agent_name: str) -> AgentAction:
        """Break the enclosing loop agent (sent by ``agent_name``)."""
        return cls(break_loop=BreakLoop(from_agent=agent_name))


class AgentOutput(BaseModel):
    """What an event outputs: a message, and/or a custom payload.

    ``partial=True`` marks a streaming delta: ``message.content`` then holds
    only the new text. Partial events never enter history or checkpoints; the
    complete message follows as one non-partial event.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    message: Message | None = None
    partial: bool = False
    custom: Any = None
    value: Any = None
    """The validated structured output (an agent with ``output_type``), on its final event."""


class ErrorInfo(BaseModel):
    """A failure as data: exception type name, message and where it happened.

    The live exception is kept on :attr:`exception` for callers in the same
    process; it is not serialised.
    """

    model_config = ConfigDict(frozen=True, defer_build=True)

    type: str
    message: str
    run_path: RunPath = ()
    details: dict[str, Any] | None = None
    """Data the error carries (``OutputValidationError``: the raw answer and its errors)."""
    _exception: BaseException | None = PrivateAttr(default=None)

    @classmethod
    def from_exception(cls, exc: BaseException, run_path: RunPath = ()) -> ErrorInfo:
        """Describe ``exc`` and keep it attached (with its ``details`` if it has some)."""
        details = getattr(exc, "details", None)
        info = cls(
            type=type(exc).__name__,
            message=str(exc) or repr(exc),
            run_path=run_path,
            details=details if isinstance(details, dict) else None,
        )
        info._exception = exc
        return info

    @property
    def exception(self) -> BaseException | None:
        """The original exception, when this event was produced in this process."""
        return self._exception

    def format(self) -> str:
        """A readable one-paragraph description, with the traceback when available."""
        head = f"{self.type} in {'/'.join(self.run_path) or '?'}: {self.message}"
        if self._exception is None:
            return head
        tb = "".join(traceback.format_exception(self._exception))
        return f"{head}\n{tb}"


class AgentEvent(BaseModel):
    """One item of an agent's event stream."""

    model_config = ConfigDict(defer_build=True)

    agent_name: str
    run_path: RunPath = ()
    output: AgentOutput | None = None
    action: AgentAction | None = None
    error: ErrorInfo | None = None

    @property
    def message(self) -> Message | None:
        """The output message, if any (partial or not)."""
        return self.output.message if self.output is not None else None

    @property
    def partial(self) -> bool:
        """True for a streaming delta."""
        return self.output is not None and self.output.partial

    @property
    def text(self) -> str:
        """The output message's text, or ``""``."""
        message = self.message
        return message.content if message is not None else ""

    @property
    def value(self) -> Any:
        """The validated structured output this event carries, or None."""
        return self.output.value if self.output is not None else None

    @property
    def is_error(self) -> bool:
        """True if this event reports a failure."""
        return self.error is not None


class HistoryEntry(NamedTuple):
    """One message of the run's history and who produced it.

    ``agent_name`` is None for user input: the run's root input, or a user
    message of an earlier turn of a stored session.
    """

    agent_name: str | None
    message: Message
    action: AgentAction | None = None

    @property
    def is_input(self) -> bool:
        """True for a message of the run's root input."""
        return self.agent_name is None
