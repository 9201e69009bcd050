from __future__ import annotations

import threading
from typing import Any

import anyio
import anyio.lowlevel
import pytest

from adk import (
    AgentEvent,
    AgentInput,
    AgentTool,
    ChatModelAgent,
    ConfigurationError,
    ExitTool,
    MaxIterationsExceeded,
    Message,
    ModelRequest,
    RunContext,
    Runner,
    ScriptedModel,
    ToolCall,
    ToolContext,
    ToolError,
    tool,
)

pytestmark = pytest.mark.anyio


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@tool
def explode(reason: str) -> str:
    """Always fails."""
    raise ValueError(f"cannot do {reason}")


def kinds(events: list[AgentEvent]) -> list[str]:
    out = []
    for event in events:
        if event.error is not None:
            out.append(f"error:{event.error.type}")
        elif event.message is not None:
            msg = event.message
            label = msg.role
            if msg.tool_calls:
                label += ":" + ",".join(c.name for c in msg.tool_calls)
            if msg.role == "tool":
                label += f":{msg.name}"
            out.append(label)
    return out


async def collect(runner: Runner, text: str, **kwargs: Any) -> list[AgentEvent]:
    return [event async for event in runner.query(text, **kwargs)]


async def test_tool_loop_produces_call_result_and_answer() -> None:
    model = ScriptedModel([ToolCall.of("add", id="c1", a=2, b=3), "2 + 3 = 5"])
    agent = ChatModelAgent("calc", model=model, instruction="You add.", tools=[add])
    events = await collect(Runner(agent), "2+3?")
    assert kinds(events) == ["assistant:add", "tool:add", "assistant"]
    assert events[1].text == "5" and events[1].message is not None
    assert events[1].message.tool_call_id == "c1"
    assert events[-1].text == "2 + 3 = 5"
    assert all(e.agent_name == "calc" and e.run_path == ("calc",) for e in events)
    second = model.requests[1].messages
    assert [m.role for m in second] == ["system", "user", "assistant", "tool"]
    assert second[-1].content == "5"


async def test_request_carries_who_is_asking_and_everything_needed() -> None:
    model = ScriptedModel(["hi"])
    agent = ChatModelAgent(
        "greeter", model=model, tools=[explode, add], model_params={"temperature": 0.1}
    )
    await Runner(agent).invoke("hello", session_id="s-1", run_id="r-1")
    request = model.requests[0]
    assert request.run_id == "r-1" and request.session_id == "s-1"
    assert request.agent_name == "greeter" and request.agent_path == ("greeter",)
    assert request.stage == "greeter"
    assert request.params == {"temperature": 0.1}
    assert [t.name for t in request.tools] == ["add", "explode"]  # canonical order
    assert request.messages == [Message.user("hello")]
    assert request.stream is False


async def test_agent_options_override_model_params_for_the_named_agent_only() -> None:
    model = ScriptedModel(["a", "b"])
    other = ChatModelAgent("other", model=ScriptedModel([]))
    agent = ChatModelAgent(
        "writer", model=model, model_params={"temperature": 0.1, "top_p": 1}, sub_agents=[other]
    )
    runner = Runner(agent)
    await runner.invoke("x", agent_options={"writer": {"model_params": {"temperature": 0.7}}})
    await runner.invoke("x", agent_options={"other": {"model_params": {"temperature": 0.9}}})
    assert model.requests[0].params == {"temperature": 0.7, "top_p": 1}
    assert model.requests[1].params == {"temperature": 0.1, "top_p": 1}


async def test_iteration_limit_ends_with_a_clear_error_event() -> None:
    model = ScriptedModel(lambda request: ToolCall.of("add", a=1, b=1))
    agent = ChatModelAgent("looper", model=model, tools=[add], max_iterations=3)
    events = await collect(Runner(agent), "go")
    assert model.calls == 3
    assert kinds(events)[-1] == "error:MaxIterationsExceeded"
    assert events[-1].error is not None
    assert "3 model calls" in events[-1].error.message
    assert events[-1].error.run_path == ("looper",)
    with pytest.raises(MaxIterationsExceeded, match="'looper'"):
        await Runner(agent).invoke("go")


async def test_default_iteration_limit_is_twenty() -> None:
    model = ScriptedModel(lambda request: ToolCall.of("add", a=1, b=1))
    agent = ChatModelAgent("looper", model=model, tools=[add])
    assert agent.max_iterations == 20
    await collect(Runner(agent), "go")
    assert model.calls == 20


