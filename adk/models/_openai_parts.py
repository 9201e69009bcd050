"""Message parts (images, audio, files) as OpenAI chat content blocks, the shapes litellm takes.

- text: ``{"type": "text", "text": ...}``;
- an image: ``{"type": "image_url", "image_url": {"url": <URL or data: URL>, "detail"?}}``;
- audio bytes: ``{"type": "input_audio", "input_audio": {"data": <base64>, "format": "wav"}}``;
- a file's bytes: ``{"type": "file", "file": {"file_data": <data: URL>, "filename": ...}}``;
- audio or a file by URL: ``{"type": "file", "file": {"file_id": <URL>, "format": <media type>}}``
  (litellm passes a URL file id to providers that fetch it: Gemini, Vertex, Bedrock...).
"""

from __future__ import annotations

import base64
import mimetypes
from collections.abc import Sequence
from typing import Any

from adk.messages import Message, repair_text

_AUDIO_FORMATS = {
    "audio/wav": "wav",
    "audio/x-wav": "wav",
    "audio/wave": "wav",
    "audio/mpeg": "mp3",
    "audio/mp3": "mp3",
}


def parts_to_openai(parts: Sequence[Any]) -> list[dict[str, Any]]:
    """``parts`` as OpenAI content blocks, in order."""
    return [part_to_openai(part) for part in parts]


def part_to_openai(part: Any) -> dict[str, Any]:
    """One part as an OpenAI content block (see the module docstring)."""
    kind = part.type
    if kind == "text":
        return {"type": "text", "text": repair_text(part.text)}
    if kind == "image":
        image: dict[str, Any] = {"url": part.data_url()}
        if part.detail is not None:
            image["detail"] = part.detail
        return {"type": "image_url", "image_url": image}
    if part.data is None:
        return {"type": "file", "file": {"file_id": part.url, "format": part.media_type}}
    if kind == "audio":
        media = part.media_type
        audio_format = _AUDIO_FORMATS.get(media, media.partition("/")[2])
        data = base64.b64encode(part.data).decode()
        return {"type": "input_audio", "input_audio": {"data": data, "format": audio_format}}
    filename = part.filename or "file" + (mimetypes.guess_extension(part.media_type) or "")
    return {"type": "file", "file": {"file_data": part.data_url(), "filename": filename}}


def tool_text(message: Message, held: list[dict[str, Any]]) -> str:
    """A multimodal tool message's text; its other parts are added to ``held``.

    The text says what follows, so the model can tell which result an
    attachment belongs to.
    """
    media = [part for part in message.parts if part.type != "text"]
    kinds = ", ".join(part.type for part in media)
    note = f"[{len(media)} attachment(s) ({kinds}) follow in the next user message]"
    held.append(
        {"type": "text", "text": f"Attachments of tool '{message.name}' ({message.tool_call_id}):"}
    )
    held.extend(part_to_openai(part) for part in media)
    text = repair_text(message.content)
    return f"{text}\n{note}" if text else note


def tool_attachments(held: list[dict[str, Any]]) -> dict[str, Any]:
    """The user message carrying the held attachments of the tool results before it."""
    return {"role": "user", "content": held}


_SUPPORT_KEYS = {
    "image": "supports_vision",
    "audio": "supports_audio_input",
    "file": "supports_pdf_input",
}
"""litellm's check of each kind of input."""


def accepted_input(litellm: Any, model: str, cache: dict[str, bool]) -> frozenset[str]:
    """The kinds of non-text input litellm's model map says ``model`` takes.

    A model the map does not know is given the benefit of the doubt (every
    kind). ``cache`` keeps the answers (the map is read once per model and kind).
    """
    for kind, check in _SUPPORT_KEYS.items():
        if kind not in cache:
            try:
                litellm.get_model_info(model)
            except Exception:  # not in litellm's map
                cache[kind] = True
            else:
                cache[kind] = bool(getattr(litellm, check)(model))
    return frozenset(kind for kind, taken in cache.items() if taken)
