"""Stage mapping: pick each workflow stage's backend and inference params per run.

A workflow's stages are not equally hard. Sending every stage to the largest
model wastes money on easy ones; sending all to a small one fails the hard
ones. A :class:`StageMapper` looks at a stage's input before it runs and
assigns it a :class:`StageAssignment`: a serving-layer backend (a configured
:class:`~adk.Backend` name or a litellm id) and call parameters. The
mappers that cover the usual strategies (explicit table, threshold on a
prompt score, one-bit classifier) are in :mod:`adk.agents.stage_mappers`.

:func:`map_stage` applies a mapper to one stage of one run: the DAG agent
calls it before each node; a custom workflow agent can too. The decision is
journaled like a model call (``<invocation>|stage``): a resumed run reads it
back and never asks the mapper (or pays for its classifier) again. The
assignment goes on the stage's :class:`~adk.RunContext`, so every model call
under it (nested agents and agent tools too) uses that backend, in this run
only; the agents themselves are not changed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from adk.agents.base import Agent, AgentInput
from adk.errors import AdkError, ArgumentTypeError, ConfigurationError
from adk.events import AgentEvent, AgentOutput
from adk.messages import Message, Usage
from adk.models.base import ChatModel
from adk.state.context import RunContext
from adk.state.serde import CheckpointCorrupted

STAGE_MAPPED = "stage_mapped"
"""``event.output.custom["kind"]`` of the event :func:`map_stage` returns."""

STAGE_SUFFIX = "|stage"
"""Journal values ``<invocation>|stage`` hold the decision taken for that stage."""

CLASSIFIER_STAGE = "stage_mapper"
"""The agent name and serving-layer stage of :class:`OneBitStageMapper`'s classifier calls."""


class StageMappingError(AdkError):
    """A stage mapper failed or answered something that is not an assignment."""


@dataclass(frozen=True, slots=True)
class StageAssignment:
    """The backend and inference parameters a stage runs with.

    - ``backend``: a serving-layer model name (a configured
      :class:`~adk.Backend`, or a litellm model id).
    - ``params``: call parameters laid over the agents' own
      (``temperature``, ``max_tokens``...); plain data (they are journaled).
    - ``reason``: why this assignment was chosen (filled in by the mappers).
    - ``score``: the prompt score a threshold mapper compared, if any.
    """

    backend: str
    params: Mapping[str, Any] = field(default_factory=dict)
    reason: str = ""
    score: float | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.backend, str):
            raise ArgumentTypeError(
                "StageAssignment: backend must be a serving-layer model name (str), "
                f"got {type(self.backend).__name__} {self.backend!r}"
            )
        if not self.backend:
            raise ConfigurationError("StageAssignment: backend must not be empty")
        if not isinstance(self.params, Mapping):
            raise ArgumentTypeError(
                f"StageAssignment({self.backend!r}): params must be a mapping, "
                f"got {type(self.params).__name__}"
            )
        for key, value in self.params.items():
            _check_plain(value, f"StageAssignment({self.backend!r}): params[{key!r}]", key)
        object.__setattr__(self, "params", dict(self.params))


def _check_plain(value: object, where: str, key: object = "") -> None:
    """Raise unless ``value`` is JSON-like data (it is journaled and checkpointed)."""
    if not isinstance(key, str):
        raise ArgumentTypeError(f"{where}: keys must be str, got {type(key).__name__}")
    if value is None or isinstance(value, str | int | float | bool):
        return
    if isinstance(value, list | tuple):
        for item in value:
            _check_plain(item, where)
        return
    if isinstance(value, Mapping):
        for inner_key, item in value.items():
            _check_plain(item, where, inner_key)
        return
    raise ConfigurationError(
        f"{where} is a {type(value).__name__}: params must be plain data "
        "(str, numbers, bools, None, lists and dicts), since decisions are journaled"
    )


def as_assignment(value: object, where: str) -> StageAssignment:
    """``value`` (a :class:`StageAssignment` or a backend name) as an assignment."""
    if isinstance(value, StageAssignment):
        return value
    if isinstance(value, str):
        return StageAssignment(value)
    raise ArgumentTypeError(
        f"{where} must be a StageAssignment or a backend name, got {type(value).__name__} {value!r}"
    )


@dataclass(slots=True)
class StageRequest:
    """What a mapper is asked about: the stage's name, its agent and its input messages.

    A mapper that calls a model reports the call with :meth:`spent`: its usage
    is journaled with the decision and counted in the run's usage (replays
    too), priced on that model where the run has a cost limit.
    """

    stage: str
    agent: Agent
    messages: Sequence[Message]
    usage: Usage | None = None
    """What the mapper's own model calls used (None: none)."""
    model: ChatModel | str | None = None
    """The model those calls went to (for pricing)."""

    @property
    def prompt(self) -> str:
        """The text of the input (every message but system ones, one per line)."""
        return "\n".join(m.content for m in self.messages if m.role != "system" and m.content)

    def spent(self, usage: Usage, model: ChatModel | str) -> None:
        """Add the usage of a call to ``model`` the mapper made for this decision."""
        self.usage = usage if self.usage is None else self.usage + usage
        self.model = model


