from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from adk import (
    ChatModelAgent,
    ConfigurationError,
    HistoryEntry,
    Message,
    ModelRequest,
    Runner,
    ScriptedModel,
    SequentialAgent,
    ToolCall,
    TransferLimitExceeded,
    TransferWhenDone,
)
from tests.agents.helpers import Say, events_of, trace

pytestmark = pytest.mark.anyio


def transfer(dest: str, call_id: str | None = None) -> ToolCall:
    return ToolCall.of("transfer_to_agent", id=call_id, agent_name=dest)


async def test_exact_event_sequence_of_a_transfer() -> None:
    billing_model = ScriptedModel(["Your invoice is paid."])
    billing = ChatModelAgent("billing", description="Invoices and payments", model=billing_model)
    router_model = ScriptedModel([transfer("billing", "t1")])
    router = ChatModelAgent(
        "router", instruction="Route the user.", model=router_model, sub_agents=[billing]
    )
    events = await events_of(Runner(router), "Is my invoice paid?")
    assert trace(events) == [
        "router calls:transfer_to_agent",
        "router result:Successfully transferred to agent [billing] <transfer:billing>",
        "router/billing Your invoice is paid.",
    ]
    assert events[1].message is not None and events[1].message.tool_call_id == "t1"
    # the router's tool and instruction list the reachable agents
    request = router_model.requests[0]
    tool = next(t for t in request.tools if t.name == "transfer_to_agent")
    assert tool.parameters["properties"]["agent_name"]["enum"] == ["billing"]
    system = request.messages[0].content
    assert system.startswith("Route the user.\n\n")
    assert "- billing: Invoices and payments" in system
    # the destination runs on the shared history: others' messages as context
    billing_system, *billing_history = billing_model.requests[0].messages
    # billing may hand the conversation back to the router, its parent
    assert "- router (the agent that handed you this conversation)" in billing_system.content
    assert [m.content for m in billing_history] == [
        "Is my invoice paid?",
        "For context: [router] called tool 'transfer_to_agent' with arguments: "
        '{"agent_name": "billing"}',
        "For context: [router] tool 'transfer_to_agent' returned result: "
        "Successfully transferred to agent [billing]",
    ]


async def test_skip_transfer_messages_drops_them_from_history() -> None:
    billing_model = ScriptedModel(["paid"])
    router = ChatModelAgent(
        "router",
        model=ScriptedModel([transfer("billing")]),
        sub_agents=[ChatModelAgent("billing", model=billing_model)],
    )
    await events_of(Runner(router, skip_transfer_messages=True), "invoice?")
    assert billing_model.requests[0].messages[1:] == [Message.user("invoice?")]


async def test_cycle_a_b_a_c_produces_run_paths_and_sub_agents_can_go_back() -> None:
    c = ChatModelAgent("c", description="C", model=ScriptedModel(["c answers"]))
    b = ChatModelAgent("b", description="B", model=ScriptedModel([transfer("a")]))
    a_model = ScriptedModel([transfer("b"), transfer("c")])
    a = ChatModelAgent("a", description="A", model=a_model, sub_agents=[b, c])
    events = await events_of(Runner(a))
    assert [(e.agent_name, "/".join(e.run_path)) for e in events] == [
        ("a", "a"),
        ("a", "a"),
        ("b", "a/b"),
        ("b", "a/b"),
        ("a", "a"),  # back to a: the path is cut back, not grown
        ("a", "a"),
        ("c", "a/c"),
    ]
    assert events[-1].text == "c answers"
    # b could reach its parent a; a (the root) has no parent to go back to
    b_tools = {t.name: t for t in b.model.requests[0].tools}  # type: ignore[union-attr]
    assert b_tools["transfer_to_agent"].parameters["properties"]["agent_name"]["enum"] == ["a"]
    a_tools = {t.name: t for t in a_model.requests[0].tools}
    assert a_tools["transfer_to_agent"].parameters["properties"]["agent_name"]["enum"] == ["b", "c"]
    # a's second turn sees its own earlier transfer call in its own role
    second_turn = a_model.requests[1].messages
    assert [m.role for m in second_turn[:4]] == ["system", "user", "assistant", "tool"]


