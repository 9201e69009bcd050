"""Signals to a run (cancel, pause, feedback...), through its checkpoint store, from any process.

A signal is one record in the run's namespace (``run:<id>``), named
``sig:<seq>`` with ``seq`` 1, 2, 3... zero-padded so that names sort in
order. The log is the truth: a signal is sent by appending to it, and a
listener applies what it reads there, in ``seq`` order. So a signal is never
lost (it is stored before ``send_signal`` returns), never reordered, and a
listener that restarts (another process, a resumed run) picks up where it
left off with ``after_seq``.

Ordering: a sender writes ``sig:<n>`` with ``put_if_absent`` at the next free
number and, if another sender took it first, tries ``n + 1``. Two senders at
once both land, one after the other. The log has no gaps (a number is written
only once the one before it exists), so a listener finds the next signal by
reading a single record, ``sig:<last + 1>``, not the whole namespace.

Wake-ups: after the write, the sender notifies listeners where the store can
(Redis ``PUBLISH``, PostgreSQL ``NOTIFY``; the stores' optional ``notify`` and
``subscribe`` methods). A notification only wakes a listener, which then reads
the log; SQLite and in-memory stores have none and their listeners poll. A
lost notification (a failed publish, a listener reconnecting) costs at most
one poll interval, never a signal.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from types import TracebackType
from typing import Any

import anyio

from adk.errors import ArgumentTypeError, ConfigurationError
from adk.state.signal_records import (
    MAX_PAYLOAD_BYTES,
    PREFIX,
    SIGNAL_KINDS,
    Signal,
    SignalKind,
    channel,
    check_seconds,
    check_seq,
    check_signal_args,
    check_store,
    decode,
    encode,
    namespace,
    record_name,
    seq_of,
)
from adk.state.stores.base import CheckpointStore, StoreUnavailable, Subscription

logger = logging.getLogger(__name__)

__all__ = [
    "SIGNAL_KINDS",
    "Signal",
    "SignalKind",
    "SignalListener",
    "read_signals",
    "record_name",
    "send_signal",
]

_MIN_BACKOFF = 0.05  # seconds between reads of a log whose store is unavailable: doubling
_MAX_BACKOFF = 1.0  # up to this (or the poll interval, if shorter)


# -- sending ---------------------------------------------------------------------------

_HINTS: OrderedDict[tuple[int, str], int] = OrderedDict()
_MAX_HINTS = 1024


def _remember(store: CheckpointStore, run_id: str, next_seq: int) -> None:
    """Note where ``run_id``'s log ends, so that the next send need not scan it."""
    key = (id(store), run_id)
    _HINTS[key] = next_seq
    _HINTS.move_to_end(key)
    while len(_HINTS) > _MAX_HINTS:
        _HINTS.popitem(last=False)


async def _last_seq(store: CheckpointStore, space: str) -> int:
    """The highest seq in the log (0 when it is empty): one scan of the signal records."""
    last = 0
    for name, _ in await store.scan(space, PREFIX):
        seq = seq_of(name)
        if seq is not None and seq > last:
            last = seq
    return last


async def _first_free(store: CheckpointStore, space: str, run_id: str) -> int:
    """Where to try writing: the remembered end of the log if it still holds, else a scan.

    A hint is used only when the record before it exists, so the log never
    gets a gap (whatever happened to the run since, e.g. deleted and reused).
    """
    hint = _HINTS.get((id(store), run_id))
    if hint is not None and hint > 1 and await store.get(space, record_name(hint - 1)) is not None:
        return hint
    return await _last_seq(store, space) + 1


async def send_signal(
    store: CheckpointStore,
    run_id: str,
    kind: SignalKind | str,
    payload: dict[str, Any] | None = None,
    *,
    ttl: float | None = None,
) -> Signal:
    """Log a signal to run ``run_id`` in ``store`` and wake its listeners; the logged signal.

    The signal is stored before this returns: whoever reads the run's log
    sees it, in ``seq`` order with every other signal. ``ttl``: pass the
    Runner's ``checkpoint_ttl`` (a write with a ttl renews the whole run's
    expiry, so the run's records and its signals expire together; without
    one, the signal record itself never expires, and the rest of the run
    keeps its expiry). A failed notification is logged and ignored:
    listeners also poll the log.

    Raises :class:`~adk.ConfigurationError` (or :class:`~adk.ArgumentTypeError`)
    for an unknown kind or a payload that does not fit it, and
    :class:`~adk.StoreUnavailable` when the store cannot be reached (the
    signal may or may not have been logged then).
    """
    check_store("send_signal", store)
    clean = check_signal_args(run_id, kind, payload)
    seconds = check_seconds("send_signal", "ttl", ttl, optional=True)
    sent_at = time.time()
    space = namespace(run_id)
    seq = await _first_free(store, space, run_id)
    data = encode(kind, clean, seq, sent_at)
    if len(data) > MAX_PAYLOAD_BYTES:
        raise ConfigurationError(
            f"send_signal: the payload is {len(data)} bytes encoded; at most {MAX_PAYLOAD_BYTES}"
        )
    conflicts = 0
    while not await store.put_if_absent(space, record_name(seq), data, ttl=seconds):
        conflicts += 1
        # Another sender took this number: the next one, or (far behind) the end of the log.
        seq = seq + 1 if conflicts % 8 else max(seq + 1, await _last_seq(store, space) + 1)
        data = encode(kind, clean, seq, sent_at)
    _remember(store, run_id, seq + 1)
    await _notify(store, run_id, seq)
    return Signal(kind, clean, seq, sent_at)  # type: ignore[arg-type]


