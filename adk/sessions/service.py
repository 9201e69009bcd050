"""SessionService: conversations and their values, kept in a checkpoint store.

Any of the four stores (memory, SQLite, Redis, PostgreSQL) holds sessions:
the service needs only the store's namespaced records, ``put_if_absent`` and
``scan``. A turn costs a fixed number of round trips whatever the length of
the conversation: take the session's lease, check its head and that no batch
follows it (the session itself is kept in memory between turns and read
again only when another process wrote it), read the user's and app's
values, append one batch and the head, let the lease go. A long session is
compacted into segments plus a short tail, each entry rewritten once.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

from adk.errors import ConfigurationError
from adk.events import AgentEvent
from adk.sessions.admission import check_turn
from adk.sessions.loading import LoadedSession, load_session
from adk.sessions.records import (
    Batch,
    SessionBusy,
    SessionHead,
    SessionNotFound,
    app_values_namespace,
    batch_name,
    decode_event,
    decode_value,
    lock_name,
    session_namespace,
    user_index_namespace,
    user_values_namespace,
)
from adk.sessions.turn import SessionTurn, new_session
from adk.sessions.views import Session, SessionInfo
from adk.state.lease import DEFAULT_LEASE_SECONDS, RunInProgress, RunLease
from adk.state.stores import CheckpointStore, open_store


def _positive(name: str, value: float | None, *, optional: bool = False) -> None:
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ConfigurationError(f"SessionService {name} must be a positive number, got {value!r}")


class SessionService:
    """Stored sessions of one app in ``store`` (a store, a SQLite file path, or None: memory).

    - ``app``: the application's name; sessions, user values and app values
      are kept apart per app. A Runner that makes its own service names it
      after its root agent: pass that name to reach its sessions.
    - ``ttl``: seconds a session lives after its last turn (None: forever).
      Expired sessions read as missing and their rows are deleted by
      :meth:`purge_expired`, which the service also runs by itself at most
      every ``purge_interval`` seconds.
    - ``compact_every``: batches after which the tail is merged into a segment.
    - ``lock_seconds``: how long a turn's hold on its session lasts without
      renewal (renewed at every append); a turn whose process died blocks
      the session at most that long (not at all on the same machine).
    - ``cache_size``: sessions kept in memory between turns.
    - ``keep_events``: which of a turn's events to store with the session
      (e.g. ``lambda e: e.is_error``); by default only its messages are kept.
    """

    def __init__(
        self,
        store: CheckpointStore | str | Path | None = None,
        *,
        app: str = "adk",
        ttl: float | None = None,
        compact_every: int = 32,
        lock_seconds: float = DEFAULT_LEASE_SECONDS,
        cache_size: int = 256,
        purge_interval: float = 3600.0,
        keep_events: Callable[[AgentEvent], bool] | None = None,
    ) -> None:
        if not isinstance(app, str) or not app:
            raise ConfigurationError(f"SessionService app must be a non-empty str, got {app!r}")
        _positive("ttl", ttl, optional=True)
        _positive("lock_seconds", lock_seconds)
        _positive("purge_interval", purge_interval)
        for name, count in (("compact_every", compact_every), ("cache_size", cache_size)):
            if isinstance(count, bool) or not isinstance(count, int) or count < 1:
                raise ConfigurationError(
                    f"SessionService {name} must be an int >= 1, got {count!r}"
                )
        self.store = open_store(store)
        self.app = app
        self.ttl = ttl
        self.compact_every = compact_every
        self.lock_seconds = float(lock_seconds)
        self.cache_size = cache_size
        self.purge_interval = purge_interval
        if keep_events is not None and not callable(keep_events):
            raise ConfigurationError(
                f"SessionService keep_events must be a function of an event, got {keep_events!r}"
            )
        self.keep_events = keep_events
        self.app_namespace = app_values_namespace(app)
        self._cache: OrderedDict[str, tuple[bytes, LoadedSession]] = OrderedDict()
        self._last_purge = time.monotonic()

    # -- names ------------------------------------------------------------------------

    def namespace(self, session_id: str) -> str:
        """The store namespace of session ``session_id``."""
        return session_namespace(self.app, session_id)

    def user_namespace(self, user_id: str) -> str:
        """The store namespace of ``user_id``'s values."""
        return user_values_namespace(self.app, user_id)

    # -- reading ----------------------------------------------------------------------

    async def get_session(self, session_id: str) -> Session:
        """The session: history, values, times and turns; :class:`SessionNotFound` if none."""
        session = await self._load(_checked_id(session_id))
        if session is None:
            raise self._not_found(session_id)
        where = f"session {session_id!r}"
        head = session.head
        shared = await self._shared_values(head.user_id)
        decoded = {k: decode_value(v, f"{where}, value {k!r}") for k, v in shared.items()}
        return Session(
            id=session_id,
            app=self.app,
            user_id=head.user_id,
            created=head.created,
            updated=head.updated,
            turns=head.turns,
            history=list(session.entries),
            values={k: decode_value(v, f"{where}, value {k!r}") for k, v in session.values.items()},
            user_values={k: v for k, v in decoded.items() if k.startswith("user:")},
            app_values={k: v for k, v in decoded.items() if k.startswith("app:")},
            paused=head.paused,
            agent=head.agent,
            events=[decode_event(e, where) for e in session.events],
        )

    async def list_sessions(self, user_id: str) -> list[SessionInfo]:
        """The user's live sessions, most recently updated first."""
        if not isinstance(user_id, str):
            raise TypeError(f"user_id must be a str, got {type(user_id).__name__}")
        index = user_index_namespace(self.app, user_id)
        found = []
        for session_id, _ in await self.store.scan(index):
            data = await self.store.get(self.namespace(session_id), "head")
            if data is None:  # expired or deleted (or being created): drop it from the index
                await self._drop_stale(index, session_id)
                continue
            head = SessionHead.decode(data, f"session {session_id!r}, head")
            if head.user_id != user_id:  # the user's session expired; another user's has its id
                await self.store.delete(index, session_id)
                continue
            found.append(
                SessionInfo(
                    session_id,
                    head.user_id,
                    head.created,
                    head.updated,
                    head.turns,
                    head.paused is not None,
                )
            )
        found.sort(key=lambda info: info.updated, reverse=True)
        return found

    async def delete_session(self, session_id: str) -> None:
        """Delete the session and its history; :class:`SessionNotFound` if there is none.

        Raises :class:`SessionBusy` while a turn of the session runs (its
        append would otherwise land in the deleted session's remains):
        delete it when the turn ends.
        """
        namespace = self.namespace(_checked_id(session_id))
        lease = await self._take(
            session_id,
            "taking a turn (in this process or another): delete it when the turn ends",
        )
        try:
            data = await self.store.get(namespace, "head")
            if data is None:
                raise self._not_found(session_id)
            head = SessionHead.decode(data, f"session {session_id!r}, head")
            await self.store.delete(namespace)
            await self.store.delete(user_index_namespace(self.app, head.user_id), session_id)
            self._cache.pop(session_id, None)
        finally:
            await lease.release()

    async def purge_expired(self) -> int:
        """Delete expired records from the store (if it keeps them) and stale index entries.

        Returns the number of records deleted. Redis expires keys itself; the
        SQL stores and the in-memory store keep expired rows (unread) until
        this runs.
        """
        self._last_purge = time.monotonic()
        purge = getattr(self.store, "purge_expired", None)
        deleted = int(await purge()) if purge is not None else 0
        prefix = user_index_namespace(self.app, "")
        for index in await self.store.namespaces(prefix):
            for session_id, _ in await self.store.scan(index):
                if await self.store.get(self.namespace(session_id), "head") is None:
                    deleted += await self._drop_stale(index, session_id)
        return deleted

    async def _drop_stale(self, index: str, session_id: str) -> bool:
        """Drop a user-index entry whose session has no head; True if it stays dropped.

        A turn creating a session writes its index entry, then its head: the
        entry is put back if a turn holds the session or its head appeared
        meanwhile, so a session being created is never left out of the index.
        """
        store = self.store
        await store.delete(index, session_id)
        lease = RunLease(store, lock_name(self.app, session_id), self.lock_seconds)
        if (
            await store.get(lease.namespace, "owner") is not None
            or await store.get(self.namespace(session_id), "head") is not None
        ):
            await store.put(index, session_id, b"")
            return False
        return True

    async def close(self) -> None:
        """Close the store."""
        await self.store.close()

    # -- turns (used by the Runner) ----------------------------------------------------

    async def begin_turn(
        self,
        session_id: str,
        user_id: str | None,
        run_id: str,
        *,
        resuming: bool = False,
        base_seq: int = 0,
        give_up: str = "",
    ) -> SessionTurn:
        """Take the session for one turn and read it; the :class:`SessionTurn`.

        Raises :class:`SessionBusy` if another turn holds it,
        :class:`SessionPaused` if its last turn waits at interrupts (unless
        this is that turn, resumed), :class:`SessionError` if it is another
        user's. A resumed turn (``resuming``) must be the session's paused or
        unfinished turn, or have started at batch ``base_seq`` with nothing
        appended since (a turn whose process died before its first append).
        ``give_up`` names a paused run the caller knows is gone (its records
        deleted or expired): the new turn starts anyway and the paused one is
        dropped from the session.
        """
        lease = await self._take(
            session_id,
            "taking another turn (in this process or another): a session takes one turn at a "
            "time; retry when it ends",
        )
        try:
            if time.monotonic() - self._last_purge > self.purge_interval:
                await self.purge_expired()
            session = await self._load(session_id)
            if session is None:
                if resuming and base_seq != 1:  # it existed when the turn started
                    raise self._not_found(session_id)
                session = new_session(session_id, user_id or "")
            if give_up and session.head.paused and session.head.paused.run_id == give_up:
                session.head.paused = None  # written with the new turn's first append
            check_turn(session, user_id, run_id, resuming, base_seq)
            shared = await self._shared_values(session.user_id)
        except BaseException:
            await lease.release()
            raise
        return SessionTurn(self, session, lease, shared, run_id)

    async def _take(self, session_id: str, busy: str) -> RunLease:
        """Take the session's lease; :class:`SessionBusy` (``busy``) if a turn of it is running."""
        lease = RunLease(self.store, lock_name(self.app, session_id), self.lock_seconds)
        try:
            await lease.acquire()
        except RunInProgress:
            raise SessionBusy(f"session {session_id!r} is {busy}") from None
        return lease

    async def _shared_values(self, user_id: str) -> dict[str, bytes]:
        """The user's and the app's values, encoded (two scans)."""
        shared = dict(await self.store.scan(self.user_namespace(user_id)))
        shared.update(await self.store.scan(self.app_namespace))
        return shared

    async def _load(self, session_id: str) -> LoadedSession | None:
        """The session: from memory if the store holds nothing newer, else read anew.

        The kept session is current if the stored head is the one it was
        written with and no batch follows it: a writer that died after
        claiming its batch, before its head write, leaves the head unchanged.
        """
        namespace = self.namespace(session_id)
        cached = self._cache.get(session_id)
        if cached is not None:
            head = await self.store.get(namespace, "head")
            if head == cached[0]:
                following = batch_name(cached[1].head.next_seq)
                if await self.store.get(namespace, following) is None:
                    self._cache.move_to_end(session_id)
                    return cached[1]
            self._cache.pop(session_id, None)
            if head is None:
                return None
        where = f"session {session_id!r}"
        session = load_session(session_id, where, await self.store.scan(namespace))
        if session is not None:
            self.remember(session)
        return session

    def forget(self, session_id: str) -> None:
        """Stop keeping the session in memory (the next turn reads it from the store)."""
        self._cache.pop(session_id, None)

    def remember(self, session: LoadedSession, head: bytes | None = None) -> None:
        """Keep ``session`` for the next turn, under the head it was last written with."""
        cache = self._cache
        cache[session.session_id] = (head or session.head.encode(), session)
        cache.move_to_end(session.session_id)
        while len(cache) > self.cache_size:
            cache.popitem(last=False)

    async def claim_batch(self, session: LoadedSession, batch: Batch) -> LoadedSession:
        """Write ``batch`` under the session's next number; the session it was appended to.

        If that number is taken (a writer that died after its batch, before
        its head write, or whose hold lapsed), the session is read again and
        the batch goes after what is there.
        """
        namespace = self.namespace(session.session_id)
        for _ in range(3):
            batch.seq = session.head.next_seq
            name = batch_name(batch.seq)
            if await self.store.put_if_absent(namespace, name, batch.encode(), ttl=self.ttl):
                return session
            self._cache.pop(session.session_id, None)
            reloaded = await self._load(session.session_id)
            if reloaded is not None:
                reloaded.head.paused, reloaded.head.agent = session.head.paused, session.head.agent
                session = reloaded
        raise SessionBusy(f"session {session.session_id!r} is being appended to by another writer")

    async def write_head(self, session: LoadedSession) -> None:
        """Write the head record (and, for a new session, its entry in the user's index).

        A new session's namespace is cleared first: an expired session of the
        same id may have left rows there (the SQL stores keep them until
        purged), and a write with a ttl renews every row of the namespace,
        which would bring them back into the new session.
        """
        head = session.head
        namespace = self.namespace(session.session_id)
        if not session.stored:
            await self.store.delete(namespace)
            index = user_index_namespace(self.app, head.user_id)
            await self.store.put(index, session.session_id, b"")
        data = head.encode()
        await self.store.put(namespace, "head", data, ttl=self.ttl)
        session.stored = True
        self.remember(session, data)

    def _not_found(self, session_id: str) -> SessionNotFound:
        return SessionNotFound(
            f"no session {session_id!r} in app {self.app!r} (never created, deleted, or expired)"
        )


def _checked_id(session_id: object) -> str:
    if not isinstance(session_id, str) or not session_id:
        raise TypeError(f"session_id must be a non-empty str, got {session_id!r}")
    return session_id
