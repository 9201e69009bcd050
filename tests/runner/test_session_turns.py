"""Runs as turns of stored sessions: history, values, interrupts, durability, composition."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest

from adk import (
    Approval,
    ArgumentTypeError,
    ChatModelAgent,
    Message,
    ModelRequest,
    Runner,
    ScriptedModel,
    SequentialAgent,
    SessionBusy,
    SessionPaused,
    SessionService,
    ToolCall,
    ToolContext,
    tool,
)
from adk.runner.checkpoint import load_run
from adk.state.stores.base import CheckpointStore
from tests.runner.stores import (  # noqa: F401  (fixtures: every test runs on every store)
    anyio_backend_fixture,
    kind_and_backend_fixture,
    store_fixture,
)

pytestmark = pytest.mark.anyio


def echo_model(seen: list[list[tuple[str, str]]]) -> ScriptedModel:
    """Answers with how many user messages it saw; records every request's messages."""

    def reply(request: ModelRequest) -> str:
        seen.append([(m.role, m.content) for m in request.messages])
        users = [m.content for m in request.messages if m.role == "user"]
        return f"heard {len(users)}: {users[-1]}"

    return ScriptedModel(reply)


def tool_turns(tool_name: str, arguments: dict[str, Any] | None = None) -> ScriptedModel:
    """Calls ``tool_name`` once per turn (after each new user message), then answers."""

    def reply(request: ModelRequest) -> Message | str:
        last = request.messages[-1]
        if last.role == "user":
            turn = sum(1 for m in request.messages if m.role == "user")
            call = ToolCall(
                id=f"call-{turn}", name=tool_name, arguments=json.dumps(arguments or {})
            )
            return Message(role="assistant", content="", tool_calls=(call,))
        return f"done: {last.content}"

    return ScriptedModel(reply)


async def test_a_conversation_continues_in_a_new_runner_on_the_same_store(
    store: CheckpointStore,
) -> None:
    seen: list[list[tuple[str, str]]] = []
    first = Runner(ChatModelAgent("bot", model=echo_model(seen)), checkpoint_store=store)
    assert (await first.invoke("hello", session_id="s1", user_id="ada")).text == "heard 1: hello"
    assert (await first.invoke("again", session_id="s1", user_id="ada")).text == "heard 2: again"
    # Another Runner (another process, say) on the same store: it reads the session back.
    second = Runner(ChatModelAgent("bot", model=echo_model(seen)), checkpoint_store=store)
    result = await second.invoke("third", session_id="s1", user_id="ada")
    assert result.text == "heard 3: third"
    assert seen[-1] == [
        ("user", "hello"),
        ("assistant", "heard 1: hello"),
        ("user", "again"),
        ("assistant", "heard 2: again"),
        ("user", "third"),
    ]
    # The first Runner sees the second's turn (its cached copy is stale and is read again).
    assert (await first.invoke("four", session_id="s1", user_id="ada")).text == "heard 4: four"
    session = await second.sessions.get_session("s1")  # type: ignore[union-attr]
    assert session.turns == 4 and session.user_id == "ada"
    assert [e.agent_name for e in session.history] == [None, "bot"] * 4
    # A new id is a new conversation.
    assert (await first.invoke("hi", session_id="s2", user_id="ada")).text == "heard 1: hi"


async def test_tool_calls_and_results_are_part_of_the_stored_history(
    store: CheckpointStore,
) -> None:
    @tool
    def lookup() -> str:
        """Look something up."""
        return "fact"

    model = tool_turns("lookup")
    runner = Runner(ChatModelAgent("bot", model=model, tools=[lookup]), checkpoint_store=store)
    await runner.invoke("one", session_id="s", user_id="u")
    await runner.invoke("two", session_id="s", user_id="u")
    request = model.requests[-1]
    roles = [m.role for m in request.messages]
    assert roles == ["user", "assistant", "tool", "assistant", "user", "assistant", "tool"]
    assert request.messages[1].tool_calls[0].id == "call-1"
    assert request.messages[2].tool_call_id == "call-1"


