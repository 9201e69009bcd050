"""The run commands and queries behind the HTTP endpoints, free of HTTP.

Each takes the service, the caller's workspace and plain values, and
raises a :class:`~adk.service.errors.ServiceError` for a request it refuses.
A run id the workspace does not hold is :class:`NotFound`, whoever holds it.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import TYPE_CHECKING, Any

from adk.service.errors import Conflict, NotFound, Unprocessable
from adk.service.eventlog import EventLog
from adk.service.jobs import RunJob
from adk.service.records import RunRecords, RunState, indexed_runs, new_run_id, valid_id
from adk.state import signals

if TYPE_CHECKING:
    from adk.service.service import Service

IDEMPOTENCY = "idempotency"
MAX_KEY_LENGTH = 255


def body_hash(agent: str, input: Any, session_id: str | None, options: dict[str, Any]) -> str:
    """The digest that tells two requests with one idempotency key apart."""
    body = {"agent": agent, "input": input, "session_id": session_id, "options": options}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def create_run(
    service: Service,
    workspace: str,
    agent: str,
    input: str | list[dict[str, Any]],
    session_id: str | None,
    options: dict[str, Any],
    idempotency_key: str | None,
) -> tuple[str, bool]:
    """Record a new run and submit it; ``(run id, created)``.

    With an idempotency key already used for the same body: the run it made
    (``created`` False). Used for another body: :class:`Conflict`.
    """
    if agent not in service.agents:
        known = ", ".join(sorted(service.agents))
        raise Unprocessable(f"unknown agent {agent!r}; agents: {known}", type="UnknownAgent")
    if session_id is not None and not valid_id(session_id):
        raise Unprocessable(
            "session_id must be 1-128 letters, digits, '_', '.', ':' or '-'",
            type="InvalidSessionId",
        )
    store = service.store_of(workspace)
    digest = body_hash(agent, input, session_id, options)
    run_id = new_run_id()
    if idempotency_key is not None:
        if not 1 <= len(idempotency_key) <= MAX_KEY_LENGTH:
            raise Unprocessable(
                f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} characters",
                type="InvalidIdempotencyKey",
            )
        name = hashlib.sha256(idempotency_key.encode("utf-8", "surrogateescape")).hexdigest()
        claim = json.dumps({"run_id": run_id, "body": digest}).encode()
        if not await store.put_if_absent(IDEMPOTENCY, name, claim):
            raw = json.loads(await store.get(IDEMPOTENCY, name) or b"{}")
            if raw.get("body") != digest:
                raise Conflict(
                    "this Idempotency-Key was used for a request with another body",
                    type="IdempotencyConflict",
                )
            run_id = str(raw["run_id"])
            if await RunRecords(store, run_id).request() is not None:
                return run_id, False
            # The first request stopped between its claim and its records: finish it here.
    request = {
        "agent": agent,
        "input": input,
        "session_id": session_id,
        "options": options,
    }
    records = RunRecords(store, run_id)
    now = time.time()
    if not await records.create(request, now):
        return run_id, False
    await EventLog(store, run_id).append_status("queued", segment=1)
    await service.queue.submit(RunJob(run_id, workspace, agent, input, session_id, dict(options)))
    return run_id, True


async def run_view(service: Service, workspace: str, run_id: str) -> dict[str, Any]:
    """What GET /runs/{id} answers (:class:`NotFound` if the workspace has no such run)."""
    found = await _records(service, workspace, run_id).both() if valid_id(run_id) else None
    if found is None:
        raise NotFound(f"no run {run_id!r}", type="RunNotFound")
    request, state = found
    return _view(run_id, request, state)


def _view(run_id: str, request: dict[str, Any], state: RunState) -> dict[str, Any]:
    return {
        "id": run_id,
        "agent": request["agent"],
        "session_id": request.get("session_id"),
        "status": state.status,
        "created": state.created,
        "updated": state.updated,
        "error": state.error,
        "checkpoint_id": state.checkpoint_id,
        "interrupts": state.interrupts,
        "text": state.text,
        "output": state.output,
    }


async def list_runs(
    service: Service,
    workspace: str,
    status: str | None,
    agent: str | None,
    cursor: str | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of the workspace's runs, newest first; ``(views, next cursor or None)``.

    The cursor is the id of the last run of the previous page.
    """
    store = service.store_of(workspace)
    views: list[dict[str, Any]] = []
    candidates = [
        run_id
        for run_id, entry in reversed(await indexed_runs(store))
        if (cursor is None or run_id < cursor) and (agent is None or entry.get("agent") == agent)
    ]
    for run_id in candidates:
        found = await RunRecords(store, run_id).both()
        if found is None or (status is not None and found[1].status != status):
            continue
        if len(views) == limit:
            return views, views[-1]["id"]
        views.append(_view(run_id, *found))
    return views, None


def _records(service: Service, workspace: str, run_id: str) -> RunRecords:
    return RunRecords(service.store_of(workspace), run_id)


async def _existing(
    service: Service, workspace: str, run_id: str
) -> tuple[dict[str, Any], RunState]:
    found = await _records(service, workspace, run_id).both() if valid_id(run_id) else None
    if found is None:
        raise NotFound(f"no run {run_id!r}", type="RunNotFound")
    return found


