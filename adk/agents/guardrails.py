"""Guardrails: checks on a run's input and on an agent's answer that can end the run.

A guardrail is a function of the run context and what it checks (sync or
async): input guardrails get the input messages, output guardrails the answer
message. It returns a :class:`GuardrailResult` (or a bool: True trips it, or
None: passed). A tripped guardrail ends the run with a
:class:`~adk.GuardrailTripped` error event that names it.

Verdicts are journaled under the call they guarded (see :func:`verdict_key`):
a resumed run reads them back and never runs a guardrail again.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import Any, Literal, overload

import anyio

from adk.errors import ArgumentTypeError, ConfigurationError, GuardrailTripped
from adk.state.context import RunContext
from adk.state.serde import CheckpointCorrupted, SerializationError, dumps, type_name

Kind = Literal["input", "output"]
GuardrailFunction = Callable[[RunContext, Any], Any]
"""``fn(ctx, data)``: ``data`` is the input messages or the answer message; sync or async."""


class GuardrailResult:
    """A guardrail's verdict: ``tripped`` ends the run; ``info`` says why (checkpointable data)."""

    __slots__ = ("info", "tripped")

    def __init__(self, tripped: bool = False, info: Any = None) -> None:
        self.tripped = bool(tripped)
        self.info = info

    def __repr__(self) -> str:
        return f"GuardrailResult(tripped={self.tripped!r}, info={self.info!r})"


class Guardrail:
    """A named check: ``Guardrail("no_pii", fn)``; see the module docstring for ``fn``.

    The name appears in the :class:`~adk.GuardrailTripped` error and in the
    journal key of each verdict, so it must be unique among the guardrails of
    one agent or Runner.
    """

    __slots__ = ("fn", "name")

    def __init__(self, name: str, fn: GuardrailFunction) -> None:
        if not isinstance(name, str) or not name:
            raise ArgumentTypeError(f"Guardrail name must be a non-empty str, got {name!r}")
        if not callable(fn):
            raise ArgumentTypeError(f"Guardrail {name!r}: fn must be callable, got {fn!r}")
        self.name = name
        self.fn = fn

    async def check(self, ctx: RunContext, data: Any) -> GuardrailResult:
        """Run the check; a return value that is not a verdict raises TypeError naming it."""
        verdict = self.fn(ctx, data)
        if inspect.isawaitable(verdict):
            verdict = await verdict
        if isinstance(verdict, GuardrailResult):
            return verdict
        if verdict is None or isinstance(verdict, bool):
            return GuardrailResult(bool(verdict))
        raise TypeError(
            f"guardrail {self.name!r} returned {type(verdict).__name__}; return a "
            "GuardrailResult, a bool (True trips it) or None (passed)"
        )

    def __repr__(self) -> str:
        return f"Guardrail({self.name!r})"


@overload
def guardrail(fn: GuardrailFunction, /) -> Guardrail: ...
@overload
def guardrail(*, name: str | None = None) -> Callable[[GuardrailFunction], Guardrail]: ...
def guardrail(
    fn: GuardrailFunction | None = None, /, *, name: str | None = None
) -> Guardrail | Callable[[GuardrailFunction], Guardrail]:
    """Decorator: ``@guardrail`` (named after the function) or ``@guardrail(name="...")``."""

    def wrap(function: GuardrailFunction) -> Guardrail:
        return Guardrail(str(name or getattr(function, "__name__", "guardrail")), function)

    return wrap(fn) if fn is not None else wrap


def checked_guardrails(owner: str, argument: str, values: Iterable[Any]) -> tuple[Guardrail, ...]:
    """``values`` as guardrails (plain functions are named after themselves); names unique."""
    if isinstance(values, Guardrail) or callable(values) or isinstance(values, str | bytes):
        raise ArgumentTypeError(f"{owner}: {argument} must be a list of guardrails, got {values!r}")
    guardrails: list[Guardrail] = []
    for value in values:
        if not isinstance(value, Guardrail):
            if not callable(value):
                raise ArgumentTypeError(
                    f"{owner}: {argument} must hold Guardrail objects or functions, got {value!r}"
                )
            value = Guardrail(getattr(value, "__name__", "guardrail"), value)
        if any(known.name == value.name for known in guardrails):
            raise ConfigurationError(
                f"{owner}: two {argument} are named {value.name!r}; give them distinct names"
            )
        guardrails.append(value)
    return tuple(guardrails)


