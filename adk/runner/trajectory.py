"""A run's trajectory read back: what every execution of the run did, in order.

``Runner(..., trajectories=True)`` records it (:mod:`adk.agents.recording`);
``await runner.trajectory(run_id)`` reads it here. A :class:`Trajectory` holds
the run's delivered events, its model calls (the request messages, the
response, usage, start and end times), its tool calls (arguments, result,
start and end times) and one :class:`Execution` per execution of the run (a
resumed run has several). It is plain data: scoring and replay
(``adk.evals``) work on it, and it travels as JSON Lines
(:mod:`adk.runner.trajectory_jsonl`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adk.agents.recording import RECORD_PREFIX, RECORD_VERSION
from adk.messages import Message, ToolCall, Usage
from adk.runner.checkpoint import CheckpointNotFound, namespace
from adk.state.journal import decode_message
from adk.state.serde import CheckpointCorrupted, Fields, loads
from adk.state.stores.base import CheckpointStore


class TrajectoryCorrupted(CheckpointCorrupted):
    """A stored trajectory record (or a JSONL line) is not a valid trajectory; names the field."""


@dataclass(slots=True)
class Execution:
    """One execution of the run: from its start (or resume) to its end or pause."""

    number: int
    started: float
    ended: float
    status: str
    """``"finished"``, ``"failed"`` or ``"paused"`` (at interrupts)."""


@dataclass(slots=True)
class TrajectoryEvent:
    """A complete event the run delivered: who, its message, its error or control action."""

    agent_name: str
    run_path: tuple[str, ...]
    message: Message | None = None
    error_type: str | None = None
    error_message: str | None = None
    interrupts: tuple[str, ...] = ()
    """Ids of the interrupts the event paused on."""
    transfer_to: str | None = None
    exit: bool = False
    execution: int = 0

    @property
    def text(self) -> str:
        """The message's text, or ``""``."""
        return self.message.content if self.message is not None else ""


@dataclass(slots=True)
class ModelCall:
    """One model call: the messages it was sent, the response, usage and timing."""

    key: str
    """The call's journal key (``<agent address>|m<n>``): stable across executions."""
    agent_name: str
    messages: list[Message]
    tools: list[str]
    response: Message | None
    usage: Usage | None
    started: float
    ended: float
    stream: bool = False
    finish_reason: str | None = None
    model: str = ""
    error: str | None = None
    """``"Type: message"`` when the call raised (then :attr:`response` is None)."""
    execution: int = 0

    @property
    def duration(self) -> float:
        """Seconds the call took."""
        return self.ended - self.started


@dataclass(slots=True)
class ToolCallRecord:
    """One tool call that ran: its arguments, result message and timing."""

    key: str
    agent_name: str
    call_id: str
    name: str
    arguments: str
    """The arguments as the model sent them (JSON text)."""
    result: Message | None
    started: float
    ended: float
    failed: bool = False
    interrupts: tuple[str, ...] = ()
    """Ids of the interrupts the call raised instead of a result."""
    error: str | None = None
    execution: int = 0

    @property
    def duration(self) -> float:
        """Seconds the call took."""
        return self.ended - self.started

    def parsed_arguments(self) -> Any:
        """The arguments decoded from JSON (the raw text if they are not JSON)."""
        try:
            return json.loads(self.arguments)
        except ValueError:
            return self.arguments


@dataclass(slots=True)
class Trajectory:
    """Everything a recorded run did, across its executions (see the module docstring)."""

    run_id: str
    executions: list[Execution] = field(default_factory=list)
    events: list[TrajectoryEvent] = field(default_factory=list)
    model_calls: list[ModelCall] = field(default_factory=list)
    tool_calls: list[ToolCallRecord] = field(default_factory=list)

    @property
    def usage(self) -> Usage:
        """Token usage of every model call, summed."""
        prompt = completion = cached = 0
        for call in self.model_calls:
            if call.usage is not None:
                prompt += call.usage.prompt_tokens
                completion += call.usage.completion_tokens
                cached += call.usage.cached_tokens
        return Usage(prompt_tokens=prompt, completion_tokens=completion, cached_tokens=cached)

    @property
    def duration(self) -> float:
        """Seconds the executions took, summed (the time paused in between not counted)."""
        return sum(execution.ended - execution.started for execution in self.executions)

    @property
    def status(self) -> str:
        """The status of the last execution (``""`` if none was recorded)."""
        return self.executions[-1].status if self.executions else ""

    @property
    def output(self) -> str:
        """The run's final answer: the last assistant message without tool calls."""
        for event in reversed(self.events):
            message = event.message
            if message is not None and message.role == "assistant" and not message.tool_calls:
                return message.content
        return ""

    @property
    def requested_tool_calls(self) -> list[ToolCall]:
        """The tool calls the model asked for, in order (from the responses)."""
        return [
            tool_call
            for call in self.model_calls
            if call.response is not None
            for tool_call in call.response.tool_calls
        ]

    def to_jsonl(self) -> str:
        """The trajectory as JSON Lines (binary parts as base64 with their media type)."""
        from adk.runner.trajectory_jsonl import to_jsonl

        return to_jsonl(self)

    def write_jsonl(self, path: str | Path) -> None:
        """Write :meth:`to_jsonl` to ``path`` (UTF-8)."""
        Path(path).write_text(self.to_jsonl(), encoding="utf-8")

    @classmethod
    def from_jsonl(cls, text: str) -> Trajectory:
        """The trajectory :meth:`to_jsonl` wrote; :class:`TrajectoryCorrupted` if it is not one."""
        from adk.runner.trajectory_jsonl import from_jsonl

        return from_jsonl(text)

    @classmethod
    def read_jsonl(cls, path: str | Path) -> Trajectory:
        """:meth:`from_jsonl` of the file at ``path``."""
        return cls.from_jsonl(Path(path).read_text(encoding="utf-8"))


