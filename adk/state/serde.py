"""Checkpoint serialisation: msgpack with a format header, a checksum and named types.

Never pickle, never import a type named in the data: a pydantic model is
written as an extension value carrying a *registered name*, and read back
only through that registry. Bytes that are truncated, corrupted or of an
unknown format version fail with :class:`CheckpointCorrupted` or
:class:`CheckpointVersionError`, naming what is wrong.

A record that passes the checksum can still be hostile (written by another
program, or by someone with write access to the store): :func:`loads` only
ever raises :class:`CheckpointError`. Its structure is bounded: containers
nest at most 1024 deep and no string, array or map is longer than the record
(msgpack's own limits), and extension values nest at most
:data:`MAX_EXTENSION_DEPTH` deep, each one's type name checked before anything
else in it is decoded. Strings keep lone UTF-16 surrogates (half an emoji, as
a model or a stream may produce) exactly.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable
from typing import Any

import msgpack
from pydantic import BaseModel, ValidationError

from adk.errors import AdkError

FORMAT_VERSION = 1
_MAGIC = b"ADKC"
_HEADER = struct.Struct(">4sBI")  # magic, format version, crc32 of the payload
_MODEL_EXT = 1
MAX_EXTENSION_DEPTH = 4
"""How deep extension values may nest in a record.