RUN_SCOPE = ""
"""The scope of Runner-level verdicts: the run itself, not one model call."""


def verdict_key(scope: str, kind: Kind, name: str) -> str:
    """The journal key of a verdict: ``<model-call key>|gi:<name>`` (``go`` for output).

    Agent-level verdicts sit under the model call they guarded (an agent
    invocation's first call for input, the answering call for output);
    Runner-level ones under the run (:data:`RUN_SCOPE`, a key starting ``|``).
    """
    return f"{scope}|g{kind[0]}:{name}"


def _stored_info(info: Any) -> Any:
    """``info`` if it can be checkpointed, else its repr (a verdict must always journal)."""
    if info is None or isinstance(info, str | int | float | bool):
        return info
    try:
        dumps(info)
    except SerializationError:
        return repr(info)
    return info


async def run_guardrails(
    guardrails: Sequence[Guardrail], kind: Kind, ctx: RunContext, data: Any, scope: str
) -> None:
    """Run ``guardrails`` concurrently on ``data``; raise :class:`GuardrailTripped` on a trip.

    A verdict already in the journal is used instead of running the
    guardrail again. The first trip cancels the guardrails still running. A
    guardrail that raises ends the check with its exception.
    """
    journal = ctx.journal
    pending: list[Guardrail] = []
    for check in guardrails:
        key = verdict_key(scope, kind, check.name)
        recorded = journal.value(key)
        if recorded is None:
            pending.append(check)
            continue
        if not (type(recorded) is list and len(recorded) == 2 and type(recorded[0]) is bool):
            raise CheckpointCorrupted(
                f"journal record {key[:80]!r}: a guardrail verdict must be [tripped, info], "
                f"got {type_name(recorded)}"
            )
        if recorded[0]:
            raise GuardrailTripped(check.name, recorded[1], kind=kind)
    if not pending:
        return
    failures: list[Exception] = []

    async def run_one(check: Guardrail, cancel: Callable[[], None]) -> None:
        try:
            verdict = await check.check(ctx, data)
        except Exception as exc:
            failures.append(exc)
            cancel()
            return
        info = _stored_info(verdict.info)
        journal.note_value(verdict_key(scope, kind, check.name), [verdict.tripped, info])
        if verdict.tripped:
            failures.append(GuardrailTripped(check.name, verdict.info, kind=kind))
            cancel()

    if len(pending) == 1:
        await run_one(pending[0], lambda: None)
    else:
        async with anyio.create_task_group() as group:
            for check in pending:
                group.start_soon(run_one, check, group.cancel_scope.cancel)
    if failures:
        raise failures[0]


async def concurrently(
    call: Callable[[], Awaitable[Any]], checks: Callable[[], Awaitable[None]]
) -> Any:
    """Run ``call`` while ``checks`` run; its result only once they passed.

    A failing check (a trip) cancels the call and raises. A call that fails
    first still waits for the checks: a trip wins over the call's error.
    """
    result: list[Any] = []
    errors: list[Exception] = []
    check_errors: list[Exception] = []

    async with anyio.create_task_group() as group:

        async def run_call() -> None:
            try:
                result.append(await call())
            except Exception as exc:
                errors.append(exc)

        async def run_checks() -> None:
            try:
                await checks()
            except Exception as exc:
                check_errors.append(exc)
                group.cancel_scope.cancel()

        group.start_soon(run_call)
        group.start_soon(run_checks)
    if check_errors:
        raise check_errors[0]
    if errors:
        raise errors[0]
    return result[0]
