"""One turn of a stored session: held alone, read once, appended to at its end.

A :class:`SessionTurn` holds the session's lease for the turn (so no other
turn can run on it), the session as loaded, and the encodings of the values
the turn started with. Its writes are small: a batch record claimed with
``put_if_absent`` (two writers can never append under one number) and the
head; the user's and app's changed values, a record per key.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from adk.events import AgentEvent, HistoryEntry
from adk.sessions.loading import LoadedSession, without_unanswered
from adk.sessions.records import (
    Batch,
    PausedTurn,
    SessionError,
    SessionHead,
    batch_name,
    decode_value,
    encode_segment,
    encode_values,
    segment_name,
)
from adk.sessions.scopes import ScopeChanges, encode_start, turn_changes
from adk.state.lease import RunLease

if TYPE_CHECKING:
    from adk.sessions.service import SessionService


class SessionTurn:
    """The running turn of one session (made by :meth:`SessionService.begin_turn`)."""

    def __init__(
        self,
        service: SessionService,
        session: LoadedSession,
        lease: RunLease,
        shared: dict[str, bytes],
        run_id: str,
    ) -> None:
        self.service = service
        self.session = session
        self.lease = lease
        self.run_id = run_id
        self._shared = shared
        """Encoded user- and app-scoped values, as read at the start of the turn."""
        self.start: dict[str, bytes] = {}
        """Encodings of the stored scopes' values the turn started with."""
        open_run = session.open_run
        self.appended = open_run[1] if open_run is not None and open_run[0] == run_id else 0
        """Entries this turn already appended (a ``durability="step"`` turn appends as it goes)."""

    @property
    def session_id(self) -> str:
        """The session's id."""
        return self.session.session_id

    @property
    def prior(self) -> list[HistoryEntry]:
        """The history before this turn (without what this turn's run already appended).

        A list of its own: the turn's appends extend the session's entries, never
        the prior history a run was given (it would see its own messages twice).
        """
        session = self.session
        entries = session.entries[: len(session.entries) - self.appended]
        cut_off = {index for index in session.unanswered.values() if index < len(entries)}
        return without_unanswered(entries, cut_off) if cut_off else entries

    def values(self, given: MutableMapping[str, Any] | None) -> MutableMapping[str, Any]:
        """The run's session values: stored ones of every scope, then the app's ``given`` ones.

        Values in ``given`` count as set by this turn. If the app passed a
        mapping, that mapping is filled and used (it sees the agents' writes).
        """
        where = f"session {self.session_id!r}"
        stored = {**self.session.values, **self._shared}
        values = {
            key: decode_value(data, f"{where}, value {key!r}") for key, data in stored.items()
        }
        self.start = stored
        if given is None:
            return values
        values.update(given)
        given.clear()
        given.update(values)
        return given

    def resume_values(self, values: Mapping[str, Any]) -> None:
        """For a resumed turn: the values the run started with (from its checkpoint)."""
        self.start = encode_start(values)

    async def append(
        self,
        entries: Sequence[HistoryEntry],
        *,
        final: bool,
        values: Mapping[str, Any] | None = None,
        agent: str | None = None,
        events: Sequence[AgentEvent] = (),
    ) -> None:
        """Append what the turn added since the last append; at the end, its value changes too.

        ``entries`` is the whole turn so far; only the part not yet appended
        is written. A value that cannot be stored is left out and named in the
        :class:`SessionError` raised once the rest is written. ``events``
        are offered to the service's ``keep_events``; those it keeps are
        stored with the batch.
        """
        changes, unstorable = turn_changes(self.start, values) if values is not None else (None, [])
        batch = Batch(0, list(entries[self.appended :]), run_id=self.run_id, final=final)
        keep = self.service.keep_events
        if keep is not None and events:
            batch.events = [kept_event(event) for event in events if keep(event)]
        if changes is not None:
            batch.changed, batch.removed = changes["session"].changed, changes["session"].removed
        if not batch.entries and not final:
            return
        head = self.session.head
        try:
            head.paused = None
            if agent is not None:
                head.agent = agent
            await self._write(batch)
        except BaseException:
            # The session in memory was changed ahead of the store, which may not have taken
            # the write: the next turn reads the session from the store.
            self.service.forget(self.session_id)
            raise
        self.appended = 0 if final else self.appended + len(batch.entries)
        if changes is not None:
            await self._write_shared(self.service.user_namespace(head.user_id), changes["user"])
            await self._write_shared(self.service.app_namespace, changes["app"])
        await self.lease.renew()
        if unstorable:  # the turn is stored; only these values are not
            raise SessionError(
                "the turn was stored without these values: "
                + "; ".join(str(exc) for exc in unstorable)
            )

    async def pause(self, paused: PausedTurn) -> None:
        """Record that the turn waits at interrupts (the session refuses new turns until then)."""
        session = self.session
        try:
            session.head.paused = paused
            session.head.updated = time.time()
            await self.service.write_head(session)
        except BaseException:
            self.service.forget(self.session_id)  # as in append: the store is the truth
            raise

    async def _write(self, batch: Batch) -> None:
        """Claim the next batch number and write the batch, then the head (or a compaction)."""
        service = self.service
        if not self.session.stored:
            # A new session's head goes first: a batch is never left without one.
            await service.write_head(self.session)
        session = await service.claim_batch(self.session, batch)
        self.session = session
        head = session.head
        head.updated = time.time()
        head.next_seq = batch.seq + 1
        if batch.final:
            head.turns += 1
        session.apply(batch, batch_name(batch.seq))
        if len(session.tail) >= service.compact_every:
            await self._compact()
        else:
            await service.write_head(session)

    async def _compact(self) -> None:
        """Merge the tail into one segment; write it with the values and the head at once."""
        service, session = self.service, self.session
        last = session.head.next_seq - 1
        segment = encode_segment(
            session.sealed + 1,
            last,
            session.entries[session.sealed_entries :],
            session.events[session.sealed_events :],
        )
        head = session.head.encode()
        records = [
            (segment_name(last), segment),
            ("values", encode_values(last, session.values)),
            ("head", head),
        ]
        namespace = service.namespace(session.session_id)
        await service.store.put_many(namespace, records, ttl=service.ttl)
        merged = [*session.tail, *session.stale]
        delete_many = getattr(service.store, "delete_many", None)
        if delete_many is not None:  # the built-in stores: one round trip
            await delete_many(namespace, merged)
        else:
            for name in merged:
                await service.store.delete(namespace, name)
        session.sealed = last
        session.sealed_entries = len(session.entries)
        session.sealed_events = len(session.events)
        session.tail, session.stale = [], []
        session.stored = True
        service.remember(session, head)

    async def _write_shared(self, namespace: str, changes: ScopeChanges) -> None:
        """Write one shared scope's changes: a record per key, so keys never overwrite others."""
        store = self.service.store
        if changes.changed:
            await store.put_many(namespace, list(changes.changed.items()))
        for key in changes.removed:
            await store.delete(namespace, key)

    async def release(self) -> None:
        """End the turn: let the next one start."""
        await self.lease.release()


def kept_event(event: AgentEvent) -> dict[str, Any]:
    """An event as a session stores it: its JSON-like map (an error's live exception dropped)."""
    return event.model_dump(mode="json", exclude_none=True)


def new_session(session_id: str, user_id: str) -> LoadedSession:
    """A session that is not in the store yet (written by its first append or pause)."""
    now = time.time()
    return LoadedSession(session_id, SessionHead(user_id=user_id, created=now, updated=now))
