"""Helpers for driving the real ``python -m adk`` process: in a pipe, or in a pty as a person."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
AGENTS = Path(__file__).resolve().parent / "cli_agents.py"
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07|\r")


def env() -> dict[str, str]:
    """The environment of a spawned ``adk``: this checkout importable, no store default."""
    values = dict(os.environ)
    values["PYTHONPATH"] = str(ROOT)
    values.pop("ADK_STORE", None)
    values["COLUMNS"] = "120"
    return values


def target(name: str) -> str:
    """``path/to/cli_agents.py:name``: the file form of a target."""
    return f"{AGENTS}:{name}"


def adk(*args: str, cwd: Path, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``python -m adk ARGS`` in a pipe (stdout is not a terminal: plain output)."""
    return subprocess.run(
        [sys.executable, "-m", "adk", *args],
        cwd=cwd,
        env=env(),
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=60,
    )


def lines(result: subprocess.CompletedProcess[str]) -> list[dict[str, Any]]:
    """stdout parsed as JSON Lines (every line must be one JSON object)."""
    return [json.loads(line) for line in result.stdout.splitlines()]


def clean(text: str) -> str:
    """Terminal output without escape sequences and carriage returns."""
    return ANSI.sub("", text)


@pytest.fixture
def store(tmp_path: Path) -> str:
    """A SQLite store path in the test's directory."""
    return str(tmp_path / "runs.db")


def in_process(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, Any]]]:
    """Run ``adk ARGS`` in this process (stdout captured: plain); exit status and JSON Lines."""
    from adk.cli import main

    capsys.readouterr()
    status = main(list(args))
    out = capsys.readouterr().out
    return status, [json.loads(line) for line in out.splitlines()]
