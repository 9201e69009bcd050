"""Chat session: a terminal chat whose conversation lasts across restarts, in a SQLite file.

What it shows
- ``runner.query(text, session_id=..., user_id=...)``: each message is one turn
  of a stored session. The Runner reads the conversation so far (the model is
  sent every earlier message), runs the turn, and appends it when it ends. The
  script keeps no history of its own.
- ``Runner(agent, checkpoint_store=path)``: sessions are kept in the Runner's
  checkpoint store, so one SQLite file holds them. Quit, start the script
  again with the same ``--db`` and ``--session``, and the chat goes on; another
  process (another terminal) can continue it too.
- Value scopes: the ``remember`` tool stores facts under ``user:facts``, a
  value shared by every session of the same user; ``recall`` reads it. A fact
  told in one conversation is known in the user's other conversations, while
  each conversation's messages stay its own.
- ``runner.sessions`` (a ``SessionService``): the last messages of a session
  when the chat (re)starts, the user's sessions (``/sessions``), deleting one
  (``/forget``).
- One turn at a time: two terminals typing into the same session at once get
  a ``SessionBusy`` error event for the second message (it is not run).

How to run it
    python cookbook/chat_session.py                                # chat in ./chat_session.db
    python cookbook/chat_session.py --session trip --user grace    # another conversation, user
    python cookbook/chat_session.py --db /tmp/chat.db              # another file
    python cookbook/chat_session.py --auto                         # the scripted demo below
    ADK_MODEL=openai/gpt-4o-mini python cookbook/chat_session.py   # a real model via litellm

In a terminal it asks you for messages; ``/history``, ``/sessions``,
``/switch <id>``, ``/forget`` and ``/help`` are commands; an empty line or
Ctrl-D ends the chat (the conversation stays in the file). When stdin or
stdout is not a terminal (a pipe, CI, the test suite) or with ``--auto``, a
scripted user chats in two processes over one SQLite file (in a temporary
directory unless ``--db`` is given, so nothing is left behind): this process
tells the assistant two things in session ``chat-1`` and exits; the script
then runs itself again as a new process, which continues ``chat-1`` (the
assistant recalls both messages) and opens ``chat-2``, where the assistant
still knows the user's name (a ``user:`` value). Offline, a ScriptedModel
plays the LLM; with ADK_MODEL set to a litellm model id, that model is used
instead (the provider's API key must be in the environment).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import anyio

from adk import (
    AgentEvent,
    ChatModel,
    ChatModelAgent,
    ModelRequest,
    Runner,
    ScriptedModel,
    SessionBusy,
    SessionNotFound,
    ToolCall,
    ToolContext,
    tool,
)

MODEL_ID = os.environ.get("ADK_MODEL")  # e.g. "openai/gpt-4o-mini"; unset: offline

# --- tools: a memory of the user, shared by all of their sessions --------------------------


@tool
def remember(fact: str, ctx: ToolContext) -> str:
    """Remember a fact about the user, for every conversation with them.

    Args:
        fact: The fact, in the user's words, e.g. "my name is Ada".
    """
    facts = ctx.get("user:facts", [])  # "user:": stored per user, seen by all their sessions
    if fact not in facts:
        ctx.set("user:facts", [*facts, fact])
    return f"remembered: {fact}"


@tool
def recall(ctx: ToolContext) -> str:
    """Everything the user asked you to remember, in any conversation."""
    facts = ctx.get("user:facts", [])
    return "; ".join(facts) if facts else "nothing yet"


# --- the offline model -----------------------------------------------------------------------

_REMEMBER = re.compile(r"^remember(?: that)?\s+(.+?)[.!]?$", re.I)
_ABOUT_ME = re.compile(r"\bwhat do you know about me\b", re.I)
_SO_FAR = re.compile(r"\bwhat have we (?:talked|been talking) about\b|\bwhat did i say\b", re.I)


def offline_model(request: ModelRequest) -> str | ToolCall:
    """Plays the LLM from the messages it is sent: the whole conversation, earlier turns first.

    A function of the request, not a list of answers: it answers the same in any
    process, so a chat continued by another process goes on where it was.
    """
    messages = request.messages
    last = messages[-1]
    if last.role == "tool":
        if last.name == "remember":
            fact = last.content.removeprefix("remembered: ")
            return f"Noted: I will remember that {fact}, in all our conversations."
        if last.content == "nothing yet":
            return "You have not told me anything about yourself yet."
        return f"You told me: {last.content}."
    said = [m.content for m in messages if m.role == "user"]
    wanted = _REMEMBER.match(last.content.strip())
    if wanted is not None:
        return ToolCall.of("remember", fact=wanted.group(1))
    if _ABOUT_ME.search(last.content):
        return ToolCall.of("recall")
    if _SO_FAR.search(last.content):
        earlier = said[:-1]
        if not earlier:
            return "This is the start of our conversation."
        return "So far you said: " + "; ".join(json.dumps(text) for text in earlier) + "."
    return f"I'll keep that in mind. That's message {len(said)} of this conversation."


def choose_model() -> ChatModel | str:
    return MODEL_ID or ScriptedModel(offline_model)


assistant = ChatModelAgent(
    "assistant",
    model=choose_model(),
    instruction=(
        "You are a friendly assistant with a memory. When the user tells you something "
        "about themselves worth knowing in later conversations, call remember. When you "
        "need to know about the user, call recall. Reply in one or two sentences."
    ),
    tools=[remember, recall],
)

# --- the chat ---------------------------------------------------------------------------------

HELP = "/history | /sessions | /switch <id> | /forget | /help; an empty line quits"


class Terminal:
    """Reads what the person types (None at end of input)."""

    def ask(self, prompt: str) -> str | None:
        try:
            return input(prompt)
        except EOFError:
            print()
            return None


class Scripted:
    """Plays the person: a fixed list of lines, then the end of input."""

    def __init__(self, lines: list[str]) -> None:
        self.lines = lines

    def ask(self, prompt: str) -> str | None:
        if not self.lines:
            return None
        line = self.lines.pop(0)
        print(f"{prompt}{line}")
        return line


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


async def run_turn(events: AsyncIterator[AgentEvent]) -> None:
    async for event in events:  # read to the end: the turn is appended when its run ends
        show(event)


async def describe(runner: Runner, session_id: str, user_id: str, last: int = 4) -> None:
    """Say whether the session is new, or how far it went and its last messages."""
    assert runner.sessions is not None
    try:
        session = await runner.sessions.get_session(session_id)
    except SessionNotFound:
        print(f"(session {session_id!r} is new)")
        return
    owner = "" if session.user_id == user_id else f", which belongs to {session.user_id!r}"
    print(f"(continuing session {session_id!r}{owner}: {session.turns} turns so far)")
    said = [e for e in session.history if e.message.content and e.message.role != "tool"]
    for entry in said[-last:]:
        print(f"  | {entry.agent_name or 'you'}: {entry.message.content}")


async def command(runner: Runner, text: str, session_id: str, user_id: str) -> str:
    """Run a /command; the session the chat goes on with."""
    sessions = runner.sessions
    assert sessions is not None
    word, _, rest = text.partition(" ")
    if word == "/history":
        await describe(runner, session_id, user_id, last=10_000)
    elif word == "/sessions":
        listed = await sessions.list_sessions(user_id)  # most recently updated first
        for info in listed:
            mark = "  (this one)" if info.id == session_id else ""
            print(f"  {info.id}: {info.turns} turns{mark}")
        if not listed:
            print(f"  (no sessions of {user_id!r} yet)")
    elif word == "/switch" and rest.strip():
        session_id = rest.strip()
        await describe(runner, session_id, user_id)
    elif word == "/forget":
        try:
            await sessions.delete_session(session_id)
            print(f"(session {session_id!r} deleted; what you say next starts it anew)")
        except (SessionNotFound, SessionBusy) as exc:
            print(f"  !! {exc}")
    else:
        print(f"  {HELP}")
    return session_id


async def chat(runner: Runner, person: Terminal | Scripted, session_id: str, user_id: str) -> str:
    """Chat until the person stops; the session the chat ended in."""
    await describe(runner, session_id, user_id)
    while True:
        text = person.ask("you> ")
        if text is None or not text.strip():
            return session_id
        text = text.strip()
        if text.startswith("/"):
            session_id = await command(runner, text, session_id, user_id)
            continue
        # One turn: the Runner reads the session, runs, and appends the turn when it ends.
        await run_turn(runner.query(text, session_id=session_id, user_id=user_id))


# --- the scripted demo: two processes, one file ----------------------------------------------

FIRST_PROCESS = ["Remember that my name is Ada", "I am planning a trip to Lisbon in May"]
SECOND_PROCESS = [
    "What have we talked about?",  # chat-1 goes on: the history came from the file
    "/switch chat-2",
    "What have we talked about?",  # a new conversation: no history
    "What do you know about me?",  # but the user's values are shared: the name is known
    "/sessions",
]


async def first_process(db: Path, user_id: str) -> None:
    runner = Runner(assistant, checkpoint_store=db)
    await chat(runner, Scripted(list(FIRST_PROCESS)), "chat-1", user_id)
    await runner.close()


async def second_process(db: Path, user_id: str) -> None:
    print(f"--- process {os.getpid()}: a new process, a new Runner, the same file ---")
    runner = Runner(assistant, checkpoint_store=db)
    await chat(runner, Scripted(list(SECOND_PROCESS)), "chat-1", user_id)
    sessions = runner.sessions
    assert sessions is not None
    chat1 = await sessions.get_session("chat-1")
    chat2 = await sessions.get_session("chat-2")
    await runner.close()
    if MODEL_ID is None:
        # chat-1 holds both processes' turns, in order; the model saw the first ones.
        users = [e.message.content for e in chat1.history if e.agent_name is None]
        assert users == [*FIRST_PROCESS, "What have we talked about?"], users
        assert chat1.history[-1].message.content == (
            'So far you said: "Remember that my name is Ada"; '
            '"I am planning a trip to Lisbon in May".'
        )
        # chat-2 has its own history, and the user's facts from chat-1.
        assert chat2.turns == 2 and chat2.values == {}
        assert chat2.user_values == {"user:facts": ["my name is Ada"]}
        assert chat2.history[-1].message.content == "You told me: my name is Ada."


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", help="the SQLite file (default: ./chat_session.db in a terminal)")
    parser.add_argument("--session", default="chat-1", help="the conversation's id")
    parser.add_argument("--user", default="ada", help="who is chatting (owns the session)")
    parser.add_argument("--auto", action="store_true", help="run the scripted demo")
    parser.add_argument("--second", action="store_true", help=argparse.SUPPRESS)  # the demo's child
    return parser.parse_args()


async def main() -> None:
    args = parse_args()
    interactive = sys.stdin.isatty() and sys.stdout.isatty() and not args.auto
    if interactive:
        db = Path(args.db or "chat_session.db")
        print(f"Chatting in {db} as {args.user!r}. {HELP}.")
        runner = Runner(assistant, checkpoint_store=db)  # runs and sessions in one file
        session_id = await chat(runner, Terminal(), args.session, args.user)
        await runner.close()
        again = f"--db {args.db} --session {session_id}" if args.db else f"--session {session_id}"
        print(f"(the conversation is kept: run me again with {again} to go on)")
        return
    if args.second:
        await second_process(Path(args.db), args.user)
        return
    with tempfile.TemporaryDirectory() as folder:
        db = Path(args.db) if args.db else Path(folder) / "chat_session.db"
        print(f"--- process {os.getpid()}: chatting in {db.name} ---")
        await first_process(db, args.user)
        print("--- this process stops chatting; the script runs itself again ---", flush=True)
        child = [sys.executable, __file__, "--auto", "--second", "--db", str(db)]
        # Its output goes where ours goes; a failure (check=True) fails this process too.
        await anyio.run_process([*child, "--user", args.user], input=b"", stdout=None, stderr=None)


if __name__ == "__main__":
    anyio.run(main)
