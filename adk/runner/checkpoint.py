"""Writing and reading a run's records in a checkpoint store.

Layout, in the namespace ``run:<run id>``:

- ``meta``: format version, root agent, agent-tree signature, root input,
  session values at the start, streaming mode, durability (written once);
- ``j:<n>``: journal chunks, append-only (completed calls, delivered-event
  counts); ``js:<n>``: journal segments, every 32 chunks merged into one
  (:mod:`adk.runner.journal_records`);
- ``cp:<n>``: one small record per checkpoint (pending interrupts, answers
  given so far, the journal length it covers);
- ``head``: the run's latest status; ``claim:<...>``: single-shot resume claims.

Each piece of state is written once: a checkpoint never copies the journal,
and an agent tool's inner run journals into the same run. Every record is
read through its typed class (:mod:`adk.runner.records`), which checks its
structure and names the run, the record and the field when it is wrong.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from adk.agents.tree import AgentTree
from adk.events import InterruptInfo
from adk.messages import Message
from adk.runner.journal_records import (
    JournalChunk,
    JournalSegments,
    StoredJournal,
    chunk_name,
    delete_records,
    parse_chunks,
)
from adk.runner.records import (
    CheckpointInfo,
    CheckpointRecord,
    LoadedRun,
    RunHead,
    RunMeta,
    RunStatus,
    checkpoint_answers,
    parse_checkpoint,
    record_number,
)
from adk.state.blobs import BlobTable
from adk.state.interrupts import Approval
from adk.state.journal import Durability, JournalSink, RunJournal
from adk.state.lease import RunLease
from adk.state.serde import CheckpointError, dumps, loads
from adk.state.stores.base import CheckpointStore


class CheckpointNotFound(CheckpointError):
    """No checkpoint (or run) with this id is in the store (or it expired)."""


class CheckpointAlreadyResumed(CheckpointError):
    """This checkpoint was already resumed (a checkpoint can be resumed once)."""


class RunExists(CheckpointError):
    """A new run was given the id of a run already in the store; runs are never overwritten.

    Resume the existing run (``Runner.resume``) or delete it
    (``Runner.delete_run``) first, or start the new run under another id.
    """


def run_exists(run_id: str) -> RunExists:
    """The error refusing a new run whose id ``run_id`` is taken."""
    return RunExists(
        f"run {run_id!r} already exists in the checkpoint store: a new run never overwrites "
        "one; resume it (Runner.resume), delete it (Runner.delete_run) or use another run id"
    )


class CheckpointMismatch(CheckpointError):
    """The checkpoint was written by an agent tree that differs from the Runner's."""


def namespace(run_id: str) -> str:
    """The store namespace of ``run_id``."""
    return f"run:{run_id}"


def tree_signature(tree: AgentTree) -> list[list[str]]:
    """Name and type of every agent of ``tree``, root first."""
    signature = []
    for name in tree.names():
        agent = tree.get(name)
        signature.append([name, type(agent).__qualname__])
    return signature


def check_tree(stored: Sequence[Sequence[str]], tree: AgentTree) -> None:
    """Raise :class:`CheckpointMismatch` naming every difference between the two trees."""
    before = {name: kind for name, kind in stored}
    now = {name: kind for name, kind in tree_signature(tree)}
    problems = []
    for name, kind in before.items():
        if name not in now:
            problems.append(f"agent {name!r} ({kind}) is no longer in the tree")
        elif now[name] != kind:
            problems.append(f"agent {name!r} was a {kind}, is now a {now[name]}")
    for name, kind in now.items():
        if name not in before:
            problems.append(f"agent {name!r} ({kind}) is new")
    if stored and stored[0][0] != tree.root.name:
        problems.insert(0, f"root agent was {stored[0][0]!r}, is now {tree.root.name!r}")
    if problems:
        raise CheckpointMismatch(
            "the checkpoint does not match this Runner's agent tree: " + "; ".join(problems)
        )


def split_checkpoint_id(checkpoint_id: str) -> tuple[str, int | None]:
    """``(run id, checkpoint number)``; a bare run id gives ``(run id, None)``."""
    run_id, sep, number = checkpoint_id.rpartition("/")
    if sep and number.isdigit():
        return run_id, int(number)
    return checkpoint_id, None


