"""Instruction templates: ``{name}`` filled from session values, ``{{``/``}}`` literal braces."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from adk.errors import ConfigurationError, InstructionError

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
# A session value name, optionally with its scope (``{user:name}``, ``{app:x}``, ``{temp:x}``).
_KEY = re.compile(r"^(?:(?:user|app|temp):)?[A-Za-z_][A-Za-z0-9_.\-]*$")


class InstructionTemplate:
    """A parsed instruction: literal text and placeholder keys, checked once at construction."""

    __slots__ = ("_parts", "_static", "keys", "source")

    def __init__(self, source: str, agent_name: str) -> None:
        self.source = source
        parts: list[tuple[bool, str]] = []  # (is_placeholder, text_or_key)
        position = 0
        for match in _TOKEN.finditer(source):
            if match.start() > position:
                parts.append((False, source[position : match.start()]))
            token = match.group(0)
            if token in ("{{", "}}"):
                parts.append((False, token[0]))
            elif token in ("{", "}"):
                raise ConfigurationError(
                    f"instruction of agent {agent_name!r} has an unmatched {token!r} at offset "
                    f"{match.start()}; write '{token * 2}' for a literal brace"
                )
            else:
                key = (match.group(1) or "").strip()
                if not _KEY.match(key):
                    raise ConfigurationError(
                        f"instruction of agent {agent_name!r} has an invalid placeholder "
                        f"{token!r}; placeholders are {{name}} with a session value name "
                        "(scoped: {user:name}, {app:name}, {temp:name}), and '{{' / '}}' are "
                        "literal braces"
                    )
                parts.append((True, key))
            position = match.end()
        if position < len(source):
            parts.append((False, source[position:]))
        self._parts = tuple(parts)
        self.keys = tuple(text for is_key, text in parts if is_key)
        self._static = None if self.keys else "".join(text for _, text in parts)

    def fill(self, values: Mapping[str, Any], agent_name: str) -> str:
        """The instruction with each placeholder replaced by its session value."""
        if self._static is not None:
            return self._static
        out: list[str] = []
        for is_key, text in self._parts:
            if not is_key:
                out.append(text)
                continue
            if text not in values:
                known = ", ".join(sorted(values)) or "none"
                raise InstructionError(
                    f"instruction of agent {agent_name!r} uses {{{text}}}, but session value "
                    f"{text!r} is not set (set values: {known})"
                )
            out.append(str(values[text]))
        return "".join(out)
