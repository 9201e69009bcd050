"""Checkpoint serialisation: msgpack with a format header, a checksum and named types.

Never pickle, never import a type named in the data: a pydantic model is
written as an extension value carrying a *registered name*, and read back
only through that registry. Bytes that are truncated, corrupted or of an
unknown format version fail with :class:`CheckpointCorrupted` or
:class:`CheckpointVersionError`, naming what is wrong.
"""

from __future__ import annotations

import struct
import zlib
from typing import Any

import msgpack
from pydantic import BaseModel

from adk.errors import AdkError

FORMAT_VERSION = 1
_MAGIC = b"ADKC"
_HEADER = struct.Struct(">4sBI")  # magic, format version, crc32 of the payload
_MODEL_EXT = 1

_REGISTRY: dict[str, type[BaseModel]] = {}
_NAMES: dict[type[BaseModel], str] = {}


class CheckpointError(AdkError):
    """Base class of checkpoint problems (format, corruption, mismatch, state)."""


class CheckpointCorrupted(CheckpointError):
    """Stored bytes are not a valid checkpoint record (truncated, altered or not adk's)."""


class CheckpointVersionError(CheckpointError):
    """Stored bytes were written in a format version this adk does not read."""


class SerializationError(CheckpointError):
    """A value cannot be written to a checkpoint (an unregistered or unsupported type)."""


def register_type(model: type[BaseModel], name: str | None = None) -> type[BaseModel]:
    """Allow instances of the pydantic model ``model`` in checkpointed state.

    ``name`` (default: ``module.QualName``) is what is stored; keep it stable
    across releases of your code. Usable as a decorator.
    """
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"register_type needs a pydantic model class, got {model!r}")
    key = name or f"{model.__module__}.{model.__qualname__}"
    existing = _REGISTRY.get(key)
    if existing is not None and existing is not model:
        raise ValueError(f"type name {key!r} is already registered for {existing!r}")
    _REGISTRY[key] = model
    _NAMES[model] = key
    return model


def _default(value: Any) -> Any:
    if isinstance(value, BaseModel):
        name = _NAMES.get(type(value))
        if name is None:
            raise SerializationError(
                f"cannot checkpoint a {type(value).__qualname__}: register it with "
                f"adk.register_type({type(value).__qualname__})"
            )
        payload = msgpack.packb(
            [name, value.model_dump(mode="json")], use_bin_type=True, default=_default
        )
        return msgpack.ExtType(_MODEL_EXT, payload)
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    raise SerializationError(
        f"cannot checkpoint a value of type {type(value).__qualname__}: use JSON-like data "
        "(dict, list, str, int, float, bool, None, bytes) or a registered pydantic model"
    )


def _ext_hook(code: int, data: bytes) -> Any:
    if code != _MODEL_EXT:
        raise CheckpointCorrupted(f"unknown msgpack extension type {code}")
    name, fields = msgpack.unpackb(data, raw=False, ext_hook=_ext_hook, strict_map_key=False)
    model = _REGISTRY.get(name)
    if model is None:
        raise CheckpointError(
            f"checkpoint holds a value of type {name!r}, which is not registered in this "
            "process; call adk.register_type(<the model class>, name=...) before resuming"
        )
    return model.model_validate(fields)


def dumps(value: Any) -> bytes:
    """Encode ``value`` as a checkpoint record."""
    try:
        payload: bytes = msgpack.packb(value, use_bin_type=True, default=_default)
    except SerializationError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise SerializationError(f"cannot checkpoint value: {exc}") from exc
    return _HEADER.pack(_MAGIC, FORMAT_VERSION, zlib.crc32(payload)) + payload


def loads(data: bytes, what: str = "checkpoint record") -> Any:
    """Decode a record written by :func:`dumps`; ``what`` names it in error messages."""
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CheckpointCorrupted(f"{what} is {type(data).__name__}, not bytes")
    data = bytes(data)
    if len(data) < _HEADER.size:
        raise CheckpointCorrupted(f"{what} is truncated ({len(data)} bytes, header needs 9)")
    magic, version, checksum = _HEADER.unpack_from(data)
    if magic != _MAGIC:
        raise CheckpointCorrupted(f"{what} is not an adk checkpoint (bad magic {magic!r})")
    if version != FORMAT_VERSION:
        raise CheckpointVersionError(
            f"{what} has format version {version}; this adk reads version {FORMAT_VERSION}"
        )
    payload = data[_HEADER.size :]
    if zlib.crc32(payload) != checksum:
        raise CheckpointCorrupted(f"{what} is corrupted or truncated (checksum mismatch)")
    try:
        return msgpack.unpackb(payload, raw=False, ext_hook=_ext_hook, strict_map_key=False)
    except CheckpointError:
        raise
    except Exception as exc:  # msgpack raises several types for malformed data
        raise CheckpointCorrupted(f"{what} cannot be decoded: {exc}") from exc
