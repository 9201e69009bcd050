"""Parts in checkpoints, journals and sessions: raw bytes, each blob once, checked when read."""

from __future__ import annotations

import base64
import os
from typing import Any

import pytest

from adk import (
    ChatModelAgent,
    CheckpointCorrupted,
    ImagePart,
    InMemoryStore,
    Message,
    ModelRequest,
    Runner,
    ScriptedModel,
    ToolCall,
    ToolContext,
    tool,
)
from adk.runner.checkpoint import namespace
from adk.sessions.records import SessionCorrupted, decode_entries, encode_entries
from adk.state.blobs import BlobTable
from adk.state.journal import decode_message, encode_message
from adk.state.serde import dumps, loads
from adk.state.stores.base import StoreUnavailable

pytestmark = pytest.mark.anyio

BLOB = os.urandom(4096)  # random: it cannot appear in a record by chance
IMAGE = ImagePart(data=BLOB, media_type="image/png")
calls: list[str] = []


@tool
def snapshot() -> list[Any]:
    """Take a picture."""
    calls.append("snapshot")
    return ["picture:", IMAGE]


@tool
def ask(ctx: ToolContext) -> str:
    """Ask a person."""
    return str(ctx.interrupt("ok?"))


def script(request: ModelRequest) -> str | ToolCall | list[ToolCall]:
    last = request.messages[-1]
    tool_results = sum(1 for message in request.messages if message.role == "tool")
    if last.role == "user":
        return [ToolCall.of("snapshot"), ToolCall.of("snapshot")]
    if tool_results == 2:
        return ToolCall.of("ask")
    if tool_results == 3:
        return ToolCall.of("snapshot")  # after the resume: refers to the stored blob
    return "done"


async def all_records(store: InMemoryStore) -> list[bytes]:
    return [data for ns in await store.namespaces() for _, data in await store.scan(ns)]


def count(records: list[bytes], needle: bytes) -> int:
    return sum(record.count(needle) for record in records)


@pytest.mark.parametrize("durability", ["step", "interrupt"])
async def test_a_run_stores_each_blob_once_and_resumes_with_it(durability: Any) -> None:
    calls.clear()
    store = InMemoryStore()
    model = ScriptedModel(script)
    agent = ChatModelAgent("eye", model=model, tools=[snapshot, ask])
    runner = Runner(agent, checkpoint_store=store, durability=durability)

    paused = await runner.invoke([Message.user(["Look:", IMAGE, IMAGE])], run_id="r1")

    assert paused.checkpoint_id == "r1/1"
    records = [data for _, data in await store.scan(namespace("r1"))]
    # In the input twice and returned by two tool calls: stored once, as raw bytes.
    assert count(records, BLOB) == 1
    assert count(records, base64.b64encode(BLOB)[:64]) == 0

    resumed = await runner.resume_invoke("r1/1", {next(iter(paused.interrupts)).id: "yes"})

    assert resumed.output == "done"
    # The first two replayed from the journal, not called again; the third is new.
    assert calls == ["snapshot", "snapshot", "snapshot"]
    final = model.requests[-1].messages
    assert final[0].parts[1:] == (IMAGE, IMAGE)
    results = [message for message in final if message.role == "tool" and message.parts]
    assert [message.parts[1] for message in results] == [IMAGE, IMAGE, IMAGE]
    records = [data for _, data in await store.scan(namespace("r1"))]
    assert count(records, BLOB) == 1


async def test_a_session_turn_stores_each_blob_once() -> None:
    calls.clear()
    store = InMemoryStore()
    model = ScriptedModel([[ToolCall.of("snapshot"), ToolCall.of("snapshot")], "done", "again"])
    runner = Runner(ChatModelAgent("eye", model=model, tools=[snapshot]), sessions=store)

    first = await runner.invoke([Message.user(["Look:", IMAGE])], session_id="s1")
    assert first.output == "done"
    assert count(await all_records(store), BLOB) == 1

    second = await runner.invoke("And now?", session_id="s1")

    assert second.output == "again"
    history = model.requests[-1].messages
    assert history[0] == Message.user(["Look:", IMAGE])
    assert [m.parts[1] for m in history if m.role == "tool"] == [IMAGE, IMAGE]


def test_old_and_plain_records_read_as_before() -> None:
    plain = Message.user("hi")
    assert len(encode_message(plain)) == 6
    assert decode_message(encode_message(plain)) == plain
    multimodal = Message.user(["x", IMAGE])
    assert decode_message(loads(dumps(encode_message(multimodal)))) == multimodal


def test_blob_references_resolve_within_a_table() -> None:
    writer, reader = BlobTable(), BlobTable()
    first = encode_message(Message.user([IMAGE]), writer)
    second = encode_message(Message.user(["again", IMAGE]), writer)
    assert first[6][0]["d"] == BLOB and second[6][1]["r"] == IMAGE.digest()
    assert decode_message(first, reader).parts == (IMAGE,)
    assert decode_message(second, reader).parts[1] == IMAGE
    with pytest.raises(CheckpointCorrupted, match=r"'parts\[1\]\.r' refers to blob"):
        decode_message(second, BlobTable())


