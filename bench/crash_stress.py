"""Crash-resume stress: random (and chained) process kills under ``durability="step"``.

The test suite kills the workflow of ``tests/runner/crash_workflow.py`` once
at each of its kill points in turn. This script runs many seeded trials with
RANDOM kill points instead, and chains them: the process that resumes after
a crash is itself killed again at a random later point (up to
``--max-chained`` times) before a final clean resume. Every process is a real
``os.fork`` child that dies with ``os._exit`` at its kill point.

For every trial it checks that:

- no call that was journaled when a process died ran again in any later
  process (the journal's keys after each death against every call executed
  afterwards);
- the final result text and session values equal an uninterrupted run's, and
  the final journal holds each call of the uninterrupted run exactly once;
- a resume after a death is never refused (a run that cannot be resumed any
  more is counted as stuck).

    python bench/crash_stress.py                    # 300 trials, seed 1 (about 1-2 minutes)
    python bench/crash_stress.py --trials 50 --seed 7
    python bench/crash_stress.py --plan 30,1        # one trial with these kill points

The last stdout line is a JSON object: trials, deaths, resumes, restarts,
repeated_calls, mismatches, stuck, ... The exit status is 1 if
repeated_calls, mismatches or stuck is not 0.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import sqlite3
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# The repository root, for ``tests.runner.crash_workflow``; appended, so an ``adk`` put first
# on the path (PYTHONPATH) is still the one measured.
sys.path.append(os.path.dirname(HERE))

from _common import adk_location, emit_json, format_table, median  # noqa: E402

RUN_ID = "crashrun"
DIED = 9  # the exit code of crash_workflow.Hooks at its kill point
MAX_PROCESSES = 30  # per trial, a guard against a run that never settles

# --------------------------------------------------------------------------- child processes


class LoggedCalls(list):  # type: ignore[type-arg]
    """``Hooks.executed`` that also writes each executed call to a file, unbuffered.

    The process dies with ``os._exit`` (no flushing), so each line goes out
    with ``os.write`` before the next kill point can be hit.
    """

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd

    def append(self, key: str) -> None:
        os.write(self.fd, (key + "\n").encode())
        super().append(key)


def run_forked(body: Callable[[], None]) -> int:
    """Run ``body`` in a forked child; its exit code (DIED if it died at its kill point)."""
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns
        code = 0
        try:
            body()
        except BaseException:
            traceback.print_exc()
            code = 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def child(db: Path, kill_at: int | None, first: bool, log: Path, out: Path) -> None:
    """One process of a trial: start the run (first) or resume it; may die at ``kill_at``."""
    import anyio

    from adk import CheckpointAlreadyResumed, CheckpointError, CheckpointNotFound
    from tests.runner.crash_workflow import Hooks, build_runner

    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    hooks = Hooks(kill_at)
    hooks.executed = LoggedCalls(fd)
    runner = build_runner(db, hooks)
    values: dict[str, Any] = {}

    def report(how: str, text: str = "", error: str = "") -> None:
        out.write_text(
            json.dumps(
                {"how": how, "text": text, "values": values, "hooks": hooks.count, "error": error}
            )
        )

    def mark(kind: str) -> None:
        os.write(fd, f"#{kind}\n".encode())

    async def go() -> None:
        if first:
            mark("invoke")
            result = await runner.invoke("start", run_id=RUN_ID, session_values=values)
            report("invoked", result.text)
            return
        try:
            mark("resume")
            result = await runner.resume_invoke(RUN_ID, session_values=values)
            how = "resumed"
        except CheckpointNotFound:  # died before anything was journaled: start again
            mark("restart")
            result = await runner.invoke("start", run_id=RUN_ID, session_values=values)
            how = "restarted"
        except CheckpointAlreadyResumed as exc:
            mark("refused")
            report("refused", error=str(exc))
            return
        except CheckpointError as exc:
            if "has already finished" not in str(exc):
                raise
            mark("finished")
            report("finished", error=str(exc))
            return
        report(how, result.text)

    anyio.run(go)


# --------------------------------------------------------------------------- reading the store
# The parent never runs adk's async code on SQLite (that starts worker threads, and the parent
# forks): it copies the run's rows with plain sqlite3 into an InMemoryStore and reads them
# with adk's own load_run.


def store_rows(db: Path) -> list[tuple[str, bytes]]:
    if not db.exists():
        return []
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute(
            "SELECT name, data FROM adk_records WHERE namespace=? ORDER BY name",
            (f"run:{RUN_ID}",),
        ).fetchall()
    except sqlite3.OperationalError:  # died before the table was created
        rows = []
    finally:
        conn.close()
    return [(str(name), bytes(data)) for name, data in rows]


def read_journal(db: Path) -> tuple[list[str], str, int]:
    """(journaled call keys in order, run status, chunk count); ([], "none", 0) if no run."""
    from adk.runner.checkpoint import load_run
    from adk.state.stores.memory import InMemoryStore

    rows = store_rows(db)

    async def load() -> Any:
        store = InMemoryStore()
        for name, data in rows:
            await store.put(f"run:{RUN_ID}", name, data)
        return await load_run(store, RUN_ID)

    if not any(name == "meta" for name, _ in rows):
        return [], "none", 0
    loaded = asyncio.run(load())
    keys = [f"{RUN_ID}:{key}" for chunk in loaded.chunks for key, _, _ in chunk.records]
    return keys, loaded.status, len(loaded.chunks)


def clear_stale_claim(db: Path, chunks: int) -> str:
    """Delete the resume claim a dead resume left for the current journal length."""
    name = f"claim:j:{chunks:010d}"
    conn = sqlite3.connect(db)
    try:
        conn.execute(
            "DELETE FROM adk_records WHERE namespace=? AND name=?", (f"run:{RUN_ID}", name)
        )
        conn.commit()
    finally:
        conn.close()
    return name


# --------------------------------------------------------------------------- one trial


class Reference:
    def __init__(self, text: str, values: dict[str, Any], kill_points: int, keys: list[str]):
        self.text = text
        self.values = values
        self.kill_points = kill_points
        self.keys = keys


def reference_run(folder: Path) -> Reference:
    db, log, out = folder / "reference.db", folder / "reference.log", folder / "reference.json"
    code = run_forked(lambda: child(db, None, True, log, out))
    if code != 0:
        raise SystemExit(f"the uninterrupted run failed (exit code {code})")
    outcome = json.loads(out.read_text())
    keys, status, _ = read_journal(db)
    if status != "finished":
        raise SystemExit(f"the uninterrupted run ended with status {status!r}")
    return Reference(outcome["text"], outcome["values"], outcome["hooks"], keys)


class Trial:
    def __init__(self, index: int) -> None:
        self.index = index
        self.kills: list[int] = []  # the kill point of each process that died
        self.kill_plan: list[int | None] = []  # the kill point given to each process
        self.deaths = 0
        self.resumes = 0
        self.restarts = 0
        self.processes = 0
        self.survived = 0  # killable processes that ended before reaching their kill point
        self.stuck: list[str] = []  # stale claims that refused a resume
        self.repeated: set[str] = set()
        self.redone: set[str] = set()
        self.finished_at_death = False
        self.problems: list[str] = []
        self.wall_ms = 0.0

    @property
    def failed(self) -> bool:
        return bool(self.repeated or self.problems or self.stuck)


def run_trial(
    index: int,
    folder: Path,
    ref: Reference,
    next_kill: Callable[[Trial], int | None],
    clear_claims: bool,
) -> Trial:
    """Run one trial; ``next_kill(trial)`` gives each process its kill point (None: clean)."""
    trial = Trial(index)
    start = time.perf_counter()
    db = folder / f"trial-{index}.db"
    executed: list[list[str]] = []  # per process, in order
    journal_at_death: list[tuple[int, set[str]]] = []  # (process index, journaled keys)
    outcome: dict[str, Any] | None = None
    kill_at = next_kill(trial)
    while trial.processes < MAX_PROCESSES:
        process = trial.processes
        trial.processes += 1
        trial.kill_plan.append(kill_at)
        log, out = folder / f"trial-{index}-{process}.log", folder / f"trial-{index}-{process}.json"
        code = run_forked(lambda: child(db, kill_at, process == 0, log, out))  # noqa: B023
        lines = log.read_text().splitlines() if log.exists() else []
        executed.append([line for line in lines if not line.startswith("#")])
        # "#resume" marks an attempt; the others say it did not resume from the journal.
        not_resumed = sum(lines.count(m) for m in ("#restart", "#refused", "#finished"))
        trial.resumes += lines.count("#resume") - not_resumed
        trial.restarts += lines.count("#restart")
        if code == DIED:
            assert kill_at is not None
            trial.deaths += 1
            trial.kills.append(kill_at)
            keys, _, _ = read_journal(db)
            journal_at_death.append((process, set(keys)))
            kill_at = next_kill(trial)
            continue
        if code != 0:
            trial.problems.append(f"process {process} failed with exit code {code}")
            break
        outcome = json.loads(out.read_text())
        if outcome["how"] == "refused":
            _, _, chunks = read_journal(db)
            trial.stuck.append(f"process {process}: {outcome['error']}")
            if not clear_claims:
                trial.problems.append(f"resume refused after a crash: {outcome['error']}")
                break
            clear_stale_claim(db, chunks)  # and run the same step again
            continue
        if kill_at is not None:
            trial.survived += 1
        break
    else:
        trial.problems.append(f"no clean end after {MAX_PROCESSES} processes")

    # No call journaled at a death may run again in a later process; calls in flight at a
    # death (executed, not yet journaled) may, and are counted as redone.
    for process, journaled in journal_at_death:
        later = {key for calls in executed[process + 1 :] for key in calls}
        trial.repeated |= journaled & later
        trial.redone |= (set(executed[process]) - journaled) & later

    if outcome is not None and not trial.problems:
        keys, status, _ = read_journal(db)
        if status != "finished":
            trial.problems.append(f"the run's status is {status!r}, not 'finished'")
        if Counter(keys) != Counter(ref.keys):
            extra = sorted((Counter(keys) - Counter(ref.keys)).elements())
            missing = sorted((Counter(ref.keys) - Counter(keys)).elements())
            trial.problems.append(f"journal differs: extra {extra[:5]}, missing {missing[:5]}")
        if outcome["how"] == "finished":
            # The run finished in a process that then died: nothing may run again, and
            # the result was delivered only to that process (it is not stored).
            trial.finished_at_death = True
            if executed[-1]:
                trial.problems.append(f"calls ran after the run finished: {executed[-1][:5]}")
        elif (outcome["text"], outcome["values"]) != (ref.text, ref.values):
            trial.problems.append(
                f"result differs: {outcome['text']!r} {sorted(outcome['values'])} vs "
                f"{ref.text!r} {sorted(ref.values)}"
            )
    trial.wall_ms = (time.perf_counter() - start) * 1000
    for path in folder.glob(f"trial-{index}*"):
        path.unlink()
    return trial


def random_kills(seed: int, ref: Reference, max_chained: int) -> Callable[[Trial], int | None]:
    """Kill points for a trial: the first uniform over the whole run; then, up to
    ``max_chained`` times, uniform over an estimate of what is left; then a clean resume."""
    generators: dict[int, tuple[random.Random, int]] = {}

    def next_kill(trial: Trial) -> int | None:
        if trial.index not in generators:
            rng = random.Random(f"{seed}:{trial.index}")
            generators[trial.index] = (rng, 1 + rng.randint(0, max_chained))
        rng, planned = generators[trial.index]
        if trial.deaths >= planned:
            return None
        if not trial.kills:
            return rng.randint(1, ref.kill_points)
        # A resumed process skips the journaled calls' kill points and may redo a call that
        # was in flight: the estimate is the run's points minus those consumed, plus slack.
        left = ref.kill_points - sum(trial.kills) + 4 * len(trial.kills)
        return rng.randint(1, max(1, left))

    return next_kill


def planned_kills(plan: list[int]) -> Callable[[Trial], int | None]:
    def next_kill(trial: Trial) -> int | None:
        return plan[trial.deaths] if trial.deaths < len(plan) else None

    return next_kill


# --------------------------------------------------------------------------- main


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=300, help="number of trials")
    parser.add_argument("--seed", type=int, default=1, help="seed of the kill points")
    parser.add_argument(
        "--max-chained",
        type=int,
        default=3,
        help="most kills of resuming processes per trial (after the first kill)",
    )
    parser.add_argument(
        "--plan",
        type=str,
        default=None,
        help="one trial with these kill points, comma-separated (e.g. 30,1), then a clean resume",
    )
    parser.add_argument(
        "--stale-claims",
        choices=("clear", "fail"),
        default="clear",
        help="when a resume is refused by a claim a dead resume left: delete the claim and "
        "go on (clear, counted as stuck) or end the trial as a mismatch (fail)",
    )
    parser.add_argument("--quick", action="store_true", help="30 trials, for a smoke test")
    args = parser.parse_args()
    if args.quick:
        args.trials = 30
    clear = args.stale_claims == "clear"

    import adk  # noqa: F401 - imported before forking, so children start warm
    import tests.runner.crash_workflow  # noqa: F401

    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="adk-crash-stress-") as name:
        folder = Path(name)
        ref = reference_run(folder)
        if args.plan:
            plan = [int(k) for k in args.plan.split(",") if k.strip()]
            trials = [run_trial(0, folder, ref, planned_kills(plan), clear)]
        else:
            next_kill = random_kills(args.seed, ref, args.max_chained)
            trials = [run_trial(i, folder, ref, next_kill, clear) for i in range(args.trials)]
    wall_s = time.perf_counter() - started

    failed = [t for t in trials if t.failed]
    for t in failed:
        plan_text = ",".join(str(k) for k in t.kills)
        print(
            f"trial {t.index} FAILED (kill points {plan_text}; reproduce with "
            f"python bench/crash_stress.py --plan {plan_text}):",
            file=sys.stderr,
        )
        for stuck in t.stuck:
            print(f"  stuck: {stuck}", file=sys.stderr)
        if t.repeated:
            print(f"  journaled calls ran again: {sorted(t.repeated)}", file=sys.stderr)
        for problem in t.problems:
            print(f"  {problem}", file=sys.stderr)

    figures = {
        "trials": len(trials),
        "deaths": sum(t.deaths for t in trials),
        "resumes": sum(t.resumes for t in trials),
        "restarts": sum(t.restarts for t in trials),
        "repeated_calls": sum(len(t.repeated) for t in trials),
        "mismatches": sum(1 for t in trials if t.problems),
        "stuck": sum(len(t.stuck) for t in trials),
        "redone_calls": sum(len(t.redone) for t in trials),
        "chained_deaths": sum(max(0, t.deaths - 1) for t in trials),
        "survived_kills": sum(t.survived for t in trials),
        "finished_at_death": sum(1 for t in trials if t.finished_at_death),
        "processes": sum(t.processes for t in trials),
        "kill_points": ref.kill_points,
        "first_kill_points_covered": len({t.kills[0] for t in trials if t.kills}),
        "seed": args.seed,
        "wall_s": wall_s,
    }
    deaths_per_trial = Counter(t.deaths for t in trials)

    print(
        f"crash_stress: {len(trials)} trials of tests/runner/crash_workflow.py "
        f"({ref.kill_points} kill points, durability='step', SQLite), "
        + (
            f"kill points {args.plan}"
            if args.plan
            else f"random kill points (seed {args.seed}), up to {args.max_chained} chained kills"
        )
        + f"; stale resume claims: {args.stale_claims}"
    )
    print(f"adk measured: {adk_location()}")
    print()
    rows = [
        ["trials", figures["trials"], "", ""],
        ["deaths (processes killed at their kill point)", figures["deaths"], "", ""],
        ["  of which chained (a resuming process killed)", figures["chained_deaths"], "", ""],
        ["resumes (resume_invoke by run id, from the journal)", figures["resumes"], "", ""],
        ["restarts (nothing journaled yet: invoke again)", figures["restarts"], "", ""],
        [
            "repeated_calls (journaled, then ran again)",
            figures["repeated_calls"],
            "0",
            "ok" if figures["repeated_calls"] == 0 else "FAIL",
        ],
        [
            "mismatches (trials: result, values or journal differ)",
            figures["mismatches"],
            "0",
            "ok" if figures["mismatches"] == 0 else "FAIL",
        ],
        [
            "stuck (resume refused by a dead resume's claim)",
            figures["stuck"],
            "0",
            "ok" if figures["stuck"] == 0 else "FAIL",
        ],
        ["redone_calls (in flight at a death, ran again)", figures["redone_calls"], "", ""],
        ["survived_kills (ended before their kill point)", figures["survived_kills"], "", ""],
        ["finished_at_death (died after the run finished)", figures["finished_at_death"], "", ""],
        ["processes forked (reference excluded)", figures["processes"], "", ""],
        [
            f"first kill points covered (of {ref.kill_points})",
            figures["first_kill_points_covered"],
            "",
            "",
        ],
        ["wall time (s)", wall_s, "", ""],
        ["  per trial, median (ms)", median(t.wall_ms for t in trials), "", ""],
    ]
    print(format_table(["figure", "value", "target", "status"], rows))
    print()
    print(
        "deaths per trial: " + ", ".join(f"{k}: {v}" for k, v in sorted(deaths_per_trial.items()))
    )
    print()
    emit_json(figures)
    if figures["repeated_calls"] or figures["mismatches"] or figures["stuck"]:
        sys.exit(1)


if __name__ == "__main__":
    main()
