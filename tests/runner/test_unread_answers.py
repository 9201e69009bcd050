"""An answer the interrupting code never reads is reported, not re-asked forever."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from adk import (
    AgentEvent,
    AgentInput,
    BaseAgent,
    ChatModelAgent,
    Interrupt,
    RunContext,
    Runner,
    ScriptedModel,
    ToolCall,
    ToolContext,
    tool,
)

pytestmark = pytest.mark.anyio


class AsksUnderOneKeyReadsAnother(BaseAgent):
    """A custom agent with a bug: it interrupts with key 'size' but reads key 'sise'."""

    async def run(self, input: AgentInput, ctx: RunContext) -> AsyncIterator[AgentEvent]:
        size = ctx.answer_for("sise")
        if size is None:
            yield self.interrupt_event(ctx, {"question": "which size?"}, key="size")
            return
        yield self.text_event(ctx, f"size {size}")


class AsksTwice(BaseAgent):
    """Reads its first answer, then legitimately asks a second question."""

    async def run(self, input: AgentInput, ctx: RunContext) -> AsyncIterator[AgentEvent]:
        size = ctx.answer_for("size")
        if size is None:
            yield self.interrupt_event(ctx, "which size?", key="size")
            return
        colour = ctx.answer_for("colour")
        if colour is None:
            yield self.interrupt_event(ctx, "which colour?", key="colour")
            return
        yield self.text_event(ctx, f"{size} {colour}")


async def test_a_custom_agent_reading_another_key_gets_a_clear_error() -> None:
    runner = Runner(AsksUnderOneKeyReadsAnother("shop"))
    paused = await runner.invoke("buy")
    (pending,) = paused.interrupts
    events = [e async for e in runner.resume(paused.checkpoint_id or "", {pending.id: "L"})]
    error = events[-1].error
    assert error is not None and error.type == "InterruptAnswerUnread"
    assert pending.id in error.message and "answer_for(key)" in error.message
    # Nothing is lost: the new checkpoint still holds the interrupt, for the fixed code.
    (latest,) = [c for c in await runner.checkpoints() if not c.resumed]
    assert [i.id for i in latest.interrupts] == [pending.id]


async def test_a_tool_that_ignores_its_answer_and_raises_again_gets_a_clear_error() -> None:
    @tool
    def confirm(order: str, ctx: ToolContext) -> str:
        """Confirm an order."""
        raise Interrupt({"confirm": order})  # never looks at ctx.answer

    model = ScriptedModel([ToolCall.of("confirm", order="A1"), "done"])
    runner = Runner(ChatModelAgent("clerk", model=model, tools=[confirm]))
    paused = await runner.invoke("go")
    (pending,) = paused.interrupts
    events = [e async for e in runner.resume(paused.checkpoint_id or "", {pending.id: "yes"})]
    assert events[-1].error is not None
    assert events[-1].error.type == "InterruptAnswerUnread"


async def test_asking_a_second_question_after_reading_the_first_answer_is_fine() -> None:
    runner = Runner(AsksTwice("shop"))
    first = await runner.invoke("buy")
    second = await runner.resume_invoke(first.checkpoint_id or "", {first.interrupts[0].id: "L"})
    assert [i.info for i in second.interrupts] == ["which colour?"]
    done = await runner.resume_invoke(second.checkpoint_id or "", {second.interrupts[0].id: "red"})
    assert done.text == "L red"


async def test_a_tool_that_reads_its_answer_and_asks_again_may_do_so() -> None:
    @tool
    def pick(ctx: ToolContext) -> str:
        """Pick a number above 10."""
        answer = ctx.interrupt("a number above 10?")
        if int(answer) <= 10:
            ctx.interrupt(f"{answer} is not above 10; another?")
        return "ok"

    model = ScriptedModel([ToolCall.of("pick"), "done"])
    runner = Runner(ChatModelAgent("picker", model=model, tools=[pick]))
    first = await runner.invoke("go")
    second = await runner.resume_invoke(first.checkpoint_id or "", {first.interrupts[0].id: "3"})
    assert [i.info for i in second.interrupts] == ["3 is not above 10; another?"]
