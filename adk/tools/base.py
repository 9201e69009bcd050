"""The Tool protocol, the context a tool runs with, and argument validation."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol, runtime_checkable

from adk.errors import ConfigurationError
from adk.events import AgentAction, AgentEvent
from adk.models.base import ToolSpec
from adk.state.addressing import call_id, interrupt_id, tool_call_segment
from adk.state.context import RunContext
from adk.state.interrupts import Interrupt

_NO_ANSWER: Any = object()


class ToolContext:
    """What a tool sees of its run: session values, its call id, and a way to send actions.

    A tool asks for it by declaring a parameter annotated ``ToolContext``; that
    parameter is not part of the tool's schema.
    """

    __slots__ = (
        "_asked",
        "_call_key",
        "_emit",
        "actions",
        "agent_name",
        "call_id",
        "run",
        "tool_name",
    )

    def __init__(
        self,
        run: RunContext,
        *,
        agent_name: str,
        tool_name: str,
        call_id: str,
        emit: Callable[[AgentEvent], Awaitable[None]] | None = None,
        call_key: str = "",
    ) -> None:
        self.run = run
        self._call_key = call_key
        self.agent_name = agent_name
        self.tool_name = tool_name
        self.call_id = call_id
        self.actions: list[AgentAction] = []
        self._emit = emit
        self._asked = 0

    @property
    def idempotency_key(self) -> str:
        """Stable id of this call: the same when a resumed run calls it again.

        A call in flight when a process dies runs again on resume; a tool with
        external side effects can pass this key to the system it calls so
        that the second attempt is recognised as a repeat.
        """
        return call_id(self.run.run_id, self._call_key) if self._call_key else ""

    @property
    def address(self) -> tuple[str, ...]:
        """The agent and tool-call segments down to this call (interrupts are addressed by it)."""
        return (*self.run.address, tool_call_segment(self.tool_name, self.call_id))

    @property
    def answer(self) -> Any:
        """The answer to this call's first interrupt, when the run was resumed with one.

        ``None`` on the first run: a tool that raises :class:`~adk.Interrupt`
        is called again on resume and finds the answer here.
        """
        return self.run.journal.answer(interrupt_id(self.address, "0"))

    def interrupt(self, info: Any) -> Any:
        """Ask for an answer: return it when resuming with one, else pause the run.

        Each call is a separate question (first, second, ...), so a tool can
        ask several in turn; code before each question runs again on resume.
        """
        key = str(self._asked)
        self._asked += 1
        found = self.run.journal.answer(interrupt_id(self.address, key), _NO_ANSWER)
        if found is not _NO_ANSWER:
            return found
        raise Interrupt(info, key=key)

    def interrupt_key(self) -> str:
        """The key a bare ``raise Interrupt(info)`` gets: the next question's number."""
        return str(self._asked)

    async def emit(self, event: AgentEvent) -> None:
        """Forward ``event`` to the calling agent's stream (tools with ``emits_events``).

        Returns once the event was taken. Without a stream to forward to (the
        tool does not declare ``emits_events = True``) the event is dropped.
        """
        if self._emit is not None:
            await self._emit(event)

    def get(self, key: str, default: Any = None) -> Any:
        """The session value ``key``, or ``default``."""
        return self.run.get(key, default)

    def set(self, key: str, value: Any) -> None:
        """Set the session value ``key``."""
        self.run.set(key, value)

    def send_action(self, action: AgentAction) -> None:
        """Attach ``action`` to this call's tool-result event (e.g. exit, transfer)."""
        self.actions.append(action)


@runtime_checkable
class Tool(Protocol):
    """A tool a model can call.

    ``spec`` tells the model the name, description and argument schema;
    ``validate`` checks decoded arguments and returns what ``call`` gets;
    ``call`` returns any value (text, a pydantic model, JSON-able data).
    ``return_directly`` ends the agent's turn with this tool's result.

    Optional capabilities: a tool may also declare these attributes; one it
    does not declare has the default shown (they are read once per tool, when
    an agent builds its toolbox, by :class:`~adk.tools.toolbox.ToolTraits`):

    - ``requires_approval`` (``False``): ``True``, or a predicate of the
      validated arguments, to pause for a person's approval before the call;
    - ``emits_events`` (``False``): the tool forwards events to the caller's
      stream while it runs (``ToolContext.emit``), as an agent tool does;
    - ``uses_context`` (``True``): the tool may read its ToolContext and so
      change session values (``False`` lets adk skip building one).
    """

    name: str
    description: str
    return_directly: bool

    @property
    def spec(self) -> ToolSpec:
        """The name, description and JSON schema shown to the model."""
        ...

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Check decoded ``arguments`` and return what :meth:`call` receives.

        Raise :class:`ArgumentsInvalid` if they do not fit the schema. The
        result may convert values (a FunctionTool turns nested objects into
        the pydantic models its function expects).
        """
        ...

    async def call(self, arguments: dict[str, Any], ctx: ToolContext) -> Any:
        """Run the tool with the arguments :meth:`validate` returned."""
        ...


class ArgumentsInvalid(ValueError):
    """Decoded arguments do not match a tool's schema; the message says where and why."""


class _CompiledSchema:
    """A jsonschema validator compiled once per schema object."""

    __slots__ = ("_validator",)

    def __init__(self, schema: dict[str, Any]) -> None:
        import jsonschema

        cls = jsonschema.validators.validator_for(schema)
        try:
            cls.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise ConfigurationError(
                f"invalid JSON schema for tool arguments: {exc.message}"
            ) from exc
        self._validator = cls(schema)

    def check(self, arguments: dict[str, Any]) -> None:
        import jsonschema

        error = jsonschema.exceptions.best_match(self._validator.iter_errors(arguments))
        if error is None:
            return
        where = "/".join(str(p) for p in error.absolute_path)
        location = f"at '{where}': " if where else ""
        raise ArgumentsInvalid(f"{location}{error.message}")


def compiled_validator(schema: dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    """A cached, compiled validator for ``schema`` that raises :class:`ArgumentsInvalid`."""
    return _CompiledSchema(schema).check


class BaseTool:
    """Convenience base for tools with a fixed spec: validation compiled once, lazily."""

    def __init__(
        self,
        name: str,
        description: str = "",
        parameters: dict[str, Any] | None = None,
        *,
        return_directly: bool = False,
    ) -> None:
        if not name:
            raise ConfigurationError("a tool needs a non-empty name")
        self.name = name
        self.description = description
        self.return_directly = return_directly
        self.requires_approval: bool | Callable[[dict[str, Any]], bool] = False
        self.emits_events = False
        self.uses_context = True
        self._spec = ToolSpec(
            name=name,
            description=description,
            parameters=parameters or {"type": "object", "properties": {}},
        )
        self._check: Callable[[dict[str, Any]], None] | None = None

    @property
    def spec(self) -> ToolSpec:
        """The name, description and JSON schema shown to the model."""
        return self._spec

    def validate(self, arguments: dict[str, Any]) -> dict[str, Any]:
        """Validate ``arguments`` against the schema with a validator compiled on first use."""
        check = self._check
        if check is None:
            check = self._check = compiled_validator(self._spec.parameters)
        check(arguments)
        return arguments

    async def call(self, arguments: dict[str, Any], ctx: ToolContext) -> Any:
        """Run the tool; subclasses implement this."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
