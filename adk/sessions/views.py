"""What :class:`~adk.sessions.service.SessionService` returns: a session, a listing entry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adk.events import AgentEvent, HistoryEntry
from adk.sessions.records import PausedTurn


@dataclass(frozen=True)
class SessionInfo:
    """One session as :meth:`SessionService.list_sessions` lists it."""

    id: str
    user_id: str
    created: float
    updated: float
    turns: int
    paused: bool


@dataclass(frozen=True)
class Session:
    """A stored conversation, as :meth:`SessionService.get_session` returns it.

    - ``history``: every message, oldest first, with the agent that wrote it
      (``agent_name`` None for the user's messages);
    - ``values``: the session-scoped values; ``user_values``, ``app_values``:
      the values shared with the user's other sessions and the whole app;
    - ``created``, ``updated``: UNIX times; ``turns``: completed turns;
    - ``paused``: the turn waiting at interrupts, if any; ``agent``: the
      agent holding the conversation, when the Runner keeps it;
    - ``events``: the events the service was asked to keep (``keep_events``).
    """

    id: str
    app: str
    user_id: str
    created: float
    updated: float
    turns: int
    history: list[HistoryEntry]
    values: dict[str, Any]
    user_values: dict[str, Any]
    app_values: dict[str, Any]
    paused: PausedTurn | None
    agent: str | None
    events: list[AgentEvent] = field(default_factory=list)
