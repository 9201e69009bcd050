"""Replay: a recorded run replays with zero model calls; changed code reports the divergence."""

from __future__ import annotations

import pytest

from adk import Approval, ChatModelAgent, Runner, ScriptedModel, ToolCall, Trajectory, tool
from adk.evals import ReplayDivergence, ReplayModel, assert_score
from tests.evals.app import build

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    # asyncio only: trio deliberately randomises which ready task runs first, so the
    # order in which a parallel pair's messages reach a later agent varies from run to
    # run there, and a strict replay reports that (docs/evals.md, "Replay").
    return "asyncio"


async def _recorded() -> Trajectory:
    """The composite app's trajectory, paused at the approval and resumed."""
    runner = Runner(build(), trajectories=True)
    first = await runner.invoke("refund A1")
    assert first.checkpoint_id is not None
    answers = {first.interrupts[0].id: Approval.approve()}
    await runner.resume_invoke(first.checkpoint_id, answers)
    return await runner.trajectory(first.run_id)


async def test_replay_of_unchanged_code_reproduces_the_run_without_model_calls() -> None:
    trajectory = await _recorded()
    replay = ReplayModel(Trajectory.from_jsonl(trajectory.to_jsonl()))
    runner = Runner(build(replay), trajectories=True)
    first = await runner.invoke("refund A1")
    assert first.checkpoint_id is not None
    done = await runner.resume_invoke(
        first.checkpoint_id, {first.interrupts[0].id: Approval.approve()}
    )
    assert done.text == trajectory.output == "All refunded."
    assert replay.divergences == [] and replay.unused == []
    assert sorted(replay.replayed) == sorted(call.key for call in trajectory.model_calls)
    # Every answer came from the recording: the replay's own record shows the replay model.
    again = await runner.trajectory(first.run_id)
    assert {call.model for call in again.model_calls} == {replay.name}
    assert [c.response for c in again.model_calls] == [c.response for c in trajectory.model_calls]
    assert_score(again, tool_calls=["lookup", "helper", "refund"], output="All refunded.")


async def test_replay_of_changed_code_reports_the_divergence() -> None:
    trajectory = await _recorded()
    replay = ReplayModel(trajectory)
    runner = Runner(build(replay, shipped="lost"))  # lookup now answers differently
    with pytest.raises(ReplayDivergence) as caught:
        await runner.invoke("refund A1")
    # The first divergence: a's second call sees the changed tool result. (A parallel
    # branch's error is contained; the run then fails at c, which sees it too.)
    first = replay.divergences[0]
    assert first.key == "root/par/a|m1" and first.agent_name == "a"
    assert "message 2 differs" in first.reason
    assert "'A1: shipped'" in first.reason and "'A1: lost'" in first.reason
    assert caught.value is replay.divergences[-1]
    assert caught.value.key == "root/c|m0" and "A1: lost" in caught.value.reason


async def test_more_calls_than_recorded_is_a_divergence() -> None:
    @tool
    def echo(text: str) -> str:
        """Echo."""
        return text

    recorded_runner = Runner(
        ChatModelAgent("solo", model=ScriptedModel(["Done."])), trajectories=True
    )
    result = await recorded_runner.invoke("hi")
    trajectory = await recorded_runner.trajectory(result.run_id)

    # The changed agent now answers its first call with a tool call: a second call follows.
    class FirstCallsTool(ReplayModel):
        async def generate(self, request):  # type: ignore[no-untyped-def]
            response = await super().generate(request)
            if request.call_id.endswith("|m0"):
                call = ToolCall(id="c1", name="echo", arguments='{"text": "x"}')
                message = response.message.model_copy(update={"tool_calls": (call,)})
                response.message = message
            return response

    replay = FirstCallsTool(trajectory)
    changed = Runner(ChatModelAgent("solo", model=replay, tools=[echo]))
    with pytest.raises(ReplayDivergence, match=r"solo\|m1.*the recording has no such call"):
        await changed.invoke("hi")


async def test_a_changed_instruction_diverges_at_the_first_call() -> None:
    runner = Runner(
        ChatModelAgent("solo", model=ScriptedModel(["Done."]), instruction="Be brief."),
        trajectories=True,
    )
    result = await runner.invoke("hi")
    replay = ReplayModel(await runner.trajectory(result.run_id))
    changed = Runner(ChatModelAgent("solo", model=replay, instruction="Be verbose."))
    events = [event async for event in changed.query("hi")]
    error = events[-1].error
    assert error is not None and error.type == "ReplayDivergence"
    assert "message 0 differs" in error.message and "Be verbose." in error.message
    lenient = ReplayModel(await runner.trajectory(result.run_id), check_requests=False)
    again = await Runner(ChatModelAgent("solo", model=lenient, instruction="Be verbose.")).invoke(
        "hi"
    )
    assert again.text == "Done."


def test_replay_model_needs_a_trajectory() -> None:
    with pytest.raises(TypeError, match="needs a Trajectory"):
        ReplayModel("run-1")  # type: ignore[arg-type]
