"""Message parts in stored records: bytes as msgpack bytes, each blob stored once.

A part is stored as a small map: ``k`` its kind (``text``, ``image``,
``audio``, ``file``), ``t`` the text, ``m`` the media type, ``u`` a URL, ``d``
the raw bytes (msgpack ``bin``, never base64), ``n`` a filename, ``x`` an
image's detail. Records that share a :class:`BlobTable` (a run's metadata and
journal chunks, in the order they are written and read; the entries of one
session record) store a blob's bytes the first time and, after that, only
``r``, the SHA-256 digest of those bytes: a run that sends the same image in
every request, or a tool returning the same file twice, stores it once.
"""

from __future__ import annotations

import hashlib
from typing import Any

from pydantic import ValidationError

from adk.content import SEEN, AudioPart, FilePart, ImagePart, TextPart
from adk.state.serde import CheckpointCorrupted, first_problem, type_name

_MEDIA: dict[str, type[ImagePart] | type[AudioPart] | type[FilePart]] = {
    "image": ImagePart,
    "audio": AudioPart,
    "file": FilePart,
}
_DETAILS = ("auto", "low", "high")


class BlobTable:
    """The blobs some records share: digest → bytes, written once, referred to after.

    A writer encodes with :meth:`reference`; blobs of a write are ``pending``
    until :meth:`commit` (the write reached the store) or :meth:`rollback` (it
    failed: the next write stores them again). A reader registers each
    stored blob with :meth:`add` and resolves references with :meth:`resolve`.
    """

    __slots__ = ("blobs", "pending")

    def __init__(self) -> None:
        self.blobs: dict[bytes, bytes] = {}
        self.pending: dict[bytes, bytes] = {}

    def __len__(self) -> int:
        return len(self.blobs) + len(self.pending)

    def reference(self, digest: bytes, data: bytes) -> bool:
        """True if the blob is already stored (or pending): write its digest, not its bytes."""
        if digest in self.blobs or digest in self.pending:
            return True
        self.pending[digest] = data
        return False

    def commit(self) -> None:
        """The pending blobs reached the store: later records may refer to them."""
        if self.pending:
            self.blobs.update(self.pending)
            self.pending.clear()

    def rollback(self) -> None:
        """The write with the pending blobs failed: they are stored again by the next one."""
        self.pending.clear()

    def add(self, data: bytes) -> None:
        """Note a blob read from a record (references in later records resolve to it)."""
        self.blobs[hashlib.sha256(data).digest()] = data

    def resolve(self, digest: bytes) -> bytes | None:
        """The bytes of the blob ``digest``, if stored earlier."""
        return self.blobs.get(digest)


def encode_parts(parts: tuple[Any, ...], blobs: BlobTable | None) -> list[dict[str, Any]]:
    """``parts`` as stored (see the module docstring); ``blobs``: the records' shared table."""
    encoded: list[dict[str, Any]] = []
    for part in parts:
        kind = part.type
        if kind == "text":
            encoded.append({"k": "text", "t": part.text})
            continue
        item: dict[str, Any] = {"k": kind}
        if part.media_type is not None:
            item["m"] = part.media_type
        data = part.data
        if data is None:
            item["u"] = part.url
        elif blobs is not None and blobs.reference(part.digest(), data):
            item["r"] = part.digest()
        else:
            item["d"] = data
        if kind == "file" and part.filename is not None:
            item["n"] = part.filename
        elif kind == "image" and part.detail is not None:
            item["x"] = part.detail
        encoded.append(item)
    return encoded


def decode_parts(raw: object, blobs: BlobTable | None) -> tuple[Any, ...]:
    """The parts :func:`encode_parts` stored; :class:`CheckpointCorrupted` naming a bad field."""
    if type(raw) is not list:
        raise CheckpointCorrupted(f"field 'parts' must be a list, got {type_name(raw)}")
    SEEN.parts = True
    return tuple(_decode_part(item, index, blobs) for index, item in enumerate(raw))


def _decode_part(item: object, index: int, blobs: BlobTable | None) -> Any:
    where = f"parts[{index}]"
    if type(item) is not dict:
        raise CheckpointCorrupted(f"field {where!r} must be a map, got {type_name(item)}")
    kind = item.get("k")
    if kind == "text":
        text = item.get("t")
        if type(text) is not str:
            raise _bad(f"{where}.t", "a str", text)
        return TextPart(text=text)
    cls = _MEDIA.get(kind) if type(kind) is str else None
    if cls is None:
        shown = repr(kind[:40]) if type(kind) is str else type_name(kind)
        raise CheckpointCorrupted(
            f"field '{where}.k' must be 'text', 'image', 'audio' or 'file', got {shown}"
        )
    fields: dict[str, Any] = {"media_type": _optional_text(item, "m", where)}
    if "d" in item:
        data = item["d"]
        if type(data) is not bytes:
            raise _bad(f"{where}.d", "bytes", data)
        if blobs is not None:
            blobs.add(data)
        fields["data"] = data
    elif "r" in item:
        fields["data"] = _resolved(item["r"], where, blobs)
    else:
        fields["url"] = _optional_text(item, "u", where)
    if kind == "file":
        fields["filename"] = _optional_text(item, "n", where)
    elif kind == "image":
        detail = _optional_text(item, "x", where)
        if detail is not None and detail not in _DETAILS:
            raise CheckpointCorrupted(f"field '{where}.x' must be 'auto', 'low' or 'high'")
        fields["detail"] = detail
    try:
        return cls(**fields)
    except ValidationError as exc:
        raise CheckpointCorrupted(
            f"field {where!r} is not a valid {kind} part: {first_problem(exc)}"
        ) from None


def _resolved(digest: object, where: str, blobs: BlobTable | None) -> bytes:
    if type(digest) is not bytes or len(digest) != 32:
        raise _bad(f"{where}.r", "a 32-byte digest", digest)
    data = blobs.resolve(digest) if blobs is not None else None
    if data is None:
        raise CheckpointCorrupted(
            f"field '{where}.r' refers to blob {digest.hex()[:16]}..., which no earlier "
            "record of the run stores"
        )
    return data


def _optional_text(item: dict[str, Any], key: str, where: str) -> str | None:
    value = item.get(key)
    if value is not None and type(value) is not str:
        raise _bad(f"{where}.{key}", "a str", value)
    return value


def _bad(field: str, expected: str, value: object) -> CheckpointCorrupted:
    return CheckpointCorrupted(f"field {field!r} must be {expected}, got {type_name(value)}")
