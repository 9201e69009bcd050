"""Journal records of a run: chunks appended as it goes, and segments (journal snapshots).

A run's journal is written as numbered chunks (``j:<n>``). Once 32 of them
are written since the last segment, they are merged into one segment record
(``js:<n>``, named by its last chunk) that also holds the answers the
checkpoints stored meanwhile: a resume then reads and decodes a few records
instead of one per journal write and per checkpoint. Each chunk is merged
once; the merged chunk records are deleted after the segment is written.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from adk.state.blobs import BlobTable
from adk.state.journal import RunJournal
from adk.state.serde import CheckpointCorrupted, Fields, loads
from adk.state.stores.base import CheckpointStore


def answers_field(fields: Fields) -> dict[str, Any]:
    """The ``answers`` field of a checkpoint or segment record: a map with str keys."""
    answers = fields.mapping("answers")
    for key in answers:
        if type(key) is not str:
            raise fields.error("answers", "a map with str keys", key)
    return answers


JOURNAL_SEGMENT_CHUNKS = 32
"""Journal chunks merged into one segment record (a journal snapshot) once they are this many."""


def chunk_name(number: int) -> str:
    """The record name of journal chunk ``number``."""
    return f"j:{number:010d}"


def segment_name(last: int) -> str:
    """The record name of the journal segment that ends with chunk ``last``."""
    return f"js:{last:010d}"


class StoredJournal:
    """A run's journal as stored: segments, then the chunks written after them, in order.

    ``next_chunk`` is the number the next chunk gets; ``sealed`` the last
    chunk number held in segments (-1 if none); ``stale`` names chunk
    records a segment already holds (left by a process that died before
    deleting them), deleted with the next segment. (A plain class: it is
    defined when adk is imported, and a dataclass costs a millisecond.)
    """

    __slots__ = (
        "answered_upto",
        "blobs",
        "chunks",
        "next_chunk",
        "sealed",
        "stale",
        "unsealed_answers",
    )

    def __init__(self, chunks: list[JournalChunk], blobs: BlobTable | None = None) -> None:
        self.chunks = chunks
        self.blobs = blobs if blobs is not None else BlobTable()
        """The run's blobs: the input's, then each chunk's as it is loaded (in order)."""
        self.next_chunk = 0
        self.sealed = -1
        self.stale: list[str] = []
        self.answered_upto = 0
        """The last checkpoint whose answers the segments hold."""
        self.unsealed_answers: dict[str, Any] = {}
        """Answers stored by checkpoints after ``answered_upto`` (the next segment holds them)."""

    def sealed_answers(self) -> dict[str, Any]:
        """Every answer the segments hold, in order."""
        answers: dict[str, Any] = {}
        for chunk in self.chunks:
            if chunk.first <= self.sealed:
                answers.update(chunk.answers)
        return answers

    @property
    def unsealed(self) -> list[JournalChunk]:
        """The chunks after the last segment (the next segment merges them)."""
        return [chunk for chunk in self.chunks if chunk.first > self.sealed]


def parse_chunks(
    records: Mapping[str, bytes], where: str, blobs: BlobTable | None = None
) -> StoredJournal:
    """Decode and check the journal segments and chunks among a run's ``records``, in order.

    ``where`` names the run (``run '<id>'``) in errors. Segments must cover
    chunks 0 to n without a gap, and the chunks after them must follow on:
    a missing record raises :class:`CheckpointCorrupted`. ``blobs``: the
    blobs of the run's input (chunks may refer to them).
    """
    journal = StoredJournal([], blobs)
    for name, data in sorted(records.items()):  # "js:" sorts after "j:": segments are checked
        if name.startswith("js:"):  # in order below, chunks after them
            what = f"journal segment {name} of {where}"
            if len(name) != 13 or not name[3:].isdigit():
                raise CheckpointCorrupted(f"{what}: not a record name adk writes")
            segment = JournalChunk.parse(loads(data, what), what, segment=True)
            if segment.first != journal.sealed + 1 or segment.last != int(name[3:]):
                raise CheckpointCorrupted(
                    f"{what} holds chunks {segment.first} to {segment.last}, but chunk "
                    f"{journal.sealed + 1} comes next (a record is missing)"
                )
            segment.blobs = journal.blobs
            journal.chunks.append(segment)
            journal.sealed = segment.last
            journal.answered_upto = segment.answered_upto
    journal.next_chunk = journal.sealed + 1
    for name, data in sorted(records.items()):
        if name.startswith("j:"):
            what = f"journal chunk {name} of {where}"
            if len(name) != 12 or not name[2:].isdigit():
                raise CheckpointCorrupted(f"{what}: not a record name adk writes")
            number = int(name[2:])
            if number <= journal.sealed:
                journal.stale.append(name)
                continue
            if number != journal.next_chunk:
                raise CheckpointCorrupted(f"{what}: chunk {journal.next_chunk} is missing")
            chunk = JournalChunk.parse(loads(data, what), what)
            chunk.first = chunk.last = number
            chunk.blobs = journal.blobs
            journal.chunks.append(chunk)
            journal.next_chunk = number + 1
    return journal


