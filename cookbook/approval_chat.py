"""Approval chat: a terminal chat whose email tool waits for a person's approval.

What it shows
- ``@tool(requires_approval=True)``: ``send_email`` never runs without a
  decision. When the model calls it, the run pauses: the Runner writes a
  checkpoint and its last event carries the pending interrupts (tool name and
  arguments in ``info``) and the checkpoint id.
- The person answers each approval in the terminal:
      approve                 run the call as the model asked
      reject <reason>         do not run it; the model reads the reason and may try again
      edit <json>             run it with changed arguments, e.g. edit {"subject": "Demo at 3pm"}
  The answer becomes an ``Approval`` (``approve()``, ``reject(message)``,
  ``edit(arguments)``) and ``runner.resume(checkpoint_id, {interrupt_id: approval})``
  continues the run. The model call that asked for the tool is not made again.
- A rejection is not the end: the model reads "The user rejected this call to
  'send_email': <reason>", writes a new draft, and that draft needs approval too.
- ``find_contact`` needs no approval; it ran before the pause and does not run
  again on resume (the run's journal has its result).
- A chat across several turns, kept in a stored session: each user message is
  ``runner.query(text, session_id=..., user_id=...)``, one turn that the Runner
  runs over the conversation so far and appends to the session when it ends.
  A turn paused for approval is recorded in the session (which takes no new
  turn until it is answered), and ``runner.resume`` finishes it and appends
  it. The script keeps no history of its own.

How to run it
    python cookbook/approval_chat.py                                 # chat in a terminal, offline
    python cookbook/approval_chat.py --auto                          # a scripted user and approver
    ADK_MODEL=openai/gpt-4o-mini python cookbook/approval_chat.py    # a real model via litellm

In a terminal it asks you for messages and decisions (empty line or Ctrl-D
ends the chat). When stdin or stdout is not a terminal (a pipe, CI, the test
suite) or with ``--auto``, a scripted user asks for one email, rejects the
first draft, edits the subject of the second, then says thanks. Offline, a
ScriptedModel plays the LLM; it understands messages like "Email Ada that the
demo moved to 3pm". With ADK_MODEL set to a litellm model id, that model is
used instead (the provider's API key must be in the environment).
"""

from __future__ import annotations

import json
import os
import re
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio

from adk import (
    AgentEvent,
    Approval,
    ChatModel,
    ChatModelAgent,
    Interrupted,
    InterruptInfo,
    ModelRequest,
    Runner,
    ScriptedModel,
    ToolCall,
    tool,
)

MODEL_ID = os.environ.get("ADK_MODEL")  # e.g. "openai/gpt-4o-mini"; unset: offline

# --- tools --------------------------------------------------------------------------------

CONTACTS = {"ada": "ada@example.com", "grace": "grace@example.com", "alan": "alan@example.com"}
OUTBOX: list[dict[str, str]] = []  # what send_email really sent
CALLS: dict[str, int] = {"find_contact": 0, "send_email": 0}


@tool
def find_contact(name: str) -> str:
    """Find the email address of a colleague.

    Args:
        name: The colleague's first name, e.g. "Ada".
    """
    CALLS["find_contact"] += 1
    address = CONTACTS.get(name.strip().lower())
    if address is None:
        raise ValueError(f"no colleague named {name!r}; known: {', '.join(CONTACTS)}")
    return address


@tool(requires_approval=True)  # the run pauses before every call, until a person decides
def send_email(to: str, subject: str, body: str) -> str:
    """Send an email.

    Args:
        to: The recipient's email address.
        subject: The subject line.
        body: The text of the email.
    """
    CALLS["send_email"] += 1
    OUTBOX.append({"to": to, "subject": subject, "body": body})
    return f"sent to {to}"


# --- the offline model -----------------------------------------------------------------------

_ASK = re.compile(r"\b(?:e-?mail|write to|tell)\s+(\w+)\s+(?:that|about)\s+(.+)", re.I)


