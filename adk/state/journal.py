"""The run journal: what completed, so a resumed run replays instead of repeating.

A resumed run executes its agents again from the start. Every model call
and tool call has a deterministic key (the address of the agent invocation
plus the iteration and call index); when the journal holds a result for
that key, the result is used and nothing is called. Per agent invocation
the journal also counts the events already delivered, so a replay does not
hand the same events to the caller twice.

Records are buffered in memory and appended to the store as chunks: at
every interrupt (durability ``"interrupt"``), or after every completed
call (durability ``"step"``).
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable
from typing import Any, Literal

import anyio
from pydantic import ValidationError

from adk.events import AgentAction, AgentEvent
from adk.messages import Message, ToolCall, Usage, trusted
from adk.state.blobs import BlobTable, decode_parts, encode_parts
from adk.state.serde import CheckpointCorrupted, field_error, first_problem, type_name

Durability = Literal["interrupt", "step"]

# Session-value writes made while a tool call runs are journaled with its result, so a
# replay that skips the call still re-applies them. Nested calls (agent tools) record
# into every enclosing call's dict.
_RECORDERS: contextvars.ContextVar[tuple[dict[str, Any], ...]] = contextvars.ContextVar(
    "adk_session_recorders", default=()
)


def record_session_write(key: str, value: Any) -> None:
    """Note a session-value write for every tool call currently running in this task."""
    for recorder in _RECORDERS.get():
        recorder[key] = value


def start_recording() -> tuple[dict[str, Any], contextvars.Token[tuple[dict[str, Any], ...]]]:
    """Begin recording session writes for one tool call."""
    updates: dict[str, Any] = {}
    token = _RECORDERS.set((*_RECORDERS.get(), updates))
    return updates, token


def stop_recording(token: contextvars.Token[tuple[dict[str, Any], ...]]) -> None:
    """End recording started by :func:`start_recording`."""
    _RECORDERS.reset(token)


class ToolRecord:
    """A completed tool call as journaled."""

    __slots__ = ("actions", "content", "failed", "parts", "return_directly", "seq", "updates")

    def __init__(
        self,
        content: str,
        *,
        failed: bool,
        return_directly: bool,
        actions: list[AgentAction],
        updates: dict[str, Any],
        seq: int = 0,
        parts: tuple[Any, ...] = (),
    ) -> None:
        self.content = content
        self.parts = parts
        """The result's parts when it holds images, audio or files (``Message.parts``)."""
        self.failed = failed
        self.return_directly = return_directly
        self.actions = actions
        self.updates = updates
        self.seq = seq

    def encode(self, blobs: BlobTable | None = None) -> dict[str, Any]:
        """The record as stored (``blobs``: the run's blob table, see :mod:`adk.state.blobs`)."""
        data: dict[str, Any] = {"t": self.content}
        if self.parts:
            data["p"] = encode_parts(self.parts, blobs)
        if self.failed:
            data["f"] = True
        if self.return_directly:
            data["rd"] = True
        if self.actions:
            data["a"] = [a.model_dump(exclude_defaults=True) for a in self.actions]
        if self.updates:
            data["u"] = self.updates
        return data

    @classmethod
    def decode(cls, data: dict[str, Any], seq: int, blobs: BlobTable | None = None) -> ToolRecord:
        """The record :meth:`encode` stored; :class:`CheckpointCorrupted` naming a bad field."""
        if type(data) is not dict:
            raise CheckpointCorrupted(f"must be a map of tool-call fields, got {type_name(data)}")
        content = data.get("t")
        if type(content) is not str:
            raise field_error("", "t", "a str", content)
        failed, direct = data.get("f", False), data.get("rd", False)
        if type(failed) is not bool or type(direct) is not bool:
            field = "f" if type(failed) is not bool else "rd"
            raise field_error("", field, "a bool", data[field])
        actions, updates = data.get("a", []), data.get("u", {})
        if type(actions) is not list:
            raise field_error("", "a", "a list of actions", actions)
        if type(updates) is not dict or not all(type(key) is str for key in updates):
            raise field_error("", "u", "a map of session values by name", updates)
        decoded = []
        for index, action in enumerate(actions):
            try:
                decoded.append(AgentAction.model_validate(action))
            except ValidationError as exc:
                problem = f"field 'a[{index}]' is not an action: {first_problem(exc)}"
                raise CheckpointCorrupted(problem) from None
        return cls(
            content,
            failed=failed,
            return_directly=direct,
            actions=decoded,
            updates=dict(updates),
            seq=seq,
            parts=decode_parts(data["p"], blobs) if "p" in data else (),
        )


