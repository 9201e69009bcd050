"""Budgeted research: a fan-out stops at its cost limit, then resumes with a raised one.

What it shows
- ``Runner(..., usage_limits=UsageLimits(max_cost=..., price=Cost(...)))``: one
  usage account for the whole run, shared by the three parallel researchers
  and the synthesizer after them.
- The limit is checked before every model call (with the request's estimated
  size): the run stops before a call that would pass it, with a
  ``UsageLimitExceeded`` error saying which limit, its value and the amount.
- The stopped run is checkpointed: ``runner.resume_invoke(run_id,
  usage_limits=...)`` with a higher limit replays the completed calls from the
  journal (no model is called twice) and makes only the missing ones.
- ``RunResult.usage`` counts every model call of the run, the ones made before
  the resume too.

How to run it
    python cookbook/budgeted_research.py

Offline only: each agent has a ScriptedModel whose replies carry usage figures
(as a provider's would), priced with ``Cost`` (USD per token). The researchers
answer after different delays, so the order of their calls is fixed.
"""

from __future__ import annotations

import anyio

from adk import (
    ChatModelAgent,
    Cost,
    Message,
    ParallelAgent,
    Runner,
    ScriptedModel,
    SequentialAgent,
    ToolCall,
    Usage,
    UsageLimitExceeded,
    UsageLimits,
    tool,
)

PRICE = Cost(prompt=2.5e-6, completion=10e-6)  # USD per token
TOPICS = {"market": 0.01, "technology": 0.05, "risks": 0.09}  # researcher -> model latency (s)
FINDINGS = {
    "market": "Home battery sales in Europe grew 35% last year.",
    "technology": "LFP cells now last 6,000+ cycles and need no cobalt.",
    "risks": "Grid-feed tariffs are falling in 3 of our 5 markets.",
}


@tool
def search(topic: str) -> str:
    """Search the knowledge base for a topic."""
    return FINDINGS[topic]


def researcher(topic: str, latency: float) -> tuple[ChatModelAgent, ScriptedModel]:
    """A researcher: one search (a model call), then a finding (a second one)."""
    model = ScriptedModel(
        [
            Message.assistant(
                "",
                tool_calls=[
                    ToolCall(id=f"s-{topic}", name="search", arguments=f'{{"topic": "{topic}"}}')
                ],
                usage=Usage(prompt_tokens=1200, completion_tokens=40),
            ),
            Message.assistant(
                f"[{topic}] {FINDINGS[topic]}",
                usage=Usage(prompt_tokens=1500, completion_tokens=120),
            ),
        ],
        latency=latency,
    )
    agent = ChatModelAgent(topic, model=model, tools=[search], instruction=f"Research {topic}.")
    return agent, model


def build() -> tuple[SequentialAgent, list[ScriptedModel]]:
    researchers = [researcher(topic, latency) for topic, latency in TOPICS.items()]
    synthesizer_model = ScriptedModel(
        [
            Message.assistant(
                "Brief: demand is growing fast, LFP makes batteries durable, "
                "falling tariffs are the main risk.",
                usage=Usage(prompt_tokens=2000, completion_tokens=60),
            )
        ]
    )
    synthesizer = ChatModelAgent("synthesizer", model=synthesizer_model, instruction="Sum up.")
    fan_out = ParallelAgent("fan_out", [agent for agent, _ in researchers])
    models = [model for _, model in researchers] + [synthesizer_model]
    return SequentialAgent("research", [fan_out, synthesizer]), models


async def main() -> None:
    agent, models = build()
    runner = Runner(agent, usage_limits=UsageLimits(max_cost=0.01, price=PRICE))

    def calls() -> int:
        return sum(model.calls for model in models)

    try:
        await runner.invoke("Should we sell home batteries?", run_id="battery-brief")
        raise SystemExit("expected the cost limit to stop the run")
    except UsageLimitExceeded as stop:
        print(f"stopped: {stop.limit} limit {stop.maximum} USD, {stop.amount:.4f} USD needed")
        print(f"over the limit by {stop.amount - stop.maximum:.4f} USD")
        stopped_at = calls()
        print(f"model calls before the stop: {stopped_at}")
        run_id = stop.run_id

    raised = UsageLimits(max_cost=0.05, price=PRICE)
    result = await runner.resume_invoke(run_id, usage_limits=raised)
    # Every scripted answer used exactly once: no completed call was made again.
    repeated = any(model.remaining for model in models) or calls() != 7
    print(f"model calls after the resume: {calls() - stopped_at} (repeated: {repeated})")
    print(f"answer: {result.text}")
    usage = result.usage
    print(
        f"total usage: {usage.prompt_tokens} prompt + {usage.completion_tokens} completion tokens, "
        f"{PRICE.of(usage):.4f} USD"
    )


if __name__ == "__main__":
    anyio.run(main)
