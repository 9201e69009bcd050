"""The web inspector: a page that watches runs, served by the service itself.

People who build agents want to see one run: what it streams, which tools it
calls with which arguments, where it waits for an approval, what it costs
and which replica served each call. ``GET /inspector`` is a plain page
(``static/``: HTML, CSS and a few KB of JavaScript, no build step, nothing
fetched from elsewhere) that talks to the public API with the caller's API
key: ``GET /runs`` for the list, ``GET /runs/{id}/events`` (SSE) for the
live event tree, ``POST /runs/{id}/answers`` for approvals.

What the public API lacks, the inspector's own routes add, read-only and
scoped to the caller's workspace like every other route:

- ``GET /inspector/api/runs``: ``GET /runs`` plus each run's serving summary
  (calls, tokens, cached tokens, cost), for the list's cost column;
- ``GET /inspector/api/runs/{id}/calls``: the run's model calls as the
  serving layer measured them (:class:`~adk.CallMetrics`: replica, queue
  wait, TTFT, cached tokens, cost);
- ``GET /inspector/api/agents``: the agents the service serves (the page's
  "new run" form).

Serving metrics live in the memory of the process that executed the calls
(:meth:`~adk.ServingLayer.run_stats`): with the embedded queue that is the
server; runs executed by ``adk worker`` processes show no calls here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from importlib import resources
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Request
from fastapi.responses import HTMLResponse, Response

from adk.agents.base import Agent
from adk.service import runs
from adk.service.auth import service_of, workspace
from adk.service.errors import NotFound
from adk.service.models import ErrorBody, RunStatus

if TYPE_CHECKING:
    from adk.service.service import Service
    from adk.serving.layer import ServingLayer
    from adk.serving.metrics import CallMetrics

Workspace = Annotated[str, Depends(workspace)]
STATIC_FILES = {
    "inspector.js": "text/javascript; charset=utf-8",
    "inspector.css": "text/css; charset=utf-8",
}
"""The files ``/inspector/static/`` serves (nothing else from the package is reachable)."""
_ERRORS: dict[int | str, dict[str, Any]] = {code: {"model": ErrorBody} for code in (401, 404, 422)}
router = APIRouter(tags=["inspector"], responses=_ERRORS)


def _static(name: str) -> bytes:
    return resources.files("adk.service").joinpath("static", name).read_bytes()


@router.get("/inspector", response_class=HTMLResponse, include_in_schema=False)
async def inspector_page() -> HTMLResponse:
    """The inspector's page (it asks for an API key itself when the service needs one)."""
    headers = {"Cache-Control": "no-cache", "Content-Security-Policy": _CSP}
    return HTMLResponse(_static("index.html"), headers=headers)


_CSP = "default-src 'self'; style-src 'self'; script-src 'self'; img-src 'self' data:"


@router.get("/inspector/static/{name}", include_in_schema=False)
async def inspector_static(name: str) -> Response:
    """The page's script and style sheet."""
    media_type = STATIC_FILES.get(name)
    if media_type is None:
        raise NotFound(f"no inspector file {name!r}")
    return Response(_static(name), media_type=media_type, headers={"Cache-Control": "no-cache"})


def serving_layers(service: Service) -> list[ServingLayer]:
    """The distinct serving layers of the runners this process made (shared ones once)."""
    layers: dict[int, ServingLayer] = {}
    for runner in service.runners():
        layers.setdefault(id(runner.serving), runner.serving)
    return list(layers.values())


def run_calls(service: Service, run_id: str) -> list[CallMetrics]:
    """The model calls of ``run_id`` the serving layers of this process measured."""
    calls: list[CallMetrics] = []
    for layer in serving_layers(service):
        calls.extend(layer.run_stats(run_id).calls)
    return calls


def call_view(metrics: CallMetrics) -> dict[str, Any]:
    """One call as JSON (every :class:`~adk.CallMetrics` field, plus ``prefill_tokens``)."""
    view = asdict(metrics)
    view["flushed"] = list(metrics.flushed)
    view["prefill_tokens"] = metrics.prefill_tokens
    return view


def calls_summary(calls: list[CallMetrics]) -> dict[str, Any]:
    """What a run's calls add up to: calls, tokens, cached tokens, cost (None if unpriced)."""
    priced = [c.cost for c in calls if c.cost is not None]
    return {
        "calls": len(calls),
        "prompt_tokens": sum(c.prompt_tokens for c in calls),
        "cached_tokens": sum(c.cached_tokens for c in calls),
        "completion_tokens": sum(c.completion_tokens for c in calls),
        "cost": sum(priced) if priced else None,
    }


@router.get("/inspector/api/runs")
async def inspector_runs(
    request: Request,
    workspace: Workspace,
    status: RunStatus | None = None,
    agent: Annotated[str | None, Query(max_length=64)] = None,
    cursor: Annotated[str | None, Query(max_length=128)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> dict[str, Any]:
    """``GET /runs`` (same filters and cursor), each run with its ``serving`` summary."""
    service = service_of(request)
    views, next_cursor = await runs.list_runs(service, workspace, status, agent, cursor, limit)
    listed = [{**view, "serving": calls_summary(run_calls(service, view["id"]))} for view in views]
    return {"runs": listed, "next_cursor": next_cursor}


@router.get("/inspector/api/runs/{run_id}/calls")
async def inspector_calls(run_id: str, request: Request, workspace: Workspace) -> dict[str, Any]:
    """The run's model calls as served (replica, queue wait, TTFT, cached tokens, cost)."""
    service = service_of(request)
    await runs.run_view(service, workspace, run_id)  # 404 for a run this workspace lacks
    calls = run_calls(service, run_id)
    return {"calls": [call_view(c) for c in calls], "summary": calls_summary(calls)}


@router.get("/inspector/api/agents")
async def inspector_agents(request: Request, workspace: Workspace) -> dict[str, list[str]]:
    """The names of the agents the service serves (what ``POST /runs`` accepts)."""
    if getattr(request.app.state, "browse_only", False):
        return {"agents": []}
    return {"agents": sorted(service_of(request).agents)}


BROWSE_ONLY = "browse-only"
"""The agent name of an ``adk web`` started without agents (its runs cannot execute)."""


def _no_agent() -> Any:
    from adk.errors import ConfigurationError

    raise ConfigurationError(
        "adk web was started without agents: it shows the store's runs but cannot run one "
        "(start it as `adk web module:agent --store PATH` to run and answer)"
    )


def web_app(store: str, agents: Sequence[Agent] | None = None) -> FastAPI:
    """The app ``adk web`` serves: the service and its inspector over a local store, no API keys.

    ``agents`` (agent objects, served by their names) let the page start runs and
    answer their approvals; without them the page only shows what the store holds.
    """
    from adk.errors import ArgumentTypeError
    from adk.service.app import create_app
    from adk.service.service import Service

    served: dict[str, Agent] = {}
    for agent in agents or []:
        if not isinstance(agent, Agent):
            raise ArgumentTypeError(f"web_app agents must be agents, got {agent!r}")
        served[agent.name] = agent
    browse_only = not served
    service = Service(served or {BROWSE_ONLY: _no_agent}, store=store)
    app = create_app(service)
    app.state.browse_only = browse_only
    return app
