"""Stored sessions: conversations and their values that last across runs and processes.

``Runner.query(text, session_id=..., user_id=...)`` continues a stored
conversation; :class:`SessionService` reads, lists and deletes them. See
docs/sessions.md.
"""

from adk.sessions.records import (
    SESSION_FORMAT as SESSION_FORMAT,
    PausedTurn as PausedTurn,
    SessionBusy as SessionBusy,
    SessionCorrupted as SessionCorrupted,
    SessionError as SessionError,
    SessionNotFound as SessionNotFound,
    SessionPaused as SessionPaused,
    SessionVersionError as SessionVersionError,
)
from adk.sessions.scopes import scope_of as scope_of
from adk.sessions.service import SessionService as SessionService
from adk.sessions.views import Session as Session, SessionInfo as SessionInfo

__all__ = [
    "SESSION_FORMAT",
    "PausedTurn",
    "Session",
    "SessionBusy",
    "SessionCorrupted",
    "SessionError",
    "SessionInfo",
    "SessionNotFound",
    "SessionPaused",
    "SessionService",
    "SessionVersionError",
    "scope_of",
]
