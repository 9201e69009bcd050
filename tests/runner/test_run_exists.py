"""A run id that is in the store is never reused by a new run: the new run is refused."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import anyio
import pytest

from adk import ChatModelAgent, Runner, ScriptedModel, ToolCall, tool
from adk.runner.checkpoint import RunExists

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]

APP = textwrap.dedent(
    """
    import sys
    import anyio
    from adk import ChatModelAgent, Runner, ScriptedModel, ToolCall, tool

    @tool(requires_approval=True)
    def pay(amount: int) -> str:
        '''Pay an amount.'''
        return f"paid {amount}"

    async def main() -> None:
        model = ScriptedModel([ToolCall.of("pay", amount=5), "done"])
        runner = Runner(ChatModelAgent("cashier", model=model, tools=[pay]),
                        checkpoint_store=sys.argv[1])
        result = await runner.invoke("pay 5", run_id="order-17")
        print(result.checkpoint_id)

    anyio.run(main)
    """
)


def _runner(db: Path, script: list[object]) -> Runner:
    @tool(requires_approval=True)
    def pay(amount: int) -> str:
        """Pay an amount."""
        return f"paid {amount}"

    model = ScriptedModel(script)  # type: ignore[arg-type]
    return Runner(ChatModelAgent("cashier", model=model, tools=[pay]), checkpoint_store=db)


async def test_a_new_run_with_the_id_of_a_paused_run_of_another_process_is_refused(
    tmp_path: Path,
) -> None:
    db = tmp_path / "runs.db"
    paused = await anyio.run_process([sys.executable, "-c", APP, str(db)], cwd=ROOT)
    checkpoint_id = paused.stdout.decode().strip().splitlines()[-1]
    assert checkpoint_id == "order-17/1"

    # The other process is gone (its lease can be taken over); the id is still taken.
    runner = _runner(db, [ToolCall.of("pay", amount=999), "hijacked"])
    events = [event async for event in runner.query("pay 999", run_id="order-17")]
    assert events[-1].error is not None
    assert events[-1].error.type == "RunExists"
    assert "order-17" in events[-1].error.message
    with pytest.raises(RunExists, match="order-17"):
        await runner.invoke("pay 999", run_id="order-17")

    # Nothing of the paused run was overwritten: its approval is still pending and answerable.
    (pending,) = (await runner.checkpoints("order-17"))[0].interrupts
    assert pending.info["arguments"] == {"amount": 5}
    resumed = _runner(db, ["paid, thanks"])
    result = await resumed.resume_invoke(checkpoint_id, {pending.id: True})
    tool_texts = [
        e.output.message.content
        for e in result.events
        if e.output and e.output.message and e.output.message.role == "tool"
    ]
    assert tool_texts == ["paid 5"]
    assert result.text == "paid, thanks"


async def test_two_new_runs_racing_for_one_id_only_one_is_stored(tmp_path: Path) -> None:
    db = tmp_path / "runs.db"
    outcomes: list[str] = []

    async def start(amount: int) -> None:
        runner = _runner(db, [ToolCall.of("pay", amount=amount), "done"])
        events = [event async for event in runner.query(f"pay {amount}", run_id="race")]
        last = events[-1]
        outcomes.append(last.error.type if last.error else "paused")

    async with anyio.create_task_group() as group:
        for amount in (1, 2):
            group.start_soon(start, amount)
    assert sorted(outcomes) in (["RunExists", "paused"], ["RunInProgress", "paused"])
    listed = await _runner(db, []).checkpoints("race")
    assert len(listed) == 1
