"""Misuse of the public API fails at once, with an error naming the argument.

The rule (see :mod:`adk.runner.arguments`): an argument of the wrong type
raises ``TypeError``; an argument of the right type with a value that is not
allowed (out of range, an unknown name, a cycle) raises ``ConfigurationError``.
Constructors check their arguments; per-run calls check theirs when called
(``run`` and ``resume`` are async generators: when iterated).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from adk import (
    AgentEvent,
    AgentInput,
    AgentTool,
    BaseAgent,
    ChatModelAgent,
    ConfigurationError,
    FunctionTool,
    LoopAgent,
    Message,
    ParallelAgent,
    RunContext,
    Runner,
    ScriptedModel,
    SequentialAgent,
    ToolCall,
    ToolContext,
    tool,
)

pytestmark = pytest.mark.anyio


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


class Say(BaseAgent):
    """Says its name."""

    async def run(self, input: AgentInput, ctx: RunContext) -> AsyncIterator[AgentEvent]:
        yield self.text_event(ctx, self.name)


def chat(name: str = "a", **kw: Any) -> ChatModelAgent:
    return ChatModelAgent(name, model=ScriptedModel(["ok"] * 5), **kw)


def runner() -> Runner:
    return Runner(SequentialAgent("root", [chat("writer"), chat("critic")]))


async def drain(events: AsyncIterator[AgentEvent]) -> list[AgentEvent]:
    return [event async for event in events]


# -- construction ---------------------------------------------------------------------


def test_model_must_be_a_chat_model_or_a_model_id() -> None:
    with pytest.raises(TypeError, match=r"agent 'a': model must be a ChatModel .* got int 42"):
        ChatModelAgent("a", model=42)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="needs a model"):
        ChatModelAgent("a", model="")


def test_checkpoint_store_must_be_a_store_or_a_path() -> None:
    with pytest.raises(TypeError, match=r"checkpoint_store must be .* got int 42"):
        Runner(Say("s"), checkpoint_store=42)  # type: ignore[arg-type]


def test_tools_must_be_a_collection_of_tools() -> None:
    with pytest.raises(TypeError, match=r"tools must be a list .* a single tool 'add'.*\[add\]"):
        chat(tools=add)
    with pytest.raises(TypeError, match=r"tools must be a list .* a single tool 'add'"):
        chat(tools=FunctionTool(add))
    with pytest.raises(TypeError, match=r"tools must be a list .* got str"):
        chat(tools="add")
    with pytest.raises(
        TypeError,
        match=r"tools\[1\] must be a Tool, a tool provider \(such as an MCPToolset\) "
        r"or a function, got int 3",
    ):
        chat(tools=[add, 3])


def test_sub_agents_must_be_a_collection_of_agents() -> None:
    with pytest.raises(TypeError, match=r"sub_agents must be a list .* a single agent 'x'"):
        chat(sub_agents=Say("x"))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"sub_agents must be a list .* a single agent 'x'"):
        SequentialAgent("s", Say("x"))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="sub-agent named like itself"):
        chat("a", sub_agents=[Say("a")])
    with pytest.raises(ConfigurationError, match="sub-agent named like itself"):
        ParallelAgent("p", [Say("p")])


def test_max_iterations_must_be_a_positive_int() -> None:
    with pytest.raises(TypeError, match=r"max_iterations must be an int, got str '5'"):
        chat(max_iterations="5")
    with pytest.raises(TypeError, match=r"max_iterations must be an int, got bool True"):
        chat(max_iterations=True)
    with pytest.raises(ConfigurationError, match=r"max_iterations must be at least 1, got 0"):
        chat(max_iterations=0)
    with pytest.raises(TypeError, match=r"max_iterations must be an int, got str '3'"):
        LoopAgent("l", [Say("x")], max_iterations="3")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"max_iterations must be an int, got bool False"):
        LoopAgent("l", [Say("x")], max_iterations=False)


def test_other_constructor_arguments_are_checked_too() -> None:
    with pytest.raises(TypeError, match=r"return_directly must be a list .* got str 'add'"):
        chat(tools=[add], return_directly="add")
    with pytest.raises(TypeError, match=r"sub_agents\[0\] must be an agent, got str 'x'"):
        chat(sub_agents=["x"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"AgentTool needs an agent .* got str 'x'"):
        AgentTool("x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"input_model must be a pydantic model class"):
        AgentTool(Say("x"), input_model=dict)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"agent name must be a str, got int 7"):
        Say(7)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"agent 'x': description must be a str"):
        Say("x", 7)  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"max_transfers must be at least 0, got -1"):
        Runner(Say("s"), max_transfers=-1)


def test_checkpoint_ttl_and_resume_lease_must_be_positive_numbers() -> None:
    for name in ("checkpoint_ttl", "resume_lease"):
        for bad in (0, -1, -0.5):
            with pytest.raises(ConfigurationError, match=rf"{name} must be a positive number"):
                Runner(Say("s"), **{name: bad})
        for wrong in ("10", True):
            with pytest.raises(TypeError, match=rf"{name} must be a number of seconds"):
                Runner(Say("s"), **{name: wrong})
    Runner(Say("s"), checkpoint_ttl=None, resume_lease=0.5)  # fine


def test_an_agent_cannot_be_its_own_sub_agent() -> None:
    selfish = Say("selfish")
    selfish.sub_agents = (selfish,)  # type: ignore[attr-defined]
    with pytest.raises(ConfigurationError, match="agent 'selfish' is its own sub-agent"):
        Runner(selfish)
    model_agent = chat("m")
    model_agent.sub_agents = (model_agent,)
    with pytest.raises(ConfigurationError, match="agent 'm' is its own sub-agent"):
        Runner(SequentialAgent("root", [model_agent]))


def test_workflow_cycles_fail_when_the_runner_is_built() -> None:
    a = SequentialAgent("a", [Say("x")])
    b = SequentialAgent("b", [a])
    a.sub_agents = (Say("x"), b)
    with pytest.raises(ConfigurationError, match=r"cycle: a -> b -> a"):
        Runner(a)
    with pytest.raises(ConfigurationError, match=r"cycle: b -> a -> b"):
        Runner(b)
    with pytest.raises(ConfigurationError, match="cycle"):
        Runner(ParallelAgent("top", [b]))


def test_transfer_back_edges_and_shared_agents_are_not_cycles() -> None:
    # Two chat agents that list each other: transfers, bounded by max_transfers.
    billing = chat("billing")
    triage = chat("triage", sub_agents=[billing])
    billing.sub_agents = (triage,)
    Runner(triage)
    # A chat agent inside a sequence may list the sequence as a transfer target.
    inner = chat("inner")
    seq = SequentialAgent("seq", [inner])
    inner.sub_agents = (seq,)
    Runner(seq)
    # The same workflow reached twice (not through itself) runs twice: no cycle.
    shared = SequentialAgent("shared", [Say("x")])
    Runner(SequentialAgent("root", [SequentialAgent("p", [shared]), LoopAgent("q", [shared])]))


# -- per-run calls --------------------------------------------------------------------


async def test_invoke_needs_messages_not_strings() -> None:
    with pytest.raises(TypeError, match=r"input\[0\] must be a Message, got str 'hi'"):
        await runner().invoke(["hi"])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"input must be a str or a list of Message"):
        await runner().invoke(42)  # type: ignore[arg-type]


async def test_run_needs_a_sequence_of_messages() -> None:
    with pytest.raises(TypeError, match=r"messages must be a list of Message.* the Message class"):
        await drain(runner().run(Message))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"messages must be a list of Message.* a single Message"):
        await drain(runner().run(Message.user("hi")))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"messages must be a list of Message.* got str"):
        await drain(runner().run("hi"))
    with pytest.raises(TypeError, match=r"messages must be a list of Message.* got generator"):
        await drain(runner().run(m for m in [Message.user("hi")]))
    # query is a plain function: it checks at the call, before any iteration.
    with pytest.raises(TypeError, match=r"query: text must be a str .* got list"):
        runner().query([Message.user("hi")])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"query: session_values must be a mutable mapping"):
        runner().query("hi", session_values=[])  # type: ignore[arg-type]
    # invoke lists any iterable itself; tuples of messages are fine everywhere.
    assert (await runner().invoke(m for m in [Message.user("hi")])).text == "ok"
    assert len(await drain(runner().run((Message.user("hi"),)))) == 2


async def test_session_values_must_be_a_mutable_mapping() -> None:
    for bad in (["user", "Ada"], "user=Ada"):
        with pytest.raises(TypeError, match=r"session_values must be a mutable mapping"):
            await runner().invoke("hi", session_values=bad)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match=r"session_values must be a mutable mapping"):
            await drain(runner().query("hi", session_values=bad))  # type: ignore[arg-type]


async def test_agent_options_are_checked_against_the_tree() -> None:
    run = runner()
    cases: list[tuple[Any, type[Exception], str]] = [
        (["writer"], TypeError, r"agent_options must be a mapping .* got list"),
        ({"writer": 5}, TypeError, r"agent_options\['writer'\] must be a mapping .* got int 5"),
        ({"nobody": {}}, ConfigurationError, r"'nobody'.*agents: root, writer, critic"),
        ({"*": {"model_params": 0.9}}, TypeError, r"\['\*'\]\['model_params'\] must be a map"),
        ({"writer": {"max_iterations": "5"}}, TypeError, r"max_iterations'\] must be an int"),
        ({"writer": {"max_iterations": 0}}, ConfigurationError, r"must be at least 1, got 0"),
        ({"critic": {"priority": "high"}}, TypeError, r"\['priority'\] must be an int"),
        ({"critic": {"cache": "never"}}, ConfigurationError, r"'auto', 'preserve' or 'flush'"),
    ]
    for options, error, message in cases:
        with pytest.raises(error, match=message):
            await run.invoke("hi", agent_options=options)
        with pytest.raises(error, match=message):
            await drain(run.query("hi", agent_options=options))
    good = {"*": {"max_iterations": 3}, "writer": {"model_params": {"t": 1}, "cache": "flush"}}
    assert (await run.invoke("hi", agent_options=good)).text == "ok"


async def test_agent_options_may_name_an_agent_tools_inner_agent() -> None:
    inner = chat("researcher")
    outer = ChatModelAgent(
        "boss",
        model=ScriptedModel([ToolCall.of("researcher", request="look"), "done"]),
        tools=[AgentTool(inner)],
    )
    result = await Runner(outer).invoke("go", agent_options={"researcher": {"priority": 2}})
    assert result.text == "done"


@tool
def ask(question: str, ctx: ToolContext) -> str:
    """Ask a person."""
    return str(ctx.interrupt(question))


async def paused() -> tuple[Runner, str, list[str]]:
    agent = ChatModelAgent(
        "asker", model=ScriptedModel([ToolCall.of("ask", question="ok?"), "fine"]), tools=[ask]
    )
    run = Runner(agent)
    result = await run.invoke("go")
    assert result.checkpoint_id is not None
    return run, result.checkpoint_id, [info.id for info in result.interrupts]


async def test_answers_must_be_a_mapping() -> None:
    run, checkpoint, interrupts = await paused()
    with pytest.raises(TypeError, match=r"answers must be a mapping of interrupt id .* got list"):
        await run.resume_invoke(checkpoint, answers=["yes"])  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"answers must be a mapping of interrupt id .* got list"):
        await drain(run.resume(checkpoint, answers=["yes"]))  # type: ignore[arg-type]
    # The checkpoint was not used up by the failed calls.
    assert (await run.resume_invoke(checkpoint, {interrupts[0]: "yes"})).text == "fine"


async def test_checkpoint_id_must_be_a_non_empty_str() -> None:
    run, _, _ = await paused()
    with pytest.raises(TypeError, match=r"checkpoint_id must be a str .* got None"):
        await run.resume_invoke(None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"checkpoint_id must be a str .* got None"):
        await drain(run.resume(None))  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match=r"checkpoint_id must not be empty"):
        await run.resume_invoke("")
