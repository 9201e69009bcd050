"""Stage mapping: easy questions go to a small model, hard ones to a large one.

What it shows
- A help desk as a ``DAGAgent``: an ``answer`` node, then a ``polish`` node
  that tidies the answer. Both agents say ``model="small"``.
- ``DAGAgent(mapper=...)``: before each node runs, a stage mapper picks its
  backend for this run. Here an ``ExplicitStageMapping`` keeps ``polish`` on
  the small backend and hands ``answer`` to a ``OneBitStageMapper``: a
  temperature-0 call on the small model answers "easy" or "hard", and hard
  questions are answered by the large backend (with its own params).
- The ``stage_mapped`` event each decision leaves (backend and reason), and
  what the mapping saved: tokens per backend, and the cost against sending
  every call to the large model (prices per token in the ``PRICES`` table).
- Decisions are journaled: a resumed run never asks the classifier again
  (docs/workflows.md#stage-mapping).

How to run it
    python cookbook/stage_mapping.py                                 # offline
    ADK_SMALL_MODEL=openai/gpt-4o-mini ADK_LARGE_MODEL=openai/gpt-4o \\
        python cookbook/stage_mapping.py                             # real models via litellm

Offline, the backend names "small" and "large" are served by ScriptedModels
through a ``ServingLayer`` subclass (``generate`` and ``stream`` are the
layer's extension points), so no server and no network is needed; the small
one plays the classifier too. With ADK_SMALL_MODEL and ADK_LARGE_MODEL set
(litellm model ids; the provider's API key in the environment) "small" and
"large" are ``Backend``s of kind ``"litellm"``, and the model decides.
"""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import anyio

from adk import (
    Backend,
    ChatModel,
    ChatModelAgent,
    DAGAgent,
    ExplicitStageMapping,
    ModelChunk,
    ModelRequest,
    ModelResponse,
    Node,
    OneBitStageMapper,
    Runner,
    ScriptedModel,
    ServingLayer,
    StageAssignment,
    Usage,
)

SMALL_ID = os.environ.get("ADK_SMALL_MODEL")
LARGE_ID = os.environ.get("ADK_LARGE_MODEL")

QUESTIONS = [
    "What are your opening hours?",
    "How do I reset my password?",
    "Compare the annual and monthly plans for a team of 40 and explain why one is cheaper.",
    "Where is my invoice?",
    "Our sync fails with a conflict error; debug it step by step and plan a fix.",
    "Do you have a dark mode?",
]

PRICES = {"small": (0.15e-6, 0.6e-6), "large": (2.5e-6, 10e-6)}
"""Price per prompt and per completion token of each backend (your currency)."""

HARD_WORDS = ("compare", "debug", "plan", "why", "step by step")


# --- offline: the two backends as scripted models -----------------------------------


def small_model(request: ModelRequest) -> str:
    """The small model: a quick classifier, short answers, light polishing."""
    task = request.messages[-1].content
    if request.agent_name == "stage_mapper":  # the one-bit classifier call
        return "hard" if any(word in task.lower() for word in HARD_WORDS) else "easy"
    if request.agent_name == "polish":  # its input carries the answer node's draft
        seen = "\n".join(message.content for message in request.messages)
        drafts = re.findall(r"(?:Short|Careful) answer to .*", seen)
        return "Polished: " + (drafts[-1] if drafts else task)
    return f"Short answer to '{task[:30]}'."


def large_model(request: ModelRequest) -> str:
    """The large model: a careful, longer answer."""
    task = request.messages[-1].content
    return f"Careful answer to '{task[:30]}', worked through in three steps."


class ScriptedBackends(ServingLayer):
    """A serving layer whose model names are scripted models, with a token tally per name."""

    def __init__(self, models: dict[str, ChatModel]) -> None:
        super().__init__()
        self.models = models
        self.spent: dict[str, Usage] = defaultdict(Usage)

    async def generate(self, model: ChatModel | str, request: ModelRequest) -> ModelResponse:
        if not isinstance(model, str):
            return await super().generate(model, request)
        response = await super().generate(self.models[model], request)
        self.spent[model] = self.spent[model] + response.usage
        return response

    def stream(self, model: ChatModel | str, request: ModelRequest) -> AsyncIterator[ModelChunk]:
        return super().stream(self.models[model] if isinstance(model, str) else model, request)


def serving() -> ServingLayer:
    """Real backends when both model ids are set, else the scripted ones."""
    if SMALL_ID and LARGE_ID:
        return ServingLayer(
            [
                Backend("small", model=SMALL_ID, kind="litellm"),
                Backend("large", model=LARGE_ID, kind="litellm"),
            ]
        )
    return ScriptedBackends(
        {"small": ScriptedModel(small_model), "large": ScriptedModel(large_model)}
    )


def spent(layer: ServingLayer) -> dict[str, Usage]:
    """Tokens per backend: the scripted tally, or the serving layer's metrics."""
    if isinstance(layer, ScriptedBackends):
        return dict(layer.spent)
    return {
        name: Usage(prompt_tokens=s.prompt_tokens, completion_tokens=s.completion_tokens)
        for name, s in layer.summaries().items()
    }


def cost(usage: Usage, backend: str) -> float:
    """What ``usage`` costs at ``backend``'s prices."""
    prompt, completion = PRICES[backend]
    return usage.prompt_tokens * prompt + usage.completion_tokens * completion


# --- the help desk ------------------------------------------------------------------


def help_desk() -> DAGAgent:
    """Answer, then polish; the answer's backend is picked per question."""
    answer = ChatModelAgent(
        "answer", model="small", instruction="Answer the customer's question accurately."
    )
    polish = ChatModelAgent(
        "polish", model="small", instruction="Make the answer friendly and concise."
    )
    classifier = OneBitStageMapper(
        "small",  # the small model is the classifier (a call at temperature 0)
        low="small",
        high=StageAssignment("large", {"temperature": 0.2}),
    )
    mapper = ExplicitStageMapping({"answer": classifier, "polish": "small"})
    return DAGAgent("desk", [answer, Node(polish, after="answer")], mapper=mapper)


def decisions(events: list[Any]) -> dict[str, dict[str, Any]]:
    """The ``stage_mapped`` decisions of a run, by stage."""
    found = {}
    for event in events:
        custom = event.output.custom if event.output is not None else None
        if isinstance(custom, dict) and custom.get("kind") == "stage_mapped":
            found[custom["stage"]] = custom
    return found


async def main() -> None:
    """Ask every question, show each decision, then the tokens and the cost."""
    layer = serving()
    runner = Runner(help_desk(), serving=layer)
    for question in QUESTIONS:
        result = await runner.invoke(question)
        mapped = decisions(result.events)["answer"]
        print(f"Q: {question}")
        print(f"   answer -> {mapped['backend']} ({mapped['reason']})")
        print(f"   {result.text}")
    tokens = spent(layer)
    total = sum(cost(usage, name) for name, usage in tokens.items())
    everything = sum(tokens.values(), Usage())
    all_large = cost(everything, "large")
    for name in sorted(tokens):
        usage = tokens[name]
        print(f"{name}: {usage.prompt_tokens} prompt + {usage.completion_tokens} completion tokens")
    print(f"cost with stage mapping: {total / all_large:.2f}x all-large")


if __name__ == "__main__":
    anyio.run(main)
