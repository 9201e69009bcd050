"""``adk run --plain``: one JSON object per line, for scripts and pipes.

A pipe cannot show a live view, and a script should not have to parse one:
every complete event becomes one flat JSON object, every streamed delta
one small ``delta`` object, and the run's start and end one object each
(docs/cli.md has the schema). The objects are built from the events alone,
so the same encoding serves ``adk show --plain``.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from adk.console.driver import RunSummary
from adk.events import AgentEvent, InterruptInfo


def _jsonable(value: Any) -> Any:
    """``value`` as JSON data: pydantic models dumped, bytes and unknown objects as text."""
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)
    return value


def _arguments(text: str) -> Any:
    """Tool-call arguments decoded from their JSON text (kept as text when they are not JSON)."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def interrupt_record(info: InterruptInfo) -> dict[str, Any]:
    """One pending interrupt: its id (what to answer) and what it asks."""
    return {"id": info.id, "info": _jsonable(info.info)}


def event_record(event: AgentEvent, run_id: str) -> dict[str, Any]:
    """The JSON object of one event (the schema is in docs/cli.md)."""
    record: dict[str, Any] = {
        "type": "event",
        "run_id": run_id,
        "agent": event.agent_name,
        "path": list(event.run_path),
    }
    if event.partial:
        record.update(type="delta", text=event.text)
        return record
    action = event.action
    if event.error is not None:
        record.update(type="error", error_type=event.error.type, message=event.error.message)
    elif action is not None and action.interrupted is not None:
        record.update(
            type="interrupt",
            checkpoint_id=action.interrupted.checkpoint_id,
            interrupts=[interrupt_record(i) for i in action.interrupted.interrupts],
        )
    elif event.message is not None:
        _message_fields(record, event)
    if action is not None:
        _action_fields(record, event)
    if event.output is not None and event.output.custom is not None:
        record["custom"] = _jsonable(event.output.custom)
    return record


def _message_fields(record: dict[str, Any], event: AgentEvent) -> None:
    message = event.message
    assert message is not None
    if message.role == "tool":
        record.update(
            type="tool_result",
            tool=message.name,
            call_id=message.tool_call_id,
            text=message.content,
        )
        return
    record.update(type="message", role=message.role, text=message.content)
    if message.tool_calls:
        record["tool_calls"] = [
            {"id": c.id, "name": c.name, "arguments": _arguments(c.arguments)}
            for c in message.tool_calls
        ]
    if message.usage is not None:
        usage = message.usage
        record["usage"] = {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "cached_tokens": usage.cached_tokens,
        }


def _action_fields(record: dict[str, Any], event: AgentEvent) -> None:
    action = event.action
    assert action is not None
    if action.transfer_to_agent is not None:
        record["transfer_to"] = action.transfer_to_agent.dest
    if action.exit:
        record["exit"] = True
    if action.break_loop is not None:
        record["break_loop"] = action.break_loop.from_agent
    if action.custom is not None:
        record["action"] = _jsonable(action.custom)


def summary_record(summary: RunSummary) -> dict[str, Any]:
    """The ``run_end`` object: how the run stopped and what it used."""
    return {
        "type": "run_end",
        "run_id": summary.run_id,
        "status": summary.status,
        "checkpoint_id": summary.checkpoint_id,
        "model_calls": summary.model_calls,
        "prompt_tokens": summary.prompt_tokens,
        "completion_tokens": summary.completion_tokens,
        "cached_tokens": summary.cached_tokens,
        "cost": summary.cost,
        "elapsed": round(summary.elapsed, 3),
    }


class JsonLinesDisplay:
    """A :class:`~adk.console.driver.Display` writing JSON Lines to ``out`` (stdout)."""

    interactive = False

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out if out is not None else sys.stdout

    def _write(self, record: dict[str, Any]) -> None:
        self.out.write(json.dumps(record, ensure_ascii=False) + "\n")
        self.out.flush()

    def start(self, run_id: str, agent: str, resumed_from: str | None) -> None:
        """The ``run_start`` object (one per segment: a resume starts one too)."""
        self._write(
            {"type": "run_start", "run_id": run_id, "agent": agent, "resumed_from": resumed_from}
        )

    def event(self, event: AgentEvent, run_id: str) -> None:
        """One event's object."""
        self._write(event_record(event, run_id))

    def pause(self) -> None:
        """Nothing to stop: the plain output has no live region."""

    def finish(self, summary: RunSummary) -> None:
        """The ``run_end`` object."""
        self._write(summary_record(summary))

    def note(self, text: str) -> None:
        """Notes are for people: on stderr, so stdout stays JSON Lines."""
        print(text, file=sys.stderr)