async def test_output_key_stores_final_text() -> None:
    model = ScriptedModel([ToolCall.of("add", a=1, b=1), "two"])
    agent = ChatModelAgent("calc", model=model, tools=[add], output_key="answer")
    values: dict[str, Any] = {}
    result = await Runner(agent).invoke("1+1", session_values=values)
    assert values["answer"] == "two" == result.session_values["answer"] == result.text


async def test_gen_model_input_hook_builds_the_messages() -> None:
    def build(instruction: str, input: AgentInput, ctx: RunContext) -> list[Message]:
        return [Message.system(instruction.upper()), Message.user("context"), *input.messages]

    model = ScriptedModel(["ok"])
    agent = ChatModelAgent("h", model=model, instruction="be {tone}", gen_model_input=build)
    await Runner(agent).invoke("q", session_values={"tone": "brief"})
    assert [m.content for m in model.requests[0].messages] == ["BE BRIEF", "context", "q"]


async def test_async_gen_model_input_hook() -> None:
    async def build(instruction: str, input: AgentInput, ctx: RunContext) -> list[Message]:
        await anyio.lowlevel.checkpoint()
        return list(input.messages)

    model = ScriptedModel(["ok"])
    agent = ChatModelAgent("h", model=model, instruction="ignored", gen_model_input=build)
    await Runner(agent).invoke("q")
    assert model.requests[0].messages == [Message.user("q")]


async def test_return_directly_tool_ends_the_turn_with_its_result() -> None:
    @tool(return_directly=True)
    def lookup(key: str) -> str:
        """Look a key up."""
        return f"value of {key}"

    model = ScriptedModel([ToolCall.of("lookup", key="k")])
    agent = ChatModelAgent("a", model=model, tools=[lookup], output_key="out")
    result = await Runner(agent).invoke("q")
    assert model.calls == 1
    assert kinds(result.events) == ["assistant:lookup", "tool:lookup"]
    assert result.text == "value of k" == result.session_values["out"]


async def test_return_directly_by_agent_option() -> None:
    model = ScriptedModel([ToolCall.of("add", a=1, b=2)])
    agent = ChatModelAgent("a", model=model, tools=[add], return_directly=["add"])
    result = await Runner(agent).invoke("q")
    assert model.calls == 1 and result.text == "3"
    with pytest.raises(ConfigurationError, match="unknown tools: nope"):
        ChatModelAgent("a", model=model, tools=[add], return_directly=["nope"])


async def test_failed_return_directly_call_goes_back_to_the_model() -> None:
    model = ScriptedModel([ToolCall.of("add", a="x", b=2), "sorry"])
    agent = ChatModelAgent("a", model=model, tools=[add], return_directly=["add"])
    result = await Runner(agent).invoke("q")
    assert model.calls == 2 and result.text == "sorry"


async def test_exit_tool_ends_the_run_with_an_exit_action() -> None:
    model = ScriptedModel([ToolCall.of("exit", final_result="all done")])
    agent = ChatModelAgent("a", model=model, tools=[ExitTool()], output_key="out")
    events = await collect(Runner(agent), "q")
    assert model.calls == 1
    last = events[-1]
    assert last.action is not None and last.action.exit
    assert last.text == "all done"


async def test_tool_can_send_actions_and_use_session_values() -> None:
    @tool
    def remember(fact: str, ctx: ToolContext) -> str:
        """Remember a fact."""
        ctx.set("facts", [*ctx.get("facts", []), fact])
        ctx.send_action(ctx_action := __import__("adk").AgentAction(custom={"saved": fact}))
        assert ctx_action.custom == {"saved": fact}
        return f"saved ({ctx.call_id}, {ctx.agent_name}, {ctx.tool_name})"

    assert "ctx" not in remember.spec.parameters["properties"]
    model = ScriptedModel([ToolCall.of("remember", id="c9", fact="sky is blue"), "ok"])
    agent = ChatModelAgent("mem", model=model, tools=[remember])
    values: dict[str, Any] = {"facts": ["grass is green"]}
    events = await collect(Runner(agent), "q", session_values=values)
    assert values["facts"] == ["grass is green", "sky is blue"]
    tool_event = events[1]
    assert tool_event.action is not None and tool_event.action.custom == {"saved": "sky is blue"}
    assert tool_event.text == "saved (c9, mem, remember)"