def offline_model(request: ModelRequest) -> str | ToolCall:
    """Plays the LLM from the messages of the current turn (after the last user message)."""
    messages = request.messages
    start = max(i for i, m in enumerate(messages) if m.role == "user")
    asked, turn = messages[start].content, messages[start + 1 :]
    wanted = _ASK.search(asked)
    if wanted is None:
        if re.search(r"\bthank", asked, re.I):
            return "You're welcome!"
        return 'I can email your colleagues for you. Try: "Email Ada that the demo moved to 3pm".'
    name, news = wanted.group(1).capitalize(), wanted.group(2).strip().rstrip(".!")
    results = [m for m in turn if m.role == "tool"]
    if not results:
        return ToolCall.of("find_contact", name=name)
    last = results[-1]
    if last.name == "find_contact" and last.content.startswith("Error:"):
        return f"I could not find {name}: {last.content}"
    address = next(m.content for m in results if m.name == "find_contact")
    drafts = [m for m in results if m.name == "send_email"]
    if not drafts:
        body = f"Dear {name},\n\nI would like to let you know that {news}.\n\nKind regards"
        return ToolCall.of("send_email", to=address, subject="An update", body=body)
    if drafts[-1].content.startswith("The user rejected"):
        if len(drafts) >= 2:
            return "All right, I have not sent anything."
        return ToolCall.of(
            "send_email", to=address, subject="Update", body=f"Hi {name}, {news}. Thanks!"
        )
    return f"Done: the email to {address} is sent."


def choose_model() -> ChatModel | str:
    return MODEL_ID or ScriptedModel(offline_model)


assistant = ChatModelAgent(
    "assistant",
    model=choose_model(),
    instruction=(
        "You write and send short emails for the user. Look the address up with "
        "find_contact, then call send_email. If the user rejects a draft, follow their "
        "reason and propose a new one. Reply in one sentence."
    ),
    tools=[find_contact, send_email],
)

# --- talking to the person -------------------------------------------------------------------

# How a person's decision becomes an answer. Never pass raw text to resume: an answer that is
# not an approval would fail the resumed run, so unreadable input is asked for again here.
HELP = 'approve | reject <reason> | edit <json>, e.g. edit {"subject": "Hello"}'


def parse_decision(text: str, arguments: dict[str, Any]) -> Approval | None:
    """``approve`` / ``reject <reason>`` / ``edit <json>`` as an Approval (None if unreadable)."""
    word, _, rest = text.strip().partition(" ")
    word = word.lower()
    if word in ("approve", "a", "yes", "y"):
        return Approval.approve()
    if word in ("reject", "r", "no", "n"):
        return Approval.reject(rest.strip())
    if word in ("edit", "e"):
        try:
            changes = json.loads(rest)
        except json.JSONDecodeError as exc:
            print(f"  (not JSON: {exc})")
            return None
        if not isinstance(changes, dict):
            print("  (edit needs a JSON object)")
            return None
        # Edited arguments replace the model's: keep the fields the person did not change.
        return Approval.edit({**arguments, **changes})
    return None


class Terminal:
    """Reads what the person types (None at end of input)."""

    def ask(self, prompt: str) -> str | None:
        try:
            return input(prompt)
        except EOFError:
            print()
            return None


class Scripted:
    """Plays the person: a fixed list of chat messages and of decisions (then: approve)."""

    def __init__(self, messages: list[str], decisions: list[str]) -> None:
        self.messages = messages
        self.decisions = decisions

    def ask(self, prompt: str) -> str | None:
        chatting = prompt.startswith("you")
        source = self.messages if chatting else self.decisions
        answer = source.pop(0) if source else (None if chatting else "approve")
        if answer is not None:
            print(f"{prompt}{answer}")
        return answer


