"""The inspector in a real browser: the key prompt, a live run, approve, reject, edit.

Each test drives the page as a person would (Playwright, headless chromium)
against the real server; what the page shows is checked against what the
server did (the run's status and the tool's real calls).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

try:
    from playwright.sync_api import expect
except ImportError:  # the `browser` fixture skips (fails under ADK_REQUIRE_SERVICES), says why
    expect = None

from tests.inspector import apps
from tests.inspector.conftest import KEYS
from tests.service.server import LiveServer, wait_status

ALPHA, BETA = list(KEYS)
DOCS_IMG = Path(__file__).resolve().parents[2] / "docs" / "img"


def screenshot(page: Any, tmp_path: Path, name: str) -> None:
    """Save a screenshot (into docs/img too with ADK_UPDATE_SCREENSHOTS=1)."""
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 1000
    if os.environ.get("ADK_UPDATE_SCREENSHOTS"):
        DOCS_IMG.mkdir(exist_ok=True)
        (DOCS_IMG / name).write_bytes(path.read_bytes())


def sign_in(page: Any, live: LiveServer, key: str = ALPHA, hash: str = "") -> None:
    page.goto(f"{live.url}/inspector{hash}")
    expect(page.locator("#key-form")).to_be_visible()
    page.fill("#key-input", key)
    page.click("#key-form button[type=submit]")


def start(live: LiveServer, agent: str = "support", key: str = ALPHA) -> str:
    with live.client(key) as client:
        response = client.post("/runs", json={"agent": agent, "input": "please refund me"})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])


def open_run(page: Any, live: LiveServer, run_id: str) -> None:
    sign_in(page, live, hash=f"#/runs/{run_id}")
    expect(page.locator("#run-status")).to_have_attribute("data-status", "interrupted")
    expect(page.locator('[data-call="r1"] .arguments')).to_contain_text('"amount": 30')


def finished(live: LiveServer, run_id: str) -> dict[str, Any]:
    with live.client(ALPHA) as client:
        return wait_status(client, run_id, "completed", "failed", "cancelled")


def test_the_page_asks_for_the_key_and_lists_only_its_workspace(
    live: LiveServer, page: Any, tmp_path: Path
) -> None:
    mine, theirs = start(live), start(live, key=BETA)
    sign_in(page, live, key="not-a-valid-key")
    expect(page.locator("#key-note")).to_contain_text("refused")
    page.fill("#key-input", ALPHA)
    page.click("#key-form button[type=submit]")
    row = page.locator(f'tr[data-run="{mine}"]')
    expect(row).to_contain_text("support")
    expect(row.locator(".status")).to_have_text("interrupted")
    expect(row.locator("td").nth(5)).to_contain_text("$")  # priced by the serving layer
    expect(page.locator(f'tr[data-run="{theirs}"]')).to_have_count(0)
    assert ALPHA not in page.url
    assert page.evaluate("sessionStorage.getItem('adk-inspector-key')") == ALPHA
    screenshot(page, tmp_path, "inspector-runs.png")
    page.reload()  # the key is kept for the browser session: no second prompt
    expect(page.locator(f'tr[data-run="{mine}"]')).to_be_visible()
    expect(page.locator("#key-form")).to_be_hidden()


def test_a_run_streams_and_approving_it_completes_it(
    live: LiveServer, page: Any, tmp_path: Path
) -> None:
    run_id = start(live)
    open_run(page, live, run_id)
    card = page.locator('.approval:has-text("refund")')
    expect(card.locator("textarea")).to_have_value('{\n  "amount": 30\n}')
    screenshot(page, tmp_path, "inspector-approval.png")
    card.locator("button.approve").click()
    expect(page.locator("#run-status")).to_have_attribute("data-status", "completed")
    expect(page.locator('[data-call="r1"] .result')).to_have_text("refunded 30")
    expect(page.locator("#tree")).to_contain_text("Done: refunded 30")
    calls = page.locator("#calls tbody tr")
    expect(calls).to_have_count(2)  # both model calls, with the replica that served each
    replicas = set(calls.locator("td:nth-child(3)").all_inner_texts())
    assert replicas and all(r.startswith("http://127.0.0.1:") for r in replicas)
    expect(page.locator("#totals")).to_contain_text("2 model calls")
    expect(page.locator("#approvals .approval")).to_have_count(0)
    screenshot(page, tmp_path, "inspector-run.png")
    view = finished(live, run_id)
    assert view["status"] == "completed" and view["text"] == "Done: refunded 30"
    assert apps.REFUNDS == [30]


def test_rejecting_with_a_message_tells_the_model_why(live: LiveServer, page: Any) -> None:
    run_id = start(live)
    open_run(page, live, run_id)
    page.fill(".approval input.reason", "over the limit")
    page.click(".approval button.reject")
    expect(page.locator("#run-status")).to_have_attribute("data-status", "completed")
    result = page.locator('[data-call="r1"] .result')
    expect(result).to_contain_text("rejected this call to 'refund': over the limit")
    assert "over the limit" in finished(live, run_id)["text"]
    assert apps.REFUNDS == []  # the tool never ran


def test_edited_arguments_are_the_ones_the_tool_gets(live: LiveServer, page: Any) -> None:
    run_id = start(live)
    open_run(page, live, run_id)
    page.fill(".approval textarea", "{not json")
    page.click(".approval button.approve")
    expect(page.locator(".approval .error")).to_contain_text("not JSON")  # asked again
    page.fill(".approval textarea", '{"amount": 10}')
    page.click(".approval button.approve")
    expect(page.locator('[data-call="r1"] .result')).to_have_text("refunded 10")
    assert finished(live, run_id)["text"] == "Done: refunded 10"
    assert apps.REFUNDS == [10]


def test_a_run_started_from_the_page_streams_while_it_runs(live: LiveServer, page: Any) -> None:
    sign_in(page, live)
    page.select_option("#new-agent", "worker")
    page.fill("#new-input", "write the report")
    page.click("#new-run button[type=submit]")
    page.wait_for_url("**/inspector#/runs/*")
    run_id = page.url.split("#/runs/", 1)[1]
    expect(page.locator('[data-call="w1"]')).to_contain_text("work")  # shown mid-run
    expect(page.locator("#run-status")).to_have_attribute("data-status", "running")
    apps.RELEASE.set()
    expect(page.locator("#run-status")).to_have_attribute("data-status", "completed")
    expect(page.locator('[data-call="w1"] .result')).to_have_text("worked on report")
    expect(page.locator("#tree")).to_contain_text("Finished: worked on report")
    assert finished(live, run_id)["status"] == "completed"
