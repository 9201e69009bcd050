"""Clear errors: exit status 2 and one line on stderr, never a traceback.

Most cases run ``adk.cli.main`` in this process (fast); one runs the real
process to check that nothing but the line reaches the terminal.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adk.cli import main
from tests.cli.conftest import adk, target


def error_line(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    """Run ``adk ARGS``; assert exit status 2 and one stderr line; that line."""
    assert main(list(args)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.splitlines()
    return line


def test_a_module_that_does_not_import(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    line = error_line(capsys, "run", "no_such_module_here:agent", "hi", "--store", "memory")
    assert "cannot import 'no_such_module_here': ModuleNotFoundError" in line
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom at import')\n")
    line = error_line(capsys, "run", f"{broken}:agent", "hi", "--store", "memory")
    assert "RuntimeError: boom at import" in line
    line = error_line(capsys, "run", f"{tmp_path / 'absent.py'}:agent", "hi")
    assert "no such file" in line


def test_a_name_that_is_not_an_agent(capsys: pytest.CaptureFixture[str]) -> None:
    line = error_line(capsys, "run", target("not_an_agent"), "hi", "--store", "memory")
    assert "is not an agent but int 42" in line
    line = error_line(capsys, "run", target("missing"), "hi", "--store", "memory")
    assert "has no attribute 'missing' (agents there: fanout, slow, support)" in line


@pytest.mark.parametrize(
    "url",
    ["redis://ada:s3cret-pw@127.0.0.1:1/0", "postgresql://ada:s3cret-pw@127.0.0.1:1/db"],
    ids=["redis", "postgresql"],
)
def test_a_store_that_cannot_be_reached_is_named_without_its_password(
    capsys: pytest.CaptureFixture[str], url: str
) -> None:
    line = error_line(capsys, "run", target("support"), "hi", "--store", url)
    shown = url.replace(":s3cret-pw", "")
    assert f"cannot reach the store at {shown}" in line
    assert "s3cret-pw" not in line


def test_store_and_run_mistakes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    absent = str(tmp_path / "none.db")
    assert "no such SQLite file" in error_line(capsys, "runs", "--store", absent)
    assert not Path(absent).exists()  # a typo leaves no empty database behind
    line = error_line(capsys, "run", target("support"), "hi", "--store", "mysql://x")
    assert "unknown scheme" in line
    store = str(tmp_path / "runs.db")
    assert main(["run", target("fanout"), "hi", "--store", store, "--run-id", "done"]) == 0
    capsys.readouterr()
    assert "unknown status 'nope'" in error_line(
        capsys, "runs", "--status", "nope", "--store", store
    )
    assert "no run 'ghost'" in error_line(capsys, "show", "ghost", "--store", store)
    line = error_line(capsys, "resume", "done", "--store", store)
    assert "is completed: nothing to resume" in line
    assert "no session 'ghost'" in error_line(capsys, "sessions", "ghost", "--store", store)
    assert "expected key=value" in error_line(capsys, "run", target("fanout"), "hi", "--value", "x")


def test_answers_that_cannot_apply(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    store = str(tmp_path / "runs.db")
    assert main(["run", target("support"), "hi", "--store", store, "--run-id", "w"]) == 3
    last = json.loads(capsys.readouterr().out.splitlines()[-2])  # the Runner's interrupt event
    [pending] = last["interrupts"]
    line = error_line(capsys, "resume", "w", "--answer", "nope=approve", "--store", store)
    assert "no pending interrupt 'nope'" in line
    line = error_line(capsys, "resume", "w", "--answer", f"{pending['id']}=maybe", "--store", store)
    assert "cannot read 'maybe' as an approval" in line
    # Neither used the checkpoint up: a good answer still resumes the run.
    assert main(["resume", "w", "--answer", f"{pending['id']}=approve", "--store", store]) == 0


def test_the_real_process_prints_one_line_and_no_traceback(tmp_path: Path) -> None:
    result = adk("run", target("not_an_agent"), "hi", "--store", "memory", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"adk run: '{target('not_an_agent')}' is not an agent but int 42 "
        "(an agent has name, description and run, e.g. a ChatModelAgent)"
    ]
