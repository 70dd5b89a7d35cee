"""The OpenAPI document is the contract: schemathesis throws generated requests at every operation and
checks that nothing answers 5xx and every answer matches its documented status, type and schema."""

from __future__ import annotations

from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from microfleet.api import create_app
from microfleet.bootstrap import build_services
from microfleet.settings import Settings
from tests.integration.world import bearer, build_world

# The document alone (no store is opened until the app starts), to list the operations to test.
_DOCUMENT = schemathesis.openapi.from_asgi("/openapi.json", create_app(Settings(database_url="sqlite://")))
OPERATIONS = sorted(result.ok().label for result in _DOCUMENT.get_all_operations())


def test_the_contract_covers_the_spine() -> None:
    assert {"POST /api/v1/telemetry", "GET /api/v1/vehicles", "GET /api/v1/quarantine"} <= set(OPERATIONS)


@pytest.mark.parametrize("label", OPERATIONS)
def test_every_operation_keeps_its_contract(label: str, tmp_path: Path) -> None:
    services = build_services(Settings(database_url=f"sqlite:///{tmp_path / 'contract.db'}"))
    tokens = build_world(services).tokens
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(services.settings, services))
    operation = schema.find_operation_by_label(label)
    assert operation is not None
    headers = bearer(tokens["device_a"] if operation.path == "/api/v1/telemetry" else tokens["root"])

    @given(case=operation.as_strategy())
    @settings(max_examples=20, suppress_health_check=list(HealthCheck), deadline=None)
    def check(case: schemathesis.Case) -> None:
        # Cross-field rules (to_ms after from_ms) cannot be written in OpenAPI; they answer a documented 422.
        case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

    check()
    services.close()
