"""Reading a stored session back: one scan of its namespace, checked record by record.

The scan returns the head, the sealed segments, the session-values record
and the short tail of batches since the last compaction; they are checked
for continuity (no missing batch, no overlapping segment, no batch the head
counts missing at the end) before anything is used, so a damaged session is
reported, never half-loaded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from adk.events import HistoryEntry
from adk.sessions.records import (
    Batch,
    SessionCorrupted,
    SessionHead,
    decode_segment,
    decode_values,
)


@dataclass
class LoadedSession:
    """A session as read from the store (and kept by the service between turns).

    - ``entries``: the whole history, oldest first;
    - ``values``: the session-scoped values, encoded (the bytes of each);
    - ``sealed``: the last batch number held in segments (0 if none);
    - ``tail``: names of the batch records after it, which the next
      compaction merges; ``stale``: records already merged (a compaction
      that died before deleting them), deleted at the next one;
    - ``open_run``: a run whose turn appended batches as it went and has not
      closed yet, with the number of entries it appended.
    """

    session_id: str
    head: SessionHead
    entries: list[HistoryEntry] = field(default_factory=list)
    values: dict[str, bytes] = field(default_factory=dict)
    sealed: int = 0
    sealed_entries: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)
    """Events the app asked to keep, oldest first (JSON-like maps)."""
    sealed_events: int = 0
    tail: list[str] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)
    open_run: tuple[str, int] | None = None
    stored: bool = False
    """Whether the session is in the store (False until a new session's first write)."""
    unanswered: dict[str, int] = field(default_factory=dict)
    """Tool calls without a result yet, by call id: the index of the message that made them.

    Empty after every finished turn; a call stays here when its turn was
    cut off (a ``durability="step"`` turn whose process died, or a paused
    turn given up) and is then left out of what the model is shown.
    """
    last_run: str = ""
    """The run whose batch closed the latest turn (if that batch is still in the tail)."""

    @property
    def user_id(self) -> str:
        """The user the session belongs to."""
        return self.head.user_id

    def track_calls(self, start: int) -> None:
        """Note the tool calls and results of the entries from index ``start`` on."""
        unanswered, entries = self.unanswered, self.entries
        for index in range(start, len(entries)):
            message = entries[index].message
            if message.tool_calls:
                for call in message.tool_calls:
                    unanswered[call.id] = index
            elif message.role == "tool" and message.tool_call_id is not None:
                unanswered.pop(message.tool_call_id, None)

    def apply(self, batch: Batch, name: str) -> None:
        """Add an appended batch (read from the store, or just written)."""
        start = len(self.entries)
        self.entries.extend(batch.entries)
        self.track_calls(start)
        self.events.extend(batch.events)
        values = self.values
        for key in batch.removed:
            values.pop(key, None)
        values.update(batch.changed)
        self.tail.append(name)
        open_run = self.open_run
        if batch.final:
            self.open_run = None
            self.last_run = batch.run_id
        elif open_run is not None and open_run[0] == batch.run_id:
            self.open_run = (batch.run_id, open_run[1] + len(batch.entries))
        else:
            self.open_run = (batch.run_id, len(batch.entries))


def load_session(
    session_id: str, where: str, records: list[tuple[str, bytes]]
) -> LoadedSession | None:
    """The session held by ``records`` (a scan of its namespace), or None if it has no head."""
    by_kind: dict[str, list[tuple[str, bytes]]] = {"g": [], "t": []}
    head_data = values_data = None
    for name, data in records:
        if name == "head":
            head_data = data
        elif name == "values":
            values_data = data
        elif name[:2] in ("g:", "t:"):
            by_kind[name[0]].append((name, data))
    if head_data is None:
        return None
    head = SessionHead.decode(head_data, f"{where}, head")
    session = LoadedSession(session_id, head, stored=True)
    upto = 0
    if values_data is not None:
        upto, session.values = decode_values(values_data, f"{where}, values")
    for name, data in by_kind["g"]:
        first, last, entries, events = decode_segment(data, f"{where}, record {name}")
        if first != session.sealed + 1 or last < first:
            raise SessionCorrupted(
                f"{where}: segment {name} holds batches {first} to {last}, but batch "
                f"{session.sealed + 1} comes next (a record is missing)"
            )
        session.entries.extend(entries)
        session.events.extend(events)
        session.sealed = last
    session.sealed_entries = len(session.entries)
    session.sealed_events = len(session.events)
    session.track_calls(0)
    if upto < session.sealed:
        raise SessionCorrupted(
            f"{where}: the values record covers batches up to {upto}, the segments up to "
            f"{session.sealed}"
        )
    _apply_tail(session, where, by_kind["t"], upto)
    last = session.sealed + len(session.tail)
    if last < head.next_seq - 1:  # the head counts batches that are not there
        raise SessionCorrupted(
            f"{where}: batch {last + 1} is missing (the head says {head.next_seq - 1} batches "
            f"were appended, the records hold {last})"
        )
    head.next_seq = last + 1
    return session


def _apply_tail(
    session: LoadedSession, where: str, records: list[tuple[str, bytes]], upto: int
) -> None:
    """Apply the batches after the last segment, checking that none is missing."""
    expected = session.sealed + 1
    for name, data in records:
        batch = Batch.decode(data, f"{where}, record {name}")
        if batch.seq <= session.sealed:
            session.stale.append(name)
            continue
        if batch.seq != expected:
            raise SessionCorrupted(f"{where}: batch {expected} is missing (found {name})")
        expected += 1
        if batch.seq <= upto:  # its value changes are already in the values record
            batch.changed, batch.removed = {}, []
        if batch.final and batch.seq >= session.head.next_seq:
            session.head.turns += 1  # appended by a writer that died before its head write
        session.apply(batch, name)


def without_unanswered(entries: list[HistoryEntry], unanswered: set[int]) -> list[HistoryEntry]:
    """``entries`` without the messages at ``unanswered`` and the results of their other calls.

    Chat APIs refuse a history with a tool call that has no result (or a
    result without its call), so a message whose calls were cut off goes
    whole, with the results its other calls did get.
    """
    dropped = {call.id for index in unanswered for call in entries[index].message.tool_calls}
    return [
        entry
        for index, entry in enumerate(entries)
        if index not in unanswered
        and not (entry.message.role == "tool" and entry.message.tool_call_id in dropped)
    ]