class Checkpointer(JournalSink):
    """Persists one run: metadata, journal chunks, checkpoints and status."""

    def __init__(
        self,
        store: CheckpointStore,
        run_id: str,
        meta: dict[str, Any] | RunMeta,
        *,
        ttl: float | None = None,
        next_chunk: int = 0,
        next_checkpoint: int = 1,
        meta_written: bool = False,
        lease: RunLease | None = None,
        journal: StoredJournal | None = None,
    ) -> None:
        self.store = store
        self.run_id = run_id
        self.namespace = namespace(run_id)
        self._meta = meta
        self.ttl = ttl
        self.next_chunk = next_chunk
        self.next_checkpoint = next_checkpoint
        self.meta_written = meta_written
        self.stored_answers: dict[str, Any] = {}
        self.lease = lease
        self._batch: list[tuple[str, bytes]] | None = None
        self.segments = JournalSegments(journal)
        self._blobs = journal.blobs if journal is not None else None
        self.trace: str | None = None
        """The traced execution's root span (``<trace id>-<span id>``), kept with each
        checkpoint so the execution resuming it links to that trace (adk.tracing)."""

    @property
    def blobs(self) -> BlobTable:
        """The run's blobs: each is stored once in its records (:mod:`adk.state.blobs`).

        Made on first use: most runs never write a part.
        """
        if self._blobs is None:
            self._blobs = BlobTable()
        return self._blobs

    async def _put(self, name: str, value: Any) -> None:
        data = dumps(value)
        if self._batch is not None:
            self._batch.append((name, data))  # written with the rest of the checkpoint
        else:
            await self.store.put(self.namespace, name, data, ttl=self.ttl)

    async def ensure_meta(self) -> None:
        """Write the run's metadata once, before anything that refers to it.

        The record is created only if absent, so a new run can never
        overwrite a stored run that has the same id (:class:`RunExists`).
        A new run takes its lease right after: from now on another process
        could try to resume it.
        """
        if self.meta_written:
            return
        meta = self._meta.encode() if isinstance(self._meta, RunMeta) else self._meta
        if not await self.store.put_if_absent(self.namespace, "meta", dumps(meta), ttl=self.ttl):
            raise run_exists(self.run_id)
        self.meta_written = True
        note_input_blobs(meta.get("input"), self)
        if self.lease is not None and not self.lease.held:
            await self.lease.acquire()

    async def append(self, records: list[list[Any]], delivered: dict[str, int]) -> None:
        """Append one journal chunk (renewing the run's lease first)."""
        try:
            await self._append(records, delivered)
        except BaseException:
            if self._blobs is not None:
                self._blobs.rollback()  # the chunk was not stored: its blobs are stored again
            raise
        if self._batch is None and self._blobs is not None:
            self._blobs.commit()  # later chunks refer to the blobs this one stored

    async def _append(self, records: list[list[Any]], delivered: dict[str, int]) -> None:
        await self.ensure_meta()
        if self.lease is not None and self._batch is None:
            await self.lease.renew()
        number = self.next_chunk
        chunk = JournalChunk(records, delivered, first=number, last=number)
        await self._put(chunk_name(number), chunk.encode())
        self.next_chunk = number + 1  # only now: a chunk that failed is written again, no gap
        if self.segments.add(chunk):
            # A journal snapshot: written before the chunks it holds are deleted (a process
            # dying in between leaves chunks that a resume skips and the next one deletes).
            name, segment = self.segments.seal(self.next_checkpoint - 1)
            await self._put(name, segment)
            if self._batch is None:
                await self._delete_merged()

    async def _delete_merged(self) -> None:
        """Delete the chunk records that a written segment holds."""
        await delete_records(self.store, self.namespace, self.segments.take_merged())

    async def checkpoint(self, journal: RunJournal, interrupts: Sequence[InterruptInfo]) -> str:
        """Flush the journal and write a checkpoint for ``interrupts``; returns its id.

        Metadata (for a new run), the last journal chunk, the checkpoint and
        the run's status are written together, in one round trip.
        """
        await self.ensure_meta()
        self._batch = []
        try:
            await journal.flush()
            checkpoint_id = await self._checkpoint_record(journal, interrupts)
            # The lease is handed back in this same write (the next resume takes it over).
            head = RunHead("interrupted", checkpoint_id, self._hand_back())
            await self._put("head", head.encode())
            batch, self._batch = self._batch, None
            await self.store.put_many(self.namespace, batch, ttl=self.ttl)
        except BaseException:
            if self._blobs is not None:
                self._blobs.rollback()
            raise
        finally:
            self._batch = None
        if self._blobs is not None:
            self._blobs.commit()
        await self._delete_merged()
        return checkpoint_id

    async def _checkpoint_record(
        self, journal: RunJournal, interrupts: Sequence[InterruptInfo]
    ) -> str:
        number = self.next_checkpoint
        self.next_checkpoint += 1
        checkpoint_id = f"{self.run_id}/{number}"
        # Only the answers given since the previous checkpoint: a resume folds in every
        # earlier checkpoint's, so answers are stored once however many rounds there are.
        new_answers = {k: v for k, v in journal.answers.items() if k not in self.stored_answers}
        self.stored_answers.update(new_answers)
        self.segments.answers.update(new_answers)
        record = CheckpointRecord(
            id=checkpoint_id,
            chunks=self.next_chunk,
            interrupts=[[i.id, list(i.address), i.info] for i in interrupts],
            answers=new_answers,
            created=time.time(),
            trace=self.trace,
        )
        await self._put(f"cp:{number:06d}", record.encode())
        return checkpoint_id

    def _hand_back(self) -> str | None:
        """The token of the lease handed back, if this process held it."""
        if self.lease is not None and self.lease.held:
            return self.lease.hand_back()
        return None

    async def finish(self, journal: RunJournal, status: RunStatus) -> None:
        """Record that the run ended (call only for runs that have records in the store)."""
        await journal.flush()
        await self._put("head", RunHead(status, lease=self._hand_back()).encode())


