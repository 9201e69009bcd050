from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

from adk import (
    AgentEvent,
    AgentInput,
    AgentTool,
    Approval,
    BaseAgent,
    ChatModelAgent,
    CheckpointAlreadyResumed,
    CheckpointError,
    CheckpointMismatch,
    Interrupt,
    LoopAgent,
    ModelRequest,
    ParallelAgent,
    RunContext,
    Runner,
    ScriptedModel,
    SequentialAgent,
    ToolCall,
    ToolContext,
    tool,
)
from tests.agents.helpers import trace

pytestmark = pytest.mark.anyio


class Counter:
    def __init__(self) -> None:
        self.calls: dict[str, int] = {}

    def hit(self, name: str) -> None:
        self.calls[name] = self.calls.get(name, 0) + 1


def by_last_message(answers: dict[str, Any]) -> Any:
    """A scripted model answering by the role/content of the last message."""

    def answer(request: ModelRequest) -> Any:
        last = request.messages[-1]
        if last.role == "tool":
            return f"{request.agent_name} done: {last.content}"
        return answers[request.agent_name]

    return answer


async def test_tool_interrupt_then_resume_with_an_answer() -> None:
    counter = Counter()

    @tool
    def book_flight(city: str, ctx: ToolContext) -> str:
        """Book a flight after asking for the seat."""
        counter.hit("book_flight")
        if ctx.answer is None:
            raise Interrupt({"question": f"Which seat for {city}?"})
        return f"booked {city}, seat {ctx.answer}"

    model = ScriptedModel(by_last_message({"agent": ToolCall.of("book_flight", city="Oslo")}))
    runner = Runner(ChatModelAgent("agent", model=model, tools=[book_flight]))
    first = await runner.invoke("Book me a flight to Oslo")
    assert first.checkpoint_id is not None
    [pending] = first.interrupts
    assert pending.info == {"question": "Which seat for Oslo?"}
    assert pending.address[0] == "agent" and pending.address[-1].startswith("book_flight:")
    assert model.calls == 1

    second = await runner.resume_invoke(first.checkpoint_id, {pending.id: "12A"})
    assert second.text == "agent done: booked Oslo, seat 12A"
    assert second.checkpoint_id is None and second.interrupts == ()
    assert model.calls == 2  # the first model call was not repeated
    assert counter.calls == {"book_flight": 2}  # called again on resume, by design
    # the resumed stream has only new events: the tool result and the answer
    assert trace(second.events) == [
        "agent result:booked Oslo, seat 12A",
        "agent agent done: booked Oslo, seat 12A",
    ]


async def test_ctx_interrupt_asks_several_questions_in_turn() -> None:
    @tool
    def survey(ctx: ToolContext) -> str:
        """Ask two questions."""
        name = ctx.interrupt("name?")
        color = ctx.interrupt(f"favourite color, {name}?")
        return f"{name} likes {color}"

    model = ScriptedModel(by_last_message({"a": ToolCall.of("survey")}))
    runner = Runner(ChatModelAgent("a", model=model, tools=[survey]))
    r1 = await runner.invoke("go")
    [q1] = r1.interrupts
    assert q1.info == "name?"
    assert r1.checkpoint_id is not None
    r2 = await runner.resume_invoke(r1.checkpoint_id, {q1.id: "Ann"})
    [q2] = r2.interrupts
    assert q2.info == "favourite color, Ann?" and q2.id != q1.id
    assert r2.checkpoint_id is not None
    r3 = await runner.resume_invoke(r2.checkpoint_id, {q2.id: "green"})
    assert r3.text == "a done: Ann likes green"
    assert model.calls == 2


@tool(requires_approval=True)
def transfer_money(to: str, amount: int) -> str:
    """Send money."""
    return f"sent {amount} to {to}"


async def approval_round(answer: Any) -> tuple[str, ScriptedModel]:
    model = ScriptedModel(
        by_last_message({"bank": ToolCall.of("transfer_money", to="bob", amount=100)})
    )
    runner = Runner(ChatModelAgent("bank", model=model, tools=[transfer_money]))
    paused = await runner.invoke("pay bob")
    [pending] = paused.interrupts
    assert pending.info == {
        "type": "approval",
        "tool": "transfer_money",
        "arguments": {"to": "bob", "amount": 100},
    }
    assert paused.checkpoint_id is not None
    done = await runner.resume_invoke(paused.checkpoint_id, {pending.id: answer})
    return done.text, model


