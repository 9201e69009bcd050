"""A composite run's trajectory (parallel, sequence, agent tool, approval and resume), per store."""

from __future__ import annotations

import pytest

from adk import Approval, CheckpointNotFound, Runner
from adk.state.stores.base import CheckpointStore
from tests.evals.app import build
from tests.runner.stores import (  # noqa: F401  (fixtures)
    anyio_backend_fixture,
    kind_and_backend_fixture,
    store_fixture,
)

pytestmark = pytest.mark.anyio


async def test_composite_run_trajectory_reads_back_whole(store: CheckpointStore) -> None:
    runner = Runner(build(), checkpoint_store=store, trajectories=True)
    first = await runner.invoke("refund A1")
    assert first.checkpoint_id is not None
    (pending,) = first.interrupts
    done = await runner.resume_invoke(first.checkpoint_id, {pending.id: Approval.approve()})
    assert done.text == "All refunded."

    trajectory = await runner.trajectory(first.run_id)
    assert trajectory.run_id == first.run_id
    assert [e.status for e in trajectory.executions] == ["paused", "finished"]
    keys = [call.key for call in trajectory.model_calls]
    assert sorted(keys[:3]) == ["root/par/a|m0", "root/par/a|m1", "root/par/b|m0"]
    assert keys[3:] == [
        "root/c|m0",
        "root/c/helper:call_helper/helper|m0",
        "root/c|m1",
        "root/c|m2",
    ]
    assert [call.execution for call in trajectory.model_calls] == [0] * 6 + [1]
    # Each call keeps what it was sent: c's last call saw the approved refund's result.
    last = trajectory.model_calls[-1]
    assert last.messages[-1].role == "tool" and last.messages[-1].content == "refunded A1"
    assert last.response is not None and last.response.content == "All refunded."
    assert all(call.ended >= call.started > 0 for call in trajectory.model_calls)
    tools = [
        (t.name, t.arguments, t.result.content if t.result else None, t.execution)
        for t in trajectory.tool_calls
    ]
    assert tools == [
        ("lookup", '{"order": "A1"}', "A1: shipped", 0),
        ("helper", '{"request": "hi"}', "helper says hi", 0),
        ("refund", '{"order": "A1"}', "refunded A1", 1),
    ]
    # Events: delivered ones, none repeated by the resume; the pause is recorded.
    texts = [event.text for event in trajectory.events if event.text]
    assert texts.count("b done") == 1 and texts.count("A1: shipped") == 1
    assert texts[-2:] == ["refunded A1", "All refunded."]
    paused = [event for event in trajectory.events if event.interrupts]
    assert paused and paused[-1].interrupts == (pending.id,) and paused[-1].execution == 0
    assert trajectory.output == "All refunded."
    usage = trajectory.usage
    assert usage.prompt_tokens == sum(
        c.usage.prompt_tokens for c in trajectory.model_calls if c.usage
    )
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert [call.name for call in trajectory.requested_tool_calls] == ["lookup", "helper", "refund"]

    await runner.delete_run(first.run_id)
    with pytest.raises(CheckpointNotFound):
        await runner.trajectory(first.run_id)
