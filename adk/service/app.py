"""create_app: the ASGI application (FastAPI) that serves a :class:`Service` over HTTP.

The app publishes its OpenAPI schema at ``/openapi.json``. Every error is a
JSON body ``{"error": {"type": ..., "message": ...}}`` with a 4xx status
(401 no key, 404 unknown id or route, 409 wrong state, 413 body too large,
422 bad body); a 500 means a bug, and says nothing about it to the client.
While the app runs (its lifespan), the embedded queue executes runs in a
task group, and runs left unfinished by a previous process are resumed.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from typing import Any

import anyio
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse
from pydantic_core import to_jsonable_python
from starlette.exceptions import HTTPException

from adk import __version__
from adk.service import metrics
from adk.service.errors import ServiceError, error_body
from adk.service.inspector import router as inspector_router
from adk.service.models import Health
from adk.service.routes_runs import router as runs_router
from adk.service.routes_sessions import router as sessions_router
from adk.service.service import Service
from adk.state.stores.base import StoreUnavailable

logger = logging.getLogger("adk.service")
Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


def create_app(service: Service) -> FastAPI:
    """The FastAPI app serving ``service`` (run it with ``adk serve module:app`` or uvicorn)."""
    if not isinstance(service, Service):
        from adk.errors import ArgumentTypeError

        raise ArgumentTypeError(f"create_app needs a Service, got {type(service).__name__}")

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with anyio.create_task_group() as group:
            await service.start(group)
            try:
                yield
            finally:
                group.cancel_scope.cancel()
        await service.close()

    app = FastAPI(
        title="adk service",
        version=__version__,
        description="Runs of adk agents over HTTP: events as SSE, idempotent commands, tenants.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.include_router(runs_router)
    app.include_router(sessions_router)
    app.include_router(inspector_router)  # the web inspector: GET /inspector
    _add_basic_routes(app, service)
    _add_error_handlers(app)
    app.add_middleware(BodyLimit, limit=service.max_input_bytes)
    return app


def _add_basic_routes(app: FastAPI, service: Service) -> None:
    @app.get("/health", response_model=Health, tags=["operations"])
    async def health() -> dict[str, str]:
        """The server is up."""
        return {"status": "ok"}

    @app.get("/metrics", response_class=PlainTextResponse, tags=["operations"])
    async def prometheus() -> PlainTextResponse:
        """Prometheus metrics: runs by status, queue depth, serving-layer figures."""
        text = await metrics.render(service)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")


def _add_error_handlers(app: FastAPI) -> None:
    async def service_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ServiceError)
        return JSONResponse(exc.body(), status_code=exc.status)

    async def invalid(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors = to_jsonable_python(exc.errors(), fallback=str)
        first = errors[0] if errors else {}
        where = ".".join(str(part) for part in first.get("loc", ()))
        message = f"{where}: {first.get('msg', 'invalid request')}" if where else "invalid request"
        body = error_body("ValidationError", message, details=errors)
        return JSONResponse(body, status_code=422)

    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        names = {404: "NotFound", 405: "MethodNotAllowed", 401: "Unauthorized"}
        body = error_body(names.get(exc.status_code, "HTTPError"), str(exc.detail))
        return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        logger.warning("store unavailable: %s", exc)
        body = error_body("StoreUnavailable", "the store is unavailable; try again later")
        return JSONResponse(body, status_code=503, headers={"Retry-After": "1"})

    async def internal(request: Request, exc: Exception) -> JSONResponse:
        logger.exception("internal error on %s %s", request.method, request.url.path)
        return JSONResponse(error_body("InternalError", "internal error"), status_code=500)

    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(StoreUnavailable, unavailable)
    app.add_exception_handler(Exception, internal)


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is a 413 before the app sees it."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.limit:
            await self._refuse(send)
            return
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                await self.app(scope, receive, send)  # a disconnect: the app sees it
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.limit:
                await self._refuse(send)
                return
            chunks.append(chunk)
            more = bool(message.get("more_body"))
        body, replayed = b"".join(chunks), False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _refuse(self, send: Send) -> None:
        response = JSONResponse(
            error_body("PayloadTooLarge", f"the request body is over {self.limit} bytes"),
            status_code=413,
        )
        await response({"type": "http"}, _nothing, send)


async def _nothing() -> Message:
    return {"type": "http.disconnect"}
