"""The session endpoints: list a user's sessions, read one, delete one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic_core import to_jsonable_python

from adk.service.auth import service_of, workspace
from adk.service.errors import Conflict, NotFound
from adk.service.models import ErrorBody, SessionList, SessionView
from adk.service.records import valid_id

Workspace = Annotated[str, Depends(workspace)]
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 404, 409, 422)
}
router = APIRouter(tags=["sessions"], responses=_ERRORS)


@router.get("/sessions", response_model=SessionList)
async def list_sessions(
    request: Request,
    workspace: Workspace,
    user_id: Annotated[str, Query(max_length=128)] = "",
) -> dict[str, Any]:
    """The sessions of ``user_id`` (default: the anonymous user ``""``), newest first."""
    sessions = service_of(request).sessions_of(workspace)
    infos = await sessions.list_sessions(user_id)
    return {"sessions": [info.__dict__ for info in infos]}


@router.get("/sessions/{session_id}", response_model=SessionView)
async def get_session(session_id: str, request: Request, workspace: Workspace) -> dict[str, Any]:
    """A session: its history (each message with the agent that wrote it) and values."""
    from adk.sessions.records import SessionNotFound

    if not valid_id(session_id):
        raise NotFound(f"no session {session_id!r}", type="SessionNotFound")
    sessions = service_of(request).sessions_of(workspace)
    try:
        session = await sessions.get_session(session_id)
    except SessionNotFound:
        raise NotFound(f"no session {session_id!r}", type="SessionNotFound") from None
    return {
        "id": session.id,
        "user_id": session.user_id,
        "created": session.created,
        "updated": session.updated,
        "turns": session.turns,
        "paused": session.paused is not None,
        "agent": session.agent,
        "history": [
            {"agent_name": entry.agent_name, "message": entry.message.model_dump(mode="json")}
            for entry in session.history
        ],
        "values": to_jsonable_python(session.values, fallback=repr),
    }


@router.delete("/sessions/{session_id}", status_code=204, response_class=Response)
async def delete_session(session_id: str, request: Request, workspace: Workspace) -> Response:
    """Delete a session and its history (409 while one of its turns runs)."""
    from adk.sessions.records import SessionBusy, SessionNotFound

    if not valid_id(session_id):
        raise NotFound(f"no session {session_id!r}", type="SessionNotFound")
    sessions = service_of(request).sessions_of(workspace)
    try:
        await sessions.delete_session(session_id)
    except SessionNotFound:
        raise NotFound(f"no session {session_id!r}", type="SessionNotFound") from None
    except SessionBusy as exc:
        raise Conflict(str(exc), type="SessionBusy") from None
    return Response(status_code=204)