async def test_disallow_transfer_to_parent_and_workflow_parents() -> None:
    child_model = ScriptedModel(["done"])
    child = ChatModelAgent(
        "child", model=child_model, sub_agents=[Say("grandchild")], disallow_transfer_to_parent=True
    )
    root = ChatModelAgent("root", model=ScriptedModel([transfer("child")]), sub_agents=[child])
    await events_of(Runner(root))
    enum = child_model.requests[0].tools[0].parameters["properties"]["agent_name"]["enum"]
    assert enum == ["grandchild"]
    # children of a workflow agent cannot transfer "back" to the workflow
    plain_model = ScriptedModel(["hi"])
    await events_of(Runner(SequentialAgent("seq", [ChatModelAgent("w", model=plain_model)])))
    assert plain_model.requests[0].tools == []


async def test_unknown_destination_is_an_error_naming_both_agents() -> None:
    events = await events_of(Runner(SequentialAgent("s", [Say("a", then="transfer:ghost")])))
    error = events[-1].error
    assert error is not None and error.type == "TransferError"
    assert "'a' transferred to 'ghost'" in error.message
    assert "agents: s, a" in error.message


async def test_model_choosing_an_agent_outside_the_enum_gets_a_tool_error() -> None:
    model = ScriptedModel([transfer("ghost"), "ok, I will answer myself"])
    router = ChatModelAgent("router", model=model, sub_agents=[Say("real")])
    events = await events_of(Runner(router))
    tool_result = model.requests[1].messages[-1].content
    assert tool_result.startswith("Error: invalid arguments for tool 'transfer_to_agent'")
    assert "'ghost' is not one of ['real']" in tool_result
    assert events[-1].text == "ok, I will answer myself"


async def test_transfer_limit_stops_ping_pong() -> None:
    ping = ChatModelAgent("ping", model=ScriptedModel(lambda r: transfer("pong")))
    pong = ChatModelAgent("pong", model=ScriptedModel(lambda r: transfer("ping")))
    ping.sub_agents = (pong,)  # mutual transfer set up by hand
    pong.sub_agents = (ping,)
    events = await events_of(Runner(ping, max_transfers=5))
    error = events[-1].error
    assert error is not None and error.type == "TransferLimitExceeded"
    assert "more than 5 transfers" in error.message and "max_transfers" in error.message
    assert sum(1 for e in events if e.action and e.action.transfer_to_agent) == 6
    with pytest.raises(TransferLimitExceeded):
        await Runner(ping, max_transfers=3).invoke("go")


async def test_supervisor_pattern_with_transfer_when_done() -> None:
    def supervise(request: ModelRequest) -> Any:
        done = {m.content for m in request.messages}
        if not any("[researcher] said" in c for c in done):
            return transfer("researcher")
        if not any("[writer] said" in c for c in done):
            return transfer("writer")
        return "All work is done."

    researcher = TransferWhenDone(Say("researcher", "found facts"), to="supervisor")
    writer = TransferWhenDone(Say("writer", "wrote text"), to="supervisor")
    quitter = TransferWhenDone(Say("quitter", then="exit"), to="supervisor")
    supervisor = ChatModelAgent(
        "supervisor", model=ScriptedModel(supervise), sub_agents=[researcher, writer, quitter]
    )
    events = await events_of(Runner(supervisor))
    lines = trace(events)
    assert lines[-1] == "supervisor All work is done."
    assert "supervisor/researcher <transfer:supervisor>" in [
        line.replace(" result:Successfully transferred to agent [supervisor]", "") for line in lines
    ]
    # no transfer after an exit
    exit_events = await events_of(Runner(quitter))
    assert trace(exit_events) == ["quitter quitter here", "quitter <exit>"]