async def test_approval_approve_reject_and_edit() -> None:
    text, _ = await approval_round(Approval.approve())
    assert text == "bank done: sent 100 to bob"
    text, model = await approval_round(Approval.reject("not this month"))
    assert text == "bank done: The user rejected this call to 'transfer_money': not this month"
    tool_message = model.requests[-1].messages[-1]
    assert tool_message.role == "tool" and "not this month" in tool_message.content
    text, _ = await approval_round(Approval.edit({"to": "bob", "amount": 50}))
    assert text == "bank done: sent 50 to bob"
    text, _ = await approval_round({"approved": False, "message": "no"})
    assert text.endswith(": no")
    text, _ = await approval_round(Approval.edit({"to": "bob", "amount": "lots"}))
    assert "arguments the user edited for 'transfer_money' are invalid" in text


async def test_approval_predicate_only_asks_when_it_matters() -> None:
    @tool(requires_approval=lambda args: args["amount"] > 1000)
    def pay(amount: int) -> str:
        """Pay."""
        return f"paid {amount}"

    model = ScriptedModel(by_last_message({"a": ToolCall.of("pay", amount=10)}))
    result = await Runner(ChatModelAgent("a", model=model, tools=[pay])).invoke("x")
    assert result.text == "a done: paid 10" and result.interrupts == ()


async def test_parallel_branches_interrupt_answer_one_and_finished_branch_is_not_rerun() -> None:
    counter = Counter()

    @tool
    def ask_human(topic: str, ctx: ToolContext) -> str:
        """Ask a human about a topic."""
        counter.hit(f"ask:{topic}")
        if ctx.answer is None:
            raise Interrupt(f"what about {topic}?")
        return f"{topic}: {ctx.answer}"

    @tool
    def lookup(topic: str) -> str:
        """Look up."""
        counter.hit(f"lookup:{topic}")
        return f"facts on {topic}"

    def model_for(name: str, tool_name: str) -> ScriptedModel:
        def answer(request: ModelRequest) -> Any:
            counter.hit(f"model:{name}")
            last = request.messages[-1]
            if last.role == "tool":
                return f"{name} says {last.content}"
            return ToolCall.of(tool_name, topic=name)

        return ScriptedModel(answer)

    branches = [
        ChatModelAgent("a", model=model_for("a", "ask_human"), tools=[ask_human]),
        ChatModelAgent("b", model=model_for("b", "ask_human"), tools=[ask_human]),
        ChatModelAgent("c", model=model_for("c", "lookup"), tools=[lookup]),
    ]
    runner = Runner(ParallelAgent("fan", branches))
    first = await runner.invoke("go")
    pending = {i.info: i for i in first.interrupts}
    assert set(pending) == {"what about a?", "what about b?"}
    assert counter.calls["lookup:c"] == 1 and counter.calls["model:c"] == 2
    assert first.checkpoint_id is not None

    second = await runner.resume_invoke(first.checkpoint_id, {pending["what about a?"].id: "yes"})
    [again] = second.interrupts
    assert again.id == pending["what about b?"].id  # the unanswered one interrupts again
    assert [e.text for e in second.events if e.message] == ["a: yes", "a says a: yes"]
    assert counter.calls["lookup:c"] == 1 and counter.calls["model:c"] == 2  # not run again
    assert counter.calls["model:a"] == 2 and counter.calls["model:b"] == 1
    assert second.checkpoint_id is not None

    third = await runner.resume_invoke(second.checkpoint_id, {again.id: "no"})
    assert third.interrupts == ()
    assert [e.text for e in third.events if e.message] == ["b: no", "b says b: no"]
    assert counter.calls == {
        "model:a": 2,
        "model:b": 2,
        "model:c": 2,
        "ask:a": 2,
        "ask:b": 3,
        "lookup:c": 1,
    }


