"""Small agents and utilities shared by the composition tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

from adk import AgentEvent, AgentInput, BaseAgent, Message, RunContext, Runner


class Say(BaseAgent):
    """Says fixed texts (one event each), optionally followed by an action event."""

    def __init__(self, name: str, *texts: str, then: str | None = None, **kw: Any) -> None:
        super().__init__(name, kw.get("description", ""))
        self.texts = texts or (f"{name} here",)
        self.then = then
        self.calls = 0
        self.inputs: list[list[Message]] = []

    async def run(self, input: AgentInput, ctx: RunContext) -> AsyncIterator[AgentEvent]:
        self.calls += 1
        self.inputs.append(list(input.messages))
        for text in self.texts:
            yield self.text_event(ctx, text)
        if self.then == "exit":
            yield self.exit_event(ctx)
        elif self.then == "break":
            yield self.break_loop_event(ctx)
            yield self.text_event(ctx, f"{self.name} after break")
        elif self.then == "fail":
            raise RuntimeError(f"{self.name} failed")
        elif self.then is not None and self.then.startswith("transfer:"):
            yield self.transfer_event(ctx, self.then.split(":", 1)[1])


class Custom(BaseAgent):
    """Runs an async generator function as its body."""

    def __init__(
        self,
        name: str,
        body: Callable[[BaseAgent, AgentInput, RunContext], AsyncIterator[AgentEvent]],
    ) -> None:
        super().__init__(name)
        self.body = body

    def run(self, input: AgentInput, ctx: RunContext) -> AsyncIterator[AgentEvent]:
        return self.body(self, input, ctx)


async def events_of(runner: Runner, text: str = "go", **kw: Any) -> list[AgentEvent]:
    return [event async for event in runner.query(text, **kw)]


def trace(events: list[AgentEvent]) -> list[str]:
    """A compact, readable description of each event: path, then content or action."""
    out = []
    for event in events:
        path = "/".join(event.run_path)
        if event.error is not None:
            out.append(f"{path} error:{event.error.type}")
            continue
        parts = []
        message = event.message
        if message is not None:
            if message.tool_calls:
                parts.append("calls:" + ",".join(c.name for c in message.tool_calls))
            if message.role == "tool":
                parts.append(f"result:{message.content}")
            elif message.content:
                parts.append(message.content)
        action = event.action
        if action is not None:
            if action.exit:
                parts.append("<exit>")
            if action.transfer_to_agent is not None:
                parts.append(f"<transfer:{action.transfer_to_agent.dest}>")
            if action.break_loop is not None:
                b = action.break_loop
                parts.append(f"<break done={b.done} at={b.current_iterations}>")
        out.append(f"{path} {' '.join(parts)}")
    return out


def live_tasks() -> int:
    """How many tasks the running event loop has (asyncio or trio): a leak check."""
    import sniffio

    if sniffio.current_async_library() == "trio":
        import trio

        def count(task: trio.lowlevel.Task) -> int:
            return 1 + sum(
                count(child) for nursery in task.child_nurseries for child in nursery.child_tasks
            )

        return count(trio.lowlevel.current_root_task())  # type: ignore[arg-type]
    import asyncio

    return len(asyncio.all_tasks())
