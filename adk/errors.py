"""Exception types raised by adk.

Agents report failures as error events (see :mod:`adk.events`); these classes
are what the attached exception is, and what ``Runner.invoke`` raises.
"""

from __future__ import annotations

from typing import Any


class AdkError(Exception):
    """Base class of every error adk raises itself."""


class AgentRunError(AdkError):
    """An error event was re-raised after its live exception was lost (e.g. deserialised)."""

    def __init__(self, type_name: str, message: str, run_path: tuple[str, ...] = ()) -> None:
        where = "/".join(run_path) or "?"
        super().__init__(f"{type_name} in {where}: {message}")
        self.type_name = type_name
        self.run_path = run_path


class ConfigurationError(AdkError):
    """An agent, tool or runner was built with invalid settings."""


class ArgumentTypeError(ConfigurationError, TypeError):
    """An argument is not the kind of object the parameter takes (``tools=add``, ``model=42``).

    Both a ``TypeError`` (Python's convention for a wrong type) and a
    :class:`ConfigurationError` (so one ``except`` catches every misuse
    adk reports at construction or at the call).
    """


class InstructionError(AdkError):
    """An instruction template could not be filled (e.g. a missing session value)."""


class MaxIterationsExceeded(AdkError):
    """A ChatModelAgent made ``max_iterations`` model calls without finishing its turn."""


class ToolError(AdkError):
    """A tool call failed: bad arguments, unknown tool, or the tool raised.

    By default a ChatModelAgent turns these into tool-result messages the model
    can read; with ``tool_errors="raise"`` they end the run instead.
    """


class ModelError(AdkError):
    """A model call failed."""

    retryable: bool = False

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class ModelRateLimitError(ModelError):
    """The provider answered 429 (rate limit or quota) and retries ran out."""

    retryable = True


class ModelServerError(ModelError):
    """The provider answered with a 5xx status and retries ran out."""

    retryable = True


class ModelTimeoutError(ModelError):
    """The model call timed out and retries ran out."""

    retryable = True


class ModelConnectionError(ModelError):
    """The endpoint could not be reached and retries ran out."""

    retryable = True


class ModelAuthenticationError(ModelError):
    """The provider rejected the credentials (401/403). Not retried."""


class ModelBadRequestError(ModelError):
    """The provider rejected the request itself (400/404/422). Not retried."""


class ContextWindowExceededError(ModelBadRequestError):
    """The request does not fit the model's context window.

    Raised by the provider, or before the call by a ContextPolicy when one
    message alone is larger than the window (``details``: its index, role
    and tokens; docs/context.md).
    """

    details: dict[str, object] | None = None


class ScriptExhaustedError(ModelError):
    """A ScriptedModel was called more times than it has scripted responses."""


class OutputValidationError(AdkError):
    """A model's structured output stayed invalid after every retry.

    ``raw`` is the last answer as the model gave it (text, or the arguments of
    its ``final_result`` call); ``errors`` lists what was wrong with it. Both
    travel with the error event as ``ErrorInfo.details``, so they survive
    serialisation and reach callers in other processes.
    """

    def __init__(self, message: str, *, raw: str = "", errors: list[str] | None = None) -> None:
        super().__init__(message)
        self.raw = raw
        self.errors = list(errors or ())

    @property
    def details(self) -> dict[str, object]:
        """The raw answer and the validation errors, as JSON-able data."""
        return {"raw": self.raw, "errors": self.errors}