_ROLES = ("system", "user", "assistant", "tool")


def encode_message(message: Message, blobs: BlobTable | None = None) -> list[Any]:
    """A compact, msgpack-friendly form of ``message`` (positional, no field names).

    A multimodal message has a 7th field, its parts (:mod:`adk.state.blobs`):
    with ``blobs``, a blob already stored in a record sharing the table is
    written as its digest only.
    """
    usage = message.usage
    encoded = [
        _ROLES.index(message.role),
        message.content,
        [[c.id, c.name, c.arguments] for c in message.tool_calls],
        message.tool_call_id,
        message.name,
        [usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens] if usage else None,
    ]
    if message.parts:
        encoded.append(encode_parts(message.parts, blobs))
    return encoded


def decode_message(data: list[Any], blobs: BlobTable | None = None) -> Message:
    """The message :func:`encode_message` encoded (``blobs``: the table it was written with).

    Stored data is checked field by field (it may be damaged or not adk's):
    anything malformed raises :class:`CheckpointCorrupted` naming the field.
    """
    if type(data) is not list or not 6 <= len(data) <= 7:
        raise CheckpointCorrupted(f"must be a list of 6 or 7 message fields, got {type_name(data)}")
    role, content, calls, tool_call_id, name, usage = data[:6]
    if type(role) is not int or not 0 <= role < len(_ROLES):
        raise field_error("", "role", "a role number from 0 to 3", role)
    if type(content) is not str:
        raise field_error("", "content", "a str", content)
    if type(calls) is not list:
        raise field_error("", "tool_calls", "a list", calls)
    for index, call in enumerate(calls):  # explicit checks: this runs for every model reply
        if not (
            type(call) is list
            and len(call) == 3
            and type(call[0]) is type(call[1]) is type(call[2]) is str
        ):
            raise field_error("", f"tool_calls[{index}]", "3 str [id, name, arguments]", call)
    if tool_call_id is not None and type(tool_call_id) is not str:
        raise field_error("", "tool_call_id", "a str or nil", tool_call_id)
    if name is not None and type(name) is not str:
        raise field_error("", "name", "a str or nil", name)
    if usage is not None and not (
        type(usage) is list
        and len(usage) == 3
        and type(usage[0]) is type(usage[1]) is type(usage[2]) is int
    ):
        raise field_error("", "usage", "3 int [prompt, completion, cached] or nil", usage)
    # Every field is checked above: built without validating again (as Message's own
    # constructors do), exactly what Message(role=..., content=..., ...) would give.
    if usage is not None:
        usage = trusted(
            Usage,
            {"prompt_tokens": usage[0], "completion_tokens": usage[1], "cached_tokens": usage[2]},
            {"prompt_tokens", "completion_tokens", "cached_tokens"},
        )
    tool_calls = tuple(
        trusted(ToolCall, {"id": i, "name": n, "arguments": a}, {"id", "name", "arguments"})
        for i, n, a in calls
    )
    parts = decode_parts(data[6], blobs) if len(data) == 7 else ()
    if parts and _ROLES[role] not in ("user", "tool"):
        raise CheckpointCorrupted(f"field 'parts': a {_ROLES[role]} message cannot hold parts")
    values: dict[str, Any] = {"role": _ROLES[role], "content": content, "tool_calls": tool_calls}
    values.update(tool_call_id=tool_call_id, name=name, usage=usage, parts=parts)  # field order
    fields = set(values)
    if not parts:
        fields.discard("parts")  # as Message(...) would have it: parts were not given
    return trusted(Message, values, fields)