async def test_custom_agent_interrupt_and_answer() -> None:
    class Confirm(BaseAgent):
        async def run(self, input: AgentInput, ctx: RunContext) -> AsyncIterator[AgentEvent]:
            yield self.text_event(ctx, "about to deploy")
            answer = ctx.answer_for("deploy")
            if answer is None:
                yield self.interrupt_event(ctx, {"question": "deploy?"}, key="deploy")
                return
            yield self.text_event(ctx, f"deploy answer: {answer}")

    runner = Runner(SequentialAgent("flow", [Confirm("confirm"), Confirm("again")]))
    first = await runner.invoke("go")
    assert [e.text for e in first.events if e.message] == ["about to deploy"]
    [pending] = first.interrupts
    assert pending.address == ("flow", "confirm")
    assert first.checkpoint_id is not None
    second = await runner.resume_invoke(first.checkpoint_id, {pending.id: "yes"})
    assert [e.text for e in second.events if e.message] == ["deploy answer: yes", "about to deploy"]
    assert second.interrupts[0].address == ("flow", "again")


async def test_session_values_and_streaming_are_restored() -> None:
    @tool
    def remember(ctx: ToolContext) -> str:
        """Remember and ask."""
        ctx.set("remembered", "blue")
        return "ok"

    @tool
    def ask(ctx: ToolContext) -> str:
        """Ask."""
        return str(ctx.interrupt("go on?"))

    def script(request: ModelRequest) -> Any:
        done = [m.name for m in request.messages if m.role == "tool"]
        if "remember" not in done:
            return ToolCall.of("remember")
        if "ask" not in done:
            return ToolCall.of("ask")
        return "The end of a long streamed answer."

    agent = ChatModelAgent(
        "a", model=ScriptedModel(script, chunk_chars=5), tools=[remember, ask], output_key="out"
    )
    runner = Runner(agent, streaming=True)
    values: dict[str, Any] = {"user": "ann"}
    events = [e async for e in runner.query("go", session_values=values)]
    summary = events[-1]
    assert summary.action is not None and summary.action.interrupted is not None
    checkpoint_id = summary.action.interrupted.checkpoint_id
    pending = summary.action.interrupted.interrupts[0]
    assert checkpoint_id is not None
    fresh_runner = Runner(agent, checkpoint_store=runner.store)  # streaming not set here
    restored: dict[str, Any] = {"stale": True}
    resumed = [
        e
        async for e in fresh_runner.resume(
            checkpoint_id, {pending.id: "yes"}, session_values=restored
        )
    ]
    assert any(e.partial for e in resumed)  # streaming came back from the checkpoint
    assert restored == {
        "user": "ann",
        "remembered": "blue",
        "out": "The end of a long streamed answer.",
    }


async def test_resume_errors_are_clear() -> None:
    @tool
    def ask(ctx: ToolContext) -> str:
        """Ask."""
        return str(ctx.interrupt("?"))

    agent = ChatModelAgent(
        "a", model=ScriptedModel(by_last_message({"a": ToolCall.of("ask")})), tools=[ask]
    )
    runner = Runner(agent)
    paused = await runner.invoke("go")
    assert paused.checkpoint_id is not None
    with pytest.raises(CheckpointError, match="no pending interrupt 'int_nope'"):
        await runner.resume_invoke(paused.checkpoint_id, {"int_nope": 1})
    other_tree = Runner(
        ChatModelAgent(
            "a", model=agent.model, tools=[ask], sub_agents=[ChatModelAgent("b", model="x/y")]
        ),
        checkpoint_store=runner.store,
    )
    with pytest.raises(CheckpointMismatch, match="agent 'b' \\(ChatModelAgent\\) is new"):
        await other_tree.resume_invoke(paused.checkpoint_id)
    with pytest.raises(CheckpointError, match="no run 'missing'"):
        await runner.resume_invoke("missing/1")
    await runner.resume_invoke(paused.checkpoint_id, {paused.interrupts[0].id: "x"})
    with pytest.raises(CheckpointAlreadyResumed):
        await runner.resume_invoke(paused.checkpoint_id, {paused.interrupts[0].id: "x"})


