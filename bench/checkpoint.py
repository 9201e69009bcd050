"""Checkpoint storage: a 100-message conversation checkpointed after every message, in SQLite.

A ``ChatModelAgent`` whose scripted model writes one 500-character message
per model call, each with a call to a ``review`` tool that interrupts: every
message ends in a checkpoint in a ``SQLiteStore`` file, and the run goes on
with ``Runner.resume_invoke`` (answer ``"ok"``). Measured: the bytes stored
in the run's namespace, the time of each checkpoint write and of a full load
of the run. A naive baseline stores the same conversation as one full msgpack
snapshot per checkpoint (copying the whole state each time), in the same
process, the same run and the same kind of SQLite file.

    python bench/checkpoint.py            # full run (7 repeats of a 100-message conversation)
    python bench/checkpoint.py --quick    # smoke test

Targets: bytes_total <= 2 x payload_bytes, write_ms <= 1, load_ms <= 5. The
last stdout line is a JSON object: bytes_total, payload_bytes, write_ms,
load_ms, then the other figures.
"""

from __future__ import annotations

import asyncio
import gc
import os
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from _common import (
    adk_location,
    base_parser,
    emit_json,
    median,
    print_table,
    ratio,
    spread,
    verdict,
)

RUN_ID = "conversation"
MESSAGE_CHARS = 500
REVIEW_QUESTION = "review the last message"
BYTES_RATIO_TARGET = 2.0
WRITE_TARGET_MS = 1.0
LOAD_TARGET_MS = 5.0
FILLER = (
    "The quick brown fox jumps over the lazy dog while the committee reviews the quarterly "
    "figures, the weather turns, and somebody finally answers the long thread about caching. "
)


