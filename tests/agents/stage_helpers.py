"""Shared parts of the stage-mapping tests: named scripted models and a staged workflow.

``NamedModels`` is a serving layer whose model *names* are scripted models: a
stage mapping assigns backends by name, and the layer's ``generate`` and
``stream`` are its documented extension points, so the rest of the path
(agents, mapping, journal) is the real one. ``Staged`` is the smallest custom
workflow agent that maps its children's stages with :func:`adk.map_stage`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import aclosing
from typing import Any, ClassVar

from adk import (
    Agent,
    AgentEvent,
    AgentInput,
    BaseAgent,
    ChatModel,
    ModelChunk,
    ModelRequest,
    ModelResponse,
    RunContext,
    ScriptedModel,
    ServingLayer,
    StageMapper,
    input_messages,
    map_stage,
    run_agent,
)


class NamedModels(ServingLayer):
    """A serving layer where each model name is a scripted model (no other name is known)."""

    def __init__(self, **models: ScriptedModel) -> None:
        super().__init__()
        self.models = models

    def _named(self, model: ChatModel | str) -> ChatModel:
        if not isinstance(model, str):
            return model
        assert model in self.models, f"no scripted model named {model!r}"  # never the network
        return self.models[model]

    async def generate(self, model: ChatModel | str, request: ModelRequest) -> ModelResponse:
        return await super().generate(self._named(model), request)

    def stream(self, model: ChatModel | str, request: ModelRequest) -> AsyncIterator[ModelChunk]:
        return super().stream(self._named(model), request)


class Staged(BaseAgent):
    """Runs its children in order, each on the stage a mapper assigns it."""

    workflow: ClassVar[bool] = True

    def __init__(self, name: str, children: Sequence[Agent], mapper: StageMapper) -> None:
        super().__init__(name)
        self.sub_agents = tuple(children)
        self.mapper = mapper

    async def run(self, input: AgentInput, ctx: RunContext) -> AsyncIterator[AgentEvent]:
        for child in self.sub_agents:
            child_ctx = ctx.child(child.name)
            child_input = AgentInput(messages=input_messages(child_ctx, child.name))
            mapped = await map_stage(self.mapper, child.name, child, child_input, child_ctx)
            if mapped is not None:
                yield mapped
            async with aclosing(run_agent(child, child_input, child_ctx)) as events:
                async for event in events:
                    yield event
            if child_ctx.failed:
                ctx.failed = True
                return


def mapped_events(events: Sequence[AgentEvent]) -> list[dict[str, Any]]:
    """The payloads of the ``stage_mapped`` events among ``events``."""
    found = []
    for event in events:
        custom = event.output.custom if event.output is not None else None
        if isinstance(custom, dict) and custom.get("kind") == "stage_mapped":
            found.append(custom)
    return found


def names(model: ScriptedModel) -> list[str]:
    """The agents that called ``model``, in call order."""
    return [request.agent_name for request in model.requests]
