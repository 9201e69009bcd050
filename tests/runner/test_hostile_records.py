"""Hostile store records: a valid header and checksum, a structure meant to hurt the reader.

A record that passes the checksum is not therefore well formed: it may have
been written by another program, an older or buggy adk, or someone with
write access to the store. Reading one must end in a ``CheckpointError``
naming the run, the record and the field, never in a raw ``KeyError`` or a
crashed process, and one bad record must not hide the other runs'
checkpoints from ``Runner.checkpoints()``.
"""

from __future__ import annotations

import json
import re
import struct
import subprocess
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import msgpack
import pytest

from adk import (
    ChatModelAgent,
    CheckpointCorrupted,
    CheckpointError,
    ModelRequest,
    Runner,
    ScriptedModel,
    SQLiteStore,
    ToolCall,
    ToolContext,
    tool,
)
from adk.runner.checkpoint import namespace
from adk.state.serde import dumps, loads

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


@tool
def ask(ctx: ToolContext) -> str:
    """Ask a person."""
    return str(ctx.interrupt("ok?"))


def script(request: ModelRequest) -> str | ToolCall:
    if request.messages[-1].role == "user":
        return ToolCall.of("ask")
    return "done"


def build_runner(db: Path) -> Runner:
    """The same app in the test and in the child process; every call is journaled."""
    agent = ChatModelAgent("helper", model=ScriptedModel(script), tools=[ask])
    return Runner(agent, checkpoint_store=SQLiteStore(db), durability="step")


def record(payload: bytes) -> bytes:
    """A record with a valid header and checksum around ``payload``."""
    return struct.pack(">4sBI", b"ADKC", 1, zlib.crc32(payload)) + payload


def nested_extensions(depth: int, name: str | None = None) -> Any:
    """``depth`` extension values each holding the next one (a few bytes per level).

    With ``name`` (a registered type name) each level looks like a model
    whose fields are the next level; without, each starts with the next one.
    """
    inner = msgpack.packb(["x", {}])
    for _ in range(depth):
        level = [name, msgpack.ExtType(1, inner)] if name else [msgpack.ExtType(1, inner), {}]
        inner = msgpack.packb(level)
    return msgpack.ExtType(1, inner)


def hostile_checkpoint(run_id: str, name: str | None) -> bytes:
    payload = msgpack.packb(
        {
            "id": f"{run_id}/1",
            "chunks": 1,
            "interrupts": [["i", ["helper"], nested_extensions(200, name)]],
            "answers": {},
            "created": 1.0,
        },
        use_bin_type=True,
    )
    return record(payload)


async def paused(db: Path, run_id: str = "r1") -> Runner:
    runner = build_runner(db)
    result = await runner.invoke("go", run_id=run_id)
    assert result.checkpoint_id == f"{run_id}/1"
    return runner


# -- a record that used to crash the reading process ----------------------------------


def child(db: str, checkpoint_ids: list[str]) -> None:
    """In the child process: list the checkpoints, then try to resume each id; print JSON."""

    async def main() -> dict[str, Any]:
        runner = build_runner(Path(db))
        listed = [[c.id, c.error] for c in await runner.checkpoints()]
        resumed = {}
        for checkpoint_id in checkpoint_ids:
            try:
                await runner.resume_invoke(checkpoint_id, {})
                resumed[checkpoint_id] = "resumed"
            except CheckpointError as exc:
                resumed[checkpoint_id] = f"{type(exc).__name__}: {exc}"
        return {"listed": listed, "resume": resumed}

    print(json.dumps(anyio.run(main)))


def run_child(db: Path, *checkpoint_ids: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "tests.runner.test_hostile_records", str(db), *checkpoint_ids],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, f"child exited with {done.returncode}: {done.stderr[-2000:]}"
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize(
    ("name", "type_name", "problem"),
    [
        ("cp:000001", "adk.Approval", "nested more than 4 deep"),
        ("cp:000001", None, "must start with a type name"),
        ("meta", "adk.Approval", None),
        ("head", "adk.Approval", None),
        ("j:0000000000", "adk.Approval", None),
    ],
)
async def test_deeply_nested_extension_values_fail_cleanly_in_listing_and_resume(
    tmp_path: Path, name: str, type_name: str | None, problem: str | None
) -> None:
    """About 1 KB: 200 extension values, each in the previous one (this crashed the reader)."""
    db = tmp_path / "runs.db"
    runner = await paused(db)
    await paused(db, "good")
    await runner.store.put(namespace("r1"), name, hostile_checkpoint("r1", type_name))
    await runner.close()

    report = run_child(db, "r1/1", "r1")

    listed = dict(report["listed"])
    assert listed["good/1"] is None
    if problem is not None:
        assert f"checkpoint {name} of run 'r1' cannot be decoded" in listed["r1/1"]
        assert problem in listed["r1/1"]
    else:
        assert listed["r1/1"] is None  # only the checkpoint records are read to list them
    for outcome in report["resume"].values():
        assert outcome.startswith("CheckpointCorrupted: "), outcome
        assert "of run 'r1'" in outcome


