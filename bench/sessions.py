"""Stored sessions: a 500-turn conversation on one session, per store (SQLite, PostgreSQL).

Every turn is ``Runner(agent, checkpoint_store=store, sessions=SessionService(store,
compact_every=32)).invoke(text, session_id=..., user_id=...)``: the session's
history and values are loaded (from the service's in-memory copy, after
checking the stored head), the agent runs, and what the turn added is
appended (a batch record claimed with ``put_if_absent``, then the head; every
32 batches a compaction into a segment). The agent is a ``ChatModelAgent``
with a ``ScriptedModel``: every third turn (turns 1, 4, 7, ...) it calls the
``add`` tool and then answers, the other turns it answers at once.

Measured, per store: the time of a turn (the ``invoke``) around turn 10 and
around the last turn, and its parts, the load (``SessionService.begin_turn``)
and the append (``SessionTurn.append``), timed by wrapping those methods in
this process (adk's sources are untouched); a cold load (a fresh
``SessionService`` on the same store, ``get_session``); and the bytes the
store holds against the bytes of the conversation's own messages.

The baseline of the ratio runs in the same seconds as the late turns: just
before the last 10 turns, a second session (another user) is started, and its
turns 6-15 alternate, turn for turn, with the long session's last 10 turns
(same runner, same store). The long session's own turns 6-15, run seconds
earlier, are reported too ("sequential"), but on a shared machine the load
changes between them and the last turns by more than the effect measured.

    python bench/sessions.py                          # 500 turns, 7 repeats, sqlite + postgres
    python bench/sessions.py --quick                  # 100 turns, 2 repeats
    python bench/sessions.py --stores sqlite --turns 1000
    python bench/sessions.py --profile                # also cProfile early vs late turns (stderr)

Targets: late_to_early_ratio <= 1.5 on every store; store_bytes_total <=
1.5 x message_bytes_total. The last stdout line is a JSON object.
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import json
import os
import pstats
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (
    _short_path,
    add,
    adk_location,
    base_parser,
    emit_json,
    format_table,
    median,
    print_table,
    ratio,
    spread,
    verdict,
)

STORES = ["sqlite", "postgres"]
POSTGRES_DSN = os.environ.get("ADK_TEST_POSTGRES_DSN", "postgresql://postgres@127.0.0.1:5432/test")
APP = "bench"
SESSION_ID = "chat"
USER_ID = "alice"
COMPANION_ID = "companion"  # the interleaved early window (see conversation)
COMPANION_USER = "bob"
COMPACT_EVERY = 32
WINDOW = 10  # turns per window
EARLY_END = 15  # the early window: turns 6-15
TOOL_EVERY = 3  # turns 1, 4, 7, ... call the tool
USER_CHARS = 200
ANSWER_CHARS = 400
COLD_LOADS = 5  # timed cold loads at each point (median kept)
RATIO_TARGET = 1.5
BYTES_TARGET = 1.5
FILLER = (
    "The quick brown fox jumps over the lazy dog while the committee reviews the quarterly "
    "figures, the weather turns, and somebody finally answers the long thread about caching. "
)


def text(tag: str, index: int, chars: int) -> str:
    """``chars`` ASCII characters starting with ``[tag index]``, distinct per index."""
    head = f"[{tag} {index:04d}] "
    body = (FILLER * (chars // len(FILLER) + 2))[index % len(FILLER) :]
    return (head + body)[:chars]


def is_tool_turn(turn: int) -> bool:
    return turn % TOOL_EVERY == 1


def messages_of_turn(turn: int) -> int:
    """user + answer, plus the tool call and its result on a tool turn."""
    return 4 if is_tool_turn(turn) else 2


# --------------------------------------------------------------------------- instrumentation


class Recorder:
    """What happens during the current turn: store calls, load and append times."""

    def __init__(self) -> None:
        self.turn: dict[str, Any] | None = None

    def start(self) -> dict[str, Any]:
        self.turn = {
            "load_ms": 0.0,
            "append_ms": 0.0,
            "model_ms": 0.0,
            "store_ms": 0.0,
            "ops": Counter(),
            "written": 0,
            "compacted": False,
        }
        return self.turn

    def stop(self) -> None:
        self.turn = None


RECORDER = Recorder()


def install_phase_timers() -> None:
    """Time ``SessionService.begin_turn`` (the load) and ``SessionTurn.append`` (the append).

    Wrapped in this process only; adk's sources are untouched.
    """
    from adk.sessions.service import SessionService
    from adk.sessions.turn import SessionTurn

    begin_turn = SessionService.begin_turn
    append = SessionTurn.append

    async def timed_begin_turn(self: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter_ns()
        try:
            return await begin_turn(self, *args, **kwargs)
        finally:
            if RECORDER.turn is not None:
                RECORDER.turn["load_ms"] += (time.perf_counter_ns() - start) / 1e6

    async def timed_append(self: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter_ns()
        try:
            return await append(self, *args, **kwargs)
        finally:
            if RECORDER.turn is not None:
                RECORDER.turn["append_ms"] += (time.perf_counter_ns() - start) / 1e6

    SessionService.begin_turn = timed_begin_turn  # type: ignore[method-assign]
    SessionTurn.append = timed_append  # type: ignore[method-assign]


class TimedStore:
    """A thin proxy around a real store: times and counts each call, tracks stored bytes.

    ``sizes`` mirrors the size of every record written through it (this
    process is the store's only writer), so the bytes a turn adds are known
    without scanning; it is checked against a real scan at the end.
    """

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.sizes: dict[tuple[str, str], int] = {}

    @property
    def stored_bytes(self) -> int:
        return sum(self.sizes.values())

    def _record(self, op: str, start: int, written: int = 0) -> None:
        turn = RECORDER.turn
        if turn is not None:
            turn["store_ms"] += (time.perf_counter_ns() - start) / 1e6
            turn["ops"][op] += 1
            turn["written"] += written

    async def get(self, namespace: str, name: str) -> bytes | None:
        start = time.perf_counter_ns()
        data: bytes | None = await self.inner.get(namespace, name)
        self._record("get", start)
        return data

    async def put(
        self, namespace: str, name: str, data: bytes, *, ttl: float | None = None
    ) -> None:
        start = time.perf_counter_ns()
        await self.inner.put(namespace, name, data, ttl=ttl)
        self._record("put", start, len(data))
        self.sizes[(namespace, name)] = len(data)

    async def put_many(
        self, namespace: str, items: Sequence[tuple[str, bytes]], *, ttl: float | None = None
    ) -> None:
        start = time.perf_counter_ns()
        await self.inner.put_many(namespace, items, ttl=ttl)
        self._record("put_many", start, sum(len(data) for _, data in items))
        for name, data in items:
            self.sizes[(namespace, name)] = len(data)
        if RECORDER.turn is not None and any(name.startswith("g:") for name, _ in items):
            RECORDER.turn["compacted"] = True

    async def put_if_absent(
        self, namespace: str, name: str, data: bytes, *, ttl: float | None = None
    ) -> bool:
        start = time.perf_counter_ns()
        wrote = await self.inner.put_if_absent(namespace, name, data, ttl=ttl)
        self._record("put_if_absent", start, len(data) if wrote else 0)
        if wrote:
            self.sizes[(namespace, name)] = len(data)
        return bool(wrote)

    async def scan(self, namespace: str, prefix: str = "") -> list[tuple[str, bytes]]:
        start = time.perf_counter_ns()
        records = await self.inner.scan(namespace, prefix)
        self._record("scan", start)
        return list(records)

    async def delete(self, namespace: str, name: str | None = None) -> None:
        start = time.perf_counter_ns()
        await self.inner.delete(namespace, name)
        self._record("delete", start)
        if name is None:
            for key in [key for key in self.sizes if key[0] == namespace]:
                del self.sizes[key]
        else:
            self.sizes.pop((namespace, name), None)

    async def namespaces(self, prefix: str = "") -> list[str]:
        return list(await self.inner.namespaces(prefix))

    async def close(self) -> None:
        await self.inner.close()

    def __getattr__(self, name: str) -> Any:  # purge_expired and the like
        return getattr(self.inner, name)


# --------------------------------------------------------------------------- stores


async def postgres_problem() -> str | None:
    """Why PostgreSQL cannot be used (None if it can)."""
    try:
        import psycopg
    except ImportError as exc:
        return f"psycopg is not installed ({exc})"
    try:
        conn = await psycopg.AsyncConnection.connect(POSTGRES_DSN, connect_timeout=3)
        await conn.close()
    except Exception as exc:
        return f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
    return None


def open_store(kind: str, folder: Path, tag: str) -> Any:
    from adk import PostgresStore, SQLiteStore

    if kind == "sqlite":
        return SQLiteStore(folder / f"{tag}.db")
    separator = "&" if "?" in POSTGRES_DSN else "?"
    return PostgresStore(f"{POSTGRES_DSN}{separator}application_name={tag}", table=tag)


async def drop_store(kind: str, store: Any) -> None:
    await store.close()
    if kind == "postgres":
        import psycopg

        async with await psycopg.AsyncConnection.connect(POSTGRES_DSN, autocommit=True) as conn:
            await conn.execute(f"DROP TABLE IF EXISTS {store.table}")


# --------------------------------------------------------------------------- the conversation


def build_runner(store: Any) -> tuple[Any, Any, dict[str, int]]:
    from adk import ChatModelAgent, Runner, ScriptedModel, ToolCall, tool
    from adk.sessions import SessionService

    state = {"turn": 0}

    def script(request: Any) -> Any:
        turn = state["turn"]
        if is_tool_turn(turn) and request.messages[-1].role == "user":
            arguments = json.dumps({"a": turn, "b": 1})
            return ToolCall(id=f"call_{turn:04d}", name="add", arguments=arguments)
        return text("answer", turn, ANSWER_CHARS)

    model = ScriptedModel(script)
    generate = model.generate

    async def timed_generate(request: Any) -> Any:
        # The stand-in model's own time, apart from adk's (instance attribute: this model only).
        start = time.perf_counter_ns()
        try:
            return await generate(request)
        finally:
            if RECORDER.turn is not None:
                RECORDER.turn["model_ms"] += (time.perf_counter_ns() - start) / 1e6

    model.generate = timed_generate  # type: ignore[method-assign]
    agent = ChatModelAgent("assistant", model=model, tools=[tool(add)])
    service = SessionService(store, app=APP, compact_every=COMPACT_EVERY)
    runner = Runner(agent, checkpoint_store=store, sessions=service)
    return runner, model, state


async def cold_loads(store: Any, expected_entries: int) -> list[float]:
    """``COLD_LOADS`` timed ``get_session`` calls, each by a fresh service (nothing cached)."""
    from adk.sessions import SessionService

    times = []
    for _ in range(COLD_LOADS):
        gc.collect()
        service = SessionService(store, app=APP, compact_every=COMPACT_EVERY)
        start = time.perf_counter_ns()
        session = await service.get_session(SESSION_ID)
        times.append((time.perf_counter_ns() - start) / 1e6)
        if len(session.history) != expected_entries:
            raise SystemExit(
                f"cold load: {len(session.history)} history entries, not {expected_entries}"
            )
    return times


async def timed_turn(
    runner: Any,
    model: Any,
    state: dict[str, int],
    timed: TimedStore,
    session_id: str,
    user_id: str,
    turn: int,
    profiler: cProfile.Profile | None = None,
) -> dict[str, Any]:
    """One turn of ``session_id``, timed; its record (times, store calls, bytes)."""
    state["turn"] = turn
    question = text("question", turn, USER_CHARS)
    gc.collect()
    before = timed.stored_bytes
    record = RECORDER.start()
    if profiler is not None:
        profiler.enable()
    start = time.perf_counter_ns()
    result = await runner.invoke(question, session_id=session_id, user_id=user_id)
    elapsed = (time.perf_counter_ns() - start) / 1e6
    if profiler is not None:
        profiler.disable()
    RECORDER.stop()
    model.requests.clear()  # the scripted model keeps every request: not adk's memory
    if result.text != text("answer", turn, ANSWER_CHARS):
        raise SystemExit(f"{session_id}: turn {turn} answered {result.text[:60]!r}")
    record.update(
        turn=turn,
        total_ms=elapsed,
        rest_ms=elapsed - record["load_ms"] - record["append_ms"] - record["model_ms"],
        adk_ms=elapsed - record["model_ms"],
        stored_delta=timed.stored_bytes - before,
        ops_count=sum(record["ops"].values()),
    )
    return record


async def conversation(
    kind: str,
    store: Any,
    turns: int,
    early: range,
    late: range,
    profilers: dict[str, cProfile.Profile] | None = None,
) -> dict[str, Any]:
    """Run the conversation on ``store``; per-turn records, cold loads and final bytes.

    Just before the late window, a companion session (another user) is
    brought to turn ``early.start - 1``; then its early window runs
    interleaved with the long session's late window, turn for turn
    (alternating which goes first), so a change of machine load hits both
    alike. With ``profilers``, the companion's window is profiled as "early"
    and the long session's last turns as "late"; no cold loads nor bytes.
    """
    timed = TimedStore(store)
    runner, model, state = build_runner(timed)
    records: list[dict[str, Any]] = []
    companion: list[dict[str, Any]] = []
    cold: dict[int, list[float]] = {}
    entries = 0
    cold_at = (early.stop - 1 - WINDOW // 2, turns)  # turn 10 and the last turn
    early_profiler = profilers["early"] if profilers is not None else None
    late_profiler = profilers["late"] if profilers is not None else None
    for turn in range(1, turns + 1):
        if turn == late.start:
            for c_turn in range(1, early.start):
                await timed_turn(runner, model, state, timed, COMPANION_ID, COMPANION_USER, c_turn)
        if turn in late:
            c_turn = early.start + (turn - late.start)
            other = (runner, model, state, timed, COMPANION_ID, COMPANION_USER, c_turn)
            main = (runner, model, state, timed, SESSION_ID, USER_ID, turn)
            if turn % 2:
                companion.append(await timed_turn(*other, early_profiler))
                records.append(await timed_turn(*main, late_profiler))
            else:
                records.append(await timed_turn(*main, late_profiler))
                companion.append(await timed_turn(*other, early_profiler))
        else:
            records.append(await timed_turn(runner, model, state, timed, SESSION_ID, USER_ID, turn))
        entries += messages_of_turn(turn)
        if turn in cold_at and profilers is None:
            cold[turn] = await cold_loads(store, entries)
    if profilers is not None:
        return {"records": records, "companion": companion}
    final = await final_bytes(store, entries)
    tracked = sum(size for (ns, _), size in timed.sizes.items() if ns in final["namespaces"])
    if final["store_bytes_total"] != tracked:
        print(
            f"warning: {kind}: scanned {final['store_bytes_total']} bytes, tracked {tracked}",
            file=sys.stderr,
        )
    return {"records": records, "companion": companion, "cold": cold, **final}


async def final_bytes(store: Any, entries: int) -> dict[str, Any]:
    """Every record of the session's namespaces at the end, by kind; its messages' bytes.

    The session's namespaces: its own, its lease's, its user's index and
    values, the app's values. Records of other namespaces (the companion
    session's) are counted apart.
    """
    import msgpack

    from adk.sessions import SessionService
    from adk.sessions.records import (
        app_values_namespace,
        lock_name,
        session_namespace,
        user_index_namespace,
        user_values_namespace,
    )
    from adk.state.journal import encode_message

    own = {
        session_namespace(APP, SESSION_ID),
        f"lease:{lock_name(APP, SESSION_ID)}",
        user_index_namespace(APP, USER_ID),
        user_values_namespace(APP, USER_ID),
        app_values_namespace(APP),
    }
    by_kind: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    other = 0
    for namespace in await store.namespaces():
        for name, data in await store.scan(namespace):
            if namespace not in own:
                other += len(data)
                continue
            if namespace.startswith("session:"):
                kind = name if name in ("head", "values") else f"{name[:2]}<seq>"
            else:
                kind = f"{namespace.split(':', 1)[0]} namespace"
            by_kind[kind] += len(data)
            counts[kind] += 1
    service = SessionService(store, app=APP, compact_every=COMPACT_EVERY)
    session = await service.get_session(SESSION_ID)
    if len(session.history) != entries or session.turns == 0:
        raise SystemExit(f"the session holds {len(session.history)} entries, not {entries}")
    message_bytes = sum(
        len(msgpack.packb(encode_message(e.message), use_bin_type=True)) for e in session.history
    )
    text_bytes = sum(len(e.message.content.encode()) for e in session.history)
    return {
        "namespaces": own,
        "store_bytes_total": sum(by_kind.values()),
        "other_bytes": other,
        "by_kind": dict(by_kind),
        "counts": dict(counts),
        "message_bytes_total": message_bytes,
        "text_bytes_total": text_bytes,
        "messages": len(session.history),
        "turns_stored": session.turns,
    }


# --------------------------------------------------------------------------- profile


def profile_rows(profiler: cProfile.Profile, turns: int) -> dict[str, tuple[float, float, float]]:
    """Per function: (cumulative µs/turn, own µs/turn, calls/turn)."""
    stats = pstats.Stats(profiler, stream=sys.stderr)
    rows = {}
    for (filename, line, func), (_cc, ncalls, tottime, cumtime, _) in stats.stats.items():  # type: ignore[attr-defined]
        where = _short_path(filename)
        if "/adk/" in where:  # adk imported from elsewhere (PYTHONPATH): name it adk/...
            where = "adk/" + where.rsplit("/adk/", 1)[1]
        label = f"{where}:{line}({func})" if line else func
        rows[label] = (cumtime / turns * 1e6, tottime / turns * 1e6, ncalls / turns)
    return rows


def report_profile(
    kind: str, profilers: dict[str, cProfile.Profile], early: range, late: range
) -> None:
    """Print to stderr: the top functions of late turns, and what grew most since early ones."""
    rows_early = profile_rows(profilers["early"], len(early))
    rows_late = profile_rows(profilers["late"], len(late))
    out = sys.stderr
    views = (
        ("own time, every function", 1, ""),
        ("cumulative time, adk functions only", 0, "adk/"),
    )
    for title, key, only in views:
        grown = []
        for label, late_row in rows_late.items():
            if not label.startswith(only):  # "adk/...": adk's own functions
                continue
            early_row = rows_early.get(label, (0.0, 0.0, 0.0))
            grown.append((late_row[key] - early_row[key], label, early_row, late_row))
        grown.sort(reverse=True)
        table = [
            [
                f"{e[key]:.1f}",
                f"{lt[key]:.1f}",
                f"{diff:+.1f}",
                f"{e[2]:.1f}",
                f"{lt[2]:.1f}",
                label,
            ]
            for diff, label, e, lt in grown[:25]
        ]
        print(
            f"\n[{kind}] cProfile, {title}, µs per turn: a new session's turns "
            f"{early.start}-{early.stop - 1} (early) vs the long session's turns "
            f"{late.start}-{late.stop - 1} (late), interleaved; sorted by growth (cProfile "
            "inflates absolute figures; read them as shares):",
            file=out,
        )
        print(
            format_table(
                ["early", "late", "growth", "calls early", "calls late", "function"], table
            ),
            file=out,
        )
    out.flush()


# --------------------------------------------------------------------------- measuring


def window_median(records: list[dict[str, Any]], turns: range, key: str) -> float:
    return median(r[key] for r in records if r["turn"] in turns)


async def warm_up() -> None:
    """An untimed conversation on a memory store: imports, pydantic schemas, first calls."""
    from adk import InMemoryStore

    runner, model, state = build_runner(InMemoryStore())
    for turn in range(1, 31):
        state["turn"] = turn
        await runner.invoke(text("question", turn, USER_CHARS), session_id="w", user_id="w")
        model.requests.clear()


async def measure(args: Any, kinds: list[str], folder: Path) -> dict[str, Any]:
    turns = args.turns
    early = range(EARLY_END - WINDOW + 1, EARLY_END + 1)
    late = range(turns - WINDOW + 1, turns + 1)
    await warm_up()
    # What is alive now (modules, pydantic schemas) stays: set it aside, so that the
    # gc.collect() before each turn costs what the conversation made, not 10 ms of imports.
    gc.collect()
    gc.freeze()
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    for repeat in range(args.repeats):
        for kind in kinds:  # stores alternate inside every repeat
            tag = f"adk_bench_sessions_{uuid.uuid4().hex[:10]}"
            store = open_store(kind, folder, tag)
            try:
                runs[kind].append(await conversation(kind, store, turns, early, late))
            finally:
                await drop_store(kind, store)
            print(f"  repeat {repeat + 1}/{args.repeats} {kind}: done", file=sys.stderr)
    if args.profile:
        for kind in kinds:
            profilers = {"early": cProfile.Profile(), "late": cProfile.Profile()}
            tag = f"adk_bench_sessions_{uuid.uuid4().hex[:10]}"
            store = open_store(kind, folder, tag)
            try:
                await conversation(kind, store, turns, early, late, profilers)
            finally:
                await drop_store(kind, store)
            report_profile(kind, profilers, early, late)
    return {"runs": runs, "early": early, "late": late}


def summarise(
    kind: str, runs: list[dict[str, Any]], early: range, late: range, turns: int
) -> dict[str, Any]:
    """Per store: medians over the repeats of each repeat's window medians."""

    def paired(key: str, pick: Any = None) -> dict[str, Any]:
        """The companion's early window vs the long session's late window (interleaved)."""
        e, la = [], []
        for run in runs:
            e.append(
                window_median([r for r in run["companion"] if pick is None or pick(r)], early, key)
            )
            la.append(
                window_median([r for r in run["records"] if pick is None or pick(r)], late, key)
            )
        ratios = [ratio(b, a) for a, b in zip(e, la, strict=True)]
        return {"early": median(e), "late": median(la), "ratio": spread(ratios)}

    figures = {key: paired(key) for key in PARTS}
    figures["adk_ms"] = paired("adk_ms")
    figures["plain"] = paired("total_ms", lambda r: not is_tool_turn(r["turn"]))
    figures["tool"] = paired("total_ms", lambda r: is_tool_turn(r["turn"]))
    seq_e = [window_median(run["records"], early, "total_ms") for run in runs]
    seq_l = [window_median(run["records"], late, "total_ms") for run in runs]
    figures["sequential"] = {
        "early": median(seq_e),
        "late": median(seq_l),
        "ratio": spread([ratio(b, a) for a, b in zip(seq_e, seq_l, strict=True)]),
    }
    cold_early_at, cold_late_at = sorted(runs[0]["cold"])
    cold_e = [median(run["cold"][cold_early_at]) for run in runs]
    cold_l = [median(run["cold"][cold_late_at]) for run in runs]
    figures["cold_ms"] = {
        "early": median(cold_e),
        "late": median(cold_l),
        "ratio": spread([ratio(b, a) for a, b in zip(cold_e, cold_l, strict=True)]),
        "at": (cold_early_at, cold_late_at),
    }
    # the long session along the conversation: windows ending at 10%, 20%, ... of it
    marks = sorted({EARLY_END} | {max(WINDOW, round(turns * k / 10)) for k in range(1, 11)})
    growth = []
    for mark in marks:
        span = range(mark - WINDOW + 1, mark + 1)
        history = sum(messages_of_turn(t) for t in range(1, span.start))
        row: list[Any] = [span, history]
        for key in ("total_ms", "load_ms", "append_ms", "model_ms", "rest_ms"):
            row.append(median(window_median(run["records"], span, key) for run in runs))
        growth.append(row)
    first = runs[0]
    compaction = [r["append_ms"] for run in runs for r in run["records"] if r["compacted"]]
    plain_append = [r["append_ms"] for run in runs for r in run["records"] if not r["compacted"]]
    totals = {run["store_bytes_total"] for run in runs}
    if len(totals) != 1:
        print(
            f"warning: {kind}: store bytes differ between repeats: {sorted(totals)}",
            file=sys.stderr,
        )
    late_records = [r for r in first["records"] if r["turn"] in late and not r["compacted"]]
    ops_late: Counter[str] = Counter()
    for r in late_records:
        ops_late.update(r["ops"])
    compacting = [r for r in first["records"] if r["compacted"]]
    ops_compaction: Counter[str] = Counter()
    for r in compacting:
        ops_compaction.update(r["ops"])
    return {
        "figures": figures,
        "growth": growth,
        "compaction_append_ms": median(compaction) if compaction else None,
        "plain_append_ms": median(plain_append),
        "compactions": sum(1 for r in first["records"] if r["compacted"]),
        "ops_late": {op: n / len(late_records) for op, n in ops_late.items()},
        "ops_compaction": {op: n / len(compacting) for op, n in ops_compaction.items()},
        "bytes_per_turn": median(r["stored_delta"] for r in first["records"]),
        "bytes_per_turn_mean": first["store_bytes_total"] / turns,
        "written_per_turn": median(r["written"] for r in first["records"]),
        "store_bytes_total": first["store_bytes_total"],
        "other_bytes": first["other_bytes"],
        "message_bytes_total": first["message_bytes_total"],
        "text_bytes_total": first["text_bytes_total"],
        "messages": first["messages"],
        "by_kind": first["by_kind"],
        "counts": first["counts"],
    }


PARTS = ("total_ms", "load_ms", "append_ms", "model_ms", "rest_ms", "store_ms", "ops_count")
PART_LABELS = {
    "total_ms": "turn (invoke), ms",
    "load_ms": "  load: SessionService.begin_turn, ms",
    "append_ms": "  append: SessionTurn.append, ms",
    "model_ms": "  model: ScriptedModel.generate (the stand-in), ms",
    "rest_ms": "  rest: run setup, agent, tool, lease release, ms",
    "store_ms": "  (time inside store calls), ms",
    "ops_count": "store calls per turn",
}


def ratio_row(label: str, figure: dict[str, Any], target: bool = False) -> list[Any]:
    med, lo, hi = figure["ratio"]
    return [
        label,
        f"{figure['early']:.3f}",
        f"{figure['late']:.3f}",
        f"{med:.2f}",
        f"{lo:.2f}",
        f"{hi:.2f}",
        f"<= {RATIO_TARGET}" if target else "",
        verdict(med, RATIO_TARGET) if target else "",
    ]


def print_store(kind: str, s: dict[str, Any], early: range, late: range, repeats: int) -> None:
    f = s["figures"]
    e_label = f"turns {early.start}-{early.stop - 1}"
    l_label = f"turns {late.start}-{late.stop - 1}"
    rows = [ratio_row(PART_LABELS[key], f[key], key == "total_ms") for key in PARTS]
    rows.append(ratio_row("turn without the model's time, ms", f["adk_ms"]))
    rows.append(ratio_row("  plain turns only (2 messages), ms", f["plain"]))
    rows.append(ratio_row("  tool turns only (4 messages), ms", f["tool"]))
    rows.append(
        ratio_row(
            f"turn, sequential: the long session's own {e_label} (seconds earlier), ms",
            f["sequential"],
        )
    )
    cold = f["cold_ms"]
    rows.append(
        ratio_row(
            f"cold load (fresh service, get_session) after turn {cold['at'][0]} / "
            f"{cold['at'][1]}, ms",
            cold,
        )
    )
    print_table(
        ["figure", e_label, l_label, "late/early", "min", "max", "target", ""],
        rows,
        title=f"[{kind}] per-turn times: a new session's {e_label} alternated with the long "
        f"session's {l_label} (median over each window, then over {repeats} repeats; "
        "min/max: per-repeat ratios)",
    )
    grow_rows = [
        [f"{span.start}-{span.stop - 1}", history, *(f"{v:.3f}" for v in values)]
        for span, history, *values in s["growth"]
    ]
    print_table(
        ["turns", "history msgs before", "turn ms", "load ms", "append ms", "model ms", "rest ms"],
        grow_rows,
        title=f"[{kind}] the long session along the conversation (window medians, median over "
        "repeats; sequential, so machine load moves these)",
    )
    ops = ", ".join(f"{op} {n:g}" for op, n in sorted(s["ops_late"].items()))
    print(f"[{kind}] store calls of a late turn: {ops}.")
    compaction = s["compaction_append_ms"]
    if compaction is not None:
        ops = ", ".join(f"{op} {n:g}" for op, n in sorted(s["ops_compaction"].items()))
        print(
            f"[{kind}] {s['compactions']} compactions (every {COMPACT_EVERY} turns): the append "
            f"takes {compaction:.3f} ms on a compaction turn vs {s['plain_append_ms']:.3f} ms "
            f"otherwise (medians over all turns); store calls of a compaction turn: {ops}."
        )
    print()


def store_json(s: dict[str, Any]) -> dict[str, Any]:
    f = s["figures"]
    figures: dict[str, Any] = {
        "late_to_early_ratio": f["total_ms"]["ratio"][0],
        "late_to_early_min": f["total_ms"]["ratio"][1],
        "late_to_early_max": f["total_ms"]["ratio"][2],
        "late_to_early_sequential": f["sequential"]["ratio"][0],
        "late_to_early_sequential_min": f["sequential"]["ratio"][1],
        "late_to_early_sequential_max": f["sequential"]["ratio"][2],
        "late_to_early_without_model": f["adk_ms"]["ratio"][0],
    }
    for key, name in (
        ("total_ms", "turn"),
        ("load_ms", "load"),
        ("append_ms", "append"),
        ("model_ms", "model"),
        ("rest_ms", "rest"),
        ("adk_ms", "turn_without_model"),
        ("store_ms", "store"),
    ):
        figures[f"{name}_ms_early"] = f[key]["early"]
        figures[f"{name}_ms_late"] = f[key]["late"]
    figures.update(
        turn_ms_early_sequential=f["sequential"]["early"],
        store_calls_per_turn=f["ops_count"]["late"],
        cold_load_ms_early=f["cold_ms"]["early"],
        cold_load_ms_late=f["cold_ms"]["late"],
        cold_load_turns=list(f["cold_ms"]["at"]),
        compaction_append_ms=s["compaction_append_ms"],
        bytes_per_turn=s["bytes_per_turn"],
        store_bytes_total=s["store_bytes_total"],
        message_bytes_total=s["message_bytes_total"],
    )
    return {k: (round(v, 3) if isinstance(v, float) else v) for k, v in figures.items()}


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.set_defaults(repeats=7)
    parser.add_argument("--turns", type=int, default=500, help="turns in the conversation")
    parser.add_argument(
        "--stores", default=",".join(STORES), help="comma-separated, among: sqlite,postgres"
    )
    parser.add_argument(
        "--profile", action="store_true", help="cProfile early vs late turns (report on stderr)"
    )
    args = parser.parse_args()
    if args.quick:
        args.turns, args.repeats = 100, 2
    if args.turns < EARLY_END + WINDOW:
        parser.error(f"--turns must be at least {EARLY_END + WINDOW}")
    if args.repeats < 1:
        parser.error("--repeats must be at least 1")
    kinds = list(dict.fromkeys(k.strip() for k in args.stores.split(",") if k.strip()))
    unknown = [k for k in kinds if k not in STORES]
    if unknown or not kinds:
        parser.error(f"--stores: unknown {unknown}; choose among {STORES}")

    import adk  # noqa: F401  (so that adk_location names the copy measured)

    install_phase_timers()
    skipped: dict[str, str] = {}
    if "postgres" in kinds:
        problem = asyncio.run(postgres_problem())
        if problem is not None:
            skipped["postgres"] = problem
            kinds.remove("postgres")
    data = None
    if kinds:
        with tempfile.TemporaryDirectory(prefix="adk-bench-sessions-") as folder:
            data = asyncio.run(measure(args, kinds, Path(folder)))

    turns = args.turns
    print(
        f"Stored sessions: one conversation of {turns} turns on one session, per store "
        f"(ScriptedModel; turns 1, 4, 7, ... call a tool: 4 messages, the others 2; "
        f"user {USER_CHARS} chars, answer {ANSWER_CHARS} chars; compact_every={COMPACT_EVERY}); "
        f"{args.repeats} repeats, a fresh store each."
    )
    print(f"adk measured: {adk_location()}")
    print()
    for kind, reason in skipped.items():
        print(f"note: {kind} skipped: {reason}")
        print()
    if data is None:
        emit_json({"late_to_early_ratio": None, "ok": False, "skipped": skipped})
        return
    early, late = data["early"], data["late"]
    summaries = {k: summarise(k, data["runs"][k], early, late, turns) for k in kinds}
    for kind, summary in summaries.items():
        print_store(kind, summary, early, late, args.repeats)

    s = summaries[kinds[0]]
    for kind in kinds[1:]:
        if summaries[kind]["store_bytes_total"] != s["store_bytes_total"]:
            print(
                f"note: {kind} holds {summaries[kind]['store_bytes_total']} bytes, "
                f"{kinds[0]} {s['store_bytes_total']}",
                file=sys.stderr,
            )
    store_total = max(summaries[k]["store_bytes_total"] for k in kinds)
    bytes_per_turn = max(summaries[k]["bytes_per_turn"] for k in kinds)
    message_total = s["message_bytes_total"]
    bytes_ratio = ratio(store_total, message_total)
    rows: list[list[Any]] = [
        [f"  {name} ({s['counts'][name]} records)", size]
        for name, size in sorted(s["by_kind"].items(), key=lambda item: -item[1])
    ]
    rows = [["store_bytes_total (the session's namespaces at the end)", store_total], *rows]
    rows += [
        [
            f"message_bytes_total ({s['messages']} messages, msgpack of encode_message)",
            message_total,
        ],
        ["  of which message texts (UTF-8)", s["text_bytes_total"]],
        ["store / message bytes", f"{bytes_ratio:.3f}"],
        ["bytes_per_turn (stored bytes a turn adds, median)", f"{bytes_per_turn:.0f}"],
        ["  mean (store_bytes_total / turns)", f"{s['bytes_per_turn_mean']:.0f}"],
        ["  message bytes per turn (mean)", f"{message_total / turns:.0f}"],
        ["bytes written per turn (head rewrite included, median)", f"{s['written_per_turn']:.0f}"],
        ["(the companion session's records, not counted)", s["other_bytes"]],
    ]
    print_table(
        ["bytes", "value"],
        rows,
        title=f"[{', '.join(kinds)}] bytes in the store after {turns} turns (the same records "
        "on every store)",
    )
    per_store = {kind: store_json(summary) for kind, summary in summaries.items()}
    worst = max(per_store[k]["late_to_early_ratio"] for k in kinds)
    ratio_ok = worst <= RATIO_TARGET
    bytes_ok = bytes_ratio <= BYTES_TARGET
    print_table(
        ["target", "value", "target", ""],
        [
            *(
                [
                    f"late_to_early_ratio, {k}",
                    per_store[k]["late_to_early_ratio"],
                    f"<= {RATIO_TARGET}",
                    verdict(per_store[k]["late_to_early_ratio"], RATIO_TARGET),
                ]
                for k in kinds
            ),
            [
                "store_bytes_total / message_bytes_total",
                bytes_ratio,
                f"<= {BYTES_TARGET}",
                verdict(bytes_ratio, BYTES_TARGET),
            ],
        ],
        title="Targets" + (f" (skipped: {', '.join(skipped)})" if skipped else ""),
    )
    emit_json(
        {
            "late_to_early_ratio": worst,
            "bytes_per_turn": bytes_per_turn,
            "store_bytes_total": store_total,
            "message_bytes_total": message_total,
            "message_bytes_basis": "sum over the history of "
            "len(msgpack.packb(adk.state.journal.encode_message(m), use_bin_type=True))",
            "bytes_ratio": bytes_ratio,
            "late_to_early_sequential": max(
                per_store[k]["late_to_early_sequential"] for k in kinds
            ),
            "ratio_target": RATIO_TARGET,
            "bytes_target": BYTES_TARGET,
            "ratio_ok": ratio_ok,
            "bytes_ok": bytes_ok,
            "ok": ratio_ok and bytes_ok and not skipped,
            "turns": turns,
            "repeats": args.repeats,
            "windows": [[early.start, early.stop - 1], [late.start, late.stop - 1]],
            "stores": per_store,
            "skipped": skipped,
        }
    )


if __name__ == "__main__":
    main()