class GuardrailTripped(AdkError):
    """A guardrail refused the run's input or an agent's answer; the run ends with this error.

    ``guardrail`` names it, ``kind`` is ``"input"`` or ``"output"`` and
    ``info`` is what the guardrail reported. They travel with the error event
    as ``ErrorInfo.details`` (``info`` as JSON-able data, else its repr).
    """

    def __init__(self, guardrail: str, info: object = None, *, kind: str = "input") -> None:
        reason = f": {info}" if isinstance(info, str) and info else ""
        super().__init__(f"{kind} guardrail {guardrail!r} tripped{reason}")
        self.guardrail = guardrail
        self.kind = kind
        self.info = info

    def again(self) -> GuardrailTripped:
        """A fresh copy, raised by every later model call of the run (one trip ends it all)."""
        return GuardrailTripped(self.guardrail, self.info, kind=self.kind)

    @property
    def details(self) -> dict[str, object]:
        """The guardrail's name, kind and reported info."""
        info = self.info
        if not isinstance(info, str | int | float | bool | list | dict | None):
            info = repr(info)
        return {"guardrail": self.guardrail, "kind": self.kind, "info": info}


class MiddlewareError(AdkError):
    """A middleware raised (outside ``call_next``): the agent ends with this error.

    The message names the middleware and its hook; the exception it raised
    is the ``__cause__``. Errors of the call itself that a middleware lets
    through (a model error, a tool's exception) keep their own type.
    """


class RunCancelled(AdkError):
    """The run was cancelled by a ``cancel`` signal (its handle, or by run id from anywhere).

    Its last event is an error event of this type; calls in flight were
    cancelled and the calls completed before stay journaled.
    """


class RunControlError(AdkError):
    """A signal cannot apply: unknown kind, unknown run, or a run in the wrong status.

    Attributes: ``run_id``, ``status`` (None for an unknown run) and ``signal``.
    """

    def __init__(self, run_id: str, status: str | None, signal: str, reason: str) -> None:
        self.run_id = run_id
        self.status = status
        self.signal = signal
        self.reason = reason
        super().__init__(f"signal {signal!r} to run {run_id!r} (status {status}): {reason}")

    def __reduce__(self) -> tuple[type[RunControlError], tuple[str, str | None, str, str]]:
        return type(self), (self.run_id, self.status, self.signal, self.reason)


class UsageLimitExceeded(AdkError):
    """A run's usage limit (``adk.UsageLimits``) would be passed; the run stops before it is.

    Attributes: ``limit`` (the field, e.g. ``"max_cost"``), ``maximum`` (its
    value), ``amount`` (what was used, or would be with the next call), ``agent``
    (the agent whose own limit it is, "" for the run's), ``run_id`` (resume the
    run by this id with a raised limit: nothing completed is repeated). They
    travel with the error event as ``ErrorInfo.details``.
    """

    def __init__(
        self, limit: str, maximum: float, amount: float, *, agent: str = "", run_id: str = ""
    ) -> None:
        self.limit = limit
        self.maximum = maximum
        self.amount = amount
        self.agent = agent
        self.run_id = run_id
        whose = f"agent {agent!r} " if agent else ""
        resume = (
            f"; resume with a higher limit: runner.resume({run_id!r}, usage_limits=...)"
            if run_id
            else ""
        )
        super().__init__(
            f"{whose}usage limit {limit}={maximum:g} reached: {amount:g} used or needed{resume}"
        )

    def again(self) -> UsageLimitExceeded:
        """A fresh copy, raised by every later call of the run (one stop ends it all)."""
        return UsageLimitExceeded(
            self.limit, self.maximum, self.amount, agent=self.agent, run_id=self.run_id
        )

    def __reduce__(self) -> tuple[Any, tuple[str, float, float, str, str]]:
        return _rebuild_usage_error, (
            self.limit,
            self.maximum,
            self.amount,
            self.agent,
            self.run_id,
        )

    @property
    def details(self) -> dict[str, object]:
        """Which limit, its value, the amount, the agent and the run id to resume."""
        return {
            "limit": self.limit,
            "maximum": self.maximum,
            "amount": self.amount,
            "agent": self.agent,
            "run_id": self.run_id,
        }


def _rebuild_usage_error(
    limit: str, maximum: float, amount: float, agent: str, run_id: str
) -> UsageLimitExceeded:
    """Unpickle a :class:`UsageLimitExceeded` (its attributes are keyword arguments)."""
    return UsageLimitExceeded(limit, maximum, amount, agent=agent, run_id=run_id)
