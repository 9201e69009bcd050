"""MCP tools: an agent uses the tools of an MCP server, one of them only after approval.

What it shows
- ``MCPToolset(sys.executable, [__file__, "--serve"], ...)``: adk starts an MCP
  server (this very file, run with ``--serve``: a small notes server made with
  the MCP SDK's ``MCPServer``) as a subprocess, talks to it over stdio, and
  gives the agent its tools with their JSON schemas.
- ``prefix="notes_"``: the model sees ``notes_add``, ``notes_list``, ...
- ``requires_approval=["clear"]``: the server's ``clear`` tool pauses the run
  until a person approves, exactly as an adk function tool would; the resumed
  run does not call the tools that already completed again.
- ``scope="runner"`` (the default): one server process for every run of the
  Runner (the notes are still there in the second run), ended by
  ``runner.close()``.

How to run it
    pip install -e '.[mcp]'
    python cookbook/mcp_tools.py                                  # offline
    ADK_MODEL=openai/gpt-4o-mini python cookbook/mcp_tools.py     # a real model

Offline, a ScriptedModel whose function plays the LLM picks the tool calls.
With ADK_MODEL set to a litellm model id, that model decides instead.
"""

from __future__ import annotations

import os
import sys

import anyio

from adk import (
    AgentEvent,
    Approval,
    ChatModel,
    ChatModelAgent,
    Message,
    ModelRequest,
    Runner,
    ScriptedModel,
    ToolCall,
)

# --- the MCP server (this file, run with --serve) ------------------------------------------


def serve_notes() -> None:
    """A small MCP server keeping notes in memory, for as long as the process lives."""
    from mcp.server.mcpserver import MCPServer

    server = MCPServer("notes")
    notes: list[str] = []

    @server.tool()
    def add(text: str) -> str:
        """Add a note."""
        notes.append(text)
        return f"note {len(notes)} saved"

    @server.tool(name="list")
    def list_notes() -> str:
        """List every note, one per line."""
        return "\n".join(f"{i}. {note}" for i, note in enumerate(notes, 1)) or "no notes"

    @server.tool()
    def clear() -> str:
        """Delete every note."""
        count = len(notes)
        notes.clear()
        return f"deleted {count} notes"

    server.run()  # stdio: the MCP client (adk) started this process


# --- the agent -----------------------------------------------------------------------------


def offline_model(request: ModelRequest) -> str | list[ToolCall] | ToolCall:
    """Plays the LLM: calls the tools the last user message asks for, then answers."""
    asked = next(m.content for m in reversed(request.messages) if m.role == "user")
    results = [m for m in request.messages if m.role == "tool"]
    done = results[len(results) - _calls_since_user(request.messages) :]
    if "remember" in asked and not done:
        return [
            ToolCall.of("notes_add", text="buy oat milk"),
            ToolCall.of("notes_add", text="call the dentist"),
        ]
    if "remember" in asked and len(done) == 2:
        return ToolCall.of("notes_list")
    if "forget" in asked and not done:
        return ToolCall.of("notes_clear")
    return f"Done. The notes server says: {done[-1].content}" if done else "Nothing to do."


def _calls_since_user(messages: list[Message]) -> int:
    count = 0
    for message in reversed(messages):
        if message.role == "user":
            break
        count += message.role == "tool"
    return count


def choose_model() -> ChatModel | str:
    model_id = os.environ.get("ADK_MODEL")
    return model_id if model_id else ScriptedModel(offline_model)


def show(event: AgentEvent) -> None:
    message = event.message
    if message is None or event.partial:
        return
    for call in message.tool_calls or ():
        print(f"-> {call.name}({call.arguments})")
    if message.role == "tool":
        print(f"<- {message.name}: {message.content}")
    elif message.role == "assistant" and message.content:
        print(f"assistant: {message.content}")


async def main() -> None:
    from adk.mcp import MCPToolset

    notes = MCPToolset(
        sys.executable, [__file__, "--serve"], prefix="notes_", requires_approval=["clear"]
    )
    agent = ChatModelAgent(
        "assistant",
        model=choose_model(),
        instruction="You keep the user's notes with the notes_ tools. Be brief.",
        tools=[notes],
    )
    runner = Runner(agent)
    try:
        for text in ("Please remember: buy oat milk, call the dentist.", "Now forget everything."):
            print(f"user: {text}")
            result = await runner.invoke(text)
            for event in result.events:
                show(event)
            for pending in result.interrupts:  # the clear tool waits for a person
                print(f"(approval asked: {pending.info['tool']} {pending.info['arguments']})")
                assert result.checkpoint_id is not None
                resumed = await runner.resume_invoke(
                    result.checkpoint_id, {pending.id: Approval.approve()}
                )
                print("(approved)")
                for event in resumed.events:
                    show(event)
    finally:
        await runner.close()  # ends the notes server process
    print("notes server closed")


if __name__ == "__main__":
    if "--serve" in sys.argv:
        serve_notes()
    else:
        anyio.run(main)
