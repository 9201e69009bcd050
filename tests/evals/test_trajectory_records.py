"""Trajectory records: JSONL round trip (with an image), typed errors, nothing when off."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from adk import (
    ChatModelAgent,
    CheckpointNotFound,
    ImagePart,
    InMemoryStore,
    Message,
    Runner,
    ScriptedModel,
    ToolCall,
    Trajectory,
    TrajectoryCorrupted,
    tool,
)
from adk.state.serde import dumps, loads

pytestmark = pytest.mark.anyio

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe"


@tool
def describe(color: str) -> str:
    """Describe a color."""
    return f"{color} is warm"


def _agent() -> ChatModelAgent:
    model = ScriptedModel(
        [ToolCall(id="call_1", name="describe", arguments='{"color": "red"}'), "A red square."]
    )
    return ChatModelAgent("viewer", model=model, tools=[describe])


async def test_jsonl_round_trip_keeps_an_image_part(tmp_path: Path) -> None:
    store = InMemoryStore()
    runner = Runner(_agent(), checkpoint_store=store, trajectories=True)
    image = ImagePart(data=PNG, media_type="image/png")
    result = await runner.invoke([Message.user(["What is this?", image])])
    trajectory = await runner.trajectory(result.run_id)

    # In the store the image stays msgpack bytes (not base64 text).
    ((_name, data),) = await store.scan(f"run:{result.run_id}", "tr:")
    record = loads(data)
    stored_part = record["mc"][0]["q"][0][6][1]
    assert type(stored_part["d"]) is bytes and stored_part["d"] == PNG

    text = trajectory.to_jsonl()
    lines = [json.loads(line) for line in text.splitlines()]
    assert lines[0] == {"type": "trajectory", "version": 1, "run_id": result.run_id}
    assert [line["type"] for line in lines[1:]] == [
        "execution",
        "event",
        "event",
        "event",
        "model_call",
        "model_call",
        "tool_call",
    ]
    part = lines[5]["messages"][0]["parts"][1]
    assert part["media_type"] == "image/png"
    assert base64.urlsafe_b64decode(part["data"]) == PNG

    path = tmp_path / "run.jsonl"
    trajectory.write_jsonl(path)
    back = Trajectory.read_jsonl(path)
    assert back == trajectory
    assert back.model_calls[0].messages[0].parts[1].data == PNG
    assert back.tool_calls[0].parsed_arguments() == {"color": "red"}
    assert back.output == "A red square." and back.usage == trajectory.usage


async def test_off_by_default_writes_nothing() -> None:
    store = InMemoryStore()
    runner = Runner(_agent(), checkpoint_store=store)
    result = await runner.invoke("hi")
    assert result.text == "A red square."
    assert await store.namespaces() == []
    with pytest.raises(CheckpointNotFound, match="trajectories=True"):
        await runner.trajectory(result.run_id)


async def test_streamed_run_records_its_calls() -> None:
    runner = Runner(_agent(), streaming=True, trajectories=True)
    events = [event async for event in runner.query("hi", run_id="streamed")]
    assert events[-1].text == "A red square."
    assert any(event.partial for event in events)
    trajectory = await runner.trajectory("streamed")
    assert [call.stream for call in trajectory.model_calls] == [True, True]
    response = trajectory.model_calls[1].response
    assert response is not None and response.content == "A red square."
    assert trajectory.model_calls[1].usage is not None
    # Partial deltas are not events of the trajectory: only the complete messages.
    assert [event.text for event in trajectory.events if event.text] == [
        "red is warm",
        "A red square.",
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"garbage", "truncated|not an adk"),
        (dumps([1, 2]), "must be a map"),
        (
            dumps(
                {
                    "v": 1,
                    "n": 0,
                    "s": 0.0,
                    "e": 1.0,
                    "st": "finished",
                    "ev": [],
                    "mc": [{"k": 3, "q": []}],
                    "tc": [],
                }
            ),
            "model call 0: field 'k' must be a str",
        ),
        (
            dumps(
                {
                    "v": 1,
                    "n": 0,
                    "s": 0.0,
                    "e": 1.0,
                    "st": "finished",
                    "ev": [{"a": "x", "p": [], "m": [9, "", [], None, None, None]}],
                    "mc": [],
                    "tc": [],
                }
            ),
            "event 0: field 'm'",
        ),
        (dumps({"v": 7}), "unknown version 7"),
    ],
    ids=["not-a-record", "not-a-map", "bad-field", "bad-message", "unknown-version"],
)
async def test_a_corrupted_record_raises_a_typed_error(data: bytes, message: str) -> None:
    store = InMemoryStore()
    await store.put("run:r1", "tr:0000000000", data)
    runner = Runner(_agent(), checkpoint_store=store, trajectories=True)
    with pytest.raises(TrajectoryCorrupted, match=message) as caught:
        await runner.trajectory("r1")
    assert "tr:0000000000" in str(caught.value) and "'r1'" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty"),
        ("not json\n", "line 1 is not JSON"),
        ('{"type": "event"}\n', "line 1 must be the header"),
        ('{"type": "trajectory", "version": 1, "run_id": "r"}\n{"type": "x"}\n', "unknown type"),
        (
            '{"type": "trajectory", "version": 1, "run_id": "r"}\n'
            '{"type": "model_call", "key": "k"}\n',
            "line 2 \\(a model_call\\) is invalid",
        ),
        (
            '{"type": "trajectory", "version": 1, "run_id": "r"}\n'
            '{"type": "event", "agent_name": "a", "run_path": [], "message": {"role": "x"}}\n',
            "line 2 \\(a event\\) is invalid",
        ),
    ],
)
def test_bad_jsonl_raises_a_typed_error(text: str, message: str) -> None:
    with pytest.raises(TrajectoryCorrupted, match=message):
        Trajectory.from_jsonl(text)


async def test_a_failed_model_call_is_recorded_with_its_error() -> None:
    runner = Runner(
        ChatModelAgent("bot", model=ScriptedModel([RuntimeError("model down")])),
        trajectories=True,
    )
    events = [event async for event in runner.query("hi", run_id="failing")]
    assert events[-1].error is not None
    trajectory = await runner.trajectory("failing")
    (call,) = trajectory.model_calls
    assert call.response is None and call.error == "RuntimeError: model down"
    assert trajectory.status == "failed"
    assert trajectory.events[-1].error_type == "RuntimeError"


def test_trajectories_must_be_a_bool() -> None:
    with pytest.raises(TypeError, match="trajectories must be a bool"):
        Runner(_agent(), trajectories="yes")  # type: ignore[arg-type]