async def _notify(store: CheckpointStore, run_id: str, seq: int) -> None:
    notify = getattr(store, "notify", None)
    if notify is None:
        return
    try:
        await notify(channel(run_id), str(seq))
    except StoreUnavailable as exc:  # the record is stored: listeners find it when they poll
        logger.warning("signal %s to run %s logged, but not notified: %s", seq, run_id, exc)


async def read_signals(store: CheckpointStore, run_id: str, after_seq: int = 0) -> list[Signal]:
    """Every signal logged for ``run_id`` with a seq above ``after_seq``, in order.

    A damaged or crafted record raises :class:`~adk.CheckpointCorrupted`
    naming it.
    """
    check_store("read_signals", store)
    if type(run_id) is not str:
        raise ArgumentTypeError(f"read_signals: run_id must be a str, got {type(run_id).__name__}")
    after = check_seq("read_signals", "after_seq", after_seq)
    signals = []
    for name, data in await store.scan(namespace(run_id), PREFIX):
        seq = seq_of(name)
        if seq is None or seq > after:
            signals.append(decode(run_id, name, data))
    return signals


# -- listening -------------------------------------------------------------------------


class SignalListener:
    """Waits for the signals of one run, in order, from wherever they are sent.

    Use as ``async with SignalListener(store, run_id) as listener:`` and call
    :meth:`next`. On Redis and PostgreSQL it subscribes to the run's channel
    (a dedicated connection, closed on exit) and wakes as soon as a signal is
    sent; it also reads the log every ``poll`` seconds, which on SQLite and
    in-memory stores is the only way signals arrive. ``after_seq``: the last
    signal already handled (``next`` returns those after it).

    If the store goes away while listening, the listener keeps trying: it
    reads the log again after a short back-off (logging a warning), drops a
    broken subscription and subscribes again; nothing sent meanwhile is lost.
    """

    def __init__(
        self, store: CheckpointStore, run_id: str, after_seq: int = 0, poll: float = 0.05
    ) -> None:
        self.store = check_store("SignalListener", store)
        if type(run_id) is not str:
            raise ArgumentTypeError(
                f"SignalListener: run_id must be a str, got {type(run_id).__name__}"
            )
        self.run_id = run_id
        self.last_seq = check_seq("SignalListener", "after_seq", after_seq)
        """Seq of the last signal :meth:`next` returned (or ``after_seq``)."""
        poll_seconds = check_seconds("SignalListener", "poll", poll, optional=False)
        assert poll_seconds is not None
        self.poll = poll_seconds
        self._space = namespace(run_id)
        self._subscription: Subscription | None = None
        self._subscribe_cm: Any = None
        self._entered = False
        self._failures = 0

    async def __aenter__(self) -> SignalListener:
        self._entered = True
        await self._subscribe()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._entered = False
        await self._unsubscribe()

    @property
    def subscribed(self) -> bool:
        """True while a pub/sub subscription wakes this listener (False: polling only)."""
        return self._subscription is not None

    async def _subscribe(self) -> None:
        subscribe = getattr(self.store, "subscribe", None)
        if subscribe is None or self._subscription is not None:
            return
        cm = subscribe(channel(self.run_id))
        try:
            self._subscription = await cm.__aenter__()
        except StoreUnavailable as exc:
            logger.warning("signals of run %s: cannot subscribe, polling: %s", self.run_id, exc)
            return
        self._subscribe_cm = cm

    async def _unsubscribe(self) -> None:
        cm, self._subscribe_cm, self._subscription = self._subscribe_cm, None, None
        if cm is not None:
            with anyio.CancelScope(shield=True):
                try:
                    await cm.__aexit__(None, None, None)
                except Exception as exc:  # a dead connection fails to close: it is gone anyway
                    logger.debug("signals of run %s: unsubscribe failed: %s", self.run_id, exc)

    async def _read_next(self) -> Signal | None:
        """The signal after ``last_seq`` if it is logged (one record read), else None."""
        name = record_name(self.last_seq + 1)
        data = await self.store.get(self._space, name)
        if data is None:
            return None
        signal = decode(self.run_id, name, data)
        self.last_seq = signal.seq
        return signal

    async def next(self) -> Signal:
        """The next signal in seq order, waiting for it as long as it takes.

        Raises :class:`~adk.CheckpointCorrupted` for a damaged record (the
        listener stays on it: the same error again until it is repaired).
        """
        if not self._entered:
            raise ConfigurationError("SignalListener.next: use the listener in 'async with'")
        while True:
            try:
                signal = await self._read_next()
            except StoreUnavailable as exc:
                await self._outage(exc)
                continue
            if self._failures:
                logger.warning("signals of run %s: store reachable again", self.run_id)
                self._failures = 0
            if signal is not None:
                return signal
            await self._wait()

    async def _wait(self) -> None:
        """Until a notification arrives or ``poll`` seconds pass."""
        subscription = self._subscription
        if subscription is None:
            await self._subscribe()  # again, after an outage
            if self._subscription is not None:
                return  # read the log once more: what was sent before it woke nobody
            await anyio.sleep(self.poll)
            return
        try:
            await subscription.wait(self.poll)
        except StoreUnavailable as exc:
            logger.warning("signals of run %s: subscription lost, polling: %s", self.run_id, exc)
            await self._unsubscribe()

    async def _outage(self, exc: StoreUnavailable) -> None:
        """The store cannot be read: drop the subscription, back off, and try again."""
        self._failures += 1
        if self._failures == 1:
            logger.warning("signals of run %s: store unavailable, retrying: %s", self.run_id, exc)
        await self._unsubscribe()
        await anyio.sleep(min(self.poll, _MIN_BACKOFF * 2 ** min(self._failures, 10), _MAX_BACKOFF))
