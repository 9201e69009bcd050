"""The records of a stored session, and how they are named, written and read.

A session lives in one store namespace, ``session:<app>:<session id>``:

- ``head``: who owns it, when it was made and last written, how many turns
  and records it has, a paused turn if any, the agent holding the
  conversation. Small; rewritten with every append.
- ``t:<seq>``: one appended batch (a turn, or part of a turn under
  ``durability="step"``): the history entries it added and the session-scoped
  value changes. Written with ``put_if_absent``: two writers can never both
  append under one sequence number.
- ``g:<seq>``: a sealed segment, the entries of many ``t:`` records merged
  once they are many (compaction). Each entry is rewritten once, never the
  whole history.
- ``values``: the session-scoped values as of a sequence number, rewritten
  at compaction; later ``t:`` records carry the changes since.

User- and app-scoped values live in their own namespaces, a record per key,
so writes to different keys from different sessions never overwrite each
other. Every record carries the session format version: a newer one is
refused by name, never half-read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from pydantic import ValidationError

from adk.errors import AdkError
from adk.events import AgentEvent, HistoryEntry
from adk.state.blobs import BlobTable
from adk.state.journal import decode_message, encode_message
from adk.state.serde import (
    CheckpointCorrupted,
    CheckpointError,
    CheckpointVersionError,
    Fields,
    dumps,
    loads,
)

SESSION_FORMAT = 1
"""The version of the session records this adk writes (and the newest it reads)."""


class SessionError(AdkError):
    """A stored session cannot be used as asked."""


class SessionNotFound(SessionError, KeyError):
    """No session with this id is in the store (never made, deleted, or expired)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class SessionBusy(SessionError):
    """Another turn of this session is running (in this process or another).

    A session takes one turn at a time: the second turn fails at once
    instead of waiting, so a double-submitted message never runs twice and
    nothing queues unseen. Retry when the running turn ends.
    """


class SessionPaused(SessionError):
    """The session's last turn is paused at an interrupt; answer it before a new turn.

    ``checkpoint_id`` and ``interrupt_ids`` say what to resume:
    ``runner.resume(checkpoint_id, answers)`` finishes the paused turn, and
    the session takes new turns again. ``run_id`` is the paused run (if its
    records are gone from the checkpoint store, the Runner lets the next
    turn start instead).
    """

    def __init__(
        self,
        message: str,
        checkpoint_id: str,
        interrupt_ids: tuple[str, ...],
        run_id: str = "",
    ) -> None:
        super().__init__(message)
        self.checkpoint_id = checkpoint_id
        self.interrupt_ids = interrupt_ids
        self.run_id = run_id


class SessionCorrupted(SessionError, CheckpointCorrupted):
    """A record of the session is damaged or not adk's; nothing of it was used."""


class SessionVersionError(SessionError, CheckpointVersionError):
    """The session was written by a newer adk (a newer session format)."""


def _q(part: str) -> str:
    return quote(part, safe="")


def session_namespace(app: str, session_id: str) -> str:
    """The namespace of one session's records."""
    return f"session:{_q(app)}:{_q(session_id)}"


def user_index_namespace(app: str, user_id: str) -> str:
    """The namespace listing one user's sessions (a record per session id)."""
    return f"session-user:{_q(app)}:{_q(user_id)}"


def user_values_namespace(app: str, user_id: str) -> str:
    """The namespace of one user's values (a record per key)."""
    return f"session-uvalues:{_q(app)}:{_q(user_id)}"


def app_values_namespace(app: str) -> str:
    """The namespace of the app's values (a record per key)."""
    return f"session-avalues:{_q(app)}"


def lock_name(app: str, session_id: str) -> str:
    """The lease name that makes a session take one turn at a time."""
    return f"session:{_q(app)}:{_q(session_id)}"


def batch_name(seq: int) -> str:
    """The record name of appended batch ``seq`` (names sort in sequence order)."""
    return f"t:{seq:010d}"


def segment_name(last_seq: int) -> str:
    """The record name of the segment that ends with batch ``last_seq``."""
    return f"g:{last_seq:010d}"


