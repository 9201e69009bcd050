from __future__ import annotations

import contextlib
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


def _record(payload: bytes) -> bytes:
    """A record with a valid header and checksum around ``payload``: only the structure is bad."""
    return struct.pack(">4sBI", b"ADKC", 1, zlib.crc32(payload)) + payload


def test_lone_surrogates_round_trip_exactly() -> None:
    """A model or a stream may split an emoji: its halves must survive a checkpoint as they are."""
    value = {
        "reply": ["a\ud83d b", {"half\udc00": ("x\ude00", "\ud83d\ude00")}],
        "ticket": Ticket(title="split \ud83d"),
        "plain": "é 😀",
    }
    restored = loads(dumps(value))
    assert restored == {
        **value,
        "reply": ["a\ud83d b", {"half\udc00": ["x\ude00", "\ud83d\ude00"]}],
    }
    assert restored["reply"][0] == "a\ud83d b" and len(restored["reply"][1]["half\udc00"][1]) == 2
    assert loads(dumps("a\ud83d b")) == "a\ud83d b"
    assert dumps("plain é 😀") == dumps("plain é 😀")  # normal strings: the usual UTF-8 encoding
    assert "plain é 😀".encode() in dumps("plain é 😀")


def test_nested_extension_values_are_refused_at_a_small_depth() -> None:
    inner = msgpack.packb(["tests.Ticket", {"title": "x"}])
    for _ in range(5):
        inner = msgpack.packb(["tests.Ticket", msgpack.ExtType(1, inner)])
    with pytest.raises(CheckpointCorrupted, match="nested"):
        loads(_record(msgpack.packb(msgpack.ExtType(1, inner))))


def test_deep_containers_are_refused_not_a_crash() -> None:
    with pytest.raises(CheckpointCorrupted, match="cannot be decoded"):
        loads(_record(b"\x91" * 100_000 + b"\xc0"))
    with pytest.raises(CheckpointCorrupted, match="cannot be decoded"):
        loads(_record(b"\xdd\xff\xff\xff\xff"))  # an array header claiming 4 billion items


@settings(max_examples=300, deadline=None)
@given(tail=st.binary(max_size=300))
def test_random_bytes_after_a_valid_header_only_raise_checkpoint_errors(tail: bytes) -> None:
    with contextlib.suppress(CheckpointError):  # anything else fails the test
        loads(_record(tail))


def _ext(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """Extension values: a registered or unknown name, random fields, or random bytes."""
    names = st.sampled_from(["tests.Ticket", "adk.Approval", "os.system", ""])
    fields = st.one_of(children, st.fixed_dictionaries({"title": children}))
    payload = st.one_of(
        st.tuples(names, fields).map(lambda pair: msgpack.packb(list(pair))),
        children.map(msgpack.packb),
        st.binary(max_size=20),
    )
    return st.tuples(st.sampled_from([1, 1, 1, 2, 127]), payload).map(
        lambda pair: msgpack.ExtType(*pair)
    )


_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(),
    st.text(max_size=10),
    st.binary(max_size=10),
)
_NESTED = st.recursive(
    _LEAVES,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.one_of(st.text(max_size=5), st.integers(-9, 9)), children, max_size=4),
        _ext(children),
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(value=_NESTED)
def test_random_nested_structures_only_raise_checkpoint_errors(value: Any) -> None:
    with contextlib.suppress(CheckpointError):  # anything else fails the test
        loads(_record(msgpack.packb(value, use_bin_type=True)))


_ANY_TEXT = st.text(alphabet=st.characters(blacklist_categories=()), max_size=8)


@settings(max_examples=200, deadline=None)
@given(
    value=st.recursive(
        _ANY_TEXT,
        lambda children: st.one_of(
            st.lists(children, max_size=4), st.dictionaries(_ANY_TEXT, children, max_size=4)
        ),
        max_leaves=20,
    )
)
def test_any_text_round_trips_lone_surrogates_included(value: Any) -> None:
    assert loads(dumps(value)) == value
