from __future__ import annotations

import struct
import zlib
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings, strategies as st
from pydantic import BaseModel

from adk import (
    Approval,
    CheckpointCorrupted,
    CheckpointError,
    CheckpointVersionError,
    SerializationError,
    register_type,
)
from adk.state.serde import dumps, loads


class Ticket(BaseModel):
    title: str
    priority: int = 1


register_type(Ticket, "tests.Ticket")


class Unregistered(BaseModel):
    x: int


def test_round_trip_of_plain_data_and_registered_models() -> None:
    value = {
        "text": "é",
        "n": 3,
        "f": 1.5,
        "none": None,
        "list": [1, "a", b"\x00\x01"],
        "ticket": Ticket(title="fix", priority=2),
        "nested": {"approval": Approval.edit({"amount": 5})},
    }
    assert loads(dumps(value)) == value


def test_unregistered_and_unsupported_values_fail_at_write_with_a_clear_message() -> None:
    with pytest.raises(
        SerializationError, match=r"register it with adk.register_type\(Unregistered\)"
    ):
        dumps({"x": Unregistered(x=1)})
    with pytest.raises(SerializationError, match="type object"):
        dumps({"x": object()})


def test_unknown_type_name_in_data_is_refused_without_importing_anything() -> None:
    payload = msgpack.packb(
        {"v": msgpack.ExtType(1, msgpack.packb(["os.system", {"cmd": "rm -rf /"}]))},
        use_bin_type=True,
    )
    data = struct.pack(">4sBI", b"ADKC", 1, zlib.crc32(payload)) + payload
    with pytest.raises(CheckpointError, match=r"'os\.system', which is not registered"):
        loads(data)


def test_version_and_magic_and_truncation_errors_name_the_problem() -> None:
    good = dumps({"a": 1})
    newer = good[:4] + bytes([9]) + good[5:]
    with pytest.raises(CheckpointVersionError, match="format version 9; this adk reads version 1"):
        loads(newer, "checkpoint 'r/1'")
    with pytest.raises(CheckpointCorrupted, match="not an adk checkpoint"):
        loads(b"PK\x03\x04" + good[4:])
    with pytest.raises(CheckpointCorrupted, match="truncated"):
        loads(good[:5])
    with pytest.raises(CheckpointCorrupted, match="checksum mismatch"):
        loads(good[:-1])


def test_register_type_rejects_name_clashes() -> None:
    class Other(BaseModel):
        y: int

    with pytest.raises(ValueError, match="already registered"):
        register_type(Other, "tests.Ticket")


SAMPLE: Any = {
    "r": [["flow/a|m0", "m", {"role": "assistant", "content": "hello " * 20}]],
    "d": {"flow/a": 2},
    "t": Ticket(title="x"),
}


@settings(max_examples=400, deadline=None)
@given(data=st.data())
def test_corrupted_or_truncated_bytes_always_give_a_checkpoint_error(data: st.DataObject) -> None:
    original = dumps(SAMPLE)
    kind = data.draw(st.sampled_from(["truncate", "flip", "splice", "garbage"]))
    if kind == "truncate":
        cut = data.draw(st.integers(min_value=0, max_value=len(original) - 1))
        mutated = original[:cut]
    elif kind == "flip":
        position = data.draw(st.integers(min_value=0, max_value=len(original) - 1))
        bit = data.draw(st.integers(min_value=0, max_value=7))
        mutated = bytearray(original)
        mutated[position] ^= 1 << bit
        mutated = bytes(mutated)
    elif kind == "splice":
        start = data.draw(st.integers(min_value=0, max_value=len(original)))
        junk = data.draw(st.binary(min_size=1, max_size=20))
        mutated = original[:start] + junk + original[start:]
    else:
        mutated = data.draw(st.binary(max_size=200))
    if mutated == original:
        assert loads(mutated) == SAMPLE
        return
    with pytest.raises(CheckpointError):
        loads(mutated)
