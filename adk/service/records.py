"""The service's own records of a run: the request, the state, and the claims that order changes.

Kept in namespace ``svc:<run id>`` of the run's workspace (beside the
Runner's ``run:<run id>`` records and the event log):

- ``request``: what the client asked for (agent, input, session, options), written once;
- ``state``: what the API reports (status, segment, error, pending
  interrupts, output, times), rewritten at every change;
- ``start:<n>`` / ``next:<n>``: claims written with ``put_if_absent``.
  Segment ``n`` of a run (its first execution, then one per resume or
  retry) is started by whoever claims ``start:<n>`` (an executor, or a
  cancel of a queued run), and continued once, by whoever claims
  ``next:<n>`` (an answer, a resume, a retry, or a cancel). Two servers
  or workers racing never both act;
- ``applied``: the seq of the last signal the run's executors applied.

The index ``runs`` holds one small record per run (agent, created), named
by the run id: ids start with their creation time, so the index sorts by
age and a listing pages through it with the last id as its cursor.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from adk.state.stores.base import CheckpointStore

INDEX = "runs"
ID_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def new_run_id() -> str:
    """A fresh run id that sorts by creation time (ms) and cannot be guessed (64 random bits)."""
    return f"run-{time.time_ns() // 1_000_000:012x}-{os.urandom(8).hex()}"


def valid_id(value: str) -> bool:
    """Whether ``value`` can be a run or session id (anything else is unknown: 404)."""
    return bool(ID_PATTERN.match(value))


def _dump(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def _load(data: bytes | None) -> Any:
    return None if data is None else json.loads(data)


@dataclass
class RunState:
    """What the API reports of a run (the ``state`` record)."""

    status: str = "queued"
    segment: int = 1
    created: float = 0.0
    updated: float = 0.0
    error: dict[str, Any] | None = None
    checkpoint_id: str | None = None
    interrupts: list[dict[str, Any]] = field(default_factory=list)
    output: Any = None
    text: str = ""

    def encode(self) -> bytes:
        """The stored record."""
        return _dump(self.__dict__)

    @classmethod
    def decode(cls, data: bytes) -> RunState:
        """The record read back."""
        raw = _load(data)
        return cls(**{k: v for k, v in raw.items() if k in cls.__dataclass_fields__})


class RunRecords:
    """The service records of one run in a workspace store (see the module docstring)."""

    def __init__(self, store: CheckpointStore, run_id: str, ttl: float | None = None) -> None:
        self.store = store
        self.run_id = run_id
        self.ttl = ttl
        self.namespace = f"svc:{run_id}"

    async def create(self, request: dict[str, Any], created: float) -> bool:
        """Write the request and the index entry; False if the run exists.

        One atomic write makes the run visible: until the first ``state``
        record, its state is "queued" as of ``created``.
        """
        record = {**request, "created": created}
        if not await self.store.put_if_absent(
            self.namespace, "request", _dump(record), ttl=self.ttl
        ):
            return False
        index = _dump({"agent": request["agent"], "created": created})
        await self.store.put(INDEX, self.run_id, index)
        return True

    async def request(self) -> dict[str, Any] | None:
        """The request record (None: no such run here)."""
        raw = _load(await self.store.get(self.namespace, "request"))
        return raw if isinstance(raw, dict) else None

    async def state(self) -> RunState | None:
        """The state record (None: no such run here)."""
        found = await self.both()
        return None if found is None else found[1]

    async def both(self) -> tuple[dict[str, Any], RunState] | None:
        """Request and state in one read (None: no such run here)."""
        records = dict(await self.store.scan(self.namespace))
        if "request" not in records:
            return None
        request = _load(records["request"])
        if "state" in records:
            return request, RunState.decode(records["state"])
        created = float(request.get("created", 0.0))
        return request, RunState("queued", 1, created, created)

    async def write_state(self, state: RunState) -> None:
        """Overwrite the state (its ``updated`` time set now)."""
        state.updated = time.time()
        await self.store.put(self.namespace, "state", state.encode(), ttl=self.ttl)

    async def claim(self, name: str, **details: Any) -> bool:
        """Take claim ``name`` (``start:<n>``, ``next:<n>``); True if this call took it."""
        record = {"pid": os.getpid(), "host": socket.gethostname(), "at": time.time(), **details}
        return await self.store.put_if_absent(self.namespace, name, _dump(record), ttl=self.ttl)

    async def claim_of(self, name: str) -> dict[str, Any] | None:
        """Who holds claim ``name`` (None: nobody)."""
        raw = _load(await self.store.get(self.namespace, name))
        return raw if isinstance(raw, dict) else None

    async def applied(self) -> int:
        """The seq of the last signal applied to the run (0: none)."""
        raw = _load(await self.store.get(self.namespace, "applied"))
        return raw if isinstance(raw, int) else 0

    async def set_applied(self, seq: int) -> None:
        """Record that signals up to ``seq`` were applied."""
        await self.store.put(self.namespace, "applied", _dump(seq), ttl=self.ttl)


async def indexed_runs(store: CheckpointStore) -> list[tuple[str, dict[str, Any]]]:
    """Every run of the workspace as ``(run id, {agent, created})``, oldest first."""
    found = []
    for run_id, data in await store.scan(INDEX):
        raw = _load(data)
        if isinstance(raw, dict):
            found.append((run_id, raw))
    return found
