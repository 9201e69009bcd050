"""Every cookbook script and every Python example in the docs runs, offline.

- Each ``cookbook/*.py`` script (names starting with ``_`` are helpers, not
  scripts) runs in a subprocess with ``ADK_MODEL`` removed from the
  environment, so it uses its offline ScriptedModel. It must exit with 0 and
  print what :data:`EXPECTED_OUTPUT` lists for it.
- Each fenced code block opened with exactly ```` ```python ```` in
  ``README.md`` and ``docs/*.md`` is written to a file and run in a
  subprocess; it must exit with 0. Blocks must therefore be self-contained
  (imports, ``anyio.run(main)``).
- A block that cannot run offline (it needs an API key, a server...) is fenced
  with ```` ```python no-run ````: it is still rendered as Python, and this
  test only checks that it compiles. Keep those rare. Blocks with any other
  info string (``text`` for signatures and sketches, ``bash``...) are ignored.
- A block that needs this machine's Redis or PostgreSQL is fenced with
  ```` ```python services ````: it runs when those servers answer (always in
  CI, where ``ADK_REQUIRE_SERVICES=1`` makes it fail instead of skipping).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TIMEOUT = 60

COOKBOOK = sorted(p for p in (ROOT / "cookbook").glob("*.py") if not p.name.startswith("_"))
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]

EXPECTED_OUTPUT: dict[str, list[str]] = {
    "approval_chat.py": [
        "<- send_email: The user rejected this call to 'send_email': too formal, keep it short",
        "assistant: Done: the email to ada@example.com is sent.",
        "assistant: You're welcome!",
        'outbox: [{"to": "ada@example.com", "subject": "Demo at 3pm"',
    ],
    "chat_session.py": [
        "assistant: Noted: I will remember that my name is Ada, in all our conversations.",
        # A second process continues session chat-1 from the SQLite file...
        "(continuing session 'chat-1': 2 turns so far)",
        'So far you said: "Remember that my name is Ada"; "I am planning a trip to Lisbon in May".',
        # ...and in a new session, the user's values (user:facts) are still there.
        "(session 'chat-2' is new)",
        "assistant: This is the start of our conversation.",
        "assistant: You told me: my name is Ada.",
        "chat-1: 3 turns",
    ],
    "quickstart.py": [
        "-> get_weather",
        "<- convert_temperature: 86.0 F",
        "Paris: light rain, 18.0 C",
        "'lookups': 2",
    ],
    "mcp_tools.py": [
        "<- notes_add: note 2 saved",
        "(approval asked: notes_clear {})",
        "<- notes_clear: deleted 2 notes",
        "notes server closed",
    ],
    "guardrails.py": [
        'tool result: {"id":"A-17","status":"shipped","paid_with":"card **** redacted ****"}',
        "[cache] answered from the cache",
        "refused: GuardrailTripped: input guardrail 'on_topic' tripped: not about an order",
    ],
    "eval_replay.py": [
        "answer: The price is 6.50 EUR.",
        "replayed 2 model calls, same answer: True",
        "divergence at cashier|m1: message 3 differs: recorded tool 'price': '6.50 EUR', "
        "now tool 'price': '7.80 EUR'",
        "cake-taxed  FAIL",
        "2/3 passed",
    ],
    "pause_and_steer.py": [
        "status: running (research in flight)",
        "[second process] status before resume: paused",
        "writer: The moon pulls the sea toward it, and that makes the tides.",
        "status: completed",
        "research calls: 1",
    ],
    "dag_report.py": [
        "  risk_review  skipped",
        "  tech         completed  tech view from papers, patents: promising, 5+ years out",
        "- market view from news, patents: no near-term risk",
    ],
    "stage_mapping.py": [
        "   answer -> small (classifier answered 'easy')",
        "   answer -> large (classifier answered 'hard')",
        "   Polished: Careful answer to 'Our sync fails with a conflict', worked through in "
        "three steps.",
        "   Polished: Short answer to 'Do you have a dark mode?'.",
        "cost with stage mapping: 0.19x all-large",
    ],
    "service_client.py": [
        "POST /runs -> 201; retried -> 200, same run: True",
        "  [interrupt] approval needed for refund",
        "status: interrupted; approving refund",
        "  [tool] refunded 30 EUR on order A-7",
        "status: completed; answer: Your refund of 30 EUR is on its way.",
    ],
    "long_research.py": [
        "model calls: 201 (plus 6 summaries on the cheaper model)",
        "largest prompt: 6,286 tokens (window 8,000)",
        "gc steps: 40, compactions: 6",
        "answer: Read all 200 sources; the strongest finding scored 99.",
    ],
    "budgeted_research.py": [
        "stopped: max_cost limit 0.01 USD, 0.0120 USD needed",
        "over the limit by 0.0020 USD",
        "model calls before the stop: 4",
        "model calls after the resume: 3 (repeated: False)",
        "answer: Brief: demand is growing fast, LFP makes batteries durable, falling tariffs "
        "are the main risk.",
        "total usage: 10100 prompt + 540 completion tokens, 0.0307 USD",
    ],
    "structured_extraction.py": [
        "- Ada Lovelace <ada@analytical.example> wants a demo",
        "- Charles Babbage <charles@difference.example> wants a quote",
        "assistant: I added 2 contacts to the CRM: Ada Lovelace, Charles Babbage.",
    ],
    "serving_replicas.py": [
        "per-call metrics of the last run:",
        "cache",
        "replica 0 (",
        "replica 1 (",
        "prefix breaks: 0",
    ],
}

# ```python or ```python no-run at the start of a line; the block ends at the next ``` line.
_FENCE = re.compile(r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", re.M | re.S)
NO_RUN = "no-run"
SERVICES = "services"


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "ADK_MODEL"}
    # Run against this checkout even if another copy of adk is installed.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=cwd,
        env=_env(),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=False,
    )


def _python_blocks() -> list[tuple[str, str | None, str]]:
    """(id, skip reason or None, code) for every python block of the docs."""
    blocks: list[tuple[str, str | None, str]] = []
    for path in DOC_FILES:
        if not path.exists():
            continue
        text = path.read_text(encoding="utf-8")
        for match in _FENCE.finditer(text):
            words = match.group("info").split()
            if not words or words[0] != "python":
                continue
            line = text.count("\n", 0, match.start()) + 1
            block_id = f"{path.relative_to(ROOT).as_posix()}:{line}"
            skip = f"marked {NO_RUN}" if NO_RUN in words[1:] else None
            if SERVICES in words[1:]:
                skip = SERVICES
            blocks.append((block_id, skip, match.group("body")))
    return blocks


BLOCKS = _python_blocks()


def test_there_is_something_to_check() -> None:
    assert COOKBOOK, "no cookbook scripts found"
    assert [b for b in BLOCKS if b[1] is None], "no runnable python blocks found in the docs"


@pytest.mark.parametrize("script", COOKBOOK, ids=[p.name for p in COOKBOOK])
def test_cookbook_script_runs(script: Path) -> None:
    result = _run([str(script)], cwd=ROOT)
    assert result.returncode == 0, (
        f"{script.name} exited with {result.returncode}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )
    for expected in EXPECTED_OUTPUT.get(script.name, []):
        assert expected in result.stdout, f"{expected!r} not in the output:\n{result.stdout}"
    assert result.stdout.strip(), f"{script.name} printed nothing"


@pytest.mark.parametrize(
    ("skip", "code"),
    [(skip, code) for _, skip, code in BLOCKS],
    ids=[block_id for block_id, _, _ in BLOCKS],
)
def test_doc_example_runs(skip: str | None, code: str, tmp_path: Path) -> None:
    if skip == SERVICES:
        _require_services()
    elif skip is not None:
        compile(code, "<no-run block>", "exec")  # not run, but it must at least be valid Python
        pytest.skip(skip)
    script = tmp_path / "example.py"
    script.write_text(code, encoding="utf-8")
    result = _run([str(script)], cwd=tmp_path)
    assert result.returncode == 0, (
        f"example exited with {result.returncode}\n--- code\n{code}\n"
        f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
    )


def _require_services() -> None:
    """Skip (or, in CI, fail) unless the local Redis and PostgreSQL servers answer."""
    import socket

    for port, name in ((6379, "Redis"), (5432, "PostgreSQL")):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
        except OSError as exc:
            message = f"{name} is not reachable on 127.0.0.1:{port}: {exc}"
            if os.environ.get("ADK_REQUIRE_SERVICES") == "1":
                pytest.fail(message)
            pytest.skip(message)