async def test_bad_calls_become_tool_errors_the_model_reads_and_the_run_continues() -> None:
    bad_calls = [
        ToolCall.of("add", id="schema", a="two", b=3),
        ToolCall.of("add", id="missing", a=1),
        ToolCall(id="json", name="add", arguments="{a: 1"),
        ToolCall.of("subtract", id="unknown", a=1, b=2),
        ToolCall.of("explode", id="raises", reason="magic"),
    ]
    model = ScriptedModel([bad_calls, "I will stop now"])
    agent = ChatModelAgent("a", model=model, tools=[add, explode])
    result = await Runner(agent).invoke("q")
    assert result.text == "I will stop now"
    results = {m.tool_call_id: m.content for m in model.requests[1].messages if m.role == "tool"}
    assert results["schema"].startswith("Error: invalid arguments for tool 'add': at 'a':")
    assert "Input should be a valid integer" in results["schema"]
    assert "(got 'two')" in results["schema"]
    assert "at 'b': Field required" in results["missing"]
    assert "not a valid JSON object" in results["json"]
    assert "there is no tool named 'subtract'" in results["unknown"]
    assert "Available tools: add, explode" in results["unknown"]
    assert results["raises"] == "Error: tool 'explode' raised ValueError: cannot do magic"


async def test_tool_errors_raise_mode_ends_the_run() -> None:
    model = ScriptedModel([ToolCall.of("explode", reason="x"), "unreachable"])
    agent = ChatModelAgent("a", model=model, tools=[explode], tool_errors="raise")
    with pytest.raises(ValueError, match="cannot do x"):
        await Runner(agent).invoke("q")
    model2 = ScriptedModel([ToolCall.of("nope"), "unreachable"])
    agent2 = ChatModelAgent("a", model=model2, tools=[explode], tool_errors="raise")
    with pytest.raises(ToolError, match="no tool named 'nope'"):
        await Runner(agent2).invoke("q")


async def test_tool_calls_run_concurrently_and_report_in_call_order() -> None:
    first_started = anyio.Event()
    second_started = anyio.Event()
    finished: list[str] = []

    @tool
    async def slow(tag: str) -> str:
        """Waits for its partner, which is only possible if both run at once."""
        mine, partner = (
            (first_started, second_started) if tag == "A" else (second_started, first_started)
        )
        mine.set()
        with anyio.fail_after(5):
            await partner.wait()
        if tag == "A":
            await anyio.sleep(0.05)  # finishes last, yet is reported first
        finished.append(tag)
        return f"done {tag}"

    model = ScriptedModel([[ToolCall.of("slow", tag="A"), ToolCall.of("slow", tag="B")], "both"])
    agent = ChatModelAgent("a", model=model, tools=[slow])
    events = await collect(Runner(agent), "q")
    assert finished == ["B", "A"]
    assert [e.text for e in events if e.message and e.message.role == "tool"] == [
        "done A",
        "done B",
    ]


async def test_sync_tools_run_in_threads_concurrently() -> None:
    barrier = threading.Barrier(2, timeout=5)

    @tool
    def blocking(tag: str) -> str:
        """Blocks until its partner arrives."""
        barrier.wait()
        return tag

    model = ScriptedModel(
        [[ToolCall.of("blocking", tag="x"), ToolCall.of("blocking", tag="y")], "ok"]
    )
    result = await Runner(ChatModelAgent("a", model=model, tools=[blocking])).invoke("q")
    assert result.text == "ok"


def final_events(events: list[AgentEvent]) -> list[dict[str, Any]]:
    return [e.model_dump() for e in events if not e.partial]