:func:`dumps` never nests them (a model's fields are written as plain data),
and each level costs the decoder a native stack frame of tens of kilobytes:
a few hundred levels would overflow the stack and kill the process.
"""
_LOSSLESS = "surrogatepass"  # lone UTF-16 surrogates are written and read back as they are

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


def _encoder(unicode_errors: str | None) -> Callable[[Any], Any]:
    """The ``default`` hook of :func:`dumps`: registered models and sets; refuses the rest."""

    def default(value: Any) -> Any:
        if isinstance(value, BaseModel):
            name = _NAMES.get(type(value))
            if name is None:
                raise SerializationError(
                    f"cannot checkpoint a {type(value).__qualname__}: register it with "
                    f"adk.register_type({type(value).__qualname__})"
                )
            payload = msgpack.packb(
                [name, value.model_dump(mode="json")],
                use_bin_type=True,
                default=default,
                unicode_errors=unicode_errors,
            )
            return msgpack.ExtType(_MODEL_EXT, payload)
        if isinstance(value, set | frozenset):
            return sorted(value, key=repr)
        raise SerializationError(
            f"cannot checkpoint a value of type {type(value).__qualname__}: use JSON-like data "
            "(dict, list, str, int, float, bool, None, bytes) or a registered pydantic model"
        )

    return default


_default = _encoder(None)
_default_lossless = _encoder(_LOSSLESS)


_STR_LENGTH_BYTES = {0xD9: 1, 0xDA: 2, 0xDB: 4}  # msgpack str 8, str 16, str 32


def _type_name(data: bytes) -> tuple[str, int]:
    """The type name an extension payload ``[name, fields]`` starts with; where fields start.

    Read from the raw bytes, before anything else of the payload is decoded.
    """
    marker = data[1] if len(data) > 1 and data[0] == 0x92 else None  # a 2-item array
    if marker is not None and 0xA0 <= marker <= 0xBF:  # fixstr
        start, size = 2, marker & 0x1F
    elif marker in _STR_LENGTH_BYTES:
        start = 2 + _STR_LENGTH_BYTES[marker]
        size = int.from_bytes(data[2:start], "big")
    else:
        raise CheckpointCorrupted(
            "an extension value must start with a type name (a [name, fields] pair)"
        )
    end = start + size
    if end <= len(data):
        try:
            return data[start:end].decode("utf-8", _LOSSLESS), end
        except UnicodeDecodeError:
            pass
    raise CheckpointCorrupted("an extension value has a malformed type name")


def _decoder(depth: int) -> Callable[[int, bytes], Any]:
    """The extension hook for values ``depth`` extension levels deep."""

    def ext_hook(code: int, data: bytes) -> Any:
        if code != _MODEL_EXT:
            raise CheckpointCorrupted(f"unknown msgpack extension type {code}")
        if depth >= MAX_EXTENSION_DEPTH:
            raise CheckpointCorrupted(
                f"extension values are nested more than {MAX_EXTENSION_DEPTH} deep"
            )
        name, start = _type_name(data)
        model = _REGISTRY.get(name)
        if model is None:
            raise CheckpointError(
                f"a value of type {name!r}, which is not registered in this process; call "
                "adk.register_type(<the model class>, name=...) before resuming"
            )
        fields = msgpack.unpackb(
            data[start:],
            raw=False,
            ext_hook=_DECODERS[depth + 1],
            strict_map_key=False,
            unicode_errors=_LOSSLESS,
        )
        try:
            return model.model_validate(fields)
        except ValidationError as exc:
            raise CheckpointCorrupted(
                f"a stored {name!r} is invalid: {first_problem(exc)}"
            ) from None

    return ext_hook


_DECODERS = tuple(_decoder(depth) for depth in range(MAX_EXTENSION_DEPTH + 1))


def dumps(value: Any) -> bytes:
    """Encode ``value`` as a checkpoint record."""
    try:
        try:
            payload: bytes = msgpack.packb(value, use_bin_type=True, default=_default)
        except UnicodeEncodeError:
            # A lone surrogate: rare, so only then the slower lossless encoder (it makes a
            # bytes copy of every string; valid text encodes to the same bytes either way).
            payload = msgpack.packb(
                value, use_bin_type=True, default=_default_lossless, unicode_errors=_LOSSLESS
            )
    except SerializationError:
        raise
    except (TypeError, ValueError, OverflowError) as exc:
        raise SerializationError(f"cannot checkpoint value: {exc}") from exc
    return _HEADER.pack(_MAGIC, FORMAT_VERSION, zlib.crc32(payload)) + payload


def loads(data: bytes, what: str = "checkpoint record") -> Any:
    """Decode a record written by :func:`dumps`; ``what`` names it in error messages.

    Raises only :class:`CheckpointError` (and its subclasses), whatever the bytes.
    """
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
        return msgpack.unpackb(
            payload,
            raw=False,
            ext_hook=_DECODERS[0],
            strict_map_key=False,
            unicode_errors=_LOSSLESS,
        )
    except CheckpointCorrupted as exc:
        raise CheckpointCorrupted(f"{what} cannot be decoded: {exc}") from None
    except CheckpointError as exc:
        raise CheckpointError(f"{what} holds {exc}") from None
    except Exception as exc:  # msgpack raises several types for malformed data
        detail = str(exc) or type(exc).__name__
        raise CheckpointCorrupted(f"{what} cannot be decoded: {detail}") from exc


def first_problem(exc: ValidationError) -> str:
    """The first problem pydantic found in stored data, as ``field.path: message``."""
    problem = exc.errors()[0]
    return f"{'.'.join(map(str, problem['loc'])) or 'the value'}: {problem['msg']}"


def type_name(value: object) -> str:
    """The name of ``value``'s type, as error messages about stored records show it."""
    return type(value).__name__


def field_error(where: str, field: str, expected: str, value: object) -> CheckpointCorrupted:
    """The error for a stored field ``field`` that is not ``expected`` (``where``: the record)."""
    prefix = f"{where}: " if where else ""
    return CheckpointCorrupted(
        f"{prefix}field {field!r} must be {expected}, got {type_name(value)}"
    )


_MISSING: Any = object()


class Fields:
    """A decoded record's map, read field by field with the type of each checked by hand.

    A record that passes the checksum may still have the wrong structure
    (written by another program or version, or altered on purpose). Read
    through this, a missing field or one of the wrong type raises
    :class:`CheckpointCorrupted` naming the record (``where``) and the field,
    never ``KeyError`` or ``TypeError``; each read costs a dict lookup and an
    exact type check (msgpack decodes to exact ``dict``, ``list``, ``str``...).
    """

    __slots__ = ("raw", "where")

    def __init__(self, raw: object, where: str) -> None:
        if type(raw) is not dict:
            raise CheckpointCorrupted(f"{where} must be a map, got {type_name(raw)}")
        self.raw: dict[Any, Any] = raw
        self.where = where

    def error(self, field: str, expected: str, value: object) -> CheckpointCorrupted:
        """The error for field ``field`` (a name or a path like ``interrupts[0].id``)."""
        if value is _MISSING:
            return CheckpointCorrupted(f"{self.where}: field {field!r} is missing")
        return field_error(self.where, field, expected, value)

    # Each reader is one dict lookup and one exact type check on the way through; the
    # error (missing or of the wrong type) is worked out only when the check fails.

    def get(self, name: str) -> Any:
        """The raw value of field ``name``, which must be present."""
        value = self.raw.get(name, _MISSING)
        if value is _MISSING:
            raise self.error(name, "", value)
        return value

    def text(self, name: str) -> str:
        """Field ``name``, a string."""
        value = self.raw.get(name, _MISSING)
        if type(value) is str:
            return value
        raise self.error(name, "a str", value)

    def optional_text(self, name: str) -> str | None:
        """Field ``name``, a string, or None when absent or nil."""
        value = self.raw.get(name)
        if value is None or type(value) is str:
            return value
        raise self.error(name, "a str", value)

    def integer(self, name: str) -> int:
        """Field ``name``, an integer (not a bool)."""
        value = self.raw.get(name, _MISSING)
        if type(value) is int:
            return value
        raise self.error(name, "an int", value)

    def flag(self, name: str) -> bool:
        """Field ``name``, a boolean."""
        value = self.raw.get(name, _MISSING)
        if type(value) is bool:
            return value
        raise self.error(name, "a bool", value)

    def number(self, name: str) -> float:
        """Field ``name``, a float (an integer is accepted)."""
        value = self.raw.get(name, _MISSING)
        if type(value) is float:
            return value
        if type(value) is int:
            return float(value)
        raise self.error(name, "a number", value)

    def binary(self, name: str) -> bytes:
        """Field ``name``, bytes."""
        value = self.raw.get(name, _MISSING)
        if type(value) is bytes:
            return value
        raise self.error(name, "bytes", value)

    def sequence(self, name: str) -> list[Any]:
        """Field ``name``, a list (its items unchecked)."""
        value = self.raw.get(name, _MISSING)
        if type(value) is list:
            return value
        raise self.error(name, "a list", value)

    def mapping(self, name: str) -> dict[Any, Any]:
        """Field ``name``, a map (its entries unchecked)."""
        value = self.raw.get(name, _MISSING)
        if type(value) is dict:
            return value
        raise self.error(name, "a map", value)

    def choice(self, name: str, allowed: tuple[str, ...]) -> str:
        """Field ``name``, one of the strings ``allowed``."""
        value = self.get(name)
        if type(value) is not str or value not in allowed:
            expected = " or ".join(map(repr, allowed))
            got = repr(value[:40]) if type(value) is str else type_name(value)
            raise CheckpointCorrupted(f"{self.where}: field {name!r} must be {expected}, got {got}")
        return value
