"""Service: the agents a deployment serves, its store, its tenants, and how runs execute.

One object holds everything the HTTP layer (:func:`adk.service.create_app`)
and the executors (:func:`adk.service.execution.execute_job`, in the server
or in ``adk worker`` processes) share: the agents by name, the checkpoint
store, the API keys and their workspaces, the Runner settings, and the queue
runs go through. Nothing here imports FastAPI: a worker process builds the
same Service and never serves HTTP.
"""

from __future__ import annotations

import hmac
import inspect
import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio.abc

from adk.agents.base import Agent
from adk.errors import ArgumentTypeError, ConfigurationError
from adk.runner.runner import Runner
from adk.service.jobs import EmbeddedQueue, RunQueue
from adk.service.tenancy import WorkspaceStore, check_workspace, stored_workspaces
from adk.state.stores import CheckpointStore, open_store

if TYPE_CHECKING:
    from adk.sessions.service import SessionService

logger = logging.getLogger("adk.service")

DEFAULT_WORKSPACE = "default"
"""The one workspace of a service without API keys (dev mode)."""
DEFAULT_MAX_INPUT_BYTES = 1024 * 1024
_RESERVED = frozenset({"checkpoint_store", "durability", "sessions", "agent"})
AgentSource = Agent | Callable[[], Agent]


def open_service_store(store: CheckpointStore | str | Path | None) -> CheckpointStore:
    """A store from a URL, a SQLite path, a store object, or None (in memory: dev only).

    URLs: ``sqlite:///relative/path``, ``sqlite:////absolute/path``,
    ``redis://...``, ``postgresql://...``, ``memory://``.
    """
    if isinstance(store, str):
        scheme = store.split("://", 1)[0].lower() if "://" in store else ""
        if scheme == "sqlite":  # sqlite:///relative.db, sqlite:////absolute.db
            path = store[len("sqlite://") :]
            return open_store(path[1:] if path.startswith("/") else path or ":memory:")
        if scheme == "memory":
            return open_store(None)
        if scheme in ("redis", "rediss", "unix"):
            from adk.state.stores.redis import RedisStore

            return RedisStore(store)
        if scheme in ("postgres", "postgresql"):
            from adk.state.stores.postgres import PostgresStore

            return PostgresStore(store)
        if scheme:
            raise ConfigurationError(
                f"Service store {store!r}: unknown scheme {scheme!r} "
                "(sqlite:///path, redis://..., postgresql://..., memory://)"
            )
    return open_store(store)


