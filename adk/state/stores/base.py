"""The CheckpointStore protocol: a small namespaced key-value interface.

A run keeps its records in one namespace (``run:<run id>``): its metadata,
the chunks of its append-only journal, its checkpoints and resume claims.
Every backend implements the same eight operations; ``put_if_absent`` must
be atomic across processes, since it is what makes a resume single-shot.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Protocol, runtime_checkable
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from adk.errors import AdkError


class StoreUnavailable(AdkError):
    """The checkpoint store cannot be reached, so the operation did not complete.

    Raised for connection-level failures only: the server refused or reset
    the connection, a connect or reply timed out, no pooled connection came
    free within the pool timeout, or (SQLite) the file cannot be opened or
    stayed locked past the store's timeout. It is a type of its own so that
    callers (the Runner, an application's retry or alerting code) can tell
    "the store is down, try again later" from a bug or corrupted data without
    importing the optional drivers' exception types. The driver's error is
    chained as ``__cause__``. The outcome of a write that fails this way is
    unknown: it may or may not have been applied.

    Attributes: ``kind`` (``"redis"``, ``"postgres"``, ``"sqlite"``),
    ``address`` (the URL, DSN or path, never with its password),
    ``operation`` (``"get"``, ``"put_many"``..., or ``"open"``) and
    ``reason`` (the driver's message).
    """

    def __init__(self, kind: str, address: str, operation: str, reason: str) -> None:
        self.kind = kind
        self.address = address
        self.operation = operation
        self.reason = reason
        where = f"{kind} checkpoint store at {address}"
        super().__init__(f"{where} is unavailable ({operation}): {reason}")

    def __reduce__(self) -> tuple[type[StoreUnavailable], tuple[str, str, str, str]]:
        return type(self), (self.kind, self.address, self.operation, self.reason)


_KEYWORD_PASSWORD = re.compile(r"\s*\bpassword\s*=\s*(?:'(?:\\.|[^'\\])*'|\S*)")


def redact_address(address: str) -> str:
    """``address`` (a URL or a libpq ``key=value`` DSN) without its password.

    Store errors and logs name the server they failed to reach; this keeps
    the credentials out of them.
    """
    if "://" not in address:
        return _KEYWORD_PASSWORD.sub("", address).strip()
    parts = urlsplit(address)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    netloc = parts.netloc
    if at:
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}@{hostport}" if user else hostport
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, v) for k, v in pairs if k.lower() != "password"])
    if (netloc, query) == (parts.netloc, parts.query):
        return address
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def failure_reason(exc: BaseException, *secrets: str | None) -> str:
    """A one-line description of a driver error, with any of ``secrets`` masked."""
    text = " ".join(str(exc).split()) or "no detail"
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return f"{type(exc).__name__}: {text}"


class Subscription(Protocol):
    """A live subscription to one notification channel of a store (optional capability).

    Stores that can push notifications (Redis pub/sub, PostgreSQL
    LISTEN/NOTIFY) have two optional methods besides the protocol's eight:
    ``async notify(channel, message)`` and ``subscribe(channel)``, an async
    context manager giving one of these (on a connection of its own, closed
    on exit). Callers look them up with ``getattr`` and poll when a store has
    none. Signals use them to wake a run's listener (:mod:`adk.state.signals`).
    """

    async def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds`` for a message; True if one arrived.

        Raises :class:`StoreUnavailable` when the connection is lost.
        """
        ...


@runtime_checkable
class CheckpointStore(Protocol):
    """Where checkpoints live: in memory, SQLite, Redis or PostgreSQL.

    ``ttl`` is in seconds and applies to a whole namespace: a write with a
    ttl makes every record of its namespace expire ``ttl`` seconds from now
    (a run's records live and expire together). An expired record reads as
    missing.
    """

    async def get(self, namespace: str, name: str) -> bytes | None:
        """The record ``name`` in ``namespace``, or None."""
        ...

    async def put(
        self, namespace: str, name: str, data: bytes, *, ttl: float | None = None
    ) -> None:
        """Write (or overwrite) a record."""
        ...

    async def put_many(
        self, namespace: str, items: Sequence[tuple[str, bytes]], *, ttl: float | None = None
    ) -> None:
        """Write several records of one namespace together (one round trip, all or none)."""
        ...

    async def put_if_absent(
        self, namespace: str, name: str, data: bytes, *, ttl: float | None = None
    ) -> bool:
        """Write a record only if it does not exist; True if this call wrote it (atomic)."""
        ...

    async def scan(self, namespace: str, prefix: str = "") -> list[tuple[str, bytes]]:
        """Every live record of ``namespace`` whose name starts with ``prefix``, sorted by name."""
        ...

    async def delete(self, namespace: str, name: str | None = None) -> None:
        """Delete one record, or the whole namespace when ``name`` is None."""
        ...

    async def namespaces(self, prefix: str = "") -> list[str]:
        """Names of the namespaces that hold live records and start with ``prefix``, sorted."""
        ...

    async def close(self) -> None:
        """Release connections."""
        ...
