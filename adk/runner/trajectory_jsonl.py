"""A trajectory as JSON Lines: one JSON object a line, readable by any tool.

The first line is ``{"type": "trajectory", "version": 1, "run_id": ...}``;
then one line per execution, event, model call and tool call, each with its
``"type"``. Messages are written as :class:`~adk.Message` dumps: a binary
part (an image) is its base64 text with its media type (JSON is text; in
the store the same bytes stay msgpack bytes). Reading checks every line and
raises :class:`~adk.runner.trajectory.TrajectoryCorrupted` naming the line.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, fields
from typing import Any

from pydantic import ValidationError

from adk.messages import Message, Usage
from adk.runner.trajectory import (
    Execution,
    ModelCall,
    ToolCallRecord,
    Trajectory,
    TrajectoryCorrupted,
    TrajectoryEvent,
)

JSONL_VERSION = 1


def _message(message: Message | None) -> Any:
    return None if message is None else message.model_dump(mode="json")


def _line(kind: str, item: Any) -> str:
    data: dict[str, Any] = {"type": kind}
    for spec in fields(item):
        value = getattr(item, spec.name)
        if isinstance(value, Message):
            value = _message(value)
        elif isinstance(value, Usage):
            value = value.model_dump(mode="json")
        elif spec.name == "messages":
            value = [_message(message) for message in value]
        elif isinstance(value, tuple):
            value = list(value)
        data[spec.name] = value
    return json.dumps(data, ensure_ascii=False)


def to_jsonl(trajectory: Trajectory) -> str:
    """``trajectory`` as JSON Lines (see the module docstring)."""
    head = {"type": "trajectory", "version": JSONL_VERSION, "run_id": trajectory.run_id}
    lines = [json.dumps(head)]
    lines += [json.dumps({"type": "execution", **asdict(e)}) for e in trajectory.executions]
    lines += [_line("event", event) for event in trajectory.events]
    lines += [_line("model_call", call) for call in trajectory.model_calls]
    lines += [_line("tool_call", call) for call in trajectory.tool_calls]
    return "\n".join(lines) + "\n"


def _read_message(value: Any) -> Message | None:
    return None if value is None else Message.model_validate(value)


def _build(kind: type[Any], data: dict[str, Any]) -> Any:
    values: dict[str, Any] = {}
    for spec in fields(kind):
        if spec.name not in data:
            continue
        value = data[spec.name]
        if spec.name in ("message", "response", "result"):
            value = _read_message(value)
        elif spec.name == "messages":
            value = [_read_message(message) for message in value]
        elif spec.name == "usage":
            value = None if value is None else Usage.model_validate(value)
        elif spec.name in ("run_path", "interrupts"):
            value = tuple(value)
        values[spec.name] = value
    return kind(**values)


_KINDS: dict[str, tuple[type[Any], Callable[[Trajectory], list[Any]]]] = {
    "execution": (Execution, lambda t: t.executions),
    "event": (TrajectoryEvent, lambda t: t.events),
    "model_call": (ModelCall, lambda t: t.model_calls),
    "tool_call": (ToolCallRecord, lambda t: t.tool_calls),
}


def from_jsonl(text: str) -> Trajectory:
    """The trajectory :func:`to_jsonl` wrote; :class:`TrajectoryCorrupted` naming a bad line."""
    if not isinstance(text, str):
        raise TypeError(f"from_jsonl needs the JSONL text (a str), got {type(text).__name__}")
    trajectory: Trajectory | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        where = f"trajectory JSONL line {number}"
        try:
            data = json.loads(line)
        except ValueError as exc:
            raise TrajectoryCorrupted(f"{where} is not JSON: {exc}") from None
        kind = data.get("type") if isinstance(data, dict) else None
        if trajectory is None:
            if kind != "trajectory" or data.get("version") != JSONL_VERSION:
                raise TrajectoryCorrupted(
                    f"{where} must be the header {{'type': 'trajectory', 'version': "
                    f"{JSONL_VERSION}, 'run_id': ...}}, got {line[:80]!r}"
                )
            trajectory = Trajectory(str(data.get("run_id", "")))
            continue
        if kind not in _KINDS:
            raise TrajectoryCorrupted(f"{where} has an unknown type {kind!r}")
        cls, items = _KINDS[kind]
        try:
            items(trajectory).append(_build(cls, data))
        except (TypeError, ValueError, ValidationError) as exc:
            raise TrajectoryCorrupted(f"{where} (a {kind}) is invalid: {exc}") from None
    if trajectory is None:
        raise TrajectoryCorrupted("trajectory JSONL is empty (no header line)")
    return trajectory
