"""A multi-agent workflow instrumented with kill points, for crash-and-resume tests.

Every model call, tool call and store write passes a numbered *hook*; a
process built with ``kill_at=K`` dies (``os._exit``) at hook K, at any of
those places: before a call, after it returned but before it was journaled,
or right after a journal chunk was written.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from adk import (
    ChatModelAgent,
    LoopAgent,
    ModelRequest,
    ParallelAgent,
    Runner,
    ScriptedModel,
    SequentialAgent,
    SQLiteStore,
    ToolCall,
    ToolContext,
    tool,
)
from adk.models.base import ModelChunk, ModelResponse


class Hooks:
    def __init__(self, kill_at: int | None) -> None:
        self.kill_at = kill_at
        self.count = 0
        self.executed: list[str] = []

    def hit(self) -> None:
        self.count += 1
        if self.kill_at is not None and self.count == self.kill_at:
            os._exit(9)


class HookedStore(SQLiteStore):
    def __init__(self, path: Path, hooks: Hooks) -> None:
        super().__init__(path)
        self.hooks = hooks

    async def put(
        self, namespace: str, name: str, data: bytes, *, ttl: float | None = None
    ) -> None:
        await super().put(namespace, name, data, ttl=ttl)
        self.hooks.hit()


class HookedModel:
    def __init__(self, inner: ScriptedModel, hooks: Hooks) -> None:
        self.inner = inner
        self.hooks = hooks

    async def generate(self, request: ModelRequest) -> ModelResponse:
        self.hooks.hit()
        self.hooks.executed.append(request.call_id)
        response = await self.inner.generate(request)
        self.hooks.hit()
        return response

    def stream(self, request: ModelRequest) -> AsyncIterator[ModelChunk]:
        raise NotImplementedError


def build_runner(db: Path, hooks: Hooks, iterations: int = 4) -> Runner:
    @tool
    async def work(task: str, ctx: ToolContext) -> str:
        """Do a piece of work."""
        hooks.hit()
        hooks.executed.append(ctx.idempotency_key)
        ctx.set(f"done:{task}", True)
        hooks.hit()
        return f"result of {task}"

    def script(request: ModelRequest) -> Any:
        last = request.messages[-1]
        if last.role == "tool":
            return f"{request.agent_name} finished {last.content}"
        name = request.agent_name
        if name.startswith("worker"):
            return [ToolCall.of("work", task=f"{name}-a"), ToolCall.of("work", task=f"{name}-b")]
        return ToolCall.of("work", task=name)

    model = HookedModel(ScriptedModel(script), hooks)
    workers = [ChatModelAgent(f"worker{i}", model=model, tools=[work]) for i in range(3)]
    step = SequentialAgent(
        "step",
        [
            ChatModelAgent("planner", model=model, tools=[work]),
            ParallelAgent("team", workers),
            ChatModelAgent("reviewer", model=model, tools=[work], output_key="review"),
        ],
    )
    flow = LoopAgent("flow", [step], max_iterations=iterations)
    return Runner(flow, checkpoint_store=HookedStore(db, hooks), durability="step")


def outcome(values: dict[str, Any], text: str) -> tuple[str, list[str]]:
    return text, sorted(values)