def show(event: AgentEvent) -> None:
    message = event.message
    if event.error is not None:
        print(f"  !! {event.error.type}: {event.error.message}")
    elif message is not None and message.role == "tool":
        print(f"     <- {message.name}: {message.content}")
    elif message is not None:
        if message.content:
            print(f"assistant: {message.content}")
        for call in message.tool_calls:
            print(f"     -> {call.name}({call.arguments})")


async def run_turn(events: AsyncIterator[AgentEvent]) -> Interrupted | None:
    """Print a turn's events; the pause, if the turn paused."""
    paused = None
    async for event in events:  # read to the end: the session is updated when the run ends
        show(event)
        action = event.action
        # Agents' own interrupt events pass by first; the Runner's last one has the checkpoint.
        if action is not None and action.interrupted and action.interrupted.checkpoint_id:
            paused = action.interrupted
    return paused


def decide(pending: InterruptInfo, ask: Callable[[str], str | None]) -> Approval | None:
    info = pending.info
    print(f"  +-- approval needed: {info['tool']}")
    for key, value in info["arguments"].items():
        shown = str(value).replace("\n", "\n  |       ")
        print(f"  | {key}: {shown}")
    print(f"  +-- {HELP}")
    while True:
        text = ask("decision> ")
        if text is None or not text.strip():
            return None
        decision = parse_decision(text, info["arguments"])
        if decision is not None:
            return decision
        print(f"  please answer {HELP}")


SESSION_ID, USER_ID = "approval-chat", "me"


async def chat(runner: Runner, person: Terminal | Scripted) -> None:
    while True:
        text = person.ask("you> ")
        if text is None or not text.strip():
            return
        # One turn of the stored session: the Runner reads the conversation so far.
        paused = await run_turn(runner.query(text, session_id=SESSION_ID, user_id=USER_ID))
        while paused is not None:  # answer every pending approval, then resume
            answers = {}
            for pending in paused.interrupts:
                decision = decide(pending, person.ask)
                if decision is None:
                    print("(left unanswered: the turn stays paused in the session; bye)")
                    return
                answers[pending.id] = decision
            assert paused.checkpoint_id is not None
            # Finishes the paused turn and appends it to the session.
            paused = await run_turn(runner.resume(paused.checkpoint_id, answers))


async def main() -> None:
    interactive = sys.stdin.isatty() and sys.stdout.isatty() and "--auto" not in sys.argv
    if interactive:
        print('Chat with the email assistant. Ask e.g. "Email Ada that the demo moved to 3pm".')
        person: Terminal | Scripted = Terminal()
    else:
        person = Scripted(
            ["Email Ada that the demo moved to 3pm", "Thanks!"],
            ["reject too formal, keep it short", 'edit {"subject": "Demo at 3pm"}'],
        )
    # Checkpoints and the session in memory; Runner(assistant, checkpoint_store="chat.db")
    # would keep both in a SQLite file, and a paused turn could be answered after a restart.
    runner = Runner(assistant)
    await chat(runner, person)
    print(f"outbox: {json.dumps(OUTBOX)}")
    if not interactive and MODEL_ID is None:
        # The second draft was sent once, with the edited subject; the first was never sent.
        assert OUTBOX == [
            {
                "to": "ada@example.com",
                "subject": "Demo at 3pm",
                "body": "Hi Ada, the demo moved to 3pm. Thanks!",
            }
        ], OUTBOX
        # find_contact ran once although the run was resumed twice after it.
        assert CALLS == {"find_contact": 1, "send_email": 1}, CALLS
        # The session has the tool traffic of both drafts and both turns' answers.
        assert runner.sessions is not None
        session = await runner.sessions.get_session(SESSION_ID)
        assert session.turns == 2 and session.paused is None
        history = [entry.message for entry in session.history]
        assert history[-1].content == "You're welcome!"
        rejected = [m for m in history if m.role == "tool" and "rejected" in m.content]
        assert rejected[0].content.endswith(": too formal, keep it short")


if __name__ == "__main__":
    anyio.run(main)
