"""``adk run`` and ``adk resume`` in a real terminal (a pty), driven as a person would.

Each test spawns ``python -m adk`` in a pseudo-terminal, waits for what a
person would see (the approval prompt, the cancelled line), types the
answer, and checks the result on the screen and in the store.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.cli.conftest import adk, clean, env, in_process, lines, target

pexpect = pytest.importorskip("pexpect")


def spawn(*args: str, cwd: Path) -> Any:
    """``python -m adk ARGS`` in a 120x40 pty."""
    return pexpect.spawn(
        sys.executable,
        ["-m", "adk", *args],
        cwd=str(cwd),
        env=env(),
        encoding="utf-8",
        dimensions=(40, 120),
        timeout=30,
    )


def finish(child: Any) -> tuple[str, int]:
    """Wait for the process to end; its remaining screen text and exit status."""
    child.expect(pexpect.EOF)
    text = clean(child.before)
    child.close()
    return text, child.exitstatus


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (["a"], "Done: refunded 30 EUR"),
        (["r", "not without a receipt"], "rejected this call to 'refund': not without a receipt"),
        (["e", "oops", '{"amount": 10}'], "Done: refunded 10 EUR"),
    ],
    ids=["approve", "reject", "edit"],
)
def test_an_approval_is_answered_in_the_terminal(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, store: str, keys: list[str], expected: str
) -> None:
    child = spawn("run", target("support"), "Refund order 7", "--store", store, cwd=tmp_path)
    child.expect("approval needed")
    child.expect_exact("approve [a], reject [r], edit the arguments [e]? ")
    screen = clean(child.before)
    assert "refund" in screen and '{"amount": 30}' in screen  # the call, before it runs
    for key in keys:
        child.sendline(key)
        if key == "oops":
            child.expect("not JSON")
    text, status = finish(child)
    assert status == 0, text
    assert expected in " ".join(text.split())
    assert "completed" in text and "model calls 2" in text  # the footer
    [run] = in_process(capsys, "runs", "--store", store)[1]
    assert run["status"] == "completed" and run["agent"] == "support"


def test_ctrl_c_cancels_the_run_cleanly(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, store: str
) -> None:
    child = spawn("run", target("slow"), "hi", "--store", store, cwd=tmp_path)
    child.expect("MODEL CALLED")  # the model call is in flight
    child.sendintr()
    text, status = finish(child)
    assert status == 130
    assert "cancelled" in text and "Traceback" not in text
    [run] = in_process(capsys, "runs", "--store", store)[1]
    assert run["status"] == "cancelled"


def test_a_waiting_run_is_resumed_later_in_the_terminal(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, store: str
) -> None:
    # In a pipe nobody can answer: the run waits (exit 3) and says how to resume it.
    first = adk("run", target("support"), "Refund order 7", "--store", store, cwd=tmp_path)
    assert first.returncode == 3
    run_id = lines(first)[-1]["run_id"]
    assert f"adk resume {run_id}" in first.stderr
    child = spawn("resume", run_id, "--store", store, cwd=tmp_path)
    child.expect("approval needed")
    child.sendline("a")
    text, status = finish(child)
    assert status == 0 and "Done: refunded 30 EUR" in text
    assert "resumed from" in text
    [run] = in_process(capsys, "runs", "--store", store)[1]
    assert (run["run_id"], run["status"]) == (run_id, "completed")


def test_a_fan_out_shows_its_branches_done(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, store: str
) -> None:
    child = spawn("run", target("fanout"), "Write", "--store", store, cwd=tmp_path)
    text, status = finish(child)
    assert status == 0
    assert "branches 3/3" in text
    for name in ("alpha", "beta", "gamma"):
        assert f"{name} wrote a paragraph." in text


def test_ctrl_c_at_a_prompt_leaves_the_run_waiting(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, store: str
) -> None:
    child = spawn("run", target("support"), "Refund order 7", "--store", store, cwd=tmp_path)
    child.expect_exact("edit the arguments [e]? ")
    child.sendintr()
    text, status = finish(child)
    assert status == 3, text
    assert "left waiting" in text and "adk resume" in text
    [run] = in_process(capsys, "runs", "--store", store)[1]
    assert run["status"] == "interrupted"
