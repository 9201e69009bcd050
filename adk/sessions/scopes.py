"""Session value scopes: which values a key belongs to, and what a turn changed.

A key's prefix names its scope:

- ``user:...``: shared by every session of the same user;
- ``app:...``: shared by every session of the app;
- ``temp:...``: this turn only, never stored;
- anything else: this session only.

A turn's changes are found by comparing each value's encoding at the end of
the turn with its encoding at the start, so a value changed in place (a list
appended to) counts as changed, and a value set to what it already was does
not cost a write.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from adk.sessions.records import SessionError
from adk.state.serde import SerializationError, dumps

Scope = Literal["session", "user", "app", "temp"]

USER_PREFIX = "user:"
APP_PREFIX = "app:"
TEMP_PREFIX = "temp:"


def scope_of(key: str) -> Scope:
    """The scope of session value ``key``, from its prefix."""
    if key.startswith(USER_PREFIX):
        return "user"
    if key.startswith(APP_PREFIX):
        return "app"
    if key.startswith(TEMP_PREFIX):
        return "temp"
    return "session"


@dataclass
class ScopeChanges:
    """The values of one scope a turn set (encoded) and removed."""

    changed: dict[str, bytes] = field(default_factory=dict)
    removed: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.changed or self.removed)


def encode_value(key: str, value: Any) -> bytes:
    """The stored form of one value; :class:`SessionError` naming the key if it cannot be."""
    try:
        return dumps(value)
    except SerializationError as exc:
        raise SessionError(
            f"session value {key!r} cannot be stored ({exc}); or name it 'temp:{key}' to keep "
            "it for this turn only"
        ) from None


def encode_start(values: Mapping[str, Any]) -> dict[str, bytes]:
    """The encodings of the stored scopes' values at the start of a turn."""
    return {
        key: encode_value(key, value) for key, value in values.items() if scope_of(key) != "temp"
    }


def turn_changes(
    start: Mapping[str, bytes], values: Mapping[str, Any]
) -> tuple[dict[Scope, ScopeChanges], list[SessionError]]:
    """What the turn changed in each stored scope, comparing ``values`` with ``start``.

    A value that cannot be stored is left out of the changes (the rest of
    the turn is still stored); the second item names each such value.
    """
    changes: dict[Scope, ScopeChanges] = {
        "session": ScopeChanges(),
        "user": ScopeChanges(),
        "app": ScopeChanges(),
    }
    unstorable: list[SessionError] = []
    for key, value in values.items():
        scope = scope_of(key)
        if scope == "temp":
            continue
        try:
            encoded = encode_value(key, value)
        except SessionError as exc:
            unstorable.append(exc)
            continue
        if start.get(key) != encoded:
            changes[scope].changed[key] = encoded
    for key in start:
        if key not in values:
            changes[scope_of(key)].removed.append(key)
    return changes, unstorable