async def read_trajectory(store: CheckpointStore, run_id: str) -> Trajectory:
    """The trajectory of ``run_id`` from its ``tr:`` records in ``store``."""
    records = sorted(await store.scan(namespace(run_id), RECORD_PREFIX))
    if not records:
        raise CheckpointNotFound(
            f"no trajectory of run {run_id!r} in the store: record one with "
            "Runner(..., trajectories=True) (or it was deleted or expired)"
        )
    trajectory = Trajectory(run_id)
    for name, data in records:
        where = f"trajectory record {name} of run {run_id!r}"
        try:
            _load_execution(trajectory, Fields(loads(data, where), where))
        except TrajectoryCorrupted:
            raise
        except CheckpointCorrupted as exc:
            raise TrajectoryCorrupted(str(exc)) from None
    return trajectory


def _load_execution(trajectory: Trajectory, record: Fields) -> None:
    where = record.where
    if record.integer("v") != RECORD_VERSION:
        raise TrajectoryCorrupted(f"{where}: unknown version {record.raw.get('v')!r}")
    number = record.integer("n")
    trajectory.executions.append(
        Execution(number, record.number("s"), record.number("e"), record.text("st"))
    )
    for index, raw in enumerate(record.sequence("ev")):
        trajectory.events.append(_event(Fields(raw, f"{where}, event {index}"), number))
    for index, raw in enumerate(record.sequence("mc")):
        trajectory.model_calls.append(
            _model_call(Fields(raw, f"{where}, model call {index}"), number)
        )
    for index, raw in enumerate(record.sequence("tc")):
        trajectory.tool_calls.append(_tool_call(Fields(raw, f"{where}, tool call {index}"), number))


def _message(fields: Fields, name: str) -> Message:
    try:
        return decode_message(fields.get(name))
    except CheckpointCorrupted as exc:
        raise TrajectoryCorrupted(f"{fields.where}: field {name!r}: {exc}") from None


def _texts(fields: Fields, name: str) -> tuple[str, ...]:
    values = fields.raw.get(name) or []
    if type(values) is not list or not all(type(value) is str for value in values):
        raise fields.error(name, "a list of str", values)
    return tuple(values)


def _event(fields: Fields, execution: int) -> TrajectoryEvent:
    error = fields.raw.get("x")
    if error is not None and not (type(error) is list and len(error) == 3):
        raise fields.error("x", "[type, message, run path]", error)
    return TrajectoryEvent(
        agent_name=fields.text("a"),
        run_path=_texts(fields, "p"),
        message=_message(fields, "m") if "m" in fields.raw else None,
        error_type=str(error[0]) if error else None,
        error_message=str(error[1]) if error else None,
        interrupts=_texts(fields, "i"),
        transfer_to=fields.optional_text("t"),
        exit=bool(fields.raw.get("q", False)),
        execution=execution,
    )


def _model_call(fields: Fields, execution: int) -> ModelCall:
    messages = fields.sequence("q")
    decoded = []
    for index, raw in enumerate(messages):
        try:
            decoded.append(decode_message(raw))
        except CheckpointCorrupted as exc:
            raise TrajectoryCorrupted(f"{fields.where}: request message {index}: {exc}") from None
    usage = fields.raw.get("u")
    if usage is not None and not (
        type(usage) is list and len(usage) == 3 and all(type(n) is int for n in usage)
    ):
        raise fields.error("u", "3 int [prompt, completion, cached]", usage)
    return ModelCall(
        key=fields.text("k"),
        agent_name=fields.text("a"),
        messages=decoded,
        tools=list(_texts(fields, "tl")),
        response=_message(fields, "r") if "r" in fields.raw else None,
        usage=None
        if usage is None
        else Usage(prompt_tokens=usage[0], completion_tokens=usage[1], cached_tokens=usage[2]),
        started=fields.number("s"),
        ended=fields.number("e"),
        stream=bool(fields.raw.get("st", False)),
        finish_reason=fields.optional_text("f"),
        model=fields.optional_text("md") or "",
        error=fields.optional_text("x"),
        execution=execution,
    )


def _tool_call(fields: Fields, execution: int) -> ToolCallRecord:
    return ToolCallRecord(
        key=fields.text("k"),
        agent_name=fields.text("a"),
        call_id=fields.text("i"),
        name=fields.text("n"),
        arguments=fields.text("g"),
        result=_message(fields, "r") if "r" in fields.raw else None,
        started=fields.number("s"),
        ended=fields.number("e"),
        failed=bool(fields.raw.get("fl", False)),
        interrupts=_texts(fields, "pi"),
        error=fields.optional_text("x"),
        execution=execution,
    )