async def test_concurrent_resumes_of_one_checkpoint_let_exactly_one_run() -> None:
    @tool
    async def ask(ctx: ToolContext) -> str:
        """Ask."""
        answer = ctx.interrupt("?")
        await anyio.sleep(0.05)
        return str(answer)

    agent = ChatModelAgent(
        "a", model=ScriptedModel(by_last_message({"a": ToolCall.of("ask")})), tools=[ask]
    )
    runner = Runner(agent)
    paused = await runner.invoke("go")
    assert paused.checkpoint_id is not None
    outcomes: list[str] = []

    async def attempt() -> None:
        try:
            result = await Runner(agent, checkpoint_store=runner.store).resume_invoke(
                paused.checkpoint_id or "", {paused.interrupts[0].id: "x"}
            )
            outcomes.append(result.text)
        except CheckpointAlreadyResumed:
            outcomes.append("refused")

    async with anyio.create_task_group() as group:
        for _ in range(5):
            group.start_soon(attempt)
    assert sorted(outcomes) == ["a done: x"] + ["refused"] * 4


async def test_checkpoints_can_be_listed_and_deleted_and_expire() -> None:
    @tool
    def ask(ctx: ToolContext) -> str:
        """Ask."""
        return str(ctx.interrupt("?"))

    agent = ChatModelAgent(
        "a", model=ScriptedModel(by_last_message({"a": ToolCall.of("ask")})), tools=[ask]
    )
    runner = Runner(agent)
    paused = await runner.invoke("go", run_id="run1")
    listed = await runner.checkpoints()
    assert [(c.id, c.run_id, c.resumed, c.error) for c in listed] == [
        ("run1/1", "run1", False, None)
    ]
    assert listed[0].interrupts == paused.interrupts
    await runner.delete_run("run1")
    assert await runner.checkpoints() == []
    short = Runner(agent, checkpoint_store=runner.store, checkpoint_ttl=0.2)
    await short.invoke("go", run_id="run2")
    assert len(await short.checkpoints("run2")) == 1
    await anyio.sleep(0.4)
    assert await short.checkpoints("run2") == []


async def test_nested_approval_in_agent_tool_in_parallel_in_loop() -> None:
    counter = Counter()

    @tool(requires_approval=True)
    def deploy(service: str) -> str:
        """Deploy."""
        counter.hit(f"deploy:{service}")
        return f"deployed {service}"

    def inner_script(request: ModelRequest) -> Any:
        counter.hit("inner-model")
        last = request.messages[-1]
        if last.role == "tool":
            return f"inner finished: {last.content}"
        return ToolCall.of("deploy", service=last.content)

    inner = ChatModelAgent("deployer", model=ScriptedModel(inner_script), tools=[deploy])

    def outer_script(request: ModelRequest) -> Any:
        counter.hit(f"outer-model:{request.agent_name}")
        last = request.messages[-1]
        if last.role == "tool":
            return f"{request.agent_name} ok"
        return ToolCall.of("deployer", request=f"svc-{request.agent_name}")

    workers = [
        ChatModelAgent(name, model=ScriptedModel(outer_script), tools=[AgentTool(inner)])
        for name in ("w1", "w2")
    ]
    loop = LoopAgent("loop", [ParallelAgent("fan", workers)], max_iterations=1)
    runner = Runner(loop)
    paused = await runner.invoke("go")
    infos = {i.info["arguments"]["service"]: i for i in paused.interrupts}
    assert set(infos) == {"svc-w1", "svc-w2"}
    assert infos["svc-w1"].address[:4] == ("loop", "fan", "w1", infos["svc-w1"].address[3])
    assert "deployer" in infos["svc-w1"].address
    assert paused.checkpoint_id is not None
    resumed = await runner.resume_invoke(
        paused.checkpoint_id,
        {infos["svc-w1"].id: Approval.approve(), infos["svc-w2"].id: Approval.reject("frozen")},
    )
    assert resumed.interrupts == ()
    assert sorted(
        e.text
        for e in resumed.events
        if e.agent_name in ("w1", "w2") and e.message and e.message.role == "assistant" and e.text
    ) == ["w1 ok", "w2 ok"]
    assert counter.calls["deploy:svc-w1"] == 1 and "deploy:svc-w2" not in counter.calls
    assert counter.calls["outer-model:w1"] == 2 and counter.calls["outer-model:w2"] == 2
    assert counter.calls["inner-model"] == 4