@dataclass(frozen=True)
class PausedTurn:
    """A turn waiting at interrupts: the run, its checkpoint and the pending interrupt ids."""

    run_id: str
    checkpoint_id: str
    interrupt_ids: tuple[str, ...]


@dataclass
class SessionHead:
    """The head record: ownership, counters, and the turn in progress if any."""

    user_id: str
    created: float
    updated: float
    turns: int = 0
    next_seq: int = 1
    agent: str | None = None
    paused: PausedTurn | None = None

    def encode(self) -> bytes:
        """The record's bytes."""
        paused = self.paused
        return dumps(
            {
                "v": SESSION_FORMAT,
                "user": self.user_id,
                "created": self.created,
                "updated": self.updated,
                "turns": self.turns,
                "next": self.next_seq,
                "agent": self.agent,
                "paused": None
                if paused is None
                else [paused.run_id, paused.checkpoint_id, list(paused.interrupt_ids)],
            }
        )

    @classmethod
    def decode(cls, data: bytes, where: str) -> SessionHead:
        """The head record; a damaged one raises :class:`SessionCorrupted`."""
        fields = _fields(data, where)
        raw_paused = fields.get("paused")
        paused = None
        if raw_paused is not None:
            if not (
                type(raw_paused) is list
                and len(raw_paused) == 3
                and type(raw_paused[0]) is type(raw_paused[1]) is str
                and type(raw_paused[2]) is list
                and all(type(i) is str for i in raw_paused[2])
            ):
                raise SessionCorrupted(f"{where}: field 'paused' is not [run, checkpoint, ids]")
            paused = PausedTurn(raw_paused[0], raw_paused[1], tuple(raw_paused[2]))
        return cls(
            user_id=fields.text("user"),
            created=fields.number("created"),
            updated=fields.number("updated"),
            turns=fields.integer("turns"),
            next_seq=fields.integer("next"),
            agent=fields.optional_text("agent"),
            paused=paused,
        )


@dataclass
class Batch:
    """One appended batch: entries added and session-scoped value changes.

    ``run_id`` and ``final`` say which run wrote it and whether it closed
    that run's turn (a ``durability="step"`` turn appends as it goes and
    closes with its last batch).
    """

    seq: int
    entries: list[HistoryEntry]
    changed: dict[str, bytes] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)
    run_id: str = ""
    final: bool = True
    events: list[dict[str, Any]] = field(default_factory=list)
    """Events the app asked to keep (``SessionService(keep_events=...)``), as JSON-like maps."""

    def encode(self) -> bytes:
        """The record's bytes."""
        record = {
            "v": SESSION_FORMAT,
            "seq": self.seq,
            "entries": encode_entries(self.entries),
            "set": self.changed,
            "del": self.removed,
            "run": self.run_id,
            "final": self.final,
        }
        if self.events:
            record["ev"] = self.events
        return dumps(record)

    @classmethod
    def decode(cls, data: bytes, where: str) -> Batch:
        """The batch record; a damaged one raises :class:`SessionCorrupted`."""
        fields = _fields(data, where)
        changed = fields.mapping("set")
        if not all(type(k) is str and type(v) is bytes for k, v in changed.items()):
            raise SessionCorrupted(f"{where}: field 'set' must map str keys to encoded values")
        removed = fields.sequence("del")
        if not all(type(k) is str for k in removed):
            raise SessionCorrupted(f"{where}: field 'del' must list str keys")
        return cls(
            seq=fields.integer("seq"),
            entries=decode_entries(fields.sequence("entries"), where),
            changed=changed,
            removed=removed,
            run_id=fields.text("run"),
            final=fields.flag("final"),
            events=_events(fields, where),
        )


def encode_segment(
    first: int,
    last: int,
    entries: Sequence[HistoryEntry],
    events: Sequence[dict[str, Any]] = (),
) -> bytes:
    """A segment record: the entries (and kept events) of batches ``first`` to ``last``."""
    record: dict[str, Any] = {
        "v": SESSION_FORMAT,
        "first": first,
        "last": last,
        "entries": encode_entries(entries),
    }
    if events:
        record["ev"] = list(events)
    return dumps(record)