@runtime_checkable
class StageMapper(Protocol):
    """Assigns a stage a backend and params; None leaves the stage as its agents say."""

    async def assign(self, stage: StageRequest, ctx: RunContext) -> StageAssignment | None:
        """The assignment of ``stage`` in the run of ``ctx``."""
        ...


def checked_number(value: object, where: str) -> float:
    """``value`` as a float if it is a number (not a bool, not NaN); else a clear error."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ArgumentTypeError(f"{where} must be a number, got {type(value).__name__} {value!r}")
    if math.isnan(value):
        raise ConfigurationError(f"{where} must be a number, got NaN")
    return float(value)


async def map_stage(
    mapper: StageMapper,
    stage_name: str,
    agent: Agent,
    input: AgentInput | Sequence[Message],
    ctx: RunContext,
) -> AgentEvent | None:
    """Map one stage of a run, before it runs; the ``stage_mapped`` event to deliver, or None.

    ``ctx`` is the context the stage's ``agent`` will run with (a child of
    the workflow's). The decision is journaled under ``<invocation>|stage``:
    replaying, it is read back and the mapper is not asked again (its event
    is marked as delivered before). The assignment is set on ``ctx``, so
    every model call under it uses its backend and params; None (the mapper
    leaves the stage alone) returns no event. A mapper that raises, or
    returns something else than an assignment, raises :class:`StageMappingError`.
    """
    if not isinstance(mapper, StageMapper):
        raise ArgumentTypeError(
            f"map_stage: mapper must have an async assign(stage, ctx) method, "
            f"got {type(mapper).__name__}"
        )
    key = ctx.invocation + STAGE_SUFFIX
    journal = ctx.journal
    decision = journal.value(key)
    replayed = decision is not None
    if replayed:
        assignment, model = _replayed(decision, key), decision.get("model")
    else:
        messages = input.messages if isinstance(input, AgentInput) else list(input)
        request = StageRequest(stage_name, agent, messages)
        assignment = await _assign(mapper, request, ctx)
        decision, model = _decision(mapper, stage_name, assignment, request), request.model
        journal.note_value(key, decision)
        if journal.step:  # the mapper may have paid for a classifier: never ask it again
            await journal.flush()
    spent = decision.get("usage")
    if spent and ctx.account is not None:  # the classifier's usage, replayed or new
        usage = Usage(prompt_tokens=spent[0], completion_tokens=spent[1], cached_tokens=spent[2])
        ctx.account.charge(CLASSIFIER_STAGE, model, usage, key)
    if assignment is None:
        return None
    ctx.assignment = assignment
    shown = {k: v for k, v in decision.items() if k not in ("usage", "model")}
    event = AgentEvent(
        agent_name=agent.name,
        run_path=ctx.run_path,
        output=AgentOutput(custom={"kind": STAGE_MAPPED, **shown}),
    )
    if replayed:
        journal.mark_replayed(event)
    return event


async def _assign(
    mapper: StageMapper, request: StageRequest, ctx: RunContext
) -> StageAssignment | None:
    """Ask ``mapper``; its answer checked (errors name the mapper and the stage)."""
    where = f"stage mapper {type(mapper).__name__} for stage {request.stage!r}"
    try:
        answer: object = await mapper.assign(request, ctx)
    except (StageMappingError, ConfigurationError):
        raise
    except Exception as exc:
        raise StageMappingError(f"{where} failed: {type(exc).__name__}: {exc}") from exc
    if answer is None or isinstance(answer, StageAssignment):
        return answer
    if isinstance(answer, str) and answer:
        return StageAssignment(answer, reason=f"{type(mapper).__name__} named it")
    raise StageMappingError(
        f"{where} returned {type(answer).__name__} {answer!r}: return a StageAssignment, "
        "a backend name, or None"
    )


def _decision(
    mapper: StageMapper,
    stage: str,
    assignment: StageAssignment | None,
    request: StageRequest,
) -> dict[str, Any]:
    """The journaled record of a decision (plain data)."""
    decision: dict[str, Any] = {"stage": stage, "mapper": type(mapper).__name__}
    if assignment is None:
        decision["backend"] = None
    else:
        decision["backend"] = assignment.backend
        decision["params"] = dict(assignment.params)
        decision["reason"] = assignment.reason
        if assignment.score is not None:
            decision["score"] = assignment.score
    usage = request.usage
    if usage is not None:
        decision["usage"] = [usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens]
        if isinstance(request.model, str):
            decision["model"] = request.model  # to price the usage again when replayed
    return decision


def _replayed(decision: object, key: str) -> StageAssignment | None:
    """The assignment of a journaled decision; CheckpointCorrupted if it is not one."""
    try:
        if not isinstance(decision, dict):
            raise TypeError(f"a dict, got {type(decision).__name__}")
        backend = decision.get("backend")
        usage = decision.get("usage")
        if usage is not None and not (
            isinstance(usage, list) and len(usage) == 3 and all(type(n) is int for n in usage)
        ):
            raise TypeError(f"usage as 3 ints, got {usage!r}")
        if backend is None:
            return None
        score = decision.get("score")
        return StageAssignment(
            backend,
            decision.get("params") or {},
            str(decision.get("reason", "")),
            None if score is None else checked_number(score, "score"),
        )
    except (TypeError, AdkError) as exc:
        raise CheckpointCorrupted(
            f"journal value {key[:80]!r}: not a stage decision: {exc}"
        ) from None
