"""A long tool loop for the context tests: each tool result is big, the window small."""

from __future__ import annotations

from typing import Any

from adk import ChatModelAgent, ContextPolicy, Message, ModelRequest, ScriptedModel, ToolCall

RESULT_CHARS = 2_000
"""Characters of each ``fetch`` result (about 500 tokens by adk's estimate)."""


def fetch(page: int) -> str:
    """Fetch one page of the document.

    Args:
        page: the page number.
    """
    return f"page {page}: " + "x" * RESULT_CHARS


def loop_script(pages: int, recall_first: bool = False) -> Any:
    """A script that fetches ``pages`` pages, optionally recalls the first, then answers."""

    def script(request: ModelRequest) -> Any:
        tool_messages = [m for m in request.messages if m.role == "tool"]
        done = len(tool_messages)
        if done < pages:
            return ToolCall.of("fetch", page=done + 1)
        if recall_first and done == pages:
            return ToolCall.of("recall", call_id=tool_messages[0].tool_call_id)
        last = request.messages[-1]
        return f"done after {done} results; last starts {last.content[:12]!r}"

    return script


def small_policy(**overrides: Any) -> ContextPolicy:
    """A 4,000-token window, no headroom: GC past 2,400 tokens (about 4 results); no compaction."""
    settings: dict[str, Any] = {"window": 4_000, "headroom": 0, "compaction": False, **overrides}
    return ContextPolicy(**settings)


def looping_agent(
    pages: int, policy: ContextPolicy | None, recall_first: bool = False, **kw: Any
) -> tuple[ChatModelAgent, ScriptedModel]:
    """An agent fetching ``pages`` pages with ``policy``, and its scripted model."""
    model = ScriptedModel(loop_script(pages, recall_first))
    agent = ChatModelAgent(
        "reader", model=model, tools=[fetch], context=policy, max_iterations=40, **kw
    )
    return agent, model


def stubs(messages: list[Message]) -> list[str]:
    """The call ids whose results are elided stubs in ``messages``."""
    return [
        m.tool_call_id or ""
        for m in messages
        if m.role == "tool" and m.content.startswith("[elided tool result")
    ]
