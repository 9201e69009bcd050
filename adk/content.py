"""Multimodal message content: text, images, audio and files as typed parts.

A plain message is text (``Message.content``). A multimodal one also holds
its full content, in order, as parts (``Message.parts``): text, an image,
audio, a file or document. A binary part carries its bytes and their media
type (``image/png``); a part may instead point at a URL. Parts are frozen
pydantic models with a ``type`` discriminator, so a message dumped to JSON
(bytes as base64 there) validates back into the same parts; checkpoints and
sessions store the bytes as msgpack bytes, each blob once per run
(docs/multimodal.md).

This module sits at the bottom of adk with :mod:`adk.messages`: models,
storage and tools all read parts.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, TypeAlias
from weakref import WeakKeyDictionary

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

_URLSAFE = str.maketrans("-_", "+/")
_PART_CONFIG = ConfigDict(frozen=True, defer_build=True, ser_json_bytes="base64")


class TextPart(BaseModel):
    """A piece of text among other parts."""

    model_config = _PART_CONFIG

    type: Literal["text"] = "text"
    text: str


class _Media(BaseModel):
    """What every binary part has: bytes with a media type, or a URL."""

    model_config = _PART_CONFIG

    data: bytes | None = Field(default=None, repr=False)
    """The raw bytes. Base64 text is decoded (a JSON dump writes the bytes as base64)."""
    url: str | None = None
    """Where the provider fetches the content (``https://``, ``gs://``...), instead of data."""
    media_type: str | None = None
    """The IANA media type of the content, e.g. ``image/png``."""

    _prefix: ClassVar[str] = ""

    @field_validator("data", mode="before")
    @classmethod
    def _from_base64(cls, value: Any) -> Any:
        if isinstance(value, str):
            import base64
            import binascii

            try:
                # pydantic writes URL-safe base64; standard base64 is taken too
                return base64.b64decode(value.translate(_URLSAFE), validate=True)
            except binascii.Error:
                raise ValueError("data given as text must be base64") from None
        return value

    @model_validator(mode="after")
    def _check_source(self) -> _Media:
        name = type(self).__name__
        if (self.data is None) == (self.url is None):
            raise ValueError(f"{name} needs exactly one of data (bytes) or url (str)")
        media = self.media_type
        if media is None:
            if self.data is not None or self._media_required():
                example = f"{self._prefix}..." if self._prefix else "application/pdf"
                raise ValueError(f"{name} needs a media_type (e.g. {example!r})")
        elif "/" not in media or (self._prefix and not media.startswith(self._prefix)):
            kind = f"an {self._prefix}* type" if self._prefix else "a type/subtype"
            raise ValueError(f"{name} media_type must be {kind}, got {media!r}")
        return self

    def _media_required(self) -> bool:
        return True

    def digest(self) -> bytes:
        """SHA-256 of the data (or of the URL): the part's identity, computed once."""
        digest = _DIGESTS.get(self)
        if digest is None:
            import hashlib  # here: importing it costs ~3 ms, and plain text never needs it

            source = self.data if self.data is not None else (self.url or "").encode()
            digest = _DIGESTS[self] = hashlib.sha256(source).digest()
        return digest

    def data_url(self) -> str:
        """The part as a URL: its own, or a ``data:`` URL of the bytes (base64)."""
        if self.data is None:
            return self.url or ""
        import base64

        return f"data:{self.media_type};base64,{base64.b64encode(self.data).decode()}"


class ImagePart(_Media):
    """An image: bytes with an ``image/*`` media type, or a URL (media type optional).

    ``detail`` (``"low"``, ``"high"``, ``"auto"``) is passed to providers that
    take it; it also sets adk's token estimate (85 tokens for low, else 765).
    """

    type: Literal["image"] = "image"
    detail: Literal["auto", "low", "high"] | None = None
    _prefix: ClassVar[str] = "image/"

    def _media_required(self) -> bool:
        return False

    @classmethod
    def from_path(cls, path: str | Path, media_type: str | None = None) -> ImagePart:
        """The image in file ``path`` (media type guessed from its name unless given)."""
        data, media = _read(path, media_type)
        return cls(data=data, media_type=media)


class AudioPart(_Media):
    """Audio: bytes with an ``audio/*`` media type (``audio/wav``, ``audio/mpeg``), or a URL."""

    type: Literal["audio"] = "audio"
    _prefix: ClassVar[str] = "audio/"

    @classmethod
    def from_path(cls, path: str | Path, media_type: str | None = None) -> AudioPart:
        """The audio in file ``path`` (media type guessed from its name unless given)."""
        data, media = _read(path, media_type)
        return cls(data=data, media_type=media)


class FilePart(_Media):
    """A file or document (a PDF...): bytes or a URL, with its media type and a filename."""

    type: Literal["file"] = "file"
    filename: str | None = None

    @classmethod
    def from_path(cls, path: str | Path, media_type: str | None = None) -> FilePart:
        """The file ``path`` (media type guessed from its name unless given)."""
        data, media = _read(path, media_type)
        return cls(data=data, media_type=media, filename=Path(path).name)


_DIGESTS: WeakKeyDictionary[_Media, bytes] = WeakKeyDictionary()
"""Digests of live parts (equal parts share one): a blob is hashed once, not per request."""

Part: TypeAlias = Annotated[
    TextPart | ImagePart | AudioPart | FilePart, Field(discriminator="type")
]
"""One piece of a message's content; ``type`` says which."""

MediaPart: TypeAlias = ImagePart | AudioPart | FilePart
"""A part that is not text."""

PART_TYPES: tuple[type[BaseModel], ...] = (TextPart, ImagePart, AudioPart, FilePart)
"""The part classes, in the order of their storage codes."""

_BY_NAME: dict[str, type[BaseModel]] = {
    "text": TextPart,
    "image": ImagePart,
    "audio": AudioPart,
    "file": FilePart,
}


def _read(path: str | Path, media_type: str | None) -> tuple[bytes, str | None]:
    import mimetypes

    data = Path(path).read_bytes()
    return data, media_type or mimetypes.guess_type(str(path))[0]


def as_part(item: object, index: int) -> Any:
    """``item`` (a str, a part, or a part's dict form) as a part; ``ValueError`` if neither."""
    if type(item) is str:
        return TextPart(text=item)
    if isinstance(item, PART_TYPES):
        return item
    if isinstance(item, dict):
        kind = item.get("type")
        cls = _BY_NAME.get(kind) if type(kind) is str else None
        if cls is None:
            raise ValueError(
                f"content[{index}] has unknown part type {kind!r}; "
                "expected 'text', 'image', 'audio' or 'file'"
            )
        return cls.model_validate(item)
    raise ValueError(
        f"content[{index}] must be a str or a part (TextPart, ImagePart, AudioPart, FilePart), "
        f"got {type(item).__name__} {item!r:.60}"
    )


class _Seen:
    """Whether this process has made a message with non-text parts yet.

    Loops over a whole conversation on every model call (the scripted model's
    token estimate) skip looking for parts until one exists: plain-text runs
    pay one attribute read per call, not one per message. Set by every path
    that makes parts (:func:`split_content`, which validation goes through,
    and the record decoder); a message built with ``model_construct`` skips it.
    """

    __slots__ = ("parts",)

    def __init__(self) -> None:
        self.parts = False


SEEN = _Seen()


def split_content(items: Iterable[object]) -> tuple[str, tuple[Any, ...]]:
    """``(text, parts)`` of a content list: the text parts joined by newlines, all the parts.

    A list of text only is plain text: its parts are ``()``, so the message
    costs what a plain one does.
    """
    parts = tuple(as_part(item, index) for index, item in enumerate(items))
    text = "\n".join(part.text for part in parts if type(part) is TextPart)
    if all(type(part) is TextPart for part in parts):
        return text, ()
    SEEN.parts = True
    return text, parts


def join_text(parts: Sequence[Any]) -> str:
    """The text of ``parts``: their text parts joined by newlines."""
    return "\n".join(part.text for part in parts if type(part) is TextPart)


IMAGE_TOKENS = 765
"""adk's token estimate for an image (a 1024x1024 high-detail image at OpenAI)."""
LOW_DETAIL_IMAGE_TOKENS = 85
"""adk's token estimate for an image with ``detail="low"``."""
AUDIO_BYTES_PER_TOKEN = 1000
"""adk's token estimate for audio: one token per this many bytes (at least 32 tokens)."""
FILE_BYTES_PER_TOKEN = 8
"""adk's token estimate for a file: one token per this many bytes (at least 32 tokens)."""
URL_PART_TOKENS = 256
"""adk's token estimate for audio or a file given by URL (its size is unknown)."""


def part_tokens(part: Any) -> int:
    """adk's rough token estimate of one part (see the constants above; docs/multimodal.md)."""
    kind = type(part)
    if kind is TextPart:
        return (len(part.text) + 3) // 4
    if kind is ImagePart:
        return LOW_DETAIL_IMAGE_TOKENS if part.detail == "low" else IMAGE_TOKENS
    if part.data is None:
        return URL_PART_TOKENS
    per_token = AUDIO_BYTES_PER_TOKEN if kind is AudioPart else FILE_BYTES_PER_TOKEN
    return max(32, len(part.data) // per_token)


def media_tokens(parts: Sequence[Any]) -> int:
    """The estimated tokens of the parts that are not text (the text is counted as text)."""
    return sum(part_tokens(part) for part in parts if type(part) is not TextPart)


Modality = Literal["image", "audio", "file"]
"""A kind of input a model may or may not take besides text."""


def modalities(parts: Iterable[Any]) -> set[str]:
    """The kinds of non-text input among ``parts``."""
    return {part.type for part in parts if type(part) is not TextPart}


def unsupported_input(
    messages: Iterable[Any], accepts: Iterable[str], model: str
) -> ValueError | None:
    """The error for the first part that ``model``, taking only ``accepts``, cannot take.

    None when every part is accepted. For models to check a request before
    calling anything: the message and part are named.
    """
    accepted = set(accepts)
    for number, message in enumerate(messages):
        for index, part in enumerate(message.parts):
            kind = part.type
            if kind != "text" and kind not in accepted:
                takes = ", ".join(sorted(accepted | {"text"}))
                return ValueError(
                    f"model {model!r} cannot take {kind} input (it takes: {takes}); "
                    f"found in messages[{number}].parts[{index}]"
                )
    return None