class JournalChunk:
    """A ``j:<n>`` record (the calls completed since the previous chunk) or a segment.

    ``records`` are ``[key, kind, data]`` lists, checked entry by entry as
    they are folded into a journal (:meth:`load_into`), which reads each one
    anyway; ``delivered`` counts the events each agent invocation delivered.
    A segment (``js:<n>``, a journal snapshot) is chunks ``first`` to
    ``last`` merged: their records in order, the highest delivered counts.
    """

    __slots__ = (
        "answered_upto",
        "answers",
        "blobs",
        "delivered",
        "first",
        "last",
        "records",
        "where",
    )

    def __init__(
        self,
        records: list[list[Any]],
        delivered: dict[str, int],
        where: str = "journal chunk",
        first: int = 0,
        last: int = 0,
    ) -> None:
        self.records = records
        self.delivered = delivered
        self.where = where
        """Names the record in errors (``journal chunk j:<n> of run '<id>'``)."""
        self.first = first
        self.last = last
        self.answers: dict[str, Any] = {}
        """For a segment: the answers stored by checkpoints after the previous segment's, up
        to ``answered_upto`` (a resume then decodes only the checkpoints after it)."""
        self.answered_upto = 0
        self.blobs: BlobTable | None = None
        """The run's blob table, shared by its chunks: a chunk may refer to an earlier one's."""

    @classmethod
    def parse(cls, raw: object, where: str, *, segment: bool = False) -> JournalChunk:
        """The record decoded from the store; :class:`CheckpointCorrupted` if malformed."""
        if type(raw) is dict and not segment:
            records, delivered = raw.get("r"), raw.get("d")
            if type(records) is list and type(delivered) is dict:
                return cls(records, delivered, where)
        fields = Fields(raw, where)  # says what is wrong
        chunk = cls(fields.sequence("r"), fields.mapping("d"), where)
        if segment:
            chunk.first, chunk.last = fields.integer("first"), fields.integer("last")
            chunk.answered_upto = fields.integer("upto")
            chunk.answers = answers_field(fields)
        return chunk

    @classmethod
    def merged(cls, chunks: Sequence[JournalChunk]) -> JournalChunk:
        """One segment holding ``chunks`` (consecutive, oldest first)."""
        records: list[list[Any]] = []
        delivered: dict[str, int] = {}
        for chunk in chunks:
            records.extend(chunk.records)
            for invocation, count in chunk.delivered.items():
                if count > delivered.get(invocation, 0):
                    delivered[invocation] = count
        return cls(records, delivered, "journal segment", chunks[0].first, chunks[-1].last)

    def load_into(self, journal: RunJournal) -> None:
        """Fold the chunk into ``journal``, checking every entry's structure."""
        journal.load_chunk(self.records, self.delivered, self.where, self.blobs)

    def encode(self) -> dict[str, Any]:
        """The record as stored."""
        return {"r": self.records, "d": self.delivered}

    def encode_segment(self) -> dict[str, Any]:
        """The record as stored, for a segment."""
        return {
            "first": self.first,
            "last": self.last,
            "r": self.records,
            "d": self.delivered,
            "answers": self.answers,
            "upto": self.answered_upto,
        }


class JournalSegments:
    """The chunks a run wrote since its last journal segment, and when to merge them."""

    __slots__ = ("answers", "merged", "unsealed")

    def __init__(self, journal: StoredJournal | None = None) -> None:
        self.unsealed: list[JournalChunk] = journal.unsealed if journal is not None else []
        """Chunks written since the last segment (the next one merges them)."""
        self.merged: list[str] = list(journal.stale) if journal is not None else []
        """Chunk records a segment holds, to delete once that segment is written."""
        self.answers: dict[str, Any] = dict(journal.unsealed_answers) if journal is not None else {}
        """Answers stored by checkpoints since the last segment (the next one holds them)."""

    def add(self, chunk: JournalChunk) -> bool:
        """Note a written chunk; True when the unsealed chunks are due to be merged."""
        self.unsealed.append(chunk)
        return len(self.unsealed) >= JOURNAL_SEGMENT_CHUNKS

    def seal(self, answered_upto: int) -> tuple[str, dict[str, Any]]:
        """The segment record (name, value) merging the unsealed chunks and answers."""
        segment = JournalChunk.merged(self.unsealed)
        segment.answers, self.answers = self.answers, {}
        segment.answered_upto = answered_upto
        self.merged.extend(chunk_name(chunk.first) for chunk in self.unsealed)
        self.unsealed = []
        return segment_name(segment.last), segment.encode_segment()

    def take_merged(self) -> list[str]:
        """The names of the merged chunk records to delete now (then forgotten)."""
        merged, self.merged = self.merged, []
        return merged


async def delete_records(store: CheckpointStore, namespace: str, names: Sequence[str]) -> None:
    """Delete records of one namespace: in one round trip where the store can."""
    if not names:
        return
    delete_many = getattr(store, "delete_many", None)
    if delete_many is not None:  # the built-in stores
        await delete_many(namespace, list(names))
    else:
        for name in names:
            await store.delete(namespace, name)
