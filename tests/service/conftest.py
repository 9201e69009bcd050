"""Fixtures: a live server on loopback over a fresh SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adk.service import Service
from tests.service import apps
from tests.service.server import LiveServer, serve

KEYS = {"key-alpha-0001": "alpha", "key-beta-00002": "beta"}


@pytest.fixture(autouse=True)
def _reset_apps() -> Iterator[None]:
    apps.RELEASE.clear()
    apps.CALLS.clear()
    yield
    apps.RELEASE.set()  # a blocked tool never outlives its test


@pytest.fixture
def db(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'service.db'}"  # four slashes: an absolute path


@pytest.fixture
def live(db: str) -> Iterator[LiveServer]:
    """A dev-mode server (no keys) on SQLite."""
    yield from serve(Service(apps.agents(), store=db, max_input_bytes=4096))


@pytest.fixture
def tenants(db: str) -> Iterator[LiveServer]:
    """A server with two workspaces' keys."""
    yield from serve(Service(apps.agents(), store=db, api_keys=KEYS))