async def test_streaming_deltas_reassemble_to_the_same_final_events() -> None:
    def script() -> list[Any]:
        return [
            Message.assistant(
                "Let me add those numbers for you.",
                tool_calls=[ToolCall(id="c1", name="add", arguments='{"a": 20, "b": 22}')],
            ),
            "The sum of twenty and twenty-two is forty-two.",
        ]

    agent_plain = ChatModelAgent("calc", model=ScriptedModel(script()), tools=[add])
    agent_stream = ChatModelAgent("calc", model=ScriptedModel(script(), chunk_chars=3), tools=[add])
    plain = await collect(Runner(agent_plain), "q", run_id="r")
    streamed = await collect(Runner(agent_stream, streaming=True), "q", run_id="r")
    partials = [e for e in streamed if e.partial]
    assert len(partials) > 10
    assert all(e.message is not None and e.message.role == "assistant" for e in partials)
    first_reply = "".join(
        e.text for e in partials[: len("Let me add those numbers for you.") // 3 + 1]
    )
    assert first_reply.startswith("Let me add those numbers for you.")
    assert final_events(streamed) == final_events(plain)
    # deltas come before the complete message they add up to
    idx_complete = next(i for i, e in enumerate(streamed) if not e.partial)
    assert "".join(e.text for e in streamed[:idx_complete]) == streamed[idx_complete].text


async def test_one_agent_object_serves_100_concurrent_runs_without_cross_talk() -> None:
    def answer(request: ModelRequest) -> Any:
        last = request.messages[-1]
        if last.role == "user":
            n = int(last.content.split()[-1])
            return ToolCall.of("add", a=n, b=1000)
        return f"result {last.content}"

    model = ScriptedModel(answer, latency=0.01)
    agent = ChatModelAgent(
        "calc", model=model, tools=[add], instruction="user {who}", output_key="out"
    )
    runner = Runner(agent)
    results: dict[int, tuple[str, dict[str, Any], list[str]]] = {}

    async def one(n: int) -> None:
        values: dict[str, Any] = {"who": f"u{n}"}
        result = await runner.invoke(f"number {n}", session_values=values, session_id=f"s{n}")
        results[n] = (result.text, values, [e.run_path[0] for e in result.events])

    async with anyio.create_task_group() as group:
        for n in range(100):
            group.start_soon(one, n)
    assert model.calls == 200
    for n in range(100):
        text, values, paths = results[n]
        assert text == f"result {n + 1000}"
        assert values == {"who": f"u{n}", "out": text}
        assert paths == ["calc"] * 3
    for request in model.requests:
        session = int(request.session_id[1:])
        assert request.messages[0].content == f"user u{session}"
        assert request.messages[1].content == f"number {session}"


def test_configuration_errors_are_clear() -> None:
    with pytest.raises(ConfigurationError, match="max_iterations"):
        ChatModelAgent("a", model=ScriptedModel([]), max_iterations=0)
    with pytest.raises(ConfigurationError, match="two tools named 'add'"):
        ChatModelAgent("a", model=ScriptedModel([]), tools=[add, add])
    with pytest.raises(ConfigurationError, match="invalid agent name"):
        ChatModelAgent("a/b", model=ScriptedModel([]))
    with pytest.raises(ConfigurationError, match="needs a model"):
        ChatModelAgent("a", model="")


async def test_plain_functions_are_wrapped_as_tools() -> None:
    def shout(text: str) -> str:
        """Upper-case the text."""
        return text.upper()

    model = ScriptedModel([ToolCall.of("shout", text="hey"), "done"])
    agent = ChatModelAgent("a", model=model, tools=[shout])
    result = await Runner(agent).invoke("q")
    assert result.events[1].text == "HEY"
    assert model.requests[0].tools[0].description == "Upper-case the text."


@pytest.mark.parametrize("streaming", [False, True])
async def test_the_tool_that_ends_the_turn_is_delivered_last_whatever_its_place(
    streaming: bool,
) -> None:
    """Exit (or a return-directly tool) called first among several calls: its result is
    still the turn's last event, the run's text and an agent tool's result."""

    @tool(return_directly=True)
    def answer(text: str) -> str:
        """Give the final answer."""
        return text

    calls = [
        ToolCall.of("answer", text="the answer"),
        ToolCall.of("add", a=1, b=2),
        ToolCall.of("add", a=3, b=4),
    ]
    inner = ChatModelAgent("inner", model=ScriptedModel([calls]), tools=[answer, add])
    result = await Runner(inner, streaming=streaming).invoke("go")
    assert result.text == "the answer"
    assert [e.text for e in result.events][-3:] == ["3", "7", "the answer"]

    exit_first = [ToolCall.of("exit", final_result="done"), ToolCall.of("add", a=1, b=1)]
    quitter = ChatModelAgent("q", model=ScriptedModel([exit_first]), tools=[ExitTool(), add])
    events = await collect(Runner(quitter, streaming=streaming), "go")
    assert events[-1].text == "done" and events[-1].action is not None
    assert events[-1].action.exit

    outer_model = ScriptedModel([ToolCall.of("inner", request="go"), "relayed"])
    inner_again = ChatModelAgent("inner", model=ScriptedModel([calls]), tools=[answer, add])
    outer = ChatModelAgent("outer", model=outer_model, tools=[AgentTool(inner_again)])
    await Runner(outer, streaming=streaming).invoke("go")
    assert outer_model.requests[1].messages[-1].content == "the answer"
