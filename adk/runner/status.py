"""Run status: one small ``status`` record per run, in the run's namespace.

A run started through a handle (``Runner.start``), or on a Runner with
``track_runs=True``, writes ``status`` when it starts and each time it
stops; nothing else does (a plain run on the in-memory store writes nothing,
so the hot path pays nothing). A run without the record still has a status
read from its other records (``meta`` and ``head``): interrupted, completed,
failed, or running.

Statuses: ``running``, ``paused`` (stopped by a pause signal, resumable),
``interrupted`` (waiting for answers), ``completed``, ``failed``,
``cancelled``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal, cast

from adk.errors import RunControlError
from adk.runner.checkpoint import namespace, run_exists
from adk.state.serde import CheckpointError, dumps, loads
from adk.state.stores.base import CheckpointStore

Status = Literal["running", "paused", "interrupted", "completed", "failed", "cancelled"]
STATUSES: tuple[str, ...] = ("running", "paused", "interrupted", "completed", "failed", "cancelled")
SIGNAL_KINDS: tuple[str, ...] = (
    "cancel",
    "pause",
    "resume",
    "approve",
    "reject",
    "feedback",
    "retry",
)
APPLIES: dict[str, tuple[str, ...]] = {
    "cancel": ("running", "paused", "interrupted"),
    "pause": ("running",),
    "resume": ("paused",),
    "approve": ("interrupted",),
    "reject": ("interrupted",),
    "feedback": ("running", "paused"),
    "retry": ("failed",),
}
"""The statuses in which each signal applies."""
_HEAD_STATUS = {"interrupted": "interrupted", "finished": "completed", "failed": "failed"}


@dataclass(frozen=True, slots=True)
class RunStatusInfo:
    """A run's status as :meth:`adk.Runner.run_status` and :meth:`~adk.Runner.list_runs` report it.

    - ``run_id``, ``status`` (running, paused, interrupted, completed,
      failed, cancelled), ``agent`` (the root agent's name);
    - ``started``, ``updated``: UNIX times;
    - ``error``: the error type of a failed run (``"ModelError"``...), else None;
    - ``checkpoint_id``: what to resume a paused or interrupted run from;
    - ``controlled``: started through a handle, so signals reach it.
    """

    run_id: str
    status: Status
    agent: str
    started: float
    updated: float
    error: str | None = None
    checkpoint_id: str | None = None
    controlled: bool = False
    durability: str = "interrupt"

    def encode(self) -> dict[str, Any]:
        """The stored record (the run id is the namespace's)."""
        record: dict[str, Any] = {
            "status": self.status,
            "agent": self.agent,
            "started": self.started,
            "updated": self.updated,
            "controlled": self.controlled,
            "durability": self.durability,
        }
        if self.error is not None:
            record["error"] = self.error
        if self.checkpoint_id is not None:
            record["checkpoint"] = self.checkpoint_id
        return record

    @classmethod
    def parse(cls, run_id: str, data: bytes) -> RunStatusInfo:
        """The record read back; :class:`~adk.CheckpointCorrupted` if it is not one."""
        where = f"status of run {run_id!r}"
        raw = loads(data, where)
        if type(raw) is not dict or raw.get("status") not in STATUSES:
            raise CheckpointError(f"{where}: not a status record adk writes")
        return cls(
            run_id=run_id,
            status=cast(Status, raw["status"]),
            agent=str(raw.get("agent", "")),
            started=float(raw.get("started", 0.0)),
            updated=float(raw.get("updated", 0.0)),
            error=raw.get("error") if isinstance(raw.get("error"), str) else None,
            checkpoint_id=raw.get("checkpoint") if isinstance(raw.get("checkpoint"), str) else None,
            controlled=raw.get("controlled") is True,
            durability=str(raw.get("durability", "interrupt")),
        )


async def begin_status(
    store: CheckpointStore,
    run_id: str,
    agent: str,
    *,
    durability: str,
    controlled: bool,
    ttl: float | None,
) -> RunStatusInfo:
    """Write a new run's first status (``running``); :class:`~adk.RunExists` if its id is taken."""
    now = time.time()
    info = RunStatusInfo(run_id, "running", agent, now, now, None, None, controlled, durability)
    if not await store.put_if_absent(namespace(run_id), "status", dumps(info.encode()), ttl=ttl):
        raise run_exists(run_id)
    return info


async def write_status(
    store: CheckpointStore,
    info: RunStatusInfo,
    status: Status,
    *,
    error: str | None = None,
    checkpoint_id: str | None = None,
    ttl: float | None = None,
) -> RunStatusInfo:
    """Overwrite the run's status record; the new record."""
    new = RunStatusInfo(
        info.run_id,
        status,
        info.agent,
        info.started,
        time.time(),
        error,
        checkpoint_id,
        info.controlled,
        info.durability,
    )
    await store.put(namespace(info.run_id), "status", dumps(new.encode()), ttl=ttl)
    return new


async def read_status(store: CheckpointStore, run_id: str) -> RunStatusInfo | None:
    """The status of ``run_id``: its status record, else derived from its records; None if none."""
    space = namespace(run_id)
    data = await store.get(space, "status")  # one record: never the run's journal
    if data is not None:
        return RunStatusInfo.parse(run_id, data)
    meta_data = await store.get(space, "meta")
    if meta_data is None:
        return None
    head_data = await store.get(space, "head")
    where = f"run {run_id!r}"
    meta = loads(meta_data, f"metadata of {where}")
    head = loads(head_data, f"status of {where}") if head_data is not None else {}
    if type(meta) is not dict or type(head) is not dict:
        raise CheckpointError(f"{where}: records adk does not write")
    status = _HEAD_STATUS.get(str(head.get("status")), "running")
    created = float(meta.get("created", 0.0))
    checkpoint = head.get("checkpoint") if status == "interrupted" else None
    return RunStatusInfo(
        run_id,
        cast(Status, status),
        str(meta.get("root", "")),
        created,
        created,
        checkpoint_id=checkpoint if isinstance(checkpoint, str) else None,
        durability=str(meta.get("durability", "interrupt")),
    )


async def list_statuses(
    store: CheckpointStore,
    status: str | Iterable[str] | None = None,
    agent: str | None = None,
    limit: int | None = None,
) -> list[RunStatusInfo]:
    """Runs in ``store``, newest first, filtered by status (one or several) and root agent."""
    wanted = _wanted(status)
    found = []
    for space in await store.namespaces("run:"):
        try:
            info = await read_status(store, space.removeprefix("run:"))
        except CheckpointError:
            continue  # a damaged run is not listed (run_status names its problem)
        if info is None or (wanted is not None and info.status not in wanted):
            continue
        if agent is not None and info.agent != agent:
            continue
        found.append(info)
    found.sort(key=lambda info: info.started, reverse=True)
    return found if limit is None else found[:limit]


def _wanted(status: str | Iterable[str] | None) -> frozenset[str] | None:
    if status is None:
        return None
    wanted = frozenset([status] if isinstance(status, str) else status)
    unknown = sorted(wanted.difference(STATUSES))
    if unknown:
        from adk.errors import ConfigurationError

        raise ConfigurationError(
            f"list_runs(status=...): unknown status {', '.join(map(repr, unknown))}; "
            f"statuses: {', '.join(STATUSES)}"
        )
    return wanted


def check_signal(run_id: str, info: RunStatusInfo | None, kind: str) -> None:
    """Raise :class:`~adk.RunControlError` unless signal ``kind`` applies to the run now."""
    if kind not in SIGNAL_KINDS:
        raise RunControlError(
            run_id,
            None if info is None else info.status,
            kind,
            f"unknown signal; signals: {', '.join(SIGNAL_KINDS)}",
        )
    if info is None:
        raise RunControlError(run_id, None, kind, "no such run in the store")
    if info.status not in APPLIES[kind]:
        where = " or ".join(APPLIES[kind])
        raise RunControlError(run_id, info.status, kind, f"applies only to a run that is {where}")


def check_payload(
    run_id: str, info: RunStatusInfo, kind: str, payload: dict[str, Any], pending: dict[str, Any]
) -> None:
    """Raise :class:`~adk.RunControlError` for a signal whose payload cannot apply."""
    if kind in ("approve", "reject"):
        interrupt_id = payload.get("interrupt_id")
        if not isinstance(interrupt_id, str) or (pending and interrupt_id not in pending):
            known = ", ".join(pending) or "none known"
            raise RunControlError(
                run_id, info.status, kind, f"no pending interrupt {interrupt_id!r} ({known})"
            )
    elif kind == "feedback" and not isinstance(payload.get("text"), str):
        raise RunControlError(run_id, info.status, kind, "feedback needs a 'text' str")
    elif kind == "retry" and info.durability != "step":
        raise RunControlError(
            run_id,
            info.status,
            kind,
            "retry continues from the run's stored journal: run it with durability='step'",
        )
    assert kind in APPLIES
