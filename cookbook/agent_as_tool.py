"""Agent as a tool: an editor agent calls a fact-checker agent and a translator agent as tools.

What it shows
- ``AgentTool(fact_checker, forward_events=True)``: the fact checker (a
  ChatModelAgent with its own ``lookup_fact`` tool) is a tool of the editor. Its
  arguments are the default ``{"request": string}``; the tool's result is the
  inner agent's final message.
- ``AgentTool(translator, name="translate", input_model=TranslationRequest, ...)``:
  the tool's arguments are the fields of a pydantic model (validated against
  its JSON schema); the inner agent receives them as one JSON user message.
- ``forward_events=True``: the inner agents' events appear in the outer stream
  while they run, with run paths that continue the caller's path:
  editor/fact_checker, editor/translator (the inner agent's name, not the tool
  name). Without it you only see the editor's tool call and tool result.
- What stays inside: the inner run has its own history (the editor's model only
  sees the tool result), and session values are shared: ``lookup_fact`` counts
  lookups in them and the caller sees the count afterwards.

How to run it
    python cookbook/agent_as_tool.py                                  # offline
    ADK_MODEL=openai/gpt-4o-mini python cookbook/agent_as_tool.py     # a real model

Offline, each agent gets a ScriptedModel whose function plays the LLM. With
ADK_MODEL set to a litellm model id, every agent uses that model instead.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

import anyio
from pydantic import BaseModel, Field

from adk import (
    AgentEvent,
    AgentTool,
    ChatModel,
    ChatModelAgent,
    ModelRequest,
    Runner,
    ScriptedModel,
    ToolCall,
    ToolContext,
    tool,
)

MODEL_ID = os.environ.get("ADK_MODEL")  # e.g. "openai/gpt-4o-mini"; unset: offline

# --- the inner agents' tool and input model ----------------------------------------------

_FACTS = {"eiffel tower": "The Eiffel Tower is 330 m tall with its antennas (300 m without)."}


@tool
async def lookup_fact(subject: str, ctx: ToolContext) -> str:
    """Look up reference facts about a subject.

    Args:
        subject: What to look up, e.g. "Eiffel Tower".
    """
    ctx.set("lookups", ctx.get("lookups", 0) + 1)  # session values are shared with the caller
    return _FACTS.get(subject.strip().lower(), f"nothing known about {subject!r}")


class TranslationRequest(BaseModel):
    """A text to translate and the language to translate it into."""

    text: str = Field(description="The text to translate.")
    target_language: str = Field(description='The language to translate into, e.g. "French".')


# --- offline stand-ins for the LLM ------------------------------------------------------


def fact_checker_script(request: ModelRequest) -> str | ToolCall:
    last = request.messages[-1]
    if last.role != "tool":
        return ToolCall.of("lookup_fact", subject="Eiffel Tower")
    return f"Not quite. {last.content} Say 330 m."


_TRANSLATIONS = {("The Eiffel Tower is 330 m tall.", "French"): "La tour Eiffel mesure 330 m."}


def translator_script(request: ModelRequest) -> str:
    # The request arrives as the JSON of a TranslationRequest.
    asked = TranslationRequest.model_validate_json(request.messages[-1].content)
    return _TRANSLATIONS.get((asked.text, asked.target_language), asked.text)


def editor_script(request: ModelRequest) -> str | ToolCall:
    last = request.messages[-1]
    if last.role == "user":
        return ToolCall.of("fact_checker", request="Is the Eiffel Tower 300 m tall?")
    if last.name == "fact_checker":
        return ToolCall.of(
            "translate", text="The Eiffel Tower is 330 m tall.", target_language="French"
        )
    return f"Corrected and translated: {last.content}"


def model(script: Callable[[ModelRequest], Any]) -> ChatModel | str:
    """The litellm model id from ADK_MODEL, or the offline stand-in playing ``script``."""
    return MODEL_ID or ScriptedModel(script)


# --- the agents ----------------------------------------------------------------------------

fact_checker = ChatModelAgent(
    "fact_checker",
    description="Checks a factual claim against reference facts and says what is right.",
    instruction="Check the claim with lookup_fact and answer in one or two sentences.",
    model=model(fact_checker_script),
    tools=[lookup_fact],
)

translator = ChatModelAgent(
    "translator",
    description="Translates a text.",
    instruction=(
        "You get a JSON object with 'text' and 'target_language'. Reply with the translation only."
    ),
    model=model(translator_script),
)

editor = ChatModelAgent(
    "editor",
    instruction=(
        "You edit sentences for the user. Check facts with fact_checker, correct the "
        "sentence, translate it with translate if asked, and reply with the result."
    ),
    model=model(editor_script),
    tools=[
        AgentTool(fact_checker, forward_events=True),
        AgentTool(
            translator,
            name="translate",
            description="Translate a text into another language.",
            input_model=TranslationRequest,
            forward_events=True,
        ),
    ],
)


def show(event: AgentEvent) -> None:
    """Print one event, indented by its depth, prefixed with its run path."""
    where = "  " * (len(event.run_path) - 1) + f"[{'/'.join(event.run_path)}]"
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
        print(f"{where} {message.content}")
    for call in message.tool_calls:
        print(f"{where}   -> {call.name}({call.arguments})")


async def main() -> None:
    spec = editor.tools["translate"].spec
    print(f"translate tool schema: {json.dumps(spec.parameters)}\n")
    question = "Fix and translate into French: 'The Eiffel Tower is 300 m tall.'"
    print(f"[user] {question}")
    session: dict[str, Any] = {}
    paths = set()
    async for event in Runner(editor).query(question, session_values=session):
        show(event)
        paths.add("/".join(event.run_path))
        if event.error is not None:
            raise SystemExit(1)
    print(f"session values after the run: {session}")
    if MODEL_ID is None:
        assert paths == {"editor", "editor/fact_checker", "editor/translator"}, paths
        assert session == {"lookups": 1}
        assert isinstance(translator.model, ScriptedModel)
        assert isinstance(editor.model, ScriptedModel)
        sent = translator.model.requests[0].messages[-1].content
        assert json.loads(sent) == {
            "text": "The Eiffel Tower is 330 m tall.",
            "target_language": "French",
        }
        # The editor's model saw the tool results only, not the inner agents' messages.
        seen = "\n".join(m.content for m in editor.model.requests[-1].messages)
        assert "lookup_fact" not in seen and "Not quite." in seen


if __name__ == "__main__":
    anyio.run(main)
