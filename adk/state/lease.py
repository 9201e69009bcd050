"""Run leases: at most one process executes a stored run at a time.

A process that runs or resumes a stored run holds its lease: a record with
a time-to-live, renewed at every journal write and released when the run
pauses or ends. A process that died holding a lease blocks the run only
until the lease expires, or not at all when the lease was taken on this
machine and its process is gone (its pid no longer exists).
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

from adk.state.serde import CheckpointError, Fields, dumps, loads
from adk.state.stores.base import CheckpointStore

DEFAULT_LEASE_SECONDS = 120.0


class RunInProgress(CheckpointError):
    """Another live process is running or resuming this run."""


class LeaseLost(CheckpointError):
    """This process's lease on the run expired and another process took the run over."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RunLease:
    """The lease of one process on one run."""

    def __init__(self, store: CheckpointStore, run_id: str, seconds: float) -> None:
        self.store = store
        self.run_id = run_id
        self.seconds = seconds
        self.namespace = f"lease:{run_id}"
        self._owner: dict[str, Any] | None = None
        self.held = False
        self._renewed = 0.0

    @property
    def owner(self) -> dict[str, Any]:
        """This process's claim: a random token, its pid and host.

        Made on first use: most runs never write to the store, and a token
        costs a system call.
        """
        owner = self._owner
        if owner is None:
            owner = self._owner = {
                "token": os.urandom(8).hex(),
                "pid": os.getpid(),
                "host": socket.gethostname(),
            }
        return owner

    async def acquire(self, released: str | None = None) -> None:
        """Take the lease; else raise :class:`RunInProgress`.

        A lease whose token is ``released`` (the run's status record says its
        holder paused or ended the run) or whose holder died on this machine
        is taken over.
        """
        if await self.store.put_if_absent(
            self.namespace, "owner", dumps(self.owner), ttl=self.seconds
        ):
            self.held = True
            self._renewed = time.monotonic()  # just written: no renewal or check needed yet
            return
        current = await self._current()
        if current is not None and (current.get("token") == released or self._dead(current)):
            # Only one process may take over a given dead owner's lease.
            marker = f"takeover:{current['token']}"
            if await self.store.put_if_absent(self.namespace, marker, b"1", ttl=self.seconds):
                await self.store.put(self.namespace, "owner", dumps(self.owner), ttl=self.seconds)
                self.held = True
                self._renewed = time.monotonic()
                return
        where = f"process {current['pid']} on {current['host']}" if current else "another process"
        raise RunInProgress(
            f"run {self.run_id!r} is being run by {where}; its lease expires within "
            f"{self.seconds:g} s if that process died"
        )

    def _dead(self, owner: dict[str, Any]) -> bool:
        return owner.get("host") == self.owner["host"] and not _alive(int(owner.get("pid", 0)))

    async def _current(self) -> dict[str, Any] | None:
        """The lease's current owner record (None if no lease), its fields checked.

        A damaged record raises :class:`CheckpointCorrupted` naming the run; it
        expires with the lease's time to live.
        """
        data = await self.store.get(self.namespace, "owner")
        if data is None:
            return None
        where = f"lease of run {self.run_id!r}"
        owner = Fields(loads(data, where), where)
        return {
            "token": owner.text("token"),
            "pid": owner.integer("pid"),
            "host": owner.text("host"),
        }

    def _surely_ours(self) -> bool:
        """Renewed recently enough that no other process can have taken it over."""
        return time.monotonic() - self._renewed < self.seconds / 3

    async def renew(self) -> None:
        """Extend the lease when a third of it has passed; raise :class:`LeaseLost` if lost."""
        if not self.held or self._surely_ours():
            return
        current = await self._current()
        if current is not None and current.get("token") != self.owner["token"]:
            self.held = False
            raise LeaseLost(
                f"lost the lease on run {self.run_id!r} to process {current.get('pid')} on "
                f"{current.get('host')}: this process stops to avoid running calls twice"
            )
        await self.store.put(self.namespace, "owner", dumps(self.owner), ttl=self.seconds)
        self._renewed = time.monotonic()

    def hand_back(self) -> str:
        """Stop holding the lease without a store write; returns the token to record.

        The caller writes the token into the run's status record in the same
        write as the checkpoint: a later :meth:`acquire` that is given it takes
        the lease over at once.
        """
        self.held = False
        return str(self.owner["token"])

    async def release(self) -> None:
        """Give the lease back (if still ours)."""
        if not self.held:
            return
        self.held = False
        if self._surely_ours():
            await self.store.delete(self.namespace)
            return
        current = await self._current()
        if current is None or current.get("token") == self.owner["token"]:
            await self.store.delete(self.namespace)
