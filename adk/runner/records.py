"""The typed records of a run in a checkpoint store, checked field by field when read.

A record that passes its checksum may still have the wrong structure: written
by another program or another version, or altered by someone with write
access to the store. Each record is read through a ``parse`` that checks
every field's type by hand (a dict lookup and an exact type check each; no
pydantic per record) and raises :class:`~adk.CheckpointCorrupted` naming the
run, the record and the field, instead of a ``KeyError`` somewhere later.
The same classes write the records (``encode``), so both sides agree on the
keys; the stored format is the one adk always wrote (format version 1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from adk.events import InterruptInfo
from adk.messages import Message
from adk.runner.journal_records import StoredJournal, answers_field
from adk.state.blobs import BlobTable
from adk.state.journal import Durability, decode_message, encode_message
from adk.state.serde import CheckpointCorrupted, Fields, loads

RunStatus = Literal["running", "interrupted", "finished", "failed"]
_STORED_STATUSES = ("interrupted", "finished", "failed")
_DURABILITIES = ("interrupt", "step")


@dataclass(slots=True)
class RunMeta:
    """A run's ``meta`` record: what it started from, written once at its first store write.

    A resume runs the run again from these: the root agent and the
    agent-tree signature it is checked against, the input messages, the
    starting session values (encoded, decoded only when resuming), the
    streaming and durability modes and the session id.
    """

    root: str
    tree: list[list[str]]
    input: list[Message]
    values: bytes
    streaming: bool
    durability: Durability
    session_id: str
    created: float
    stored_session: bool = False
    """The run is a turn of a stored session: its earlier turns are read from the session."""
    session_seq: int = 0
    """The session's next batch number when the turn started (it may resume only if unchanged)."""
    session_user: str = ""
    """The user the session's turn was taken for."""
    blobs: BlobTable = field(default_factory=BlobTable, repr=False, compare=False)
    """The blobs of the input's parts (not a stored field): the run's journal chunks refer to
    them by digest instead of storing them again (:mod:`adk.state.blobs`)."""

    @classmethod
    def parse(cls, raw: object, where: str) -> RunMeta:
        """The record decoded from the store; :class:`CheckpointCorrupted` if malformed."""
        fields = Fields(raw, where)
        tree = fields.sequence("tree")
        for index, pair in enumerate(tree):
            if type(pair) is not list or len(pair) != 2 or not all(type(p) is str for p in pair):
                raise fields.error(f"tree[{index}]", "a pair of str [name, class]", pair)
        messages = []
        blobs = BlobTable()
        for index, data in enumerate(fields.sequence("input")):
            try:
                messages.append(decode_message(data, blobs))
            except CheckpointCorrupted as exc:
                raise CheckpointCorrupted(f"{where}, input {index}: {exc}") from None
        return cls(
            root=fields.text("root"),
            tree=tree,
            input=messages,
            values=fields.binary("values"),
            streaming=fields.flag("streaming"),
            durability=cast(Durability, fields.choice("durability", _DURABILITIES)),
            session_id=fields.text("session_id"),
            created=fields.number("created"),
            stored_session=fields.raw.get("stored_session") is True,
            session_seq=fields.integer("session_seq") if "session_seq" in fields.raw else 0,
            session_user=fields.text("session_user") if "session_user" in fields.raw else "",
            blobs=blobs,
        )

    def encode(self) -> dict[str, Any]:
        """The record as stored (a blob repeated in the input is stored once)."""
        blobs = BlobTable()
        return {
            "root": self.root,
            "tree": self.tree,
            "input": [encode_message(m, blobs) for m in self.input],
            "values": self.values,
            "streaming": self.streaming,
            "durability": self.durability,
            "session_id": self.session_id,
            "created": self.created,
            **(
                {
                    "stored_session": True,
                    "session_seq": self.session_seq,
                    "session_user": self.session_user,
                }
                if self.stored_session
                else {}
            ),
        }


