"""A research report as a DAG: fetch from three sources, analyse twice, write once.

What it shows
- ``DAGAgent("report", [Node(agent, after=[...], when=...), ...])``: each node
  starts as soon as the nodes it waits for are done, not level by level.
  Here ``tech`` needs papers and patents, ``market`` needs news and patents,
  and the writer needs both analyses.
- The fetchers are ChatModelAgents calling a ``search`` tool. Their answers
  reach the nodes after them as one labelled context message
  ("[papers] said: ..."), in the order each node lists its dependencies.
- ``when=``: ``risk_review`` runs only if the market analysis flags a risk.
  Here it does not, so the DAG emits a ``dag_node_skipped`` event for it and
  the writer (which lists it) runs without it.
- ``max_concurrency=2``: at most two nodes run at once.
- ``dag.results(result.history)``: every node's status and final answer
  after the run, printed in graph order (nodes finish in a different order
  from run to run; the printout does not).

How to run it
    python cookbook/dag_report.py                                  # offline
    ADK_MODEL=openai/gpt-4o-mini python cookbook/dag_report.py     # a real model

Offline, each agent gets a ScriptedModel whose function plays the LLM (the
fetchers answer after different short delays, so they finish out of order).
With ADK_MODEL set to a litellm model id, every agent uses that model.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from typing import Any

import anyio

from adk import (
    ChatModel,
    ChatModelAgent,
    DAGAgent,
    ModelRequest,
    Node,
    Runner,
    ScriptedModel,
    ToolCall,
    Upstream,
    tool,
)

MODEL_ID = os.environ.get("ADK_MODEL")  # e.g. "openai/gpt-4o-mini"; unset: offline

_SOURCES = {
    "papers": "Solid-state cells reached 900 Wh/l in lab tests (3 papers, 2024).",
    "news": "Two carmakers announced pilot lines; prices stay 4x those of Li-ion.",
    "patents": "Filings on sulfide electrolytes doubled since 2021, led by Asian firms.",
}


@tool
async def search(source: str, query: str) -> str:
    """Search one source of our research database.

    Args:
        source: One of "papers", "news", "patents".
        query: What to look for.
    """
    await anyio.sleep(0.005)
    return _SOURCES.get(source, "no results")


# --- offline stand-ins for the LLM ----------------------------------------------------------


def fetch_script(source: str) -> Callable[[ModelRequest], str | ToolCall]:
    """Search the source, then report what it said."""

    def answer(request: ModelRequest) -> str | ToolCall:
        last = request.messages[-1]
        if last.role != "tool":
            return ToolCall.of("search", source=source, query="solid-state batteries")
        return last.content

    return answer


def findings(request: ModelRequest) -> list[tuple[str, str]]:
    """The (node, answer) pairs of the labelled context message the DAG gave this node."""
    text = request.messages[-1].content
    return re.findall(r"\[(\w+)\] said: (.*?)(?:\n\n|$)", text, re.S)


def analyse_script(focus: str) -> Callable[[ModelRequest], str]:
    def answer(request: ModelRequest) -> str:
        sources = ", ".join(name for name, _ in findings(request))
        verdict = "promising, 5+ years out" if focus == "tech" else "no near-term risk"
        return f"{focus} view from {sources}: {verdict}"

    return answer


def write_script(request: ModelRequest) -> str:
    lines = [f"- {text}" for _, text in findings(request)]
    return "Report: solid-state batteries\n" + "\n".join(lines)


def model(script: Callable[[ModelRequest], Any], latency: float = 0.0) -> ChatModel | str:
    """The litellm model id from ADK_MODEL, or the offline stand-in playing ``script``."""
    return MODEL_ID or ScriptedModel(script, latency=latency)


# --- the DAG ------------------------------------------------------------------------------


def fetcher(source: str, latency: float) -> ChatModelAgent:
    return ChatModelAgent(
        source,
        instruction=f'Call search once with source="{source}", then report the finding.',
        model=model(fetch_script(source), latency),
        tools=[search],
    )


def analyst(name: str, focus: str) -> ChatModelAgent:
    return ChatModelAgent(
        name,
        instruction=f"Assess the {focus} outlook from the findings; one sentence.",
        model=model(analyse_script(name)),
    )


def flags_a_risk(upstream: Upstream) -> bool:
    return "risk:" in upstream["market"].text.lower()


report = DAGAgent(
    "report",
    [
        fetcher("papers", 0.03),
        fetcher("news", 0.01),
        fetcher("patents", 0.02),
        Node(analyst("tech", "technology"), after=["papers", "patents"]),
        Node(analyst("market", "market"), after=["news", "patents"]),
        Node(analyst("risk_review", "risk"), after="market", when=flags_a_risk),
        Node(
            ChatModelAgent(
                "write",
                instruction="Write a short report from the analyses, one bullet each.",
                model=model(write_script),
            ),
            after=["tech", "market", "risk_review"],
        ),
    ],
    max_concurrency=2,
)


async def main() -> None:
    result = await Runner(report).invoke("Brief me on solid-state batteries.")
    print("nodes, in graph order:")
    for name, node in report.results(result.history).items():
        first_line = node.text.splitlines()[0] if node.text else ""
        print(f"  {name:<12} {node.status:<10} {first_line}".rstrip())
    print()
    print(result.text)


if __name__ == "__main__":
    anyio.run(main)
