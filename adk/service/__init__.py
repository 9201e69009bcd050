"""adk as a service: agents over HTTP, runs as durable jobs, tenants kept apart.

``Service`` holds the agents, the store, the API keys and the queue;
``create_app(service)`` is the ASGI app (FastAPI: install the ``server``
extra); ``adk serve module:app`` runs it. ``RunJob``, ``RunQueue``,
``EmbeddedQueue`` and ``execute_job`` are the seam with ``adk worker``
processes (``Worker``, taking jobs from a ``RedisQueue``). docs/service.md is the guide.

FastAPI is imported only by ``create_app``: a worker needs none of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from adk.service.app import create_app as create_app
    from adk.service.eventlog import EventLog as EventLog
    from adk.service.execution import execute_job as execute_job
    from adk.service.jobs import (
        EmbeddedQueue as EmbeddedQueue,
        RunJob as RunJob,
        RunQueue as RunQueue,
    )
    from adk.service.redis_queue import RedisQueue as RedisQueue, RunRetry as RunRetry
    from adk.service.service import Service as Service
    from adk.service.worker import Worker as Worker

_EXPORTS = {
    "Service": "adk.service.service",
    "create_app": "adk.service.app",
    "EventLog": "adk.service.eventlog",
    "execute_job": "adk.service.execution",
    "EmbeddedQueue": "adk.service.jobs",
    "RunJob": "adk.service.jobs",
    "RunQueue": "adk.service.jobs",
    "RedisQueue": "adk.service.redis_queue",
    "RunRetry": "adk.service.redis_queue",
    "Worker": "adk.service.worker",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'adk.service' has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)