@dataclass(slots=True)
class RunHead:
    """A run's ``head`` record: its latest status, overwritten at every pause and at its end.

    ``status`` is ``"running"`` for a run with no such record yet;
    ``checkpoint`` is the latest checkpoint of an interrupted run (its id), and
    ``lease`` the lease token its last holder handed back (the next resume
    takes the lease over).
    """

    status: RunStatus
    checkpoint: str | None = None
    lease: str | None = None

    @classmethod
    def parse(cls, raw: object, where: str) -> RunHead:
        """The record decoded from the store; :class:`CheckpointCorrupted` if malformed."""
        fields = Fields(raw, where)
        return cls(
            status=cast(RunStatus, fields.choice("status", _STORED_STATUSES)),
            checkpoint=fields.optional_text("checkpoint"),
            lease=fields.optional_text("lease"),
        )

    def encode(self) -> dict[str, Any]:
        """The record as stored (absent fields are left out)."""
        head: dict[str, Any] = {"status": self.status}
        if self.checkpoint is not None:
            head["checkpoint"] = self.checkpoint
        if self.lease is not None:
            head["lease"] = self.lease
        return head


@dataclass(slots=True)
class CheckpointRecord:
    """A ``cp:<n>`` record: one pause of a run.

    It refers to the journal by length (``chunks``) instead of copying it,
    and holds only the answers given since the previous checkpoint (a resume
    folds in every earlier checkpoint's). ``interrupts`` are stored as
    ``[id, address, info]`` lists; :meth:`pending` decodes them.
    """

    id: str
    chunks: int
    interrupts: list[list[Any]]
    answers: dict[str, Any]
    created: float
    trace: str | None = None
    """The root span of the traced execution that paused (``<trace id>-<span id>``), if any."""

    @classmethod
    def parse(cls, raw: object, where: str, checkpoint_id: str) -> CheckpointRecord:
        """The record of checkpoint ``checkpoint_id``; :class:`CheckpointCorrupted` if malformed.

        Its ``id`` must be ``checkpoint_id``: a resume claims the checkpoint
        by that id.
        """
        fields = Fields(raw, where)
        stored_id = fields.text("id")
        if stored_id != checkpoint_id:
            raise CheckpointCorrupted(
                f"{where}: field 'id' must be {checkpoint_id!r}, got {stored_id[:80]!r}"
            )
        interrupts = fields.sequence("interrupts")
        for index, interrupt in enumerate(interrupts):
            if type(interrupt) is not list or len(interrupt) != 3:
                raise fields.error(
                    f"interrupts[{index}]", "a list of 3 [id, address, info]", interrupt
                )
            interrupt_id, address, _ = interrupt
            if type(interrupt_id) is not str:
                raise fields.error(f"interrupts[{index}].id", "a str", interrupt_id)
            if type(address) is not list or not all(type(part) is str for part in address):
                raise fields.error(f"interrupts[{index}].address", "a list of str", address)
        answers = answers_field(fields)
        return cls(
            stored_id,
            fields.integer("chunks"),
            interrupts,
            answers,
            fields.number("created"),
            fields.optional_text("trace"),
        )

    def pending(self) -> list[InterruptInfo]:
        """The interrupts the checkpoint waits on."""
        return decode_interrupts(self.interrupts)

    def encode(self) -> dict[str, Any]:
        """The record as stored."""
        return {
            "id": self.id,
            "chunks": self.chunks,
            "interrupts": self.interrupts,
            "answers": self.answers,
            "created": self.created,
            **({"trace": self.trace} if self.trace is not None else {}),
        }


def decode_interrupts(records: Sequence[Sequence[Any]]) -> list[InterruptInfo]:
    """Interrupts as a checkpoint record stores them (checked by :meth:`CheckpointRecord.parse`)."""
    return [InterruptInfo(id=i, address=tuple(a), info=info) for i, a, info in records]


def record_number(name: str, prefix: str, digits: int) -> int | None:
    """The number in a record name adk writes (``cp:000002``), None for any other name."""
    number = name[len(prefix) :]
    return int(number) if len(number) == digits and number.isdigit() else None