async def test_value_scopes_session_user_app_and_temp(store: CheckpointStore) -> None:
    seen: dict[str, dict[str, Any]] = {}

    @tool
    def note(ctx: ToolContext) -> str:
        """Note things."""
        turn = f"{ctx.run.session_id}:{ctx.get('count', 0)}"
        seen[turn] = dict(ctx.run.session_values)
        ctx.set("count", ctx.get("count", 0) + 1)
        ctx.set("user:lang", "fr")
        ctx.set("app:visits", ctx.get("app:visits", 0) + 1)
        ctx.set("temp:scratch", "gone after this turn")
        return "noted"

    runner = Runner(
        ChatModelAgent("bot", model=tool_turns("note"), tools=[note]), checkpoint_store=store
    )
    await runner.invoke("a", session_id="s1", user_id="ada")
    await runner.invoke("b", session_id="s1", user_id="ada")
    assert seen["s1:1"] == {"count": 1, "user:lang": "fr", "app:visits": 1}
    await runner.invoke("c", session_id="s2", user_id="ada")  # same user, another session
    assert seen["s2:0"] == {"user:lang": "fr", "app:visits": 2}
    await runner.invoke("d", session_id="s3", user_id="bob")  # another user: app values only
    assert seen["s3:0"] == {"app:visits": 3}
    session = await runner.sessions.get_session("s1")  # type: ignore[union-attr]
    assert session.values == {"count": 2}
    assert session.user_values == {"user:lang": "fr"}
    assert session.app_values == {"app:visits": 4}


async def test_a_paused_turn_blocks_the_session_until_it_is_resumed(
    store: CheckpointStore,
) -> None:
    @tool(requires_approval=True)
    def send(to: str) -> str:
        """Send a message."""
        return f"sent to {to}"

    model = tool_turns("send", {"to": "ada"})
    runner = Runner(ChatModelAgent("bot", model=model, tools=[send]), checkpoint_store=store)
    paused = await runner.invoke("send it", session_id="s", user_id="u")
    assert paused.checkpoint_id is not None
    session = await runner.sessions.get_session("s")  # type: ignore[union-attr]
    assert session.paused is not None and session.paused.checkpoint_id == paused.checkpoint_id
    assert session.turns == 0 and session.history == []
    # The next turn is refused: an error event from query, the exception from invoke.
    events = [event async for event in runner.query("hello?", session_id="s", user_id="u")]
    assert len(events) == 1 and events[0].error is not None
    assert events[0].error.type == "SessionPaused"
    assert paused.checkpoint_id in events[0].error.message
    with pytest.raises(SessionPaused) as caught:
        await runner.invoke("hello?", session_id="s", user_id="u")
    assert caught.value.checkpoint_id == paused.checkpoint_id
    # The checkpoint names the session instead of copying its history.
    loaded = await load_run(store, paused.checkpoint_id)
    assert loaded.meta.stored_session and [m.content for m in loaded.meta.input] == ["send it"]
    answers = {paused.interrupts[0].id: Approval.approve()}
    done = await runner.resume_invoke(paused.checkpoint_id, answers)
    assert done.text == "done: sent to ada"
    session = await runner.sessions.get_session("s")  # type: ignore[union-attr]
    assert session.paused is None and session.turns == 1
    assert [m.message.role for m in session.history] == ["user", "assistant", "tool", "assistant"]
    again = await runner.invoke("thanks", session_id="s", user_id="u")
    assert again.checkpoint_id is not None  # the model asks to send again: a new pause


