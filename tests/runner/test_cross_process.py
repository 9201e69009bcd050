"""An approval deep inside a workflow, answered and resumed by another process from SQLite."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.runner import nested_approval_app as app

pytestmark = pytest.mark.anyio
ROOT = Path(__file__).resolve().parents[2]


def resume_in_new_process(db: Path, checkpoint: str, answers: dict[str, str]) -> dict[str, object]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.runner.nested_approval_app",
            "resume",
            str(db),
            checkpoint,
            json.dumps(answers),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


async def test_nested_approval_resumed_in_another_process(tmp_path: Path) -> None:
    db = tmp_path / "checkpoints.db"
    app.EXECUTED.clear()
    paused = await app.build_runner(str(db)).invoke("release v2")
    by_service = {i.info["arguments"]["service"]: i for i in paused.interrupts}
    assert sorted(by_service) == ["svc-east", "svc-north", "svc-west"]
    east = by_service["svc-east"]
    assert east.address[:3] == ("release", "regions", "east")
    assert "deployer" in east.address and east.address[-1].startswith("deploy:")
    first_process = sorted(app.EXECUTED)
    assert first_process == sorted(
        ["model:east", "model:west", "model:north"]
        + [f"model:deployer:{k}" for k in _deployer_keys(app.EXECUTED)]
    )
    assert paused.checkpoint_id is not None

    # Another process approves east, rejects west, leaves north pending.
    second = resume_in_new_process(
        db,
        paused.checkpoint_id,
        {by_service["svc-east"].id: "approve", by_service["svc-west"].id: "frozen"},
    )
    executed = second["executed"]
    assert isinstance(executed, list)
    # Only the approved tool ran, and only the deployers' follow-up and the workers' follow-up
    # model calls happened: nothing that completed in the first process ran again.
    assert [e for e in executed if e.startswith("deploy:")] == ["deploy:svc-east"]
    assert sorted(e.split(":")[1] for e in executed if e.startswith("model:") and ":" in e[6:]) == [
        "deployer",
        "deployer",
    ]
    assert sorted(e for e in executed if e in ("model:east", "model:west", "model:north")) == [
        "model:east",
        "model:west",
    ]
    assert second["pending"] == [by_service["svc-north"].id]
    answers = second["answers"]
    assert isinstance(answers, list)
    assert "east saw: deployer: deployed svc-east" in answers
    assert any(a.startswith("west saw: deployer: The user rejected") for a in answers)

    # A third process approves north; the run finishes.
    checkpoint = second["checkpoint"]
    assert isinstance(checkpoint, str)
    third = resume_in_new_process(db, checkpoint, {by_service["svc-north"].id: "approve"})
    assert [e for e in third["executed"] if e.startswith("deploy:")] == ["deploy:svc-north"]  # type: ignore[union-attr]
    assert third["pending"] == [] and third["checkpoint"] is None


def _deployer_keys(executed: list[str]) -> list[str]:
    return [e.split(":", 2)[2] for e in executed if e.startswith("model:deployer:")]


async def test_two_processes_resuming_the_same_checkpoint_one_wins(tmp_path: Path) -> None:
    db = tmp_path / "checkpoints.db"
    paused = await app.build_runner(str(db)).invoke("release v3")
    assert paused.checkpoint_id is not None
    answers = json.dumps({i.id: "approve" for i in paused.interrupts})
    command = [
        sys.executable,
        "-m",
        "tests.runner.nested_approval_app",
        "resume",
        str(db),
        paused.checkpoint_id,
        answers,
    ]
    results = race_two(command)
    codes = sorted(code for _, _, code in results)
    assert codes == [0, 1], results
    loser = next(err for _, err, code in results if code == 1)
    assert "CheckpointAlreadyResumed" in loser and "was already resumed" in loser


def race_two(command: list[str]) -> list[tuple[str, str, int]]:
    """Start the same command twice at once; their (stdout, stderr, exit code)."""
    processes = [
        subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=120)
        results.append((out, err, process.returncode))
    return results