class JournalSink:
    """Where the journal's chunks go (the Runner's checkpoint writer implements it)."""

    @property
    def blobs(self) -> BlobTable | None:
        """The run's blob table: records encoded with it store each blob once (committed by
        the sink once a write reached the store, rolled back if it failed); None: none."""
        return None

    async def append(self, records: list[list[Any]], delivered: dict[str, int]) -> None:
        """Persist one chunk of records and delivered-event counts."""
        raise NotImplementedError


class RunJournal:
    """The journal and replay state of one run (shared by its agent-tool sub-runs)."""

    __slots__ = (
        "_expected",
        "_lock",
        "_models",
        "_occurrences",
        "_read",
        "_seq",
        "_tools",
        "_unflushed",
        "_values",
        "answers",
        "delivered_before",
        "durability",
        "produced",
        "replayed",
        "sink",
    )

    def __init__(
        self,
        *,
        durability: Durability = "interrupt",
        answers: dict[str, Any] | None = None,
    ) -> None:
        self.durability = durability
        self.answers: dict[str, Any] = dict(answers) if answers else {}
        self._read: set[str] = set()
        self._expected: frozenset[str] = frozenset()
        self._models: dict[str, Message] = {}
        self._tools: dict[str, ToolRecord] = {}
        self._values: dict[str, Any] = {}
        self._seq = 0
        self._unflushed: list[list[Any]] = []
        self.delivered_before: dict[str, int] = {}
        self.produced: dict[str, int] = {}
        self._occurrences: dict[str, int] = {}
        self.sink: JournalSink | None = None
        self._lock: anyio.Lock | None = None  # created on first flush: most runs never flush
        self.replayed: dict[int, AgentEvent] = {}
        """Events produced again while replaying (delivered before the checkpoint), by ``id()``.

        Holding the events keeps their ids unique; the Runner drops each one
        instead of handing it to the caller again.
        """

    # -- loading a previous execution ------------------------------------------------

    def load_chunk(
        self,
        records: list[list[Any]],
        delivered: dict[str, int],
        where: str = "journal chunk",
        blobs: BlobTable | None = None,
    ) -> None:
        """Fold one stored chunk in (chunks are loaded in order).

        Each entry is checked as it is read (the chunk may be damaged or not
        adk's): a malformed one raises :class:`CheckpointCorrupted` naming
        ``where`` (the chunk), the entry and the field.
        """
        for index, entry in enumerate(records):
            if type(entry) is not list or len(entry) != 3:
                raise CheckpointCorrupted(
                    f"{where}, record {index}: must be a list of 3 [key, kind, data], "
                    f"got {type_name(entry)}"
                )
            key, kind, data = entry
            self._seq += 1
            try:
                if type(key) is not str:
                    raise field_error("", "key", "a str", key)
                if kind == "m":
                    self._models[key] = decode_message(data, blobs)
                elif kind == "t":
                    self._tools[key] = ToolRecord.decode(data, self._seq, blobs)
                elif kind == "v":
                    self._values[key] = data
                else:
                    raise field_error("", "kind", "'m', 't' or 'v'", kind)
            except CheckpointCorrupted as exc:
                label = f" ({key[:80]!r})" if type(key) is str else ""
                raise CheckpointCorrupted(f"{where}, record {index}{label}: {exc}") from None
        for invocation, count in delivered.items():
            if type(count) is not int or type(invocation) is not str:
                label = repr(invocation[:80]) if type(invocation) is str else type_name(invocation)
                raise CheckpointCorrupted(
                    f"{where}: delivered count of {label} must be an int, got {type_name(count)}"
                )
            if count > self.delivered_before.get(invocation, 0):
                self.delivered_before[invocation] = count

    # -- addresses and events ---------------------------------------------------------

    def occurrence(self, address: str) -> int:
        """How many agents started at ``address`` before this one (0 for the first)."""
        count = self._occurrences.get(address, 0)
        self._occurrences[address] = count + 1
        return count

    def count_event(self, invocation: str, seq: int) -> bool:
        """Count one delivered event; True if the previous execution already delivered it."""
        self.produced[invocation] = seq + 1
        return seq < self.delivered_before.get(invocation, 0)

    def delivered_updates(self) -> dict[str, int]:
        """Invocations whose delivered count grew in this execution."""
        before = self.delivered_before
        return {k: v for k, v in self.produced.items() if v > before.get(k, 0)}

    def mark_replayed(self, event: AgentEvent) -> None:
        """Tag ``event`` as produced again while replaying (its caller already has it)."""
        self.replayed[id(event)] = event

    def is_replayed(self, event: AgentEvent) -> bool:
        """Whether ``event`` carries the replay tag."""
        return self.replayed.get(id(event)) is event

    def take_replayed(self, event: AgentEvent) -> bool:
        """Remove ``event``'s replay tag; True if it had one (the caller drops the event)."""
        replayed = self.replayed
        return bool(replayed) and replayed.pop(id(event), None) is event

    # -- answers ------------------------------------------------------------------------

    def answer(self, interrupt: str, default: Any = None) -> Any:
        """The answer given to interrupt ``interrupt`` (``default`` if none); noted as read."""
        answers = self.answers
        if interrupt in answers:
            self._read.add(interrupt)
            return answers[interrupt]
        return default

    def has_answer(self, interrupt: str) -> bool:
        """Whether interrupt ``interrupt`` was answered (noted as read when it was)."""
        if interrupt in self.answers:
            self._read.add(interrupt)
            return True
        return False

    def expect_reads(self, interrupts: Iterable[str]) -> None:
        """Note the interrupts answered by this resume: the code that raised them runs again
        and must read their answers (see :meth:`unread`)."""
        self._expected = frozenset(interrupts)

    @property
    def expecting(self) -> bool:
        """Whether this execution was given answers to read (a resume with answers)."""
        return bool(self._expected)

    def unread(self) -> list[str]:
        """Interrupts answered by this resume whose answer no code has read (so far)."""
        expected = self._expected
        return sorted(expected - self._read) if expected else []

    # -- calls --------------------------------------------------------------------------

    def model_result(self, key: str) -> Message | None:
        """The journaled reply of model call ``key``, if it completed before."""
        return self._models.get(key)

    def tool_result(self, key: str) -> ToolRecord | None:
        """The journaled outcome of tool call ``key``, if it completed before."""
        return self._tools.get(key)

    def note_model(self, key: str, message: Message) -> None:
        """Journal a completed model call (stored at the next :meth:`flush`)."""
        self._seq += 1
        self._models[key] = message
        self._unflushed.append([key, "m", message])

    def note_tool(self, key: str, record: ToolRecord) -> None:
        """Journal a completed tool call (stored at the next :meth:`flush`)."""
        self._seq += 1
        record.seq = self._seq
        self._tools[key] = record
        self._unflushed.append([key, "t", record])

    def value(self, key: str) -> Any:
        """The journaled value ``key`` (a decision such as a guardrail verdict), or None."""
        return self._values.get(key)

    def note_value(self, key: str, value: Any) -> None:
        """Journal a decision as a plain value (checkpointable data, not None).

        For decisions a resumed run must not take again (guardrail verdicts):
        the code that took it reads :meth:`value` first.
        """
        self._seq += 1
        self._values[key] = value
        self._unflushed.append([key, "v", value])

    @property
    def step(self) -> bool:
        """Whether every completed call is written before the run moves on."""
        return self.durability == "step" and self.sink is not None

    async def flush(self) -> None:
        """Append everything not yet stored as one chunk (no-op when nothing is new)."""
        if self._lock is None:
            self._lock = anyio.Lock()
        async with self._lock:
            if self.sink is None:
                return
            pending, self._unflushed = self._unflushed, []
            delivered = self.delivered_updates()
            if not pending and not delivered:
                return
            # Encoded only now: a run that never checkpoints never pays for it.
            blobs = self.sink.blobs
            records = [
                [
                    key,
                    kind,
                    encode_message(value, blobs)
                    if kind == "m"
                    else value.encode(blobs)
                    if kind == "t"
                    else value,
                ]
                for key, kind, value in pending
            ]
            try:
                await self.sink.append(records, delivered)
            except BaseException:
                self._unflushed = pending + self._unflushed
                raise
            self.delivered_before.update(delivered)