async def test_step_durability_appends_each_message_as_it_goes(store: CheckpointStore) -> None:
    observed: list[list[str]] = []

    @tool
    async def peek(ctx: ToolContext) -> str:
        """Read the stored session from another service, mid-turn."""
        other = SessionService(store, app="bot")
        session = await other.get_session(ctx.run.session_id)
        observed.append([e.message.role for e in session.history])
        return "peeked"

    runner = Runner(
        ChatModelAgent("bot", model=tool_turns("peek"), tools=[peek]),
        checkpoint_store=store,
        durability="step",
    )
    await runner.invoke("one", session_id="s", user_id="u")
    await runner.invoke("two", session_id="s", user_id="u")
    # While the tool ran, the user message and the model's tool call were already stored.
    assert observed[0] == ["user", "assistant"]
    assert observed[1] == ["user", "assistant", "tool", "assistant", "user", "assistant"]
    session = await runner.sessions.get_session("s")  # type: ignore[union-attr]
    assert session.turns == 2 and len(session.history) == 8  # nothing appended twice


async def test_a_second_concurrent_turn_on_one_session_fails_at_once(
    store: CheckpointStore,
) -> None:
    entered, release = anyio.Event(), anyio.Event()

    @tool
    async def slow() -> str:
        """Wait."""
        entered.set()
        await release.wait()
        return "slow done"

    runner = Runner(
        ChatModelAgent("bot", model=tool_turns("slow"), tools=[slow]), checkpoint_store=store
    )
    results: list[str] = []

    async def first_turn() -> None:
        results.append((await runner.invoke("first", session_id="s", user_id="u")).text)

    async with anyio.create_task_group() as tg:
        tg.start_soon(first_turn)
        await entered.wait()
        events = [e async for e in runner.query("second", session_id="s", user_id="u")]
        assert [e.error.type for e in events if e.error] == ["SessionBusy"]
        with pytest.raises(SessionBusy):
            await runner.invoke("second", session_id="s", user_id="u")
        release.set()
    assert results == ["done: slow done"]
    entered, release = anyio.Event(), anyio.Event()
    release.set()
    await runner.invoke("third", session_id="s", user_id="u")
    session = await runner.sessions.get_session("s")  # type: ignore[union-attr]
    users = [e.message.content for e in session.history if e.message.role == "user"]
    assert users == ["first", "third"]


async def test_workflow_agents_see_their_own_earlier_turns_as_their_own(
    store: CheckpointStore,
) -> None:
    plan_seen: list[list[tuple[str, str]]] = []
    write_seen: list[list[tuple[str, str]]] = []
    pipeline = SequentialAgent(
        "pipeline",
        sub_agents=[
            ChatModelAgent("planner", model=echo_model(plan_seen)),
            ChatModelAgent("writer", model=echo_model(write_seen)),
        ],
    )
    runner = Runner(pipeline, checkpoint_store=store)
    await runner.invoke("one", session_id="s", user_id="u")
    await runner.invoke("two", session_id="s", user_id="u")
    roles = [role for role, _ in plan_seen[-1]]
    assert roles == ["user", "assistant", "user", "user"]  # writer's reply is context for it
    assert plan_seen[-1][2][1].startswith("For context: [writer] said:")
    assert write_seen[-1][-1][0] == "user" and "[planner]" in write_seen[-1][-1][1]


def router_and_billing(calls: list[str]) -> ChatModelAgent:
    def router_reply(request: ModelRequest) -> Message:
        calls.append("router")
        call = ToolCall(id="t1", name="transfer_to_agent", arguments='{"agent_name": "billing"}')
        return Message(role="assistant", content="", tool_calls=(call,))

    def billing_reply(request: ModelRequest) -> str:
        calls.append("billing")
        return "billing here"

    billing = ChatModelAgent(
        "billing", description="Billing questions.", model=ScriptedModel(billing_reply)
    )
    return ChatModelAgent("router", model=ScriptedModel(router_reply), sub_agents=[billing])


@pytest.mark.parametrize("keep_agent", [False, True])
async def test_keep_agent_starts_the_next_turn_at_the_agent_holding_the_conversation(
    store: CheckpointStore, keep_agent: bool
) -> None:
    calls: list[str] = []
    runner = Runner(router_and_billing(calls), checkpoint_store=store, keep_agent=keep_agent)
    await runner.invoke("my invoice", session_id="s", user_id="u")
    assert calls == ["router", "billing"]
    calls.clear()
    result = await runner.invoke("and the other one", session_id="s", user_id="u")
    assert result.text == "billing here"
    assert calls == (["billing"] if keep_agent else ["router", "billing"])
    session = await runner.sessions.get_session("s")  # type: ignore[union-attr]
    assert session.agent == ("billing" if keep_agent else None)


