"""The request and response bodies of the HTTP API (pydantic: they make the OpenAPI schema).

Every model forbids unknown fields, so a typo in a request is a 422 that
names it rather than a setting silently ignored.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

ID_REGEX = r"^[A-Za-z0-9_.:-]{1,128}$"
RunStatus = Literal[
    "queued", "running", "paused", "interrupted", "completed", "failed", "cancelled"
]
SignalKind = Literal["cancel", "pause", "resume", "feedback", "approve", "reject", "retry"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(BaseModel):
    """What went wrong: a stable ``type`` to branch on, and a message for people."""

    type: str
    message: str


class ErrorBody(BaseModel):
    """The body of every 4xx and 5xx response."""

    error: ErrorDetail


class InputMessage(_Strict):
    """One message of a run's input (oldest first)."""

    role: Literal["user", "assistant", "system"]
    content: str = Field(max_length=1_000_000)


class RunOptions(_Strict):
    """How to run: the user the session belongs to, options per agent (``{agent: {...}}``)."""

    user_id: str | None = Field(default=None, max_length=128)
    agent_options: dict[str, dict[str, Any]] | None = None


class CreateRun(_Strict):
    """POST /runs: the agent (a name the service serves), the input, an optional session."""

    agent: str = Field(min_length=1, max_length=64)
    input: str | list[InputMessage] = Field(
        description="The user's message, or messages oldest first", min_length=1
    )
    session_id: str | None = Field(default=None, pattern=ID_REGEX)
    options: RunOptions = Field(default_factory=RunOptions)


class InterruptView(BaseModel):
    """A pending interrupt: its id (the key to answer it by), where it is, what it asks."""

    id: str
    address: list[str] = []
    info: Any = None


class RunView(BaseModel):
    """A run as the API reports it."""

    id: str
    agent: str
    session_id: str | None
    status: RunStatus
    created: float
    updated: float
    error: ErrorDetail | None = None
    checkpoint_id: str | None = None
    interrupts: list[InterruptView] = []
    text: str = Field("", description="The last message's text")
    output: Any = Field(None, description="The structured output, else the text")


class RunList(BaseModel):
    """A page of runs, newest first; ``next_cursor`` fetches the next page (null: the last)."""

    runs: list[RunView]
    next_cursor: str | None


class Answers(_Strict):
    """POST /runs/{id}/answers: ``{interrupt id: answer}`` (approvals take
    ``{"approved": bool, "message": str}``)."""

    answers: dict[str, Any] = Field(min_length=1)


class SignalRequest(_Strict):
    """POST /runs/{id}/signals: a signal and what it carries.

    ``feedback`` needs ``text``; ``approve`` and ``reject`` need
    ``interrupt_id`` (``reject`` may give a ``reason``).
    """

    kind: SignalKind
    text: str | None = Field(default=None, max_length=64_000)
    interrupt_id: str | None = Field(default=None, max_length=256)
    reason: str | None = Field(default=None, max_length=64_000)


class SessionInfoView(BaseModel):
    """A session in a listing."""

    id: str
    user_id: str
    created: float
    updated: float
    turns: int
    paused: bool


class SessionList(BaseModel):
    """The sessions of one user, most recently updated first."""

    sessions: list[SessionInfoView]


class HistoryItem(BaseModel):
    """One message of a session and the agent that wrote it (null: the user)."""

    agent_name: str | None
    message: dict[str, Any]


class SessionView(SessionInfoView):
    """A session: its history and values."""

    agent: str | None
    history: list[HistoryItem]
    values: dict[str, Any]


class Health(BaseModel):
    """GET /health."""

    status: Literal["ok"]