async def test_custom_history_rewriter_replaces_the_default() -> None:
    seen: list[tuple[str, list[str | None]]] = []

    def only_user_input(entries: Sequence[HistoryEntry], agent_name: str) -> list[Message]:
        seen.append((agent_name, [e.agent_name for e in entries]))
        return [e.message for e in entries if e.is_input]

    writer_model = ScriptedModel(["text"])
    seq = SequentialAgent("s", [Say("a", "one"), ChatModelAgent("w", model=writer_model)])
    await events_of(Runner(seq, history_rewriter=only_user_input), "topic")
    assert writer_model.requests[0].messages == [Message.user("topic")]
    assert seen[-1] == ("w", [None, "a"])


def test_transfer_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="sub-agent names must be unique"):
        ChatModelAgent("a", model=ScriptedModel([]), sub_agents=[Say("x"), Say("x")])
    with pytest.raises(ConfigurationError, match="reserved"):

        def transfer_to_agent(agent_name: str) -> str:
            return agent_name

        ChatModelAgent("a", model=ScriptedModel([]), tools=[transfer_to_agent])


async def test_a_chain_of_transfers_on_first_calls_keeps_each_agents_own_results() -> None:
    leaf = ChatModelAgent("leaf", model=ScriptedModel(["leaf answers"]), output_key="leaf_out")
    mid = ChatModelAgent(
        "mid", model=ScriptedModel([transfer("leaf")]), sub_agents=[leaf], output_key="mid_out"
    )
    top = ChatModelAgent("top", model=ScriptedModel([transfer("mid")]), sub_agents=[mid])
    values: dict[str, Any] = {}
    events = await events_of(Runner(top), session_values=values)
    assert trace(events) == [
        "top calls:transfer_to_agent",
        "top result:Successfully transferred to agent [mid] <transfer:mid>",
        "top/mid calls:transfer_to_agent",
        "top/mid result:Successfully transferred to agent [leaf] <transfer:leaf>",
        "top/mid/leaf leaf answers",
    ]
    # a transfer is not an answer: output_key is only set by the agent that answered
    assert values == {"leaf_out": "leaf answers"}


async def test_only_the_first_transfer_of_a_response_is_carried_out() -> None:
    a = ChatModelAgent("a", model=ScriptedModel(["a here"]))
    b = ChatModelAgent("b", model=ScriptedModel(["b here"]))
    router = ChatModelAgent(
        "router",
        model=ScriptedModel([[transfer("a", "t1"), transfer("b", "t2")]]),
        sub_agents=[a, b],
    )
    events = await events_of(Runner(router))
    assert trace(events) == [
        "router calls:transfer_to_agent,transfer_to_agent",
        "router result:Error: not transferred to 'b': this response already transfers to 'a' "
        "(one transfer per response)",
        # the transfer ends the router's turn: its result is the turn's last event
        "router result:Successfully transferred to agent [a] <transfer:a>",
        "router/a a here",
    ]


async def test_back_and_forth_transfers_keep_paths_short_and_resume_repeats_nothing() -> None:
    """a -> b -> a -> b -> a -> c, then c pauses for approval: every invocation of a and b
    has its own journal address, so the resumed run replays all calls and repeats none."""
    from adk import Approval, tool

    @tool(requires_approval=True)
    def ship(order: str) -> str:
        """Ship an order."""
        return f"shipped {order}"

    c_model = ScriptedModel([ToolCall.of("ship", order="A1"), "c shipped it"])
    c = ChatModelAgent("c", model=c_model, tools=[ship])
    b_model = ScriptedModel([transfer("a"), transfer("a")])
    b = ChatModelAgent("b", model=b_model)
    a_model = ScriptedModel([transfer("b"), transfer("b"), transfer("c")])
    a = ChatModelAgent("a", model=a_model, sub_agents=[b, c])
    runner = Runner(a)
    paused = await runner.invoke("go")
    paths = {"/".join(e.run_path) for e in paused.events}
    assert paths == {"a", "a/b", "a/c"}
    calls_before = len(a_model.requests) + len(b_model.requests) + len(c_model.requests)
    assert calls_before == 6
    (pending,) = paused.interrupts
    done = await runner.resume_invoke(paused.checkpoint_id or "", {pending.id: Approval.approve()})
    assert done.text == "c shipped it"
    # only c's last call is new: nothing before the pause was called again
    assert len(a_model.requests) + len(b_model.requests) + len(c_model.requests) == 7
