"""Research fan-out: three researchers work in parallel, then a synthesizer writes the brief.

What it shows
- ``SequentialAgent("research", [ParallelAgent("fanout", [...]), synthesizer])``.
- The ParallelAgent runs every researcher at once on the same input (the user's
  question). Their events interleave in the stream as they come; each event's
  run path says which branch it is from (research/fanout/market, ...).
- Each researcher is a ChatModelAgent with a ``search`` tool: it searches, then
  writes a one-line finding.
- The synthesizer runs after the parallel step and sees every branch's output
  in its history, rewritten as user-role context messages:
  "For context: [market] said: ...". Its (scripted) answer quotes them. The
  branches' tool calls and results reach it the same way
  ("For context: [market] called tool 'search' ...").

How to run it
    python cookbook/research_fanout.py                                  # offline
    ADK_MODEL=openai/gpt-4o-mini python cookbook/research_fanout.py     # a real model

Offline, each agent gets a ScriptedModel whose function plays the LLM (the
researchers' models answer after a short, different delay so that the branches
visibly interleave). With ADK_MODEL set to a litellm model id, every agent uses
that model instead.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import anyio

from adk import (
    AgentEvent,
    ChatModel,
    ChatModelAgent,
    ModelRequest,
    ParallelAgent,
    Runner,
    ScriptedModel,
    SequentialAgent,
    ToolCall,
    tool,
)

MODEL_ID = os.environ.get("ADK_MODEL")  # e.g. "openai/gpt-4o-mini"; unset: offline

# --- a canned search tool ----------------------------------------------------------------

_SEARCH = {
    "market": "Home battery sales in Europe grew 35% last year; average price 7,000 EUR.",
    "technology": "LFP cells now last 6,000+ cycles and need no cobalt.",
    "risks": "Grid-feed tariffs are falling in 3 of our 5 markets; cell supply is concentrated.",
}


@tool
async def search(query: str, topic: str) -> str:
    """Search our research notes.

    Args:
        query: What to look for.
        topic: One of "market", "technology", "risks".
    """
    await anyio.sleep(0.01)
    return _SEARCH.get(topic, "no results")


# --- offline stand-ins for the LLM -----------------------------------------------------------


def researcher_script(topic: str) -> Callable[[ModelRequest], str | ToolCall]:
    """Search the topic, then state the finding in one sentence."""

    def answer(request: ModelRequest) -> str | ToolCall:
        last = request.messages[-1]
        if last.role != "tool":
            return ToolCall.of("search", query=f"home batteries {topic}", topic=topic)
        return last.content

    return answer


def synthesizer_script(request: ModelRequest) -> str:
    """Write the brief from what each researcher said (the "For context" messages)."""
    findings = []
    for message in request.messages:
        match = re.match(r"For context: \[(\w+)\] said: (.*)", message.content, re.S)
        if match:
            findings.append(f"- {match.group(1)}: {match.group(2)}")  # name, then what it said
    return "Brief for the home battery decision:\n" + "\n".join(findings)


def model(script: Callable[[ModelRequest], Any], latency: float = 0.0) -> ChatModel | str:
    """The litellm model id from ADK_MODEL, or the offline stand-in playing ``script``."""
    return MODEL_ID or ScriptedModel(script, latency=latency)


# --- the agents ---------------------------------------------------------------------------------


def researcher(topic: str, latency: float) -> ChatModelAgent:
    return ChatModelAgent(
        topic,
        description=f"Researches the {topic} side of a product decision.",
        instruction=(
            f"You research the {topic} side of the user's question. Call search once with "
            f'topic="{topic}", then state the key finding in one sentence.'
        ),
        model=model(researcher_script(topic), latency),
        tools=[search],
    )


synthesizer = ChatModelAgent(
    "synthesizer",
    instruction=(
        "Researchers have reported their findings above. Write a short brief for the "
        "user's question: one bullet per researcher, naming the researcher."
    ),
    model=model(synthesizer_script),
)

root = SequentialAgent(
    "research",
    [
        ParallelAgent(
            "fanout",
            [researcher("market", 0.03), researcher("technology", 0.01), researcher("risks", 0.02)],
        ),
        synthesizer,
    ],
)


def show(event: AgentEvent) -> None:
    """Print one event, prefixed with its run path."""
    where = f"[{'/'.join(event.run_path)}]"
    if event.error is not None:
        print(f"{where} !! {event.error.type}: {event.error.message}")
        return
    message = event.message
    if message is None:
        return
    if message.role == "tool":
        print(f"{where}   <- {message.name}: {message.content}")
        return
    if message.content:
        print(f"{where} {message.content}".replace("\n", "\n" + " " * (len(where) + 1)))
    for call in message.tool_calls:
        print(f"{where}   -> {call.name}({call.arguments})")


async def main() -> None:
    question = "Should we launch a home battery product next year?"
    print(f"[user] {question}")
    brief = ""
    async for event in Runner(root).query(question):
        show(event)
        if event.error is not None:
            raise SystemExit(1)
        if event.agent_name == "synthesizer" and event.message is not None:
            brief = event.text
    if isinstance(synthesizer.model, ScriptedModel):  # offline: show what the synthesizer got
        print("\nthe synthesizer's input (after its system message):")
        for message in synthesizer.model.requests[0].messages[1:]:
            print(f"  {message.role}: {message.content}")
        for topic, finding in _SEARCH.items():  # the brief quotes every branch
            assert f"- {topic}: {finding}" in brief, brief


if __name__ == "__main__":
    anyio.run(main)