def decode_segment(
    data: bytes, where: str
) -> tuple[int, int, list[HistoryEntry], list[dict[str, Any]]]:
    """``(first, last, entries, kept events)`` of a segment record."""
    fields = _fields(data, where)
    entries = decode_entries(fields.sequence("entries"), where)
    return fields.integer("first"), fields.integer("last"), entries, _events(fields, where)


def _events(fields: Fields, where: str) -> list[dict[str, Any]]:
    """The kept events of a batch or segment (absent when none were kept)."""
    events = fields.raw.get("ev", [])
    if type(events) is not list or not all(type(e) is dict for e in events):
        raise SessionCorrupted(f"{where}: field 'ev' must list event maps")
    return events


def decode_event(data: dict[str, Any], where: str) -> AgentEvent:
    """A kept event; :class:`SessionCorrupted` if the map is not an event."""
    try:
        return AgentEvent.model_validate(data)
    except ValidationError as exc:
        raise SessionCorrupted(f"{where}: a kept event is malformed: {exc.errors()[0]}") from None


def encode_values(upto: int, values: dict[str, bytes]) -> bytes:
    """The session-values record: every session-scoped value as of batch ``upto``."""
    return dumps({"v": SESSION_FORMAT, "upto": upto, "values": values})


def decode_values(data: bytes, where: str) -> tuple[int, dict[str, bytes]]:
    """``(upto, values)`` of the session-values record."""
    fields = _fields(data, where)
    values = fields.mapping("values")
    if not all(type(k) is str and type(v) is bytes for k, v in values.items()):
        raise SessionCorrupted(f"{where}: field 'values' must map str keys to encoded values")
    return fields.integer("upto"), values


def encode_entries(entries: Sequence[HistoryEntry]) -> list[list[Any]]:
    """History entries as msgpack-friendly lists: ``[author or nil, message]``.

    A blob (an image...) that several entries hold is stored once per record
    (:mod:`adk.state.blobs`): a record holds one turn, or a snapshot of several.
    """
    blobs = BlobTable()
    return [[entry.agent_name, encode_message(entry.message, blobs)] for entry in entries]


def decode_entries(raw: list[Any], where: str) -> list[HistoryEntry]:
    """The entries :func:`encode_entries` encoded, each field checked."""
    entries = []
    blobs = BlobTable()
    for index, item in enumerate(raw):
        if type(item) is not list or len(item) != 2:
            raise SessionCorrupted(f"{where}: entry {index} is not [author, message]")
        author, data = item
        if author is not None and type(author) is not str:
            raise SessionCorrupted(f"{where}: entry {index} has a non-str author")
        try:
            message = decode_message(data, blobs)
        except CheckpointError as exc:
            raise SessionCorrupted(f"{where}: entry {index}: {exc}") from None
        entries.append(HistoryEntry(author, message))
    return entries


def decode_value(data: bytes, where: str) -> Any:
    """One stored value; a damaged one raises :class:`SessionCorrupted`."""
    try:
        return loads(data, where)
    except CheckpointVersionError as exc:
        raise SessionVersionError(str(exc)) from None
    except CheckpointError as exc:
        raise SessionCorrupted(str(exc)) from None


def _fields(data: bytes, where: str) -> Fields:
    """The record's fields, its session format version checked first."""
    try:
        raw = loads(data, where)
        fields = Fields(raw, where)
        version = fields.integer("v")
    except CheckpointVersionError as exc:
        raise SessionVersionError(str(exc)) from None
    except CheckpointError as exc:
        raise SessionCorrupted(str(exc)) from None
    if version > SESSION_FORMAT or version < 1:
        raise SessionVersionError(
            f"{where} has session format version {version}; this adk reads versions 1 to "
            f"{SESSION_FORMAT} (upgrade adk to read it)"
        )
    return _CheckedFields(fields)


class _CheckedFields(Fields):
    """Fields whose errors are :class:`SessionCorrupted` (the session's own error type)."""

    __slots__ = ()

    def __init__(self, fields: Fields) -> None:
        self.raw = fields.raw
        self.where = fields.where

    def error(self, field: str, expected: str, value: object) -> CheckpointCorrupted:
        return SessionCorrupted(str(super().error(field, expected, value)))