def parse_checkpoint(run_id: str, name: str, data: bytes) -> CheckpointRecord:
    """Decode and check the stored checkpoint record ``name`` of run ``run_id``."""
    where = f"checkpoint {name} of run {run_id!r}"
    digits = name[3:]
    if len(digits) != 6 or not digits.isdigit():
        raise CheckpointCorrupted(f"{where}: not a record name adk writes")
    return CheckpointRecord.parse(loads(data, where), where, f"{run_id}/{int(digits)}")


def checkpoint_answers(run_id: str, name: str, data: bytes) -> dict[str, Any]:
    """Only the answers of the stored checkpoint record ``name`` of run ``run_id``, checked.

    All a resume needs of the checkpoints before the one it resumes (a run
    may have hundreds); their other fields are left unread.
    """
    where = f"checkpoint {name} of run {run_id!r}"
    return answers_field(Fields(loads(data, where), where))


class LoadedRun:
    """Everything read back from the store to resume a run, each record checked."""

    def __init__(
        self,
        run_id: str,
        meta: RunMeta,
        journal: StoredJournal,
        checkpoint: CheckpointRecord | None,
        checkpoint_count: int,
        head: RunHead,
        claims: frozenset[str] = frozenset(),
        answers: dict[str, Any] | None = None,
    ) -> None:
        self.run_id = run_id
        self.meta = meta
        """The run's metadata record."""
        self.journal = journal
        """The journal as stored (segments and chunks, and where the next chunk goes)."""
        self.chunks = journal.chunks
        """The journal's segments and chunks, in order."""
        self.checkpoint = checkpoint
        """The checkpoint being resumed (the latest one for a run id), if the run paused."""
        self.checkpoint_count = checkpoint_count
        self.head = head
        """The run's status record (``running`` if it has none yet)."""
        self.claims = claims
        """Names of the resume claims already taken (``claim:cp:<n>``, ``claim:j:<n>``)."""
        self.answers = answers or {}
        """Every answer given up to this checkpoint (they are needed again when replaying)."""

    @property
    def status(self) -> RunStatus:
        """``running``, ``interrupted``, ``finished`` or ``failed``."""
        return self.head.status

    @property
    def released_lease(self) -> str | None:
        """The lease token the run's last holder handed back with its status record."""
        return self.head.lease

    @property
    def root_input(self) -> list[Message]:
        """The messages the run started with."""
        return self.meta.input

    @property
    def pending(self) -> list[InterruptInfo]:
        """The interrupts the checkpoint waits on."""
        return [] if self.checkpoint is None else self.checkpoint.pending()

    def session_values(self) -> dict[str, Any]:
        """The session values the run started with."""
        where = f"session values of run {self.run_id!r}"
        values = loads(self.meta.values, where)
        if type(values) is not dict or not all(type(key) is str for key in values):
            raise CheckpointCorrupted(f"{where} must be a map with str keys")
        return values


@dataclass(frozen=True, slots=True)
class CheckpointInfo:
    """One checkpoint in the store, as :meth:`adk.Runner.checkpoints` lists it.

    - ``id``: what to pass to :meth:`~adk.Runner.resume` (``"<run id>/<n>"``);
    - ``run_id``: the run it belongs to;
    - ``interrupts``: what it waits on (the answers' keys are their ids);
    - ``created``: when it was written (a UNIX time);
    - ``resumed``: whether it was already resumed (a checkpoint is resumed once);
    - ``error``: why its record cannot be read, or None. A damaged record
      is listed with its error, no interrupts and no ``created`` instead of
      failing the whole listing: one bad record does not hide the other
      runs' checkpoints. Resuming it raises :class:`~adk.CheckpointCorrupted`
      (or the error shown).
    """

    id: str
    run_id: str
    interrupts: tuple[InterruptInfo, ...] = ()
    created: float | None = None
    resumed: bool = False
    error: str | None = None