class Service:
    """The agents served over HTTP and everything their runs need (see the module docstring).

    - ``agents``: ``{name: agent}``, or ``{name: factory}`` with a function
      returning a fresh agent (called once per workspace, so tools holding
      state are not shared between tenants). Clients name agents by these keys.
    - ``store``: where runs, sessions, event logs live: a URL
      (``sqlite:///runs.db``, ``redis://...``, ``postgresql://...``), a
      :class:`~adk.CheckpointStore`, or None (in memory, one process: dev only).
    - ``api_keys``: ``{key: workspace}``; a request must carry one
      (``Authorization: Bearer <key>`` or ``X-API-Key``). None: no keys, one
      workspace named ``default`` (dev mode).
    - ``runner_options``: keyword arguments of every :class:`~adk.Runner`
      (``serving``, ``streaming``, ``usage_limits``...); the store, sessions and
      ``durability="step"`` are the service's.
    - ``max_input_bytes``: the largest request body accepted (413 beyond).
    - ``queue``: where runs go to execute (default: an :class:`EmbeddedQueue`
      in the server process).
    """

    def __init__(
        self,
        agents: Mapping[str, AgentSource],
        *,
        store: CheckpointStore | str | Path | None = None,
        api_keys: Mapping[str, str] | None = None,
        runner_options: Mapping[str, Any] | None = None,
        max_input_bytes: int = DEFAULT_MAX_INPUT_BYTES,
        queue: RunQueue | None = None,
    ) -> None:
        self.agents = _checked_agents(agents)
        self.store = open_service_store(store)
        self.api_keys = _checked_keys(api_keys)
        self.runner_options = _checked_options(runner_options)
        if isinstance(max_input_bytes, bool) or not isinstance(max_input_bytes, int):
            raise ArgumentTypeError(f"max_input_bytes must be an int, got {max_input_bytes!r}")
        if max_input_bytes < 1:
            raise ConfigurationError(f"max_input_bytes must be >= 1, got {max_input_bytes}")
        self.max_input_bytes = max_input_bytes
        if queue is not None and not isinstance(queue, RunQueue):
            raise ArgumentTypeError(f"queue must be a RunQueue (submit, depth), got {queue!r}")
        self.queue: RunQueue = queue if queue is not None else EmbeddedQueue()
        self.event_poll = 0.05
        """Seconds between reads of an event log when the store cannot notify (SQLite)."""
        self._runners: dict[tuple[str, str], Runner] = {}
        self._sessions: dict[str, SessionService] = {}
        self._stores: dict[str, WorkspaceStore] = {}

    # -- tenants ----------------------------------------------------------------------

    def workspace_for_key(self, key: str | None) -> str | None:
        """The workspace of API key ``key`` (None if unknown); every key is compared in
        constant time, and all of them, so timing tells nothing about which one is close."""
        if self.api_keys is None:
            return DEFAULT_WORKSPACE
        if not key:
            return None
        given = key.encode("utf-8", "surrogateescape")
        found = None
        for known, workspace in self.api_keys.items():
            if hmac.compare_digest(given, known.encode()):
                found = workspace
        return found

    def workspaces(self) -> list[str]:
        """The workspaces the keys name (``default`` without keys)."""
        if self.api_keys is None:
            return [DEFAULT_WORKSPACE]
        return sorted(set(self.api_keys.values()))

    def store_of(self, workspace: str) -> WorkspaceStore:
        """The workspace's view of the store (every namespace prefixed)."""
        store = self._stores.get(workspace)
        if store is None:
            store = self._stores[workspace] = WorkspaceStore(self.store, workspace)
        return store

    def sessions_of(self, workspace: str) -> SessionService:
        """The workspace's sessions (one app, ``adk``, shared by every agent served)."""
        sessions = self._sessions.get(workspace)
        if sessions is None:
            from adk.sessions.service import SessionService

            sessions = SessionService(self.store_of(workspace), app="adk")
            self._sessions[workspace] = sessions
        return sessions

    def runner(self, workspace: str, agent: str) -> Runner:
        """The Runner of ``agent`` in ``workspace`` (made on first use, then kept)."""
        key = (workspace, agent)
        runner = self._runners.get(key)
        if runner is None:
            source = self.agents.get(agent)
            if source is None:
                raise ConfigurationError(
                    f"unknown agent {agent!r}; agents: {', '.join(self.agents)}"
                )
            built = source if isinstance(source, Agent) else source()
            if not isinstance(built, Agent):
                raise ConfigurationError(
                    f"agent factory {agent!r} returned {built!r}, not an agent"
                )
            runner = Runner(
                built,
                checkpoint_store=self.store_of(workspace),
                durability="step",
                sessions=self.sessions_of(workspace),
                **self.runner_options,
            )
            self._runners[key] = runner
        return runner

    def runners(self) -> list[Runner]:
        """The Runners made so far in this process."""
        return list(self._runners.values())

    # -- lifecycle --------------------------------------------------------------------

    async def start(self, group: anyio.abc.TaskGroup) -> None:
        """Start executing runs in ``group`` (embedded queue) and recover unfinished ones."""
        if isinstance(self.queue, EmbeddedQueue):
            self.queue.start(self, group)
            await self.recover()

    async def recover(self) -> int:
        """Submit again every run the store holds as queued or running; how many.

        An embedded queue keeps jobs in memory: after a restart this finds
        them (a run whose executor died resumes from its journal).
        """
        from adk.service.runs import unfinished_jobs

        count = 0
        for workspace in sorted(set(self.workspaces()) | set(await stored_workspaces(self.store))):
            for job in await unfinished_jobs(self, workspace):
                await self.queue.submit(job)
                count += 1
        if count:
            logger.info("recovered %d unfinished runs", count)
        return count

    async def close(self) -> None:
        """Close the runners' tool providers and the store."""
        if isinstance(self.queue, EmbeddedQueue):
            self.queue.stop()
        for runner in self._runners.values():
            try:
                await runner.close()
            except Exception as exc:
                logger.warning("runner of %r not closed cleanly: %r", runner.agent.name, exc)
        await self.store.close()


def _checked_agents(agents: object) -> dict[str, AgentSource]:
    if not isinstance(agents, Mapping) or not agents:
        raise ArgumentTypeError(
            f"Service agents must be a non-empty {{name: agent}} mapping, got {agents!r}"
        )
    checked: dict[str, AgentSource] = {}
    for name, source in agents.items():
        check_workspace(name)  # the same rule: a name that fits in a URL and a store key
        if not isinstance(source, Agent) and not callable(source):
            raise ArgumentTypeError(
                f"Service agents[{name!r}] must be an agent or a factory, got {source!r}"
            )
        checked[name] = source
    return checked


def _checked_keys(api_keys: object) -> dict[str, str] | None:
    if api_keys is None:
        return None
    if not isinstance(api_keys, Mapping):
        raise ArgumentTypeError(
            f"Service api_keys must be a {{key: workspace}} mapping, got {type(api_keys).__name__}"
        )
    for key, workspace in api_keys.items():
        if not isinstance(key, str) or len(key) < 8:
            raise ConfigurationError(
                "Service api_keys: every key must be a str of 8 characters or more"
            )
        check_workspace(workspace)
    return dict(api_keys)


def _checked_options(options: object) -> dict[str, Any]:
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise ArgumentTypeError(f"Service runner_options must be a mapping, got {options!r}")
    accepted = set(inspect.signature(Runner.__init__).parameters) - {"self"} - _RESERVED
    for name in options:
        if name in _RESERVED:
            raise ConfigurationError(f"Service runner_options[{name!r}]: set by the service itself")
        if name not in accepted:
            raise ConfigurationError(
                f"Service runner_options[{name!r}]: not a Runner option "
                f"({', '.join(sorted(accepted))})"
            )
    return dict(options)
