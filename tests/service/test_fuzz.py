"""Fuzz the API from its published OpenAPI schema (schemathesis): no request is a server error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings

from adk.service import Service
from tests.service import apps
from tests.service.server import LiveServer, serve

schemathesis = pytest.importorskip("schemathesis")


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    db = Path(tmp_path_factory.mktemp("fuzz")) / "service.db"
    yield from serve(Service(apps.agents(), store=f"sqlite:///{db}", max_input_bytes=16_384))


def test_no_request_is_a_server_error(fuzzed: LiveServer) -> None:
    apps.RELEASE.set()
    schema = schemathesis.openapi.from_url(f"{fuzzed.url}/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 10  # every endpoint is in the schema
    checks = (schemathesis.checks.not_a_server_error,)
    failures: list[str] = []
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=8,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call(base_url=fuzzed.url, timeout=10)
            try:
                case.validate_response(response, checks=checks)
            except AssertionError as exc:
                failures.append(f"{case.method} {case.formatted_path}: {exc}")

        fuzz()
    assert failures == []
