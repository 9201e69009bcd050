"""A turn's prior history is the conversation before the turn, fixed while the turn appends.

Regression: ``SessionTurn.prior`` was the session's own list of entries, so a
``durability="step"`` append grew the run's prior while it ran, and an agent
starting later in the turn (a workflow's next step, a transfer) saw the turn's
messages twice.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import pytest

from adk import ChatModelAgent, ModelRequest, Runner, ScriptedModel, SequentialAgent
from adk.sessions import SessionService
from adk.state.stores.base import CheckpointStore
from tests.sessions.conftest import pairs, take_turn, turn_entries

pytestmark = pytest.mark.anyio


async def test_appends_do_not_change_the_turns_prior(store: CheckpointStore) -> None:
    service = SessionService(store)
    await take_turn(service, "s1", "u1", turn_entries("one"))
    for reader in (service, SessionService(store)):  # the session cached, or read anew
        turn = await reader.begin_turn("s1", "u1", f"run-{id(reader)}")
        prior = turn.prior
        before = pairs(prior)
        entries = turn_entries("two", tools=True)
        await turn.append(entries[:2], final=False)
        assert pairs(prior) == before
        await turn.append(entries, final=True)
        assert pairs(prior) == before
        await turn.release()
    session = await SessionService(store).get_session("s1")
    assert session.turns == 3
    assert pairs(session.history) == pairs(
        turn_entries("one") + 2 * turn_entries("two", tools=True)
    )


@pytest.mark.parametrize("durability", ["step", "interrupt"])
async def test_a_workflows_later_step_sees_each_message_once(
    tmp_path: Path, durability: Literal["step", "interrupt"]
) -> None:
    seen: dict[str, list[list[str]]] = {"a": [], "b": []}

    def model(name: str) -> ScriptedModel:
        def reply(request: ModelRequest) -> str:
            seen[name].append([m.content for m in request.messages])
            return f"{name} answers"

        return ScriptedModel(reply)

    workflow = SequentialAgent(
        "flow", [ChatModelAgent("a", model=model("a")), ChatModelAgent("b", model=model("b"))]
    )
    runner = Runner(workflow, checkpoint_store=tmp_path / "db.sqlite", durability=durability)
    await runner.invoke("one", session_id="s", user_id="u")
    await runner.invoke("two", session_id="s", user_id="u")

    said = "For context: [a] said: a answers"
    assert seen["b"][0] == ["one", said]
    assert seen["b"][1][-2:] == ["two", said]
    assert seen["b"][1].count("two") == 1 and seen["b"][1].count("one") == 1
    session = await runner.sessions.get_session("s")  # type: ignore[union-attr]
    assert [e.message.content for e in session.history] == [
        "one",
        "a answers",
        "b answers",
        "two",
        "a answers",
        "b answers",
    ]
