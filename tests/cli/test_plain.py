"""``--plain`` JSON Lines, and ``adk runs``/``show``/``sessions`` against a SQLite store."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from tests.cli.conftest import adk, in_process, lines, target


def test_plain_output_is_json_lines_with_the_documented_schema(tmp_path: Path, store: str) -> None:
    result = adk("run", target("fanout"), "Write", "--store", store, "--plain", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    records = lines(result)
    assert records[0]["type"] == "run_start" and records[0]["agent"] == "research"
    end = records[-1]
    assert end["type"] == "run_end" and end["status"] == "completed"
    assert end["model_calls"] == 3 and end["prompt_tokens"] > 0
    messages = [r for r in records if r["type"] == "message"]
    assert sorted(m["agent"] for m in messages) == ["alpha", "beta", "gamma"]
    assert all(m["path"] == ["research", m["agent"]] and "usage" in m for m in messages)
    assert {r["run_id"] for r in records} == {end["run_id"]}


def test_deltas_tool_calls_and_interrupts_in_a_pipe(tmp_path: Path, store: str) -> None:
    # No --plain: stdout is a pipe, so the output is JSON Lines anyway.
    first = adk("run", target("support"), "Refund", "--store", store, cwd=tmp_path)
    assert first.returncode == 3  # waiting at its approval
    records = lines(first)
    [call] = [r for r in records if r["type"] == "message"]
    assert call["tool_calls"][0]["name"] == "refund"
    assert call["tool_calls"][0]["arguments"] == {"amount": 30}  # decoded JSON
    interrupt = [r for r in records if r["type"] == "interrupt"][-1]
    [pending] = interrupt["interrupts"]
    assert pending["info"] == {"type": "approval", "tool": "refund", "arguments": {"amount": 30}}
    assert records[-1]["status"] == "interrupted"
    assert records[-1]["checkpoint_id"] == interrupt["checkpoint_id"]

    run_id = records[-1]["run_id"]
    answer = f"{pending['id']}=reject:no receipt"
    second = adk("resume", run_id, "--answer", answer, "--store", store, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    records = lines(second)
    assert records[0]["resumed_from"] == interrupt["checkpoint_id"]
    [result] = [r for r in records if r["type"] == "tool_result"]
    assert result["tool"] == "refund" and "no receipt" in result["text"]
    deltas = [r["text"] for r in records if r["type"] == "delta"]
    final = [r for r in records if r["type"] == "message"][-1]
    assert len(deltas) > 1 and "".join(deltas) == final["text"]


def test_runs_lists_and_filters_the_store(capsys: pytest.CaptureFixture[str], store: str) -> None:
    assert in_process(capsys, "run", target("fanout"), "x", "--store", store)[0] == 0
    assert in_process(capsys, "run", target("support"), "y", "--store", store)[0] == 3
    everything = in_process(capsys, "runs", "--store", store)[1]
    assert [r["status"] for r in everything] == ["interrupted", "completed"]  # newest first
    waiting = in_process(capsys, "runs", "--status", "interrupted", "--store", store)[1]
    assert [r["agent"] for r in waiting] == ["support"]
    by_agent = in_process(capsys, "runs", "--agent", "research", "--store", store)[1]
    assert [r["status"] for r in by_agent] == ["completed"]
    assert len(in_process(capsys, "runs", "--limit", "1", "--store", store)[1]) == 1


def test_show_prints_the_recorded_trajectory(tmp_path: Path, store: str) -> None:
    run = adk("run", target("fanout"), "x", "--store", store, "--run-id", "r1", cwd=tmp_path)
    assert run.returncode == 0
    shown = lines(adk("show", "r1", "--store", store, cwd=tmp_path))
    assert shown[0] == {"type": "trajectory", "version": 1, "run_id": "r1"}
    assert len([r for r in shown if r["type"] == "model_call"]) == 3
    texts = [r["message"]["content"] for r in shown if r["type"] == "event"]
    assert "beta wrote a paragraph." in texts


def test_sessions_lists_and_shows_a_conversation(
    capsys: pytest.CaptureFixture[str], store: str
) -> None:
    for text in ("first", "second"):
        args = ("--session", "s1", "--user", "ada", "--store", store)
        assert in_process(capsys, "run", target("fanout"), text, *args)[0] == 0
    [listed] = in_process(capsys, "sessions", "--store", store)[1]
    assert (listed["id"], listed["app"], listed["user_id"]) == ("s1", "research", "ada")
    assert listed["turns"] == 2
    [session] = in_process(capsys, "sessions", "s1", "--store", store)[1]
    user_texts = [h["text"] for h in session["history"] if h["role"] == "user"]
    assert user_texts == ["first", "second"]


def test_the_message_can_come_from_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, store: str
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("from a pipe\n"))
    assert in_process(capsys, "run", target("fanout"), "--store", store, "--run-id", "p")[0] == 0
    assert in_process(capsys, "sessions", "--store", store)[1] == []  # no --session, no session
    trajectory = in_process(capsys, "show", "p", "--store", store)[1]
    first_call = next(r for r in trajectory if r["type"] == "model_call")
    assert first_call["messages"][-1]["content"] == "from a pipe"
