"""The run endpoints: create, read, list, stream events (SSE), answer, signal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.responses import StreamingResponse

from adk.service import runs
from adk.service.auth import service_of, workspace
from adk.service.errors import Unprocessable
from adk.service.eventlog import EventLog, LogEntry
from adk.service.models import (
    Answers,
    CreateRun,
    ErrorBody,
    RunList,
    RunStatus,
    RunView,
    SignalRequest,
)

Workspace = Annotated[str, Depends(workspace)]
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody} for code in (401, 404, 409, 413, 422)
}
router = APIRouter(tags=["runs"], responses=_ERRORS)


@router.post("/runs", response_model=RunView, status_code=201, responses={200: {"model": RunView}})
async def create_run(
    body: CreateRun,
    request: Request,
    response: Response,
    workspace: Workspace,
    idempotency_key: Annotated[str | None, Header(alias="Idempotency-Key")] = None,
) -> dict[str, Any]:
    """Start a run. With an ``Idempotency-Key``, the same key and body give the same run
    (200 after the first 201); the same key with another body is a 409."""
    service = service_of(request)
    run_input: str | list[dict[str, Any]] = (
        body.input if isinstance(body.input, str) else [m.model_dump() for m in body.input]
    )
    options = body.options.model_dump(exclude_none=True)
    run_id, created = await runs.create_run(
        service, workspace, body.agent, run_input, body.session_id, options, idempotency_key
    )
    if not created:
        response.status_code = 200
    return await runs.run_view(service, workspace, run_id)


@router.get("/runs", response_model=RunList)
async def list_runs(
    request: Request,
    workspace: Workspace,
    status: RunStatus | None = None,
    agent: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """The workspace's runs, newest first, by status and agent; page with ``cursor``."""
    views, next_cursor = await runs.list_runs(
        service_of(request), workspace, status, agent, cursor, limit
    )
    return {"runs": views, "next_cursor": next_cursor}


@router.get("/runs/{run_id}", response_model=RunView)
async def get_run(run_id: str, request: Request, workspace: Workspace) -> dict[str, Any]:
    """A run: status, pending interrupts, error, output."""
    return await runs.run_view(service_of(request), workspace, run_id)


def _sse(entry: LogEntry | None) -> bytes:
    if entry is None:
        return b": keep-alive\n\n"
    import json

    data = json.dumps(entry.data, separators=(",", ":"))
    return f"id: {entry.seq}\nevent: {entry.kind}\ndata: {data}\n\n".encode()


@router.get(
    "/runs/{run_id}/events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
)
async def run_events(
    run_id: str,
    request: Request,
    workspace: Workspace,
    after: Annotated[int | None, Query(ge=0, le=10**12)] = None,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID", max_length=20)] = None,
) -> StreamingResponse:
    """The run's events as Server-Sent Events, from its durable log.

    ``id:`` is the entry's sequence number; ``event:`` is ``event`` (an agent
    event) or ``status`` (the run's status changed). Reconnect with
    ``Last-Event-ID`` (or ``?after=``) to go on with no gap and no duplicate.
    The stream ends when the run stops (finished, interrupted or paused).
    """
    service = service_of(request)
    await runs.run_view(service, workspace, run_id)  # 404 for a run this workspace lacks
    start = after or 0
    if last_event_id is not None:
        if not last_event_id.isdigit():
            raise Unprocessable("Last-Event-ID must be a sequence number", type="ValidationError")
        start = int(last_event_id)
    log = EventLog(service.store_of(workspace), run_id)

    async def stream() -> AsyncIterator[bytes]:
        async for entry in log.follow(start, poll=service.event_poll):
            yield _sse(entry)

    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(stream(), media_type="text/event-stream", headers=headers)


@router.post("/runs/{run_id}/answers", response_model=RunView, status_code=202)
async def answer_run(
    run_id: str, body: Answers, request: Request, workspace: Workspace
) -> dict[str, Any]:
    """Answer pending interrupts (approvals: ``{"approved": true}``); the run continues."""
    return await runs.answer(service_of(request), workspace, run_id, body.answers)


@router.post("/runs/{run_id}/signals", response_model=RunView, status_code=202)
async def signal_run(
    run_id: str, body: SignalRequest, request: Request, workspace: Workspace
) -> dict[str, Any]:
    """Cancel, pause, resume, give feedback, approve, reject or retry a run."""
    payload = body.model_dump(exclude_none=True, exclude={"kind"})
    return await runs.signal(service_of(request), workspace, run_id, body.kind, payload)
