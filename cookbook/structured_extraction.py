"""Structured extraction: typed answers from free text, used directly and as an agent tool.

What it shows
- ``output_type=list[Contact]``: the extractor's answer is validated into a list
  of pydantic models; ``RunResult.output`` is that list.
- Invalid output is sent back for correction: offline, the scripted model's
  first answer misses a field, and the second attempt is valid.
- Streaming: partial events carry the JSON as it arrives; the final event
  carries the validated value.
- An ``AgentTool`` around the typed extractor: a CRM assistant calls it and
  reads the contacts as JSON (the tool advertises their schema).

How to run it
    python cookbook/structured_extraction.py                              # offline
    ADK_MODEL=openai/gpt-4o-mini python cookbook/structured_extraction.py  # a real model

Offline, a ScriptedModel answers the way a model in "tool" mode does: by
calling the ``final_result`` tool. With ADK_MODEL set, the mode is chosen for
that model (its native JSON-schema response format where litellm says it has one).
"""

from __future__ import annotations

import json
import os

import anyio
from pydantic import BaseModel, Field

from adk import (
    AgentTool,
    ChatModel,
    ChatModelAgent,
    ModelRequest,
    Runner,
    ScriptedModel,
    ToolCall,
)

EMAIL = """Hi team, after the fair: Ada Lovelace (ada@analytical.example) wants a demo,
and Charles Babbage from Difference Ltd asked for a quote: charles@difference.example."""


class Contact(BaseModel):
    """One person to follow up with."""

    name: str
    email: str
    company: str | None = None
    wants: str = Field(description="what they asked for, in a few words")


# --- offline stand-ins for the LLMs -------------------------------------------------

_CONTACTS = [
    {"name": "Ada Lovelace", "email": "ada@analytical.example", "wants": "a demo"},
    {
        "name": "Charles Babbage",
        "email": "charles@difference.example",
        "company": "Difference Ltd",
        "wants": "a quote",
    },
]


def offline_extractor(request: ModelRequest) -> object:
    """First a slip (a contact without its email), then the corrected answer."""
    corrected = any(m.role == "tool" and "email" in m.content for m in request.messages)
    if not corrected:
        slip = [dict(_CONTACTS[0]), {k: v for k, v in _CONTACTS[1].items() if k != "email"}]
        return ToolCall.of("final_result", result=slip)
    return ToolCall.of("final_result", result=_CONTACTS)


def offline_assistant(request: ModelRequest) -> object:
    """Calls the extractor tool, then summarises what it returned."""
    last = request.messages[-1]
    if last.role != "tool":
        return ToolCall.of("extract_contacts", request=EMAIL)
    contacts = json.loads(last.content)
    names = ", ".join(contact["name"] for contact in contacts)
    return f"I added {len(contacts)} contacts to the CRM: {names}."


def model(offline: ScriptedModel) -> ChatModel | str:
    return os.environ.get("ADK_MODEL") or offline


# --- the agents ---------------------------------------------------------------------

extractor = ChatModelAgent(
    "extract_contacts",
    description="Finds the people to follow up with in an email.",
    model=model(ScriptedModel(offline_extractor, chunk_chars=24)),
    instruction="List every person in the email who expects an answer from us.",
    output_type=list[Contact],
)

assistant = ChatModelAgent(
    "crm_assistant",
    model=model(ScriptedModel(offline_assistant)),
    instruction="Add the contacts from the user's email to the CRM and say what you did.",
    tools=[AgentTool(extractor)],
)


async def main() -> None:
    # 1. The typed agent on its own, streaming.
    runner = Runner(extractor, streaming=True)
    pieces = 0
    contacts: list[Contact] = []
    async for event in runner.query(EMAIL):
        if event.partial:
            pieces += 1
        elif event.value is not None:
            contacts = event.value
        elif event.error is not None:
            print("error:", event.error.type, event.error.message)
    print(f"streamed the answer in {pieces} pieces")
    for contact in contacts:
        print(f"- {contact.name} <{contact.email}> wants {contact.wants}")

    # 2. The same agent as a tool of another agent: it returns the contacts as JSON.
    result = await Runner(assistant).invoke(f"Please file this email:\n{EMAIL}")
    print("assistant:", result.output)


if __name__ == "__main__":
    anyio.run(main)