LOADS_IN_CHILD = """
import sys
from adk.state.serde import CheckpointError, loads
try:
    loads(sys.stdin.buffer.read())
    print("loaded")
except CheckpointError as exc:
    print(f"{type(exc).__name__}: {exc}")
"""


def loads_in_child(data: bytes) -> str:
    """``loads(data)`` in a child process: a crash fails the test instead of killing pytest."""
    done = subprocess.run(
        [sys.executable, "-c", LOADS_IN_CHILD],
        cwd=ROOT,
        input=data,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, f"child exited with {done.returncode}"
    return done.stdout.decode().strip()


def test_extension_payload_is_refused_before_its_fields_are_decoded() -> None:
    """The type name comes first: an unknown or missing one is refused, the rest never read."""
    fields = msgpack.packb(["deep"])
    for _ in range(300):
        fields = msgpack.packb([msgpack.ExtType(1, fields)])
    unknown = msgpack.packb(msgpack.ExtType(1, b"\x92\xa9os.system" + fields))
    assert loads_in_child(record(unknown)) == (
        "CheckpointError: checkpoint record holds a value of type 'os.system', which is not "
        "registered in this process; call adk.register_type(<the model class>, name=...) "
        "before resuming"
    )
    not_a_name = msgpack.packb(msgpack.ExtType(1, msgpack.packb([nested_extensions(300), {}])))
    assert loads_in_child(record(not_a_name)).startswith(
        "CheckpointCorrupted: checkpoint record cannot be decoded: an extension value must "
        "start with a type name"
    )


# -- records of the wrong structure ---------------------------------------------------


def _set(key: str, value: Any) -> Callable[[Any], Any]:
    def mutate(record: Any) -> Any:
        return {**record, key: value}

    return mutate


def _drop(key: str) -> Callable[[Any], Any]:
    def mutate(record: Any) -> Any:
        return {k: v for k, v in record.items() if k != key}

    return mutate


def _first_model_reply(change: Callable[[list[Any]], None]) -> Callable[[Any], Any]:
    def mutate(chunk: Any) -> Any:
        for _, kind, data in chunk["r"]:
            if kind == "m":
                change(data)
        return chunk

    return mutate


def _content(data: list[Any]) -> None:
    data[1] = 5


def _role(data: list[Any]) -> None:
    data[0] = 9


# The record damaged: its stored name, and how errors name it.
RECORDS = {
    "cp": ("cp:000001", "checkpoint cp:000001 of run 'r1'"),
    "meta": ("meta", "metadata of run 'r1'"),
    "head": ("head", "status of run 'r1'"),
    "j": ("j:0000000000", "journal chunk j:0000000000 of run 'r1'"),
}
# id: (record, how it is damaged, the rest of the error expected: a regular expression)
BAD_RECORDS: dict[str, tuple[str, Callable[[Any], Any], str]] = {
    "cp-interrupts-not-a-list": (
        "cp",
        _set("interrupts", 5),
        ": field 'interrupts' must be a list",
    ),
    "cp-answers-missing": ("cp", _drop("answers"), ": field 'answers' is missing"),
    "cp-interrupt-id-not-a-str": (
        "cp",
        _set("interrupts", [[1, [], 0]]),
        r": field 'interrupts\[0\]\.id'",
    ),
    "cp-interrupt-too-short": (
        "cp",
        _set("interrupts", [["i"]]),
        r": field 'interrupts\[0\]' must",
    ),
    "cp-id-of-another-checkpoint": (
        "cp",
        _set("id", "x/7"),
        ": field 'id' must be 'r1/1', got 'x/7'",
    ),
    "cp-not-a-map": ("cp", lambda record: [1, 2], " must be a map, got list"),
    "meta-durability-missing": ("meta", _drop("durability"), ": field 'durability' is missing"),
    "meta-durability-unknown": (
        "meta",
        _set("durability", "often"),
        ": field 'durability' must be",
    ),
    "meta-tree-pair-too-short": (
        "meta",
        _set("tree", [["helper"]]),
        r": field 'tree\[0\]' must be",
    ),
    "meta-values-not-bytes": ("meta", _set("values", 5), ": field 'values' must be bytes, got int"),
    "meta-input-role-unknown": (
        "meta",
        _set("input", [[9, "", [], 0, 0, 0]]),
        ", input 0: field 'role'",
    ),
    "meta-input-not-a-message": ("meta", _set("input", [None]), ", input 0: must be a list of 6"),
    "head-status-unknown": ("head", _set("status", 3), ": field 'status' must be 'interrupted' or"),
    "head-lease-not-a-str": ("head", _set("lease", 3), ": field 'lease' must be a str, got int"),
    "chunk-records-not-a-list": ("j", _set("r", 5), ": field 'r' must be a list, got int"),
    "chunk-delivered-not-an-int": (
        "j",
        _set("d", {"a": "b"}),
        ": delivered count of 'a' must be an",
    ),
    "chunk-kind-unknown": ("j", _set("r", [["k", "x", {}]]), r", record 0 \('k'\): field 'kind'"),
    "chunk-record-too-short": ("j", _set("r", [["k", "m"]]), ", record 0: must be a list of 3"),
    "chunk-reply-content-not-a-str": (
        "j",
        _first_model_reply(_content),
        ", record 0 .*: field 'content'",
    ),
    "chunk-reply-role-unknown": ("j", _first_model_reply(_role), ", record 0 .*: field 'role'"),
}


@pytest.mark.parametrize(("record", "mutate", "message"), BAD_RECORDS.values(), ids=BAD_RECORDS)
async def test_a_record_of_the_wrong_structure_names_the_run_the_record_and_the_field(
    tmp_path: Path, record: str, mutate: Callable[[Any], Any], message: str
) -> None:
    runner = await paused(tmp_path / "runs.db")
    name, where = RECORDS[record]
    original = await runner.store.get(namespace("r1"), name)
    assert original is not None
    await runner.store.put(namespace("r1"), name, dumps(mutate(loads(original))))
    for checkpoint_id in ("r1/1", "r1"):
        with pytest.raises(CheckpointCorrupted, match=re.escape(where) + message):
            await runner.resume_invoke(checkpoint_id, {})
    # Refused before the checkpoint was used up: once repaired, it resumes.
    await runner.store.put(namespace("r1"), name, original)
    again = await runner.resume_invoke("r1/1", {})
    assert again.checkpoint_id == "r1/2"


async def test_bad_journal_tool_records_are_corrupted_errors(tmp_path: Path) -> None:
    runner = await paused(tmp_path / "runs.db")
    chunk = {"r": [["helper|m0|t0", "t", {"t": 5}]], "d": {}}
    await runner.store.put(namespace("r1"), "j:0000000000", dumps(chunk))
    with pytest.raises(CheckpointCorrupted, match=r"j:0+ of run 'r1', record 0 .*: field 't' must"):
        await runner.resume_invoke("r1/1", {})
    chunk = {"r": [["helper|m0|t0", "t", {"t": "x", "a": [{"exit": "maybe"}]}]], "d": {}}
    await runner.store.put(namespace("r1"), "j:0000000000", dumps(chunk))
    with pytest.raises(CheckpointCorrupted, match=r"j:0+ of run 'r1', record 0 .*: field 'a\[0\]'"):
        await runner.resume_invoke("r1/1", {})


async def test_one_bad_checkpoint_is_reported_and_the_listing_goes_on(tmp_path: Path) -> None:
    runner = await paused(tmp_path / "runs.db", "a")
    await paused(tmp_path / "runs.db", "b")
    await paused(tmp_path / "runs.db", "c")
    data = await runner.store.get(namespace("b"), "cp:000001")
    assert data is not None
    await runner.store.put(namespace("b"), "cp:000001", dumps({**loads(data), "interrupts": 5}))
    await runner.store.put(namespace("c"), "cp:000002", b"ADKC\x01garbage")

    listed = await runner.checkpoints()

    assert [(c.id, c.run_id) for c in listed] == [
        ("a/1", "a"),
        ("b/1", "b"),
        ("c/1", "c"),
        ("c/2", "c"),
    ]
    good, bad, _, garbage = listed
    assert good.error is None and len(good.interrupts) == 1 and good.created is not None
    assert (
        bad.error == "checkpoint cp:000001 of run 'b': field 'interrupts' must be a list, got int"
    )
    assert bad.interrupts == () and bad.created is None and not bad.resumed
    assert garbage.error is not None and "checkpoint cp:000002 of run 'c'" in garbage.error
    assert [c.id for c in await runner.checkpoints("b")] == ["b/1"]


@pytest.mark.parametrize(
    ("owner", "message"),
    [
        ([1, 2], "lease of run 'r1' must be a map, got list"),
        ({"pid": 1, "host": "h"}, "lease of run 'r1': field 'token' is missing"),
        ({"token": "t", "pid": "1", "host": "h"}, "field 'pid' must be an int, got str"),
    ],
)
async def test_a_corrupted_lease_record_names_the_run(
    tmp_path: Path, owner: Any, message: str
) -> None:
    runner = await paused(tmp_path / "runs.db")
    await runner.store.put("lease:r1", "owner", dumps(owner))
    with pytest.raises(CheckpointCorrupted, match=message):
        await runner.resume_invoke("r1", {})


if __name__ == "__main__":
    child(sys.argv[1], sys.argv[2:])