async def test_a_failed_turn_keeps_the_user_message_but_no_unanswered_tool_call(
    store: CheckpointStore,
) -> None:
    @tool
    def lookup() -> str:
        """Look up."""
        return "x"

    def reply(request: ModelRequest) -> Message:
        if request.messages[-1].role == "tool":
            raise RuntimeError("model fell over")
        call = ToolCall(id="c1", name="lookup", arguments="{}")
        return Message(role="assistant", content="", tool_calls=(call,))

    runner = Runner(
        ChatModelAgent("bot", model=ScriptedModel(reply), tools=[lookup]), checkpoint_store=store
    )
    events = [e async for e in runner.query("hi", session_id="s", user_id="u")]
    assert events[-1].error is not None
    session = await runner.sessions.get_session("s")  # type: ignore[union-attr]
    # The call and its result both happened, so both are kept; the turn is counted.
    assert [e.message.role for e in session.history] == ["user", "assistant", "tool"]


async def test_a_value_that_cannot_be_stored_is_named_and_the_rest_of_the_turn_kept(
    store: CheckpointStore,
) -> None:
    @tool
    def bad(ctx: ToolContext) -> str:
        """Store something odd."""
        ctx.run.session_values["handle"] = object()
        ctx.run.session_values["fine"] = 1
        return "ok"

    runner = Runner(
        ChatModelAgent("bot", model=tool_turns("bad"), tools=[bad]), checkpoint_store=store
    )
    events = [e async for e in runner.query("hi", session_id="s", user_id="u")]
    assert events[-1].error is not None and events[-1].error.type == "SessionError"
    assert "'handle' cannot be stored" in events[-1].error.message
    assert "temp:handle" in events[-1].error.message
    # Nothing lost but the value: the messages and the other value are stored.
    session = await runner.sessions.get_session("s")  # type: ignore[union-attr]
    assert [e.message.role for e in session.history] == ["user", "assistant", "tool", "assistant"]
    assert session.values == {"fine": 1}


async def test_a_turn_cut_off_mid_tool_never_shows_its_unanswered_call_to_the_model(
    store: CheckpointStore,
) -> None:
    first_call = [True]

    @tool
    async def slow() -> str:
        """Take a while (the first time)."""
        if first_call.pop() if first_call else False:
            await anyio.sleep(30)
        return "done"

    model = tool_turns("slow")
    runner = Runner(
        ChatModelAgent("bot", model=model, tools=[slow]), checkpoint_store=store, durability="step"
    )
    with anyio.move_on_after(0.5):  # the process "dies" while the tool runs
        await runner.invoke("first", session_id="s", user_id="u")
    session = await runner.sessions.get_session("s")  # type: ignore[union-attr]
    assert [e.message.role for e in session.history] == ["user", "assistant"]  # kept as it went
    model.requests.clear()
    await runner.invoke("second", session_id="s", user_id="u")
    shown = [(m.role, len(m.tool_calls)) for m in model.requests[0].messages]
    assert shown == [("user", 0), ("user", 0)]  # the call without a result is left out


async def test_a_paused_turn_whose_run_is_gone_no_longer_blocks_the_session(
    store: CheckpointStore,
) -> None:
    @tool(requires_approval=True)
    def send(to: str) -> str:
        """Send."""
        return "sent"

    runner = Runner(
        ChatModelAgent("bot", model=tool_turns("send", {"to": "x"}), tools=[send]),
        checkpoint_store=store,
    )
    paused = await runner.invoke("send it", session_id="s", user_id="u")
    with pytest.raises(SessionPaused):
        await runner.invoke("hello", session_id="s", user_id="u")
    await runner.delete_run(paused.run_id)
    again = await runner.invoke("hello", session_id="s", user_id="u")
    assert again.checkpoint_id is not None  # a new turn ran (and paused on its own call)
    session = await runner.sessions.get_session("s")  # type: ignore[union-attr]
    assert session.paused is not None and session.paused.run_id == again.run_id