def message_text(index: int, chars: int = MESSAGE_CHARS) -> str:
    """The ``index``-th message: ``chars`` ASCII characters, distinct from the others."""
    head = f"[message {index:03d}] "
    body = (FILLER * (chars // len(FILLER) + 2))[index % len(FILLER) :]
    return (head + body)[:chars]


# --------------------------------------------------------------------------- instrumentation
# Checkpointer.checkpoint is wrapped (in this process only; adk's sources are untouched) to
# time each call, and the store subclass times each put, so the write figure can be split into
# SQLite writes and the rest (journal encoding, msgpack, checksums).


class Timings:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.checkpoint_ms: list[float] = []
        self.checkpoint_puts: list[int] = []
        self.checkpoint_put_ms: list[float] = []
        self.puts: list[tuple[str, float]] = []


TIMINGS = Timings()


def install_checkpoint_timer() -> None:
    from adk.runner.checkpoint import Checkpointer

    original = Checkpointer.checkpoint

    async def timed_checkpoint(self: Any, journal: Any, interrupts: Any) -> str:
        first_put = len(TIMINGS.puts)
        start = time.perf_counter_ns()
        checkpoint_id = await original(self, journal, interrupts)
        TIMINGS.checkpoint_ms.append((time.perf_counter_ns() - start) / 1e6)
        puts = TIMINGS.puts[first_put:]
        TIMINGS.checkpoint_puts.append(len(puts))
        TIMINGS.checkpoint_put_ms.append(sum(ms for _, ms in puts))
        return checkpoint_id

    Checkpointer.checkpoint = timed_checkpoint  # type: ignore[method-assign]


def timed_sqlite_store(path: Path) -> Any:
    from adk import SQLiteStore

    class TimedSQLiteStore(SQLiteStore):
        async def put(
            self, namespace: str, name: str, data: bytes, *, ttl: float | None = None
        ) -> None:
            start = time.perf_counter_ns()
            await super().put(namespace, name, data, ttl=ttl)
            TIMINGS.puts.append((name, (time.perf_counter_ns() - start) / 1e6))

        async def put_many(self, namespace: str, items: Any, *, ttl: float | None = None) -> None:
            start = time.perf_counter_ns()
            await super().put_many(namespace, items, ttl=ttl)
            names = "+".join(name for name, _ in items)
            TIMINGS.puts.append((names, (time.perf_counter_ns() - start) / 1e6))

        async def delete(self, namespace: str, name: str | None = None) -> None:
            start = time.perf_counter_ns()
            await super().delete(namespace, name)
            TIMINGS.puts.append((f"delete {namespace}", (time.perf_counter_ns() - start) / 1e6))

    return TimedSQLiteStore(path)


# --------------------------------------------------------------------------- adk side


def build_runner(store: Any, messages: list[str]) -> Any:
    from adk import ChatModelAgent, Message, Runner, ScriptedModel, ToolCall, ToolContext, tool

    @tool
    def review(ctx: ToolContext) -> str:
        """Have a person review the message just written."""
        return str(ctx.interrupt(REVIEW_QUESTION))

    def script(request: Any) -> Any:
        written = sum(1 for m in request.messages if m.role == "assistant" and m.content)
        if written < len(messages):
            return Message(
                role="assistant",
                content=messages[written],
                tool_calls=(ToolCall(id=f"call_{written:03d}", name="review", arguments="{}"),),
            )
        return "done"

    model = ScriptedModel(script)
    writer = ChatModelAgent("writer", model=model, tools=[review], max_iterations=len(messages) + 1)
    return Runner(writer, checkpoint_store=store), model


async def stored_bytes(store: Any) -> tuple[int, list[tuple[str, int]]]:
    from adk.runner.checkpoint import namespace

    records = await store.scan(namespace(RUN_ID))
    sizes = [(name, len(data)) for name, data in records]
    return sum(size for _, size in sizes), sizes


async def adk_conversation(db: Path, messages: list[str], marks: set[int]) -> dict[str, Any]:
    """One conversation; the timings of its checkpoints and rounds, bytes at ``marks``."""
    store = timed_sqlite_store(db)
    runner, model = build_runner(store, messages)
    TIMINGS.reset()
    rounds_ms: list[float] = []
    bytes_at: dict[int, int] = {}
    gc.collect()
    start = time.perf_counter_ns()
    result = await runner.invoke("Write the conversation.", run_id=RUN_ID)
    rounds_ms.append((time.perf_counter_ns() - start) / 1e6)
    checkpoints = 0
    while result.checkpoint_id is not None:
        checkpoints += 1
        if checkpoints in marks:
            bytes_at[checkpoints], _ = await stored_bytes(store)
        model.requests.clear()
        answers = {result.interrupts[0].id: "ok"}
        start = time.perf_counter_ns()
        result = await runner.resume_invoke(result.checkpoint_id, answers)
        rounds_ms.append((time.perf_counter_ns() - start) / 1e6)
    if checkpoints != len(messages) or result.text != "done":
        raise SystemExit(f"unexpected run: {checkpoints} checkpoints, final text {result.text!r}")
    if len(TIMINGS.checkpoint_ms) != len(messages):
        raise SystemExit(f"timed {len(TIMINGS.checkpoint_ms)} checkpoint writes, not {checkpoints}")
    total, sizes = await stored_bytes(store)
    return {
        "store": store,
        "checkpoint_ms": list(TIMINGS.checkpoint_ms),
        "checkpoint_puts": list(TIMINGS.checkpoint_puts),
        "checkpoint_put_ms": list(TIMINGS.checkpoint_put_ms),
        "rounds_ms": rounds_ms,
        "bytes_at": bytes_at,
        "bytes_total": total,
        "sizes": sizes,
    }


async def time_loads(fn: Callable[[], Awaitable[Any]], loads: int) -> list[float]:
    """``loads`` timed calls of ``fn`` (after one untimed call); ms each."""
    await fn()
    gc.collect()
    times = []
    for _ in range(loads):
        start = time.perf_counter_ns()
        await fn()
        times.append((time.perf_counter_ns() - start) / 1e6)
    return times


def load_cases(store: Any, expected_chunks: int) -> dict[str, Callable[[], Awaitable[Any]]]:
    from adk.runner.checkpoint import load_run
    from adk.state.journal import RunJournal

    async def load() -> Any:
        loaded = await load_run(store, RUN_ID)
        if len(loaded.chunks) != expected_chunks:
            raise SystemExit(f"loaded {len(loaded.chunks)} chunks, expected {expected_chunks}")
        return loaded

    async def load_and_rebuild() -> Any:
        # What a resume does with the records before running: the journal rebuilt from the
        # chunks (model replies decoded into Message objects), the input and session values.
        loaded = await load()
        journal = RunJournal(durability=loaded.meta.durability, answers=dict(loaded.answers))
        for chunk in loaded.chunks:
            chunk.load_into(journal)
        loaded.root_input  # noqa: B018 - decoded on access
        loaded.session_values()
        return journal

    return {"load": load, "load_rebuild": load_and_rebuild}


# --------------------------------------------------------------------------- naive baseline
# The same conversation stored as one full snapshot per checkpoint: the whole message history
# (input, every assistant message with its tool call, every tool result so far), the pending
# interrupt and all answers, encoded with the same compact message encoding and the same
# dumps (msgpack + header + crc32), one record per checkpoint in the same kind of SQLite file.


def naive_states(messages: list[str]) -> list[Any]:
    """The conversation's history as Message objects, in order (without the final answer)."""
    from adk import Message, ToolCall, Usage

    history = [Message.user("Write the conversation.")]
    for index, text in enumerate(messages):
        prompt = sum(len(m.content) + 16 for m in history) // 4
        history.append(
            Message(
                role="assistant",
                content=text,
                tool_calls=(ToolCall(id=f"call_{index:03d}", name="review", arguments="{}"),),
                usage=Usage(prompt_tokens=prompt, completion_tokens=(len(text) + 9) // 4),
            )
        )
        history.append(
            Message(role="tool", content="ok", tool_call_id=f"call_{index:03d}", name="review")
        )
    return history


async def naive_conversation(db: Path, messages: list[str], marks: set[int]) -> dict[str, Any]:
    from adk import SQLiteStore
    from adk.state.addressing import interrupt_id
    from adk.state.journal import encode_message
    from adk.state.serde import dumps

    def address(index: int) -> tuple[str, ...]:
        return ("writer", f"review:call_{index:03d}")

    store = SQLiteStore(db)
    history = naive_states(messages)
    space = f"naive:{RUN_ID}"
    write_ms: list[float] = []
    bytes_at: dict[int, int] = {}
    total = 0
    gc.collect()
    for k in range(1, len(messages) + 1):
        # At checkpoint k: input, k assistant messages, k - 1 tool results (the k-th pends).
        shown = history[: 2 * k]
        answers = {interrupt_id(address(i), "0"): "ok" for i in range(k - 1)}
        start = time.perf_counter_ns()
        data = dumps(
            {
                "root": "writer",
                "messages": [encode_message(m) for m in shown],
                "interrupts": [
                    [interrupt_id(address(k - 1), "0"), list(address(k - 1)), REVIEW_QUESTION]
                ],
                "answers": answers,
                "values": {},
            }
        )
        await store.put(space, f"snap:{k:06d}", data)
        write_ms.append((time.perf_counter_ns() - start) / 1e6)
        total += len(data)
        if k in marks:
            bytes_at[k] = total
    last = f"snap:{len(messages):06d}"

    async def load() -> Any:
        from adk.state.journal import decode_message
        from adk.state.serde import loads

        data = await store.get(space, last)
        assert data is not None
        state = loads(data, "snapshot")
        return [decode_message(m) for m in state["messages"]]

    return {
        "store": store,
        "write_ms": write_ms,
        "bytes_at": bytes_at,
        "bytes_total": total,
        "last_bytes": len(data),
        "load": load,
    }


# --------------------------------------------------------------------------- thread-hop floor


async def hop_floor_ms(puts: int, samples: int) -> list[float]:
    """ms of ``puts`` sequential no-op worker-thread round trips (what each put pays to leave
    the event loop: SQLiteStore runs every operation in anyio's worker threads)."""
    import anyio.to_thread

    def nothing() -> None:
        return None

    times = []
    gc.collect()
    for _ in range(samples):
        start = time.perf_counter_ns()
        for _ in range(puts):
            await anyio.to_thread.run_sync(nothing)
        times.append((time.perf_counter_ns() - start) / 1e6)
    return times


# --------------------------------------------------------------------------- main


def sqlite_file_bytes(db: Path) -> int:
    """Size of the database file once its WAL is folded in (pages, indexes, free space)."""
    conn = sqlite3.connect(db)
    try:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        conn.close()
    return db.stat().st_size


def record_kind(name: str) -> str:
    if name.startswith("j:"):
        return "journal chunks (j:<n>)"
    if name.startswith("js:"):
        return "journal segments (js:<n>)"
    if name.startswith("cp:"):
        return "checkpoints (cp:<n>)"
    if name.startswith("claim:"):
        return "resume claims (claim:<...>)"
    return name


def quarter_marks(n: int) -> list[int]:
    return sorted({max(1, round(n * q / 4)) for q in (1, 2, 3, 4)})


async def measure(args: Any, folder: Path) -> dict[str, Any]:
    messages = [message_text(i, args.chars) for i in range(args.messages)]
    marks = quarter_marks(args.messages)
    # Warm-up: pays imports, pydantic schemas, the worker thread pool, SQLite's first open.
    warm = [message_text(i, args.chars) for i in range(args.warmup)]
    if warm:
        await adk_conversation(folder / "warm-adk.db", warm, set())
        await naive_conversation(folder / "warm-naive.db", warm, set())
    repeats: list[dict[str, Any]] = []
    for r in range(args.repeats):
        adk_db, naive_db = folder / f"adk-{r}.db", folder / f"naive-{r}.db"
        adk = await adk_conversation(adk_db, messages, set(marks))
        naive = await naive_conversation(naive_db, messages, set(marks))
        chunks = sum(1 for name, _ in adk["sizes"] if name.startswith(("j:", "js:")))
        cases = load_cases(adk["store"], chunks)
        # The three loads alternate in blocks, so load drifts hit them alike.
        loads: dict[str, list[float]] = {"load": [], "load_rebuild": [], "naive_load": []}
        block = max(1, args.loads // 5)
        for _ in range(0, args.loads, block):
            loads["load"] += await time_loads(cases["load"], block)
            loads["load_rebuild"] += await time_loads(cases["load_rebuild"], block)
            loads["naive_load"] += await time_loads(naive["load"], block)
        hops = await hop_floor_ms(round(median(adk["checkpoint_puts"])), len(messages))
        await adk["store"].close()
        await naive["store"].close()
        repeats.append(
            {
                "adk": adk,
                "naive": naive,
                "loads": loads,
                "hops": hops,
                "adk_file": sqlite_file_bytes(adk_db),
                "naive_file": sqlite_file_bytes(naive_db),
            }
        )
    return {"messages": messages, "marks": marks, "repeats": repeats}


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100, help="messages in the conversation")
    parser.add_argument("--chars", type=int, default=MESSAGE_CHARS, help="characters per message")
    parser.add_argument("--loads", type=int, default=50, help="timed full loads per repeat")
    parser.add_argument("--warmup", type=int, default=10, help="messages of an untimed warm-up")
    args = parser.parse_args()
    if args.quick:
        args.repeats, args.loads, args.warmup = 3, 10, 5
    if args.messages < 4:
        parser.error("--messages must be at least 4")

    install_checkpoint_timer()
    with tempfile.TemporaryDirectory(prefix="adk-bench-checkpoint-") as folder:
        data = asyncio.run(measure(args, Path(folder)))

    messages, marks, repeats = data["messages"], data["marks"], data["repeats"]
    n = len(messages)
    payload = sum(len(m.encode()) for m in messages)
    first = repeats[0]
    bytes_total = first["adk"]["bytes_total"]
    totals = {rep["adk"]["bytes_total"] for rep in repeats}
    if len(totals) != 1:
        print(f"warning: bytes differ between repeats: {sorted(totals)}", file=sys.stderr)
    naive_total = first["naive"]["bytes_total"]

    def per_repeat(fn: Callable[[dict[str, Any]], float]) -> tuple[float, float, float]:
        return spread([fn(rep) for rep in repeats])

    write = per_repeat(lambda rep: median(rep["adk"]["checkpoint_ms"]))
    write_puts = per_repeat(lambda rep: median(rep["adk"]["checkpoint_put_ms"]))
    hop = per_repeat(lambda rep: median(rep["hops"]))
    write_p90 = per_repeat(lambda rep: sorted(rep["adk"]["checkpoint_ms"])[int(0.9 * n)])
    naive_write = per_repeat(lambda rep: median(rep["naive"]["write_ms"]))
    naive_write_last = per_repeat(lambda rep: median(rep["naive"]["write_ms"][-max(1, n // 4) :]))
    load = per_repeat(lambda rep: median(rep["loads"]["load"]))
    load_rebuild = per_repeat(lambda rep: median(rep["loads"]["load_rebuild"]))
    naive_load = per_repeat(lambda rep: median(rep["loads"]["naive_load"]))
    rounds = per_repeat(lambda rep: median(rep["adk"]["rounds_ms"][1:]))
    puts_per_checkpoint = median(first["adk"]["checkpoint_puts"])
    bytes_ratio = ratio(bytes_total, payload)

    print(
        f"checkpoint: a {n}-message conversation ({args.chars} characters each), one "
        f"checkpoint after every message, SQLiteStore in a temporary directory; "
        f"{args.repeats} repeats (a fresh conversation and file each), {args.loads} full "
        f"loads per repeat, after a {args.warmup}-message warm-up"
    )
    print(f"adk measured: {adk_location()}")
    print()
    print_table(
        ["figure", "median", "min", "max", "target", "status"],
        [
            ["payload: message characters (bytes)", payload, "", "", "", ""],
            [
                "stored: all records of the run (bytes)",
                bytes_total,
                min(totals),
                max(totals),
                "",
                "",
            ],
            [
                "stored / payload",
                bytes_ratio,
                "",
                "",
                f"<= {BYTES_RATIO_TARGET:g}",
                verdict(bytes_ratio, BYTES_RATIO_TARGET),
            ],
            [
                "checkpoint write (ms, median of the run's)",
                *write,
                f"<= {WRITE_TARGET_MS:g}",
                verdict(write[0], WRITE_TARGET_MS),
            ],
            ["  of which SQLite writes (ms)", *write_puts, "", ""],
            ["  90th percentile (ms)", *write_p90, "", ""],
            ["  puts per checkpoint", puts_per_checkpoint, "", "", "", ""],
            ["  floor: as many no-op thread round trips (ms)", *hop, "", ""],
            [
                "full load: load_run at the end (ms)",
                *load,
                f"<= {LOAD_TARGET_MS:g}",
                verdict(load[0], LOAD_TARGET_MS),
            ],
            ["  + journal rebuilt as a resume does (ms)", *load_rebuild, "", ""],
            ["resume round: resume_invoke wall (ms)", *rounds, "", ""],
            ["naive: bytes stored (a snapshot per checkpoint)", naive_total, "", "", "", ""],
            ["naive / adk bytes", ratio(naive_total, bytes_total), "", "", "", ""],
            ["naive: write (ms, median of the run's)", *naive_write, "", ""],
            [f"naive: write, last {max(1, n // 4)} checkpoints (ms)", *naive_write_last, "", ""],
            ["naive: load of the last snapshot (ms)", *naive_load, "", ""],
            ["SQLite file after WAL checkpoint (bytes)", first["adk_file"], "", "", "", ""],
            ["naive SQLite file (bytes)", first["naive_file"], "", "", "", ""],
        ],
    )

    # Growth by quarter of the conversation: bytes per round should be constant (linear
    # total), the naive snapshot's grows with the history (quadratic total).
    growth_rows = []
    previous_mark, previous_adk, previous_naive = 0, 0, 0
    first_rate = None
    for mark in marks:
        adk_bytes = first["adk"]["bytes_at"][mark]
        naive_bytes = first["naive"]["bytes_at"][mark]
        rounds_in = mark - previous_mark
        adk_rate = (adk_bytes - previous_adk) / rounds_in
        naive_rate = (naive_bytes - previous_naive) / rounds_in
        if first_rate is None:
            first_rate = adk_rate
        window = slice(previous_mark, mark)
        write_q = median(median(rep["adk"]["checkpoint_ms"][window]) for rep in repeats)
        round_q = median(median(rep["adk"]["rounds_ms"][window]) for rep in repeats)
        naive_q = median(median(rep["naive"]["write_ms"][window]) for rep in repeats)
        growth_rows.append(
            [
                mark,
                mark * len(messages[0].encode()),
                adk_bytes,
                ratio(adk_bytes, mark * len(messages[0].encode())),
                adk_rate,
                naive_bytes,
                naive_rate,
                write_q,
                naive_q,
                round_q,
            ]
        )
        previous_mark, previous_adk, previous_naive = mark, adk_bytes, naive_bytes
    print_table(
        [
            "after msg",
            "payload",
            "adk bytes",
            "/payload",
            "adk B/round",
            "naive bytes",
            "naive B/round",
            "write ms",
            "naive ms",
            "round ms",
        ],
        growth_rows,
        title=(
            "growth (bytes at the checkpoint after that message, before the next resume; "
            "B/round, write ms, naive ms and round ms are over the rounds since the previous row)"
        ),
    )
    last_rate = growth_rows[-1][4]
    bytes_per_round = (growth_rows[-1][2] - growth_rows[0][2]) / (marks[-1] - marks[0])
    growth_ratio = ratio(last_rate, growth_rows[1][4] if len(growth_rows) > 1 else last_rate)

    kinds: Counter[str] = Counter()
    counts: Counter[str] = Counter()
    for name, size in first["adk"]["sizes"]:
        kinds[record_kind(name)] += size
        counts[record_kind(name)] += 1
    print_table(
        ["record", "count", "bytes", "bytes/record", "share"],
        [
            [kind, counts[kind], size, size / counts[kind], f"{100 * size / bytes_total:.1f}%"]
            for kind, size in kinds.most_common()
        ],
        title=f"what is stored at the end (namespace run:{RUN_ID}, {bytes_total} bytes)",
    )

    emit_json(
        {
            "bytes_total": bytes_total,
            "payload_bytes": payload,
            "write_ms": write[0],
            "load_ms": load[0],
            "bytes_ratio": bytes_ratio,
            "bytes_per_round": round(bytes_per_round, 1),
            "growth_ratio": growth_ratio,
            "bytes_at": {str(row[0]): row[2] for row in growth_rows},
            "write_put_ms": write_puts[0],
            "hop_floor_ms": hop[0],
            "load_rebuild_ms": load_rebuild[0],
            "round_ms": rounds[0],
            "naive_bytes_total": naive_total,
            "naive_ratio": ratio(naive_total, bytes_total),
            "naive_write_ms": naive_write[0],
            "naive_load_ms": naive_load[0],
            "messages": n,
            "checkpoints": n,
        }
    )


if __name__ == "__main__":
    main()
