"""Stable prompt prefixes: canonical requests, their fingerprints, what is cached where.

Engines reuse KV cache only for an exact token prefix. The layer therefore
sends every request in one canonical shape (system messages first, tools
sorted by name with their JSON keys sorted) and fingerprints it as a chain of
hashes over fixed-size blocks of its serialised text, the way vLLM hashes
token blocks: a block matches only if everything before it matches too. The
fingerprint is the layer's own view; it never needs the engine's tokenizer.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from adk.content import part_tokens
from adk.messages import Message
from adk.models.base import ModelRequest, ToolSpec

BLOCK_CHARS = 64
"""Characters per fingerprint block (about 16 tokens)."""
CHARS_PER_TOKEN = 4
"""The layer's token estimate: one token per four characters of prompt text."""


def estimate_tokens(chars: int) -> int:
    """Tokens in ``chars`` characters of prompt text, by the layer's estimate."""
    return (chars + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


@dataclass(frozen=True, slots=True)
class Fingerprint:
    """A request's prompt as chained block hashes; equal leading blocks mean an equal prefix."""

    blocks: tuple[int, ...]
    chars: int
    static_blocks: int = 0
    """Leading blocks made only of static content (system messages and tools): shared
    by every call of an agent, so no single run's flush forgets them."""
    digest: int = 0
    """Hash of the whole prompt text, partial last block included."""

    @property
    def tokens(self) -> int:
        """Estimated prompt tokens."""
        return estimate_tokens(self.chars)

    def shared_blocks(self, other: Fingerprint) -> int:
        """How many leading blocks this prompt has in common with ``other``."""
        shared = 0
        for mine, theirs in zip(self.blocks, other.blocks, strict=False):
            if mine != theirs:
                break
            shared += 1
        return shared

    def extends(self, earlier: Fingerprint, text: str) -> bool:
        """True if ``earlier``'s whole prompt is a prefix of this one (whose text is ``text``)."""
        count = len(earlier.blocks)
        return (
            earlier.chars <= len(text)
            and self.blocks[:count] == earlier.blocks
            and hash(text[: earlier.chars]) == earlier.digest
        )


def canonical_request(request: ModelRequest) -> ModelRequest:
    """``request`` with its static content first and serialised canonically.

    System messages move to the front (in their order), tools are sorted by
    name and their schemas get sorted keys, so two calls that differ only in
    the order of things produce the same prefix. Returns ``request`` itself
    when it already is canonical.
    """
    messages = request.messages
    first_other = next((i for i, m in enumerate(messages) if m.role != "system"), len(messages))
    if any(m.role == "system" for m in messages[first_other:]):
        messages = [m for m in messages if m.role == "system"] + [
            m for m in messages if m.role != "system"
        ]
    tools = request.tools
    if tools:
        tools = _canonical_tools(tools)
    if messages is request.messages and tools is request.tools:
        return request
    return replace(request, messages=list(messages), tools=list(tools))


_canonical_cache: dict[tuple[int, ...], tuple[tuple[ToolSpec, ...], list[ToolSpec]]] = {}


def _canonical_tools(tools: list[ToolSpec]) -> list[ToolSpec]:
    key = tuple(id(spec) for spec in tools)
    hit = _canonical_cache.get(key)
    if hit is not None and all(a is b for a, b in zip(hit[0], tools, strict=True)):
        return hit[1]
    ordered = sorted(tools, key=lambda spec: spec.name)
    canonical = [
        spec
        if _is_sorted(spec.parameters)
        else spec.model_copy(update={"parameters": _sorted_json(spec.parameters)})
        for spec in ordered
    ]
    if canonical == tools and all(a is b for a, b in zip(canonical, tools, strict=True)):
        canonical = tools
    if len(_canonical_cache) > 4096:
        _canonical_cache.clear()
    # The originals are kept in the entry so their ids cannot be reused while it lives.
    _canonical_cache[key] = (tuple(tools), canonical)
    return canonical


def _sorted_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _sorted_json(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_json(item) for item in value]
    return value


def _is_sorted(value: Any) -> bool:
    if isinstance(value, dict):
        keys = list(value)
        return keys == sorted(keys) and all(_is_sorted(item) for item in value.values())
    if isinstance(value, list):
        return all(_is_sorted(item) for item in value)
    return True


def prompt_text(request: ModelRequest) -> tuple[str, int]:
    """The serialised prompt the fingerprint is taken over (system, tools, then the rest),
    and the length of its static part."""
    messages = request.messages
    split = next((i for i, m in enumerate(messages) if m.role != "system"), len(messages))
    parts = [_message_text(m) for m in messages[:split]]
    if request.tools:
        parts.append(
            json.dumps(
                [spec.model_dump(mode="json") for spec in request.tools],
                separators=(",", ":"),
                sort_keys=True,
            )
        )
    static = sum(len(part) for part in parts)
    parts.extend(_message_text(m) for m in messages[split:])
    return "".join(parts), static


def _message_text(message: Message) -> str:
    calls = "".join(f"{c.id}\x1f{c.name}\x1f{c.arguments}\x1e" for c in message.tool_calls)
    text = (
        f"\x02{message.role}\x1f{message.name or ''}\x1f{message.content}"
        f"\x1f{calls}\x1f{message.tool_call_id or ''}\x03"
    )
    return _with_parts(text, message.parts) if message.parts else text


def _with_parts(text: str, parts: tuple[Any, ...]) -> str:
    """``text`` followed by the parts that are not text, as the layer counts and hashes them.

    Each is its position, kind, media type and SHA-256 (an image that changes
    changes the prefix), padded to its estimated size in prompt tokens
    (:func:`adk.content.part_tokens`), so prompt sizes count it.
    """
    pieces = [text]
    for index, part in enumerate(parts):
        if part.type == "text":
            continue
        header = f"\x1c{index}\x1f{part.type}\x1f{part.media_type or ''}\x1f{part.digest().hex()}"
        pieces.append(header.ljust(part_tokens(part) * CHARS_PER_TOKEN, "\x00"))
    return "".join(pieces)


def fingerprint(request: ModelRequest) -> Fingerprint:
    """The block-hash chain of ``request``'s prompt (take it of the canonical request)."""
    return fingerprint_text(*prompt_text(request))


def fingerprint_text(text: str, static: int = 0) -> Fingerprint:
    """The fingerprint of a serialised prompt whose first ``static`` characters are static."""
    blocks: list[int] = []
    chained = 0
    for start in range(0, len(text) - BLOCK_CHARS + 1, BLOCK_CHARS):
        chained = hash((chained, text[start : start + BLOCK_CHARS]))
        blocks.append(chained)
    return Fingerprint(tuple(blocks), len(text), static // BLOCK_CHARS, hash(text))


class PrefixIndex:
    """One replica's cached prefixes as the layer believes them: LRU blocks with owners.

    ``capacity_blocks`` mirrors the engine's KV capacity, so prefixes the
    engine must have evicted stop attracting calls. Each block remembers which
    runs sent it, so a soft flush of one run forgets what only that run used.
    """

    __slots__ = ("_blocks", "_owned", "capacity_blocks")

    def __init__(self, capacity_blocks: int) -> None:
        self.capacity_blocks = max(1, capacity_blocks)
        self._blocks: OrderedDict[int, set[str]] = OrderedDict()
        self._owned: dict[str, set[int]] = {}

    def __len__(self) -> int:
        return len(self._blocks)

    def match(self, fp: Fingerprint) -> int:
        """How many leading blocks of ``fp`` this replica holds."""
        blocks = self._blocks
        count = 0
        for block in fp.blocks:
            if block not in blocks:
                break
            count += 1
        return count

    def insert(self, fp: Fingerprint, owner: str) -> None:
        """Record that ``fp`` was sent here by run ``owner`` (touching blocks already held)."""
        blocks = self._blocks
        owned = self._owned.setdefault(owner, set())
        # Tail first, so the head is the most recently used: under pressure a prompt loses
        # its tail before its head, as in vLLM (a chained prefix is useless without its head).
        for position in range(len(fp.blocks) - 1, -1, -1):
            block = fp.blocks[position]
            owners = blocks.get(block)
            if owners is None:
                owners = blocks[block] = set()
            else:
                blocks.move_to_end(block)
            if position >= fp.static_blocks:
                owners.add(owner)
                owned.add(block)
        while len(blocks) > self.capacity_blocks:
            evicted, owners = blocks.popitem(last=False)
            for name in owners:
                held = self._owned.get(name)
                if held is not None:
                    held.discard(evicted)

    def owners(self) -> Iterable[str]:
        """Runs that have blocks recorded here."""
        return [name for name, held in self._owned.items() if held]

    def release(self, owner: str, *, drop: bool = False) -> int:
        """Give up ``owner``'s claim on the blocks no one else sent; returns how many.

        By default (a soft flush) they stay but become the first to be evicted:
        the engine still holds them until it needs the room, so a later call
        that continues them (the next turn of a chat) can still find them.
        ``drop`` forgets them at once (the engine freed them, or never had them).
        """
        held = self._owned.pop(owner, None)
        if not held:
            return 0
        released = 0
        for block in held:
            owners = self._blocks.get(block)
            if owners is None:
                continue
            owners.discard(owner)
            if not owners:
                if drop:
                    del self._blocks[block]
                else:
                    self._blocks.move_to_end(block, last=False)
                released += 1
        return released

    def clear(self) -> None:
        """Forget everything (the engine's cache was flushed)."""
        self._blocks.clear()
        self._owned.clear()
