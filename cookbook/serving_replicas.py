"""Serving replicas: a planner, two parallel workers and a writer across two replicas of a model.

What it shows
- A ``Backend`` with two replicas: every agent says ``model="team"`` and the
  serving layer picks a replica for each model call (prefix-aware routing, the
  default: a run's tool loop stays on the replica that has its prompt cached,
  parallel branches spread out).
- A workflow: ``SequentialAgent(planner, ParallelAgent(pros, cons), writer)``,
  ChatModelAgents sharing a long team instruction and a ``search_notes`` tool.
  The workflow runs three times, one question each.
- ``result.serving.table()``: one line per model call of the last run, with the
  replica, queue wait, time to first token, prompt and cached tokens, and the
  cache decision taken at each stage boundary.
- ``ServingSummary.of(...)``: calls and cache hit rate per replica, over all
  runs, and the prefix breaks (calls whose prompt did not extend the same
  agent's previous one; a tool loop never breaks it).

How to run it
    python cookbook/serving_replicas.py                              # offline
    ADK_REPLICAS=http://gpu-1:8000,http://gpu-2:8000 ADK_SERVED_MODEL=Qwen/Qwen2.5-7B-Instruct \\
        ADK_ENGINE_KIND=vllm python cookbook/serving_replicas.py     # real servers

Offline, the script starts two reference engines on loopback
(tests/support/engine_server.py): OpenAI-compatible servers with a real prefix
cache that report cached tokens like vLLM; a small function plays the LLM on
them. With ADK_REPLICAS set to comma-separated base URLs of OpenAI-compatible
servers (without /v1) and ADK_SERVED_MODEL to the model they serve, the same
workflow runs there; ADK_ENGINE_KIND (default "openai") may name the engine:
vllm, sglang, llamacpp or ollama.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # for tests.support

from adk import (
    Backend,
    ChatModelAgent,
    ParallelAgent,
    Runner,
    SequentialAgent,
    ServingLayer,
    tool,
)

REPLICAS = [url.strip() for url in os.environ.get("ADK_REPLICAS", "").split(",") if url.strip()]
SERVED_MODEL = os.environ.get("ADK_SERVED_MODEL", "test-model")
KIND: Any = os.environ.get("ADK_ENGINE_KIND", "openai")  # Backend checks the name

QUESTIONS = [
    "Should we move our nightly batch jobs to spot instances?",
    "Should we replace our self-hosted CI runners with a hosted service?",
    "Should we cache product pages at the edge?",
]

TEAM = (
    "You are one member of a small engineering review team. The team answers one "
    "question at a time: the planner lists what to check, two reviewers look at the "
    "arguments for and against, and the writer turns their notes into a decision. "
    "Be concrete, cite the notes you were given, and keep every answer under 80 words. "
) * 4

# --- the tool ---------------------------------------------------------------------------------

_NOTES = {
    "cost": "Spot and hosted offers cost 40-70% less at our volume; egress is extra.",
    "risk": "Interruptions and vendor outages happened twice last quarter elsewhere.",
    "effort": "Migration needs about two engineer-weeks plus monitoring changes.",
}


@tool
def search_notes(topic: str) -> str:
    """Search the team's notes.

    Args:
        topic: One of "cost", "risk", "effort".
    """
    return _NOTES.get(topic, "no notes on that topic")


# --- the agents -------------------------------------------------------------------------------


def member(role: str, task: str, topic: str) -> ChatModelAgent:
    return ChatModelAgent(
        role,
        model="team",  # the backend's name: the serving layer picks the replica
        instruction=f"{TEAM}You are the {role}: {task} Search the notes on {topic!r} first.",
        tools=[search_notes],
    )


flow = SequentialAgent(
    "review",
    [
        member("planner", "list the three things to check.", "effort"),
        ParallelAgent(
            "sides",
            [
                member("pros", "argue for the change.", "cost"),
                member("cons", "argue against the change.", "risk"),
            ],
        ),
        member("writer", "write the decision with one reason for and one against.", "cost"),
    ],
)

# --- offline: two reference engines playing the LLM -------------------------------------------


def play_llm(body: dict[str, Any]) -> Any:
    """What the offline LLM answers: search the topic its instruction names, then answer."""
    from tests.support.openai_server import Reply

    messages = body["messages"]
    system = messages[0]["content"]
    role = system.split("You are the ", 1)[1].split(":", 1)[0]
    topic = system.rsplit("notes on '", 1)[1].split("'", 1)[0]
    results = [m["content"] for m in messages if m["role"] == "tool"]
    if not results:
        return Reply.call("search_notes", {"topic": topic})
    if role == "writer":
        question = messages[1]["content"].rstrip("?").lower()  # the user's question
        return Reply.text(f"Go ahead, in stages: {question}. For: lower cost. Against: risk.")
    return Reply.text(f"[{role}] {results[-1]}")


@contextmanager
def replicas() -> Iterator[tuple[list[str], Any]]:
    """Base URLs of the replicas and the engine kind: ADK_REPLICAS, or two local engines."""
    if REPLICAS:
        yield REPLICAS, KIND
        return
    from tests.support.engine_server import start_engines

    with start_engines(2, handler=play_llm) as engines:
        yield [engine.url for engine in engines], "vllm"  # they have vLLM's endpoints


async def main() -> None:
    with replicas() as (urls, kind):
        backend = Backend("team", model=SERVED_MODEL, kind=kind, replicas=urls)
        layer = ServingLayer([backend])
        runner = Runner(flow, serving=layer, streaming=True)  # streamed: real TTFT figures
        result = None
        for question in QUESTIONS:
            result = await runner.invoke(question)
            print(f"Q: {question}\nA: {result.text}\n")
        assert result is not None
        print("per-call metrics of the last run:")
        print(result.serving.table())
        print()
        print("per replica, over all runs:")
        for index, replica in enumerate(layer.replicas("team")):
            summary = layer.summary("team", replica=replica.label)
            print(
                f"  replica {index} ({replica.label}): {summary.calls} calls, "
                f"hit rate {summary.hit_rate:.0%}, {summary.prefill_tokens} tokens computed"
            )
        total = layer.summary("team")
        print(
            f"all: {total.calls} calls, hit rate {total.hit_rate:.0%}, "
            f"imbalance {total.imbalance:.2f}, prefix breaks: {total.prefix_breaks}"
        )
        await layer.aclose()


if __name__ == "__main__":
    anyio.run(main)