async def test_interrupt_after_a_transfer_resumes_in_the_destination() -> None:
    counter = Counter()

    @tool
    def issue_refund(ctx: ToolContext) -> str:
        """Refund after approval by a human."""
        counter.hit("refund")
        return f"refund {ctx.interrupt('approve refund?')}"

    def billing_script(request: ModelRequest) -> Any:
        counter.hit("billing-model")
        last = request.messages[-1]
        if last.role == "tool" and last.name == "issue_refund":
            return f"billing: {last.content}"
        return ToolCall.of("issue_refund")

    def router_script(request: ModelRequest) -> Any:
        counter.hit("router-model")
        return ToolCall.of("transfer_to_agent", agent_name="billing")

    billing = ChatModelAgent("billing", model=ScriptedModel(billing_script), tools=[issue_refund])
    router = ChatModelAgent("router", model=ScriptedModel(router_script), sub_agents=[billing])
    runner = Runner(router)
    paused = await runner.invoke("I want my money back")
    [pending] = paused.interrupts
    assert pending.address[:2] == ("router", "billing")
    assert paused.checkpoint_id is not None
    done = await runner.resume_invoke(paused.checkpoint_id, {pending.id: "granted"})
    assert done.text == "billing: refund granted"
    assert [e.run_path for e in done.events] == [("router", "billing")] * 2
    assert counter.calls == {"router-model": 1, "billing-model": 2, "refund": 2}


async def test_an_unreadable_approval_answer_is_refused_before_the_checkpoint_is_used() -> None:
    model = ScriptedModel(
        by_last_message({"bank": ToolCall.of("transfer_money", to="bob", amount=1)})
    )
    runner = Runner(ChatModelAgent("bank", model=model, tools=[transfer_money]))
    paused = await runner.invoke("pay")
    assert paused.checkpoint_id is not None
    [pending] = paused.interrupts
    with pytest.raises(CheckpointError, match=r"answer to approval .*cannot read 'yes'"):
        await runner.resume_invoke(paused.checkpoint_id, {pending.id: "yes"})
    done = await runner.resume_invoke(paused.checkpoint_id, {pending.id: "approve"})
    assert done.text == "bank done: sent 1 to bob"


async def test_resuming_a_paused_run_by_run_id_uses_up_its_checkpoint() -> None:
    @tool
    def ask(ctx: ToolContext) -> str:
        """Ask."""
        return str(ctx.interrupt("?"))

    agent = ChatModelAgent(
        "a", model=ScriptedModel(by_last_message({"a": ToolCall.of("ask")})), tools=[ask]
    )
    runner = Runner(agent)
    paused = await runner.invoke("go", run_id="job")
    done = await runner.resume_invoke("job", {paused.interrupts[0].id: "yes"})
    assert done.text == "a done: yes"
    with pytest.raises(CheckpointAlreadyResumed):
        await runner.resume_invoke(paused.checkpoint_id or "", {paused.interrupts[0].id: "no"})


async def test_a_failed_run_can_be_retried_by_run_id_without_repeating_completed_calls() -> None:
    from adk import ModelServerError

    counter = Counter()
    flaky = {"fail": True}

    @tool
    def fetch(ctx: ToolContext) -> str:
        """Fetch data."""
        counter.hit("fetch")
        return "data"

    def script(request: ModelRequest) -> Any:
        counter.hit("model")
        if request.messages[-1].role == "tool":
            if flaky["fail"]:
                raise ModelServerError("upstream down", status_code=503)
            return "summary of data"
        return ToolCall.of("fetch")

    runner = Runner(
        ChatModelAgent("a", model=ScriptedModel(script), tools=[fetch]), durability="step"
    )
    with pytest.raises(ModelServerError):
        await runner.invoke("go", run_id="flaky")
    flaky["fail"] = False
    result = await runner.resume_invoke("flaky")
    assert result.text == "summary of data"
    assert counter.calls == {"model": 3, "fetch": 1}  # the tool did not run again
