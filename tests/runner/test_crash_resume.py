"""Kill a process at every kill point of a workflow under ``durability="step"``, then resume.

Each trial forks a child that runs the workflow and dies at kill point K
(a real process death, ``os._exit``). The parent then reads what the child
journaled and resumes the run from the store in its own process: no call
the child journaled may run again, and the result must equal an
uninterrupted run's.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import anyio
import pytest

from adk import CheckpointError, CheckpointNotFound
from adk.runner.checkpoint import load_run
from adk.state.stores.sqlite import SQLiteStore
from tests.runner.crash_workflow import Hooks, build_runner

RUN_ID = "crashrun"


def run_child(db: Path, kill_at: int) -> int:
    """Fork; the child runs the workflow and dies at hook ``kill_at``; returns its exit code."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns into pytest
        code = 0
        try:
            runner = build_runner(db, Hooks(kill_at))
            anyio.run(lambda: runner.invoke("start", run_id=RUN_ID))
        except BaseException:
            code = 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


async def journaled_keys(db: Path) -> set[str]:
    try:
        loaded = await load_run(SQLiteStore(db), RUN_ID)
    except CheckpointNotFound:
        return set()
    return {f"{RUN_ID}:{key}" for chunk in loaded.chunks for key, _, _ in chunk.records}


async def resume_after_crash(db: Path) -> tuple[str, dict[str, Any], list[str], str]:
    hooks = Hooks(None)
    runner = build_runner(db, hooks)
    values: dict[str, Any] = {}
    try:
        result = await runner.resume_invoke(RUN_ID, session_values=values)
        how = "resumed"
    except CheckpointNotFound:  # died before anything was journaled: start again
        result = await runner.invoke("start", run_id=RUN_ID, session_values=values)
        how = "restarted"
    except CheckpointError as exc:  # died after the run had finished and said so
        assert "has already finished" in str(exc)
        return "", {}, hooks.executed, "finished"
    return result.text, values, hooks.executed, how


def uninterrupted_run() -> tuple[str, dict[str, Any], int]:
    """The reference: result, session values and number of kill points of a clean run."""
    with tempfile.TemporaryDirectory() as folder:
        hooks = Hooks(None)
        values: dict[str, Any] = {}
        runner = build_runner(Path(folder) / "ref.db", hooks)
        result = anyio.run(lambda: runner.invoke("start", run_id=RUN_ID, session_values=values))
        return result.text, values, hooks.count


REFERENCE = uninterrupted_run()
KILL_POINTS = REFERENCE[2]


def test_workflow_has_at_least_200_kill_points() -> None:
    assert KILL_POINTS >= 200


@pytest.mark.parametrize("kill_at", range(1, KILL_POINTS + 1))
def test_killed_at_any_point_resumes_without_repeating_completed_calls(
    kill_at: int, tmp_path: Path
) -> None:
    text_ref, values_ref, _ = REFERENCE
    db = tmp_path / "run.db"
    assert run_child(db, kill_at) == 9  # really died at the kill point
    completed_before = anyio.run(journaled_keys, db)
    text, values, executed, how = anyio.run(resume_after_crash, db)
    repeated = completed_before.intersection(executed)
    assert not repeated, f"completed calls ran again after the crash: {sorted(repeated)}"
    if how == "finished":
        assert executed == []
        return
    assert (text, values) == (text_ref, values_ref)
    if completed_before:
        assert how == "resumed"


def resume_child(db: Path, kill_at: int) -> int:
    """Fork; the child resumes the run and dies at hook ``kill_at``."""
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child never returns into pytest
        code = 0
        try:
            runner = build_runner(db, Hooks(kill_at))
            anyio.run(lambda: runner.resume_invoke(RUN_ID))
        except BaseException:
            code = 3
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


@pytest.mark.parametrize("second_kill", [1, 2, 5, 17])
def test_a_resume_that_dies_does_not_block_the_next_one(second_kill: int, tmp_path: Path) -> None:
    db = tmp_path / "run.db"
    assert run_child(db, 40) == 9
    assert resume_child(db, second_kill) == 9  # the resuming process dies too
    completed_before = anyio.run(journaled_keys, db)
    text, values, executed, how = anyio.run(resume_after_crash, db)
    assert how == "resumed"
    assert not completed_before.intersection(executed)
    assert (text, values) == (REFERENCE[0], REFERENCE[1])


def test_a_live_process_holding_the_run_keeps_others_out(tmp_path: Path) -> None:
    from adk import RunInProgress
    from adk.state.lease import RunLease

    db = tmp_path / "run.db"
    assert run_child(db, 40) == 9

    async def scenario() -> None:
        store = SQLiteStore(db)
        holder = RunLease(store, RUN_ID, 60)
        await holder.acquire()  # this (live) process holds the run
        with pytest.raises(RunInProgress, match=f"process {os.getpid()}"):
            await build_runner(db, Hooks(None)).resume_invoke(RUN_ID)
        await holder.release()
        result = await build_runner(db, Hooks(None)).resume_invoke(RUN_ID)
        assert result.text == REFERENCE[0]

    anyio.run(scenario)