def new_meta(
    *,
    root: str,
    tree: AgentTree,
    root_input: Sequence[Message],
    values: bytes,
    streaming: bool,
    durability: Durability,
    session_id: str,
    stored_session: bool = False,
    session_seq: int = 0,
    session_user: str = "",
) -> dict[str, Any]:
    """The metadata record of a new run (``values`` already encoded, checked up front)."""
    meta = RunMeta(
        root=root,
        tree=tree_signature(tree),
        input=list(root_input),
        values=values,
        streaming=streaming,
        durability=durability,
        session_id=session_id,
        created=time.time(),
        stored_session=stored_session,
        session_seq=session_seq,
        session_user=session_user,
    )
    return meta.encode()


async def load_run(store: CheckpointStore, checkpoint_or_run_id: str) -> LoadedRun:
    """Read a run's records: by checkpoint id (``<run>/<n>``) or by run id (its latest state).

    Every record read is checked: a damaged one raises
    :class:`CheckpointCorrupted` naming the run, the record and the field.
    """
    run_id, number = split_checkpoint_id(checkpoint_or_run_id)
    records: Mapping[str, bytes] = dict(await store.scan(namespace(run_id)))
    if "meta" not in records:
        raise CheckpointNotFound(
            f"no run {run_id!r} in the checkpoint store (never checkpointed, deleted or expired)"
        )
    where = f"run {run_id!r}"
    meta = RunMeta.parse(loads(records["meta"], f"metadata of {where}"), f"metadata of {where}")
    journal = parse_chunks(records, where, meta.blobs)
    head = RunHead("running")
    if "head" in records:
        head = RunHead.parse(loads(records["head"], f"status of {where}"), f"status of {where}")
    checkpoints = sorted(name for name in records if name.startswith("cp:"))
    if number is not None:
        name = f"cp:{number:06d}"
        if name not in records:
            raise CheckpointNotFound(f"no checkpoint {checkpoint_or_run_id!r} in run {run_id!r}")
        checkpoints = [cp for cp in checkpoints if cp <= name]
    # Of the earlier checkpoints only the answers are needed: those up to the last journal
    # segment are in the segments, the later ones are read from their records.
    answers = journal.sealed_answers()
    for name in checkpoints[:-1]:
        if (record_number(name, "cp:", 6) or 0) > journal.answered_upto:
            later = checkpoint_answers(run_id, name, records[name])
            journal.unsealed_answers.update(later)
            answers.update(later)
    checkpoint = None
    if checkpoints:
        checkpoint = parse_checkpoint(run_id, checkpoints[-1], records[checkpoints[-1]])
        answers.update(checkpoint.answers)
        if (record_number(checkpoints[-1], "cp:", 6) or 0) > journal.answered_upto:
            journal.unsealed_answers.update(checkpoint.answers)
    claims = frozenset(name for name in records if name.startswith("claim:"))
    count = sum(1 for name in records if name.startswith("cp:"))
    return LoadedRun(run_id, meta, journal, checkpoint, count, head, claims, answers)