async def test_kept_events_are_stored_with_the_session(store: CheckpointStore) -> None:
    @tool
    def lookup() -> str:
        """Look up."""
        return "fact"

    sessions = SessionService(store, app="bot", keep_events=lambda e: not e.is_error)
    runner = Runner(
        ChatModelAgent("bot", model=tool_turns("lookup"), tools=[lookup]), sessions=sessions
    )
    await runner.invoke("one", session_id="s", user_id="u")
    plain = Runner(
        ChatModelAgent("bot", model=tool_turns("lookup"), tools=[lookup]),
        sessions=SessionService(store, app="other"),
    )
    await plain.invoke("one", session_id="s", user_id="u")
    kept = (await sessions.get_session("s")).events
    assert [e.agent_name for e in kept] == ["bot"] * 3
    assert kept[0].message is not None and kept[0].message.tool_calls[0].name == "lookup"
    assert (await plain.sessions.get_session("s")).events == []  # type: ignore[union-attr]


async def test_without_stored_sessions_a_session_id_only_names_the_conversation(
    store: CheckpointStore,
) -> None:
    seen: list[list[tuple[str, str]]] = []
    runner = Runner(
        ChatModelAgent("bot", model=echo_model(seen)), checkpoint_store=store, sessions=False
    )
    assert runner.sessions is None
    await runner.invoke("one", session_id="s")
    assert (await runner.invoke("two", session_id="s")).text == "heard 1: two"


async def test_bad_session_arguments_are_named(store: CheckpointStore) -> None:
    runner = Runner(ChatModelAgent("bot", model=echo_model([])), checkpoint_store=store)
    with pytest.raises(ArgumentTypeError, match="user_id"):
        await runner.invoke("x", session_id="s", user_id=7)  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="sessions"):
        Runner(ChatModelAgent("bot", model=echo_model([])), sessions=3.5)  # type: ignore[arg-type]
    await runner.invoke("x", session_id="s", user_id="ada")
    events = [e async for e in runner.query("y", session_id="s", user_id="bob")]
    assert events[-1].error is not None and "'ada'" in events[-1].error.message


async def test_parallel_branches_agent_tools_and_streaming_in_a_session(
    store: CheckpointStore,
) -> None:
    from adk import AgentTool, ParallelAgent

    inner_seen: list[list[tuple[str, str]]] = []
    helper = ChatModelAgent("helper", description="Helps.", model=echo_model(inner_seen))

    def lead_reply(request: ModelRequest) -> Message | str:
        last = request.messages[-1]
        if last.role == "user":
            call = ToolCall(
                id=f"h{len(request.messages)}", name="helper", arguments='{"request": "x"}'
            )
            return Message(role="assistant", content="", tool_calls=(call,))
        return f"lead: {last.content}"

    lead = ChatModelAgent("lead", model=ScriptedModel(lead_reply), tools=[AgentTool(helper)])
    side_seen: list[list[tuple[str, str]]] = []
    side = ChatModelAgent("side", model=echo_model(side_seen))
    runner = Runner(
        ParallelAgent("both", sub_agents=[lead, side]), checkpoint_store=store, streaming=True
    )
    first = [e async for e in runner.query("one", session_id="s", user_id="u")]
    assert any(e.partial for e in first)  # streamed
    await runner.invoke("two", session_id="s", user_id="u")
    session = await runner.sessions.get_session("s")  # type: ignore[union-attr]
    authors = {e.agent_name for e in session.history}
    assert authors == {None, "lead", "side"}  # the agent tool's inner run stays inside it
    assert session.turns == 2
    # The second turn's branch saw the first turn: its own reply as its own.
    assert ("assistant", "heard 1: one") in side_seen[-1]
