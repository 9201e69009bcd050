"""Workspaces: one shared store, seen by each tenant as a store of its own.

Every record a workspace's runs, sessions, signals and event logs write goes
through a :class:`WorkspaceStore`, which prefixes each namespace (and each
notification channel) with ``ws:<workspace>/``. A run id from another
workspace therefore names nothing here: every lookup misses, and the API
answers 404 exactly as for an id that never existed. Isolation holds by
construction, not by checks scattered over the endpoints.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager

from adk.errors import ArgumentTypeError, ConfigurationError
from adk.state.stores.base import CheckpointStore, Subscription

WORKSPACE_PREFIX = "ws:"
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")


def check_workspace(name: object) -> str:
    """``name`` if it can name a workspace (letters, digits, ``_.-``; 1-64), else an error."""
    if not isinstance(name, str):
        raise ArgumentTypeError(f"a workspace name must be a str, got {type(name).__name__}")
    if not _NAME.match(name):
        raise ConfigurationError(
            f"workspace name {name!r} must be 1-64 letters, digits, '_', '.' or '-'"
        )
    return name


def workspace_prefix(workspace: str) -> str:
    """The namespace prefix of ``workspace``'s records in the shared store."""
    return f"{WORKSPACE_PREFIX}{workspace}/"


class WorkspaceStore:
    """``inner`` restricted to one workspace (every namespace prefixed; see the module docstring).

    ``close`` does nothing: the shared store is closed by its owner, the service.
    Notifications (Redis pub/sub, PostgreSQL NOTIFY) pass through when the
    inner store has them, on prefixed channels.
    """

    def __init__(self, inner: CheckpointStore, workspace: str) -> None:
        self.inner = inner
        self.workspace = check_workspace(workspace)
        self.prefix = workspace_prefix(workspace)
        if hasattr(inner, "notify") and hasattr(inner, "subscribe"):
            self.notify = self._notify
            self.subscribe = self._subscribe

    def __repr__(self) -> str:
        return f"WorkspaceStore({self.inner!r}, {self.workspace!r})"

    async def get(self, namespace: str, name: str) -> bytes | None:
        """The record, from the workspace's namespace."""
        return await self.inner.get(self.prefix + namespace, name)

    async def put(
        self, namespace: str, name: str, data: bytes, *, ttl: float | None = None
    ) -> None:
        """Write a record in the workspace's namespace."""
        await self.inner.put(self.prefix + namespace, name, data, ttl=ttl)

    async def put_many(
        self, namespace: str, items: Sequence[tuple[str, bytes]], *, ttl: float | None = None
    ) -> None:
        """Write records together in the workspace's namespace."""
        await self.inner.put_many(self.prefix + namespace, items, ttl=ttl)

    async def put_if_absent(
        self, namespace: str, name: str, data: bytes, *, ttl: float | None = None
    ) -> bool:
        """Write a record only if absent (atomic, as the inner store is)."""
        return await self.inner.put_if_absent(self.prefix + namespace, name, data, ttl=ttl)

    async def scan(self, namespace: str, prefix: str = "") -> list[tuple[str, bytes]]:
        """The namespace's records whose names start with ``prefix``."""
        return await self.inner.scan(self.prefix + namespace, prefix)

    async def delete(self, namespace: str, name: str | None = None) -> None:
        """Delete a record or the whole namespace."""
        await self.inner.delete(self.prefix + namespace, name)

    async def namespaces(self, prefix: str = "") -> list[str]:
        """The workspace's namespaces starting with ``prefix`` (without the workspace prefix)."""
        found = await self.inner.namespaces(self.prefix + prefix)
        return [name[len(self.prefix) :] for name in found]

    async def close(self) -> None:
        """Nothing: the shared store belongs to the service."""

    async def _notify(self, channel: str, message: str) -> None:
        await self.inner.notify(self.prefix + channel, message)  # type: ignore[attr-defined]

    @asynccontextmanager
    async def _subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        async with self.inner.subscribe(self.prefix + channel) as subscription:  # type: ignore[attr-defined]
            yield subscription


async def stored_workspaces(store: CheckpointStore) -> list[str]:
    """Every workspace that has records in the shared ``store`` (for recovery and metrics)."""
    names: set[str] = set()
    for namespace in await store.namespaces(WORKSPACE_PREFIX):
        workspace = namespace[len(WORKSPACE_PREFIX) :].split("/", 1)[0]
        if _NAME.match(workspace):
            names.add(workspace)
    return sorted(names)
