"""Long research: a 200-step tool loop that would overflow its window, finishing with compaction.

What it shows
- A ``ChatModelAgent`` reading 200 sources, each about 600 tokens: 120,000
  tokens of tool results against an 8,000-token window. Without a policy the
  prompt passes the window after a dozen steps and the provider refuses it.
- ``ContextPolicy(window=8_000, headroom=1_000)``: old tool results are
  elided by GC (a stub says how to get each back: ``recall``), and when the
  stubs and calls themselves pass the threshold, the older turns are
  summarised into one message by a ``ModelSummariser`` on a cheaper model.
- Both happen in rare, large steps: between two of them every prompt extends
  the previous one, so an engine's prefix cache keeps serving it.
- The events (``gc_complete``, ``compaction_starting``,
  ``compaction_complete``) report what was done and how many tokens it saved.

How to run it
    python cookbook/long_research.py

Offline: the researcher and the summariser are ScriptedModels (token counts
are adk's estimate, 4 characters a token). With a real model, give the policy
nothing but the headroom: the window comes from litellm's model info.
"""

from __future__ import annotations

import re
from typing import Any

import anyio

from adk import (
    ChatModelAgent,
    ContextPolicy,
    ModelRequest,
    ModelSummariser,
    Runner,
    ScriptedModel,
    ToolCall,
)
from adk.state.pricing import estimate_tokens

SOURCES = 200
WINDOW = 8_000
FINDING = re.compile(r"source (\d+): finding (\d+)")


def read_source(number: int) -> str:
    """Read one source and return its text.

    Args:
        number: which source, 1 to 200.
    """
    body = " ".join(f"detail {number}.{i}" for i in range(240))  # about 600 tokens
    return f"source {number}: finding {number * 7 % 100}. {body}"


def researcher(request: ModelRequest) -> Any:
    """Read the sources in order, then report; knows where it is from the last result."""
    last = request.messages[-1]
    found = FINDING.match(last.content) if last.role == "tool" else None
    done = int(found.group(1)) if found else 0
    if done < SOURCES:
        return ToolCall.of("read_source", number=done + 1)
    return f"Read all {SOURCES} sources; the strongest finding scored 99."


def summariser(request: ModelRequest) -> str:
    """The cheaper model that writes summaries: keeps the highest finding seen so far."""
    text = request.messages[-1].content
    scores = [int(score) for _, score in FINDING.findall(text)]
    carried = [int(n) for n in re.findall(r"best finding so far: (\d+)", text)]
    return f"Sources read in order; best finding so far: {max(scores + carried, default=0)}."


async def main() -> None:
    model = ScriptedModel(researcher)
    cheap = ScriptedModel(summariser)
    policy = ContextPolicy(
        window=WINDOW,
        headroom=1_000,  # kept free for the reply
        threshold=0.9,  # manage late: fewer, larger steps (the window holds few results)
        tool_result_max_age=1,  # each source is read once, right after it arrives
        summariser=ModelSummariser(cheap),
    )
    agent = ChatModelAgent(
        "researcher",
        model=model,
        instruction="Read every source, then report the strongest finding.",
        tools=[read_source],
        context=policy,
        max_iterations=SOURCES + 5,
    )
    gc_steps = compactions = saved = 0
    async for event in Runner(agent).query("Survey the 200 sources."):
        custom = event.output.custom if event.output is not None else None
        kind = custom.get("kind") if isinstance(custom, dict) else None
        if kind == "gc_complete":
            gc_steps += 1
        elif kind == "compaction_complete":
            compactions += 1
            saved += custom["tokens_saved"]
        elif event.text and event.message.role == "assistant" and not event.partial:
            answer = event.text
    largest = max(estimate_tokens(r.messages, r.tools) for r in model.requests)
    print(f"model calls: {model.calls} (plus {cheap.calls} summaries on the cheaper model)")
    results = sum(len(read_source(n)) for n in range(1, SOURCES + 1)) // 4
    print(f"tool results: {results:,} tokens in all")
    print(f"largest prompt: {largest:,} tokens (window {WINDOW:,})")
    print(
        f"gc steps: {gc_steps}, compactions: {compactions}, tokens saved by compaction: {saved:,}"
    )
    print("answer:", answer)


if __name__ == "__main__":
    anyio.run(main)