def note_input_blobs(encoded_input: object, checkpointer: Checkpointer) -> None:
    """Note the blobs of a run's stored input (a written ``meta``): chunks refer to them."""
    if type(encoded_input) is not list:
        return
    for message in encoded_input:
        if type(message) is list and len(message) == 7:  # a message with parts
            for part in message[6]:
                data = part.get("d")
                if type(data) is bytes:
                    checkpointer.blobs.add(data)


async def list_checkpoints(
    store: CheckpointStore, run_id: str | None = None
) -> list[CheckpointInfo]:
    """Checkpoints of one run (or all runs) in ``store``; see :meth:`adk.Runner.checkpoints`.

    A record that cannot be read is listed with its error instead of failing
    the listing.
    """
    spaces = [namespace(run_id)] if run_id else await store.namespaces("run:")
    found = []
    for space in spaces:
        records = dict(await store.scan(space))
        run = space.removeprefix("run:")
        for name, data in sorted(records.items()):
            if name.startswith("cp:"):
                found.append(_checkpoint_info(run, name, data, f"claim:{name}" in records))
    return found


def _checkpoint_info(run_id: str, name: str, data: bytes, resumed: bool) -> CheckpointInfo:
    try:
        record = parse_checkpoint(run_id, name, data)
        interrupts = tuple(record.pending())
    except CheckpointError as exc:
        number = record_number(name, "cp:", 6)
        checkpoint_id = f"{run_id}/{name[3:] if number is None else number}"
        return CheckpointInfo(checkpoint_id, run_id, resumed=resumed, error=str(exc))
    return CheckpointInfo(record.id, run_id, interrupts, record.created, resumed)


def check_resumable(
    loaded: LoadedRun, checkpoint_id: str, answers: Mapping[str, Any], tree: AgentTree
) -> None:
    """Raise a clear error if ``loaded`` cannot be resumed with ``answers`` by ``tree``'s root."""
    if loaded.meta.root != tree.root.name:
        raise CheckpointError(
            f"checkpoint {checkpoint_id!r} belongs to a run of agent "
            f"{loaded.meta.root!r}, not {tree.root.name!r}"
        )
    check_tree(loaded.meta.tree, tree)
    if claim_name(checkpoint_id) in loaded.claims:
        raise CheckpointAlreadyResumed(
            f"checkpoint {checkpoint_id!r} was already resumed; resume the checkpoint of "
            "its latest interrupt instead (Runner.checkpoints lists them)"
        )
    # A stored session's turn records its end in the run first, then in the session: a run
    # that died in between is finished again (nothing runs twice) to append its turn.
    if loaded.status == "finished" and not loaded.meta.stored_session:
        raise CheckpointError(f"run {loaded.run_id!r} has already finished")
    pending = {info.id: info for info in loaded.pending}
    unknown = [key for key in answers if key not in pending]
    if unknown:
        listed = ", ".join(f"{i.id} ({i.info!r})" for i in pending.values()) or "none"
        raise CheckpointError(
            f"no pending interrupt {', '.join(map(repr, unknown))} in checkpoint "
            f"{checkpoint_id!r}; pending: {listed}"
        )
    for key, answer in answers.items():
        info = pending[key].info
        if isinstance(info, dict) and info.get("type") == "approval":
            try:
                Approval.parse(answer)  # checked now, before the checkpoint is used up
            except ValueError as exc:
                raise CheckpointError(f"answer to approval {key!r}: {exc}") from None


def claim_name(checkpoint_id: str) -> str | None:
    """The single-shot claim record of a checkpoint id (None for a run id)."""
    _, number = split_checkpoint_id(checkpoint_id)
    return f"claim:cp:{number:06d}" if number is not None else None
