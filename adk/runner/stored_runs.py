"""StoredRuns: what a Runner answers about runs from its store, by run id.

Statuses, signals from any process, trajectories, checkpoints, deletion:
none of them runs an agent, so they live apart from the :class:`~adk.Runner`'s
orchestration (which inherits them) and only need the store.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from adk.runner.checkpoint import list_checkpoints, namespace, split_checkpoint_id
from adk.runner.records import CheckpointInfo
from adk.state.stores import CheckpointStore

if TYPE_CHECKING:
    from adk.runner.status import RunStatusInfo
    from adk.runner.trajectory import Trajectory
    from adk.state.signals import Signal


class StoredRuns:
    """The store-side queries and commands of a Runner (see the module docstring)."""

    store: CheckpointStore
    checkpoint_ttl: float | None

    async def run_status(self, run_id: str) -> RunStatusInfo:
        """The status of run ``run_id`` (a :class:`~adk.RunStatusInfo`).

        Raises :class:`~adk.CheckpointNotFound` for a run the store does not know.
        """
        from adk.runner.control_api import run_status

        return await run_status(self.store, run_id)

    async def list_runs(
        self,
        *,
        status: str | Sequence[str] | None = None,
        agent: str | None = None,
        limit: int | None = None,
    ) -> list[RunStatusInfo]:
        """Runs in the store, newest first, filtered by status (one or several) and root agent."""
        from adk.runner.status import list_statuses

        return await list_statuses(self.store, status, agent, limit)

    async def signal(self, run_id: str, kind: str, **payload: Any) -> Signal:
        """Send signal ``kind`` to run ``run_id`` from any process (through the store).

        The run must have been started with :meth:`start` (its handle listens)
        and be in a status the signal applies to, else :class:`~adk.RunControlError`.
        Payloads: ``feedback`` takes ``text=``; ``approve`` takes
        ``interrupt_id=``; ``reject`` takes ``interrupt_id=`` and ``reason=``.
        Returns the logged :class:`~adk.Signal` (its ``seq`` orders it).
        """
        from adk.runner.control_api import send

        signal: Signal = await send(self.store, self.checkpoint_ttl, run_id, kind, payload)
        return signal

    async def trajectory(self, run_id: str) -> Trajectory:
        """The recorded :class:`~adk.Trajectory` of run ``run_id`` (all its executions).

        Needs ``Runner(trajectories=True)``: a run recorded nothing otherwise
        and this raises :class:`~adk.CheckpointNotFound`; a damaged record
        raises :class:`~adk.CheckpointCorrupted` naming it.
        """
        from adk.runner.trajectory import read_trajectory

        return await read_trajectory(self.store, split_checkpoint_id(run_id)[0])

    async def checkpoints(self, run_id: str | None = None) -> list[CheckpointInfo]:
        """Checkpoints in the store (of one run, or of all runs), oldest first per run.

        Each is a :class:`~adk.runner.records.CheckpointInfo`: ``id``,
        ``run_id``, ``interrupts``, ``created`` (a UNIX time), ``resumed``
        (whether it was already resumed) and ``error``. A checkpoint whose
        record cannot be read is listed with ``error`` set (and no
        interrupts) instead of failing the listing, so one damaged record
        does not hide the others.
        """
        return await list_checkpoints(self.store, run_id)

    async def delete_run(self, run_id: str) -> None:
        """Delete every record of ``run_id`` (its journal and checkpoints)."""
        run_id = split_checkpoint_id(run_id)[0]
        await self.store.delete(namespace(run_id))
        await self.store.delete(f"lease:{run_id}")