async def answer(
    service: Service, workspace: str, run_id: str, answers: dict[str, Any]
) -> dict[str, Any]:
    """Answer interrupts of an interrupted run; the run continues (a job is submitted)."""
    request, state = await _existing(service, workspace, run_id)
    if state.status != "interrupted":
        raise Conflict(
            f"run {run_id!r} is {state.status}: only an interrupted run takes answers",
            type="RunNotInterrupted",
        )
    pending = {i.get("id") for i in state.interrupts}
    unknown = sorted(set(answers) - pending)
    if unknown or not answers:
        raise Unprocessable(
            f"no pending interrupt {', '.join(map(repr, unknown)) or '(none given)'}; "
            f"pending: {', '.join(sorted(map(str, pending)))}",
            type="UnknownInterrupt",
        )
    return await _continue(
        service, workspace, run_id, request, state, {"resume": {"answers": answers}}
    )


async def _continue(
    service: Service,
    workspace: str,
    run_id: str,
    request: dict[str, Any],
    state: RunState,
    extra: dict[str, Any],
) -> dict[str, Any]:
    """Queue the run's next segment (once: a second continuation of this stop is a Conflict)."""
    records = _records(service, workspace, run_id)
    if not await records.claim(f"next:{state.segment}", options=extra):
        raise Conflict(f"run {run_id!r} was already continued", type="AlreadyContinued")
    state.status, state.segment = "queued", state.segment + 1
    await records.write_state(state)
    await EventLog(records.store, run_id).append_status("queued", segment=state.segment)
    options = {**request.get("options", {}), **extra}
    job = RunJob(
        run_id, workspace, request["agent"], request["input"], request.get("session_id"), options
    )
    await service.queue.submit(job)
    return _view(run_id, request, state)


_APPLIES = {
    "cancel": ("queued", "running", "paused", "interrupted"),
    "pause": ("running",),
    "resume": ("paused",),
    "feedback": ("running", "paused"),
    "approve": ("interrupted",),
    "reject": ("interrupted",),
    "retry": ("failed",),
}


async def signal(
    service: Service, workspace: str, run_id: str, kind: str, payload: dict[str, Any]
) -> dict[str, Any]:
    """Send signal ``kind`` to a run; the run's view after it was accepted.

    Cancel, pause and feedback to a running run go through the run's signal
    log (its executor applies them, wherever it is); the others change the
    stored run here: resume, approve, reject and retry queue its next
    segment, a cancel of a run that is not executing ends it at once.
    """
    request, state = await _existing(service, workspace, run_id)
    if state.status not in _APPLIES[kind]:
        where = " or ".join(_APPLIES[kind])
        raise Conflict(
            f"run {run_id!r} is {state.status}: {kind} applies only to a run that is {where}",
            type="SignalNotApplicable",
        )
    if kind in ("approve", "reject"):
        interrupt_id = payload.get("interrupt_id")
        if not interrupt_id:
            raise Unprocessable(f"{kind} needs an interrupt_id", type="UnknownInterrupt")
        decision = {"approved": kind == "approve", "message": payload.get("reason") or ""}
        return await answer(service, workspace, run_id, {interrupt_id: decision})
    if kind == "resume":
        return await _continue(service, workspace, run_id, request, state, {"resume": {}})
    if kind == "retry":
        return await _continue(service, workspace, run_id, request, state, {"retry": True})
    if kind == "feedback" and not isinstance(payload.get("text"), str):
        raise Unprocessable("feedback needs a 'text' string", type="ValidationError")
    store = service.store_of(workspace)
    if kind == "cancel" and state.status != "running":
        return await _cancel_stopped(service, workspace, run_id, request, state)
    clean = {"text": payload["text"]} if kind == "feedback" else {}
    await signals.send_signal(store, run_id, kind, clean)
    return _view(run_id, request, state)


async def _cancel_stopped(
    service: Service, workspace: str, run_id: str, request: dict[str, Any], state: RunState
) -> dict[str, Any]:
    """Cancel a run no executor is running: queued (before it starts), paused or interrupted."""
    records = _records(service, workspace, run_id)
    claim = f"start:{state.segment}" if state.status == "queued" else f"next:{state.segment}"
    if not await records.claim(claim, cancelled=True):
        # An executor started it (or an answer continued it) first: it is running now.
        await signals.send_signal(records.store, run_id, "cancel", {})
        return _view(run_id, request, state)
    from adk.service.execution import _stop

    log = EventLog(records.store, run_id)
    error = {"type": "RunCancelled", "message": f"run {run_id!r} was cancelled by a signal"}
    await log.append("event", {"agent_name": request["agent"], "error": error})
    await _stop(records, log, state, "cancelled", None, None, None)
    state.error = error
    await records.write_state(state)
    return _view(run_id, request, state)


async def unfinished_jobs(service: Service, workspace: str) -> list[RunJob]:
    """Jobs for the workspace's runs that are queued or running (for recovery after a restart)."""
    store = service.store_of(workspace)
    jobs = []
    for run_id, _ in await indexed_runs(store):
        found = await RunRecords(store, run_id).both()
        if found is None or found[1].status not in ("queued", "running"):
            continue
        request, state = found
        if request.get("agent") not in service.agents:
            continue
        options = dict(request.get("options", {}))
        if state.segment > 1:  # a continuation: what it continues with is in its claim
            claim = await RunRecords(store, run_id).claim_of(f"next:{state.segment - 1}")
            options.update((claim or {}).get("options", {}))
        jobs.append(
            RunJob(
                run_id,
                workspace,
                request["agent"],
                request["input"],
                request.get("session_id"),
                options,
            )
        )
    return jobs