@pytest.mark.parametrize(
    ("part", "expected"),
    [
        ({"k": "video", "u": "x"}, r"'parts\[0\]\.k' must be 'text', 'image'"),
        ({"k": "image", "d": "text", "m": "image/png"}, r"'parts\[0\]\.d' must be bytes"),
        ({"k": "image", "d": b"x"}, r"'parts\[0\]' is not a valid image part"),
        ({"k": "image", "r": b"short", "m": "image/png"}, r"'parts\[0\]\.r' must be a 32-byte"),
        ({"k": "text", "t": 5}, r"'parts\[0\]\.t' must be a str"),
        ({"k": "image", "u": "x", "x": "huge"}, r"'parts\[0\]\.x' must be 'auto'"),
        ({"k": "file", "u": "x", "m": "application/pdf", "n": 1}, r"'parts\[0\]\.n' must be a str"),
        ("image", r"'parts\[0\]' must be a map"),
    ],
)
def test_bad_stored_parts_name_the_field(part: Any, expected: str) -> None:
    stored = [*encode_message(Message.user("x")), [part]]
    with pytest.raises(CheckpointCorrupted, match=expected):
        decode_message(stored)


def test_stored_parts_on_an_assistant_message_are_refused() -> None:
    stored = [*encode_message(Message.assistant("x")), [{"k": "image", "u": "x"}]]
    with pytest.raises(CheckpointCorrupted, match="assistant message cannot hold parts"):
        decode_message(stored)


def test_a_session_record_with_bad_parts_is_session_corruption() -> None:
    from adk.events import HistoryEntry

    entries = encode_entries([HistoryEntry(None, Message.user([IMAGE]))])
    entries[0][1][6][0]["m"] = 7
    with pytest.raises(SessionCorrupted, match=r"entry 0: field 'parts\[0\]\.m' must be a str"):
        decode_entries(entries, "session batch 1")


async def test_a_crafted_run_record_with_bad_parts_fails_the_resume() -> None:
    store = InMemoryStore()
    agent = ChatModelAgent("eye", model=ScriptedModel(script), tools=[snapshot, ask])
    runner = Runner(agent, checkpoint_store=store, durability="step")
    paused = await runner.invoke([Message.user(["Look:", IMAGE])], run_id="r2")
    meta = loads(await store.get(namespace("r2"), "meta") or b"")
    meta["input"][0][6][1] = {"k": "image", "r": bytes(32), "m": "image/png"}
    await store.put(namespace("r2"), "meta", dumps(meta))

    with pytest.raises(CheckpointCorrupted, match=r"input 0: field 'parts\[1\]\.r' refers to"):
        await runner.resume_invoke(paused.checkpoint_id or "", {})


class RefusesOneChunk(InMemoryStore):
    """An in-memory store whose first write of journal chunk 0 fails (an outage)."""

    failed = False

    async def put(self, namespace: str, name: str, value: bytes, **kw: Any) -> None:
        if name == "j:0000000000" and not self.failed:
            self.failed = True
            raise StoreUnavailable("memory", "test", "put", "briefly unavailable")
        await super().put(namespace, name, value, **kw)


async def test_a_chunk_that_failed_to_be_written_does_not_hold_blobs_for_later_ones() -> None:
    from adk.agents.tree import AgentTree
    from adk.runner.checkpoint import Checkpointer, load_run, new_meta
    from adk.state.journal import RunJournal, ToolRecord

    store = RefusesOneChunk()
    agent = ChatModelAgent("eye", model=ScriptedModel(["x"]))
    meta = new_meta(
        root="eye",
        tree=AgentTree(agent),
        root_input=[Message.user("go")],
        values=dumps({}),
        streaming=False,
        durability="step",
        session_id="",
    )
    journal = RunJournal(durability="step")
    journal.sink = Checkpointer(store, "r3", meta)
    record = ToolRecord(
        "pic", failed=False, return_directly=False, actions=[], updates={}, parts=(IMAGE,)
    )
    journal.note_tool("call-1", record)
    with pytest.raises(StoreUnavailable):
        await journal.flush()
    await journal.flush()  # the retry stores the blob itself, not a reference to the lost one
    journal.note_tool("call-2", record)
    await journal.flush()

    records = [data for _, data in await store.scan(namespace("r3"))]
    assert count(records, BLOB) == 1
    loaded = await load_run(store, "r3")
    replay = RunJournal()
    for chunk in loaded.chunks:
        chunk.load_into(replay)
    assert [replay.tool_result(key).parts for key in ("call-1", "call-2")] == [(IMAGE,), (IMAGE,)]  # type: ignore[union-attr]
