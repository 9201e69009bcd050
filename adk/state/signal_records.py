"""Signal records: their names in a run's namespace, their encoding, and the checks of arguments.

The part of :mod:`adk.state.signals` that needs no store: what a signal may
carry, how it is stored (one msgpack record per signal, ``sig:<seq>``), and
how a stored one is read back, a damaged or crafted record failing with
:class:`~adk.CheckpointCorrupted` rather than anything else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from adk.errors import ArgumentTypeError, ConfigurationError
from adk.state.serde import CheckpointCorrupted, Fields, dumps, loads
from adk.state.stores.base import CheckpointStore

SignalKind = Literal["cancel", "pause", "resume", "approve", "reject", "feedback", "retry"]
SIGNAL_KINDS: tuple[str, ...] = get_args(SignalKind)
"""Every signal kind, in the order the docs list them."""

PREFIX = "sig:"
"""Name prefix of signal records in a run's namespace."""
_DIGITS = 10
MAX_PAYLOAD_BYTES = 64 * 1024
"""The largest encoded payload a signal may carry (feedback text is the big one)."""


def namespace(run_id: str) -> str:
    """The store namespace of ``run_id`` (the same as :func:`adk.runner.checkpoint.namespace`)."""
    return f"run:{run_id}"


def record_name(seq: int) -> str:
    """The name of signal record number ``seq`` (1-based, zero-padded so names sort by seq)."""
    return f"{PREFIX}{seq:0{_DIGITS}d}"


def channel(run_id: str) -> str:
    """The store's notification channel for ``run_id``'s signals."""
    return f"signals:{run_id}"


@dataclass(frozen=True)
class Signal:
    """One signal to a run, as logged: what to do, its details, and its place in the run's order.

    - ``kind``: cancel, pause, resume, approve, reject, feedback or retry;
    - ``payload``: ``{"interrupt_id": str, "reason"?: str}`` for approve and
      reject, ``{"text": str}`` for feedback, ``{}`` for the others;
    - ``seq``: its number in the run's log (1, 2, ...), given by the store;
    - ``sent_at``: UNIX time the sender logged it.
    """

    kind: SignalKind
    payload: dict[str, Any] = field(default_factory=dict)
    seq: int = 0
    sent_at: float = 0.0


# -- arguments --------------------------------------------------------------------------


def _check_text(where: str, name: str, value: object) -> None:
    if type(value) is not str:
        raise ArgumentTypeError(
            f"{where}: payload[{name!r}] must be a str, got {type(value).__name__} {value!r:.80}"
        )


def check_signal_args(run_id: object, kind: object, payload: object) -> dict[str, Any]:
    """Check ``send_signal``'s arguments; the payload to store (a fresh dict).

    Wrong kinds of value raise :class:`~adk.ArgumentTypeError`, bad values
    :class:`~adk.ConfigurationError`, each naming the argument.
    """
    where = "send_signal"
    if type(run_id) is not str:
        raise ArgumentTypeError(
            f"{where}: run_id must be a str, got {type(run_id).__name__} {run_id!r:.80}"
        )
    if not run_id:
        raise ConfigurationError(f"{where}: run_id must not be empty")
    if type(kind) is not str:
        raise ArgumentTypeError(
            f"{where}: kind must be a str, got {type(kind).__name__} {kind!r:.80}"
        )
    if kind not in SIGNAL_KINDS:
        raise ConfigurationError(
            f"{where}: unknown signal kind {kind!r}; kinds: {', '.join(SIGNAL_KINDS)}"
        )
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        raise ArgumentTypeError(
            f"{where}: payload must be a dict or None, got {type(payload).__name__}"
        )
    allowed: dict[str, tuple[str, ...]] = {
        "approve": ("interrupt_id", "reason"),
        "reject": ("interrupt_id", "reason"),
        "feedback": ("text",),
    }
    required = {"approve": ("interrupt_id",), "reject": ("interrupt_id",), "feedback": ("text",)}
    keys = allowed.get(kind, ())
    extra = [key for key in payload if key not in keys]
    if extra:
        expected = ", ".join(map(repr, keys)) if keys else "nothing"
        raise ConfigurationError(
            f"{where}: a {kind!r} signal's payload takes {expected}, got {extra[0]!r}"
        )
    for key in required.get(kind, ()):
        if key not in payload:
            raise ConfigurationError(f"{where}: a {kind!r} signal needs payload[{key!r}]")
    for key in keys:
        if key in payload:
            _check_text(where, key, payload[key])
    if kind in ("approve", "reject") and not payload["interrupt_id"]:
        raise ConfigurationError(f"{where}: payload['interrupt_id'] must not be empty")
    return dict(payload)


def check_seq(where: str, name: str, value: object) -> int:
    """``value`` as a seq (an int >= 0), or a clear error naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentTypeError(
            f"{where}: {name} must be an int, got {type(value).__name__} {value!r:.80}"
        )
    if value < 0:
        raise ConfigurationError(f"{where}: {name} must be >= 0, got {value}")
    return value


def check_seconds(where: str, name: str, value: object, *, optional: bool) -> float | None:
    """``value`` as seconds (> 0; None allowed when ``optional``), or a clear error."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ArgumentTypeError(
            f"{where}: {name} must be a number of seconds, got {type(value).__name__} {value!r:.80}"
        )
    if not value > 0:
        raise ConfigurationError(f"{where}: {name} must be > 0, got {value!r}")
    return float(value)


def check_store(where: str, store: object) -> CheckpointStore:
    """``store`` if it is a CheckpointStore, else an ArgumentTypeError naming ``where``."""
    if not isinstance(store, CheckpointStore):
        raise ArgumentTypeError(
            f"{where}: store must be a CheckpointStore, got {type(store).__name__}"
        )
    return store


# -- records ---------------------------------------------------------------------------


def encode(kind: str, payload: dict[str, Any], seq: int, sent_at: float) -> bytes:
    """The stored bytes of a signal record."""
    return dumps({"kind": kind, "payload": payload, "seq": seq, "sent_at": sent_at})


def decode(run_id: str, name: str, data: bytes) -> Signal:
    """Read one signal record; a damaged or crafted one raises :class:`CheckpointCorrupted`."""
    where = f"signal record {name!r} of run {run_id!r}"
    seq = seq_of(name)
    if seq is None:
        raise CheckpointCorrupted(f"{where}: not a signal record name")
    fields = Fields(loads(data, where), where)
    kind = fields.choice("kind", SIGNAL_KINDS)
    payload = fields.mapping("payload")
    stored_seq = fields.integer("seq")
    if stored_seq != seq:
        raise CheckpointCorrupted(f"{where}: field 'seq' is {stored_seq}, its name says {seq}")
    sent_at = fields.number("sent_at")
    try:
        check_signal_args(run_id, kind, payload)
    except ConfigurationError as exc:
        raise CheckpointCorrupted(f"{where}: {str(exc).removeprefix('send_signal: ')}") from None
    return Signal(kind, dict(payload), seq, sent_at)  # type: ignore[arg-type]


def seq_of(name: str) -> int | None:
    """The seq of signal record ``name``, or None if the name is not one adk writes."""
    digits = name[len(PREFIX) :]
    if not name.startswith(PREFIX) or len(digits) != _DIGITS or not digits.isdigit():
        return None
    return int(digits)
