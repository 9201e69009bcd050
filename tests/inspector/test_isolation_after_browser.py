"""Runs after the browser tests (file order): the browser must not leave a running loop behind.

Regression: a session-scoped Playwright fixture kept an asyncio loop marked
as running in the main thread, and every async test after tests/inspector
failed ("Cannot run the event loop while another loop is running").
"""

from __future__ import annotations

import asyncio

import pytest

pytestmark = pytest.mark.anyio


def test_no_event_loop_is_left_running_in_this_thread() -> None:
    with pytest.raises(RuntimeError):
        asyncio.get_running_loop()


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_an_async_test_still_runs() -> None:
    await asyncio.sleep(0)
