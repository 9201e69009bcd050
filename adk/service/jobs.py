"""The seam between the HTTP service and whoever executes runs: jobs and the queue they go through.

The server never runs an agent in a request: it writes the run's records,
then submits a :class:`RunJob` to a :class:`RunQueue`. The default queue,
:class:`EmbeddedQueue`, executes jobs in the server process; ``adk worker``
processes take them from a queue on PostgreSQL or Redis instead. Either way
a job is executed by :func:`adk.service.execution.execute_job`, which works
from the store alone: a job is small, JSON, and safe to deliver twice.

``RunJob.options`` holds what the client asked for (``user_id``,
``agent_options``) and, for a job that continues a stopped run, what to
continue it with: ``{"resume": {"answers": {...}}}`` (answers to an
interrupted run, or none for a paused one) or ``{"retry": true}`` (a failed
run, again from its journal).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import anyio
import anyio.abc

from adk.errors import ArgumentTypeError, ConfigurationError

if TYPE_CHECKING:
    from adk.service.service import Service

logger = logging.getLogger("adk.service")


@dataclass
class RunJob:
    """One execution of a run to perform: a new run, a resume, a retry or a crash recovery.

    - ``run_id``, ``workspace``: which run (ids are unique per workspace);
    - ``agent``: the service's name for the agent (a key of ``Service(agents=...)``);
    - ``input``: the user's text, or messages as dicts (``{"role": "user", "content": ...}``);
    - ``session_id``: the stored conversation the run is a turn of, or None;
    - ``options``: see the module docstring;
    - ``attempt``: how many times the job was tried before (queues with retries count it).
    """

    run_id: str
    workspace: str
    agent: str
    input: list[dict[str, Any]] | str
    session_id: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    attempt: int = 0

    def to_json(self) -> str:
        """The job as one JSON document (what a queue stores)."""
        return json.dumps(asdict(self), separators=(",", ":"), sort_keys=True)

    @classmethod
    def from_json(cls, data: str | bytes) -> RunJob:
        """A job read back from :meth:`to_json`; ConfigurationError if it is not one."""
        try:
            raw = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"RunJob.from_json: not JSON: {exc}") from exc
        if not isinstance(raw, Mapping):
            raise ConfigurationError(f"RunJob.from_json: not a JSON object: {raw!r:.80}")
        for name in ("run_id", "workspace", "agent"):
            if not isinstance(raw.get(name), str):
                raise ConfigurationError(f"RunJob.from_json: {name!r} must be a str")
        job_input = raw.get("input", "")
        if not isinstance(job_input, str | list):
            raise ConfigurationError("RunJob.from_json: 'input' must be a str or a list")
        session_id = raw.get("session_id")
        options = raw.get("options") or {}
        attempt = raw.get("attempt", 0)
        if session_id is not None and not isinstance(session_id, str):
            raise ConfigurationError("RunJob.from_json: 'session_id' must be a str or null")
        if (
            not isinstance(options, dict)
            or isinstance(attempt, bool)
            or not isinstance(attempt, int)
        ):
            raise ConfigurationError(
                "RunJob.from_json: 'options' must be an object, 'attempt' an int"
            )
        return cls(
            raw["run_id"], raw["workspace"], raw["agent"], job_input, session_id, options, attempt
        )


@runtime_checkable
class RunQueue(Protocol):
    """Where the service submits jobs; something executes each one with ``execute_job``.

    ``submit`` returns once the job is durably queued (or, embedded, taken);
    ``depth`` is the number of jobs waiting or executing (the ``/metrics`` gauge).
    """

    async def submit(self, job: RunJob) -> None:
        """Queue ``job``."""
        ...

    async def depth(self) -> int:
        """Jobs submitted and not finished."""
        ...


class EmbeddedQueue:
    """The default queue: jobs execute in the server process, in a task group.

    ``lanes`` caps how many runs of each agent execute at once (``{agent:
    n}``; ``default_lane`` for the others): a job beyond its lane's limit
    waits for a slot. Jobs live in memory only; what a restart loses is
    found again by :meth:`Service.recover` (runs still queued or running in
    the store), so no run is lost. :meth:`start` is called by the service
    when the app starts; jobs submitted before wait for it.
    """

    def __init__(self, lanes: Mapping[str, int] | None = None, default_lane: int = 16) -> None:
        if lanes is not None and not isinstance(lanes, Mapping):
            raise ArgumentTypeError(f"EmbeddedQueue lanes must be a mapping, got {lanes!r}")
        for name, limit in {**(lanes or {}), "default_lane": default_lane}.items():
            if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
                raise ConfigurationError(
                    f"EmbeddedQueue lane {name!r} must be an int >= 1, got {limit!r}"
                )
        self.lanes = dict(lanes or {})
        self.default_lane = default_lane
        self._limiters: dict[str, anyio.CapacityLimiter] = {}
        self._group: anyio.abc.TaskGroup | None = None
        self._service: Service | None = None
        self._waiting: list[RunJob] = []
        self._depth = 0
        self._idle = anyio.Event()
        self._idle.set()

    def _limiter(self, agent: str) -> anyio.CapacityLimiter:
        limiter = self._limiters.get(agent)
        if limiter is None:
            limiter = anyio.CapacityLimiter(self.lanes.get(agent, self.default_lane))
            self._limiters[agent] = limiter
        return limiter

    def start(self, service: Service, group: anyio.abc.TaskGroup) -> None:
        """Execute jobs for ``service`` in ``group`` from now on (and those already submitted)."""
        self._service, self._group = service, group
        waiting, self._waiting = self._waiting, []
        for job in waiting:
            group.start_soon(self._execute, job)

    def stop(self) -> None:
        """Stop taking jobs (the group's owner cancels those executing)."""
        self._group = None

    async def submit(self, job: RunJob) -> None:
        """Start ``job`` in the task group (once its lane has room)."""
        self._depth += 1
        self._idle = anyio.Event() if self._idle.is_set() else self._idle
        if self._group is None:
            self._waiting.append(job)
            return
        self._group.start_soon(self._execute, job)

    async def depth(self) -> int:
        """Jobs submitted and not finished."""
        return self._depth

    async def join(self) -> None:
        """Wait until every submitted job finished (tests, graceful shutdown)."""
        await self._idle.wait()

    async def _execute(self, job: RunJob) -> None:
        from adk.service.execution import execute_job

        service = self._service
        assert service is not None
        try:
            async with self._limiter(job.agent):
                await execute_job(service, job)
        except Exception as exc:  # one bad job must not take the server down
            logger.warning(
                "run %s (workspace %s) failed to execute: %r", job.run_id, job.workspace, exc
            )
        finally:
            self._depth -= 1
            if self._depth == 0:
                self._idle.set()
