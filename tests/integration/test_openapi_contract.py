"""The OpenAPI document is the contract: schemathesis throws generated requests at every operation, as an
admin, an owner and a device, on SQLite and PostgreSQL, and checks that nothing answers 5xx and every
answer matches its documented status, type and schema."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from schemathesis.checks import positive_data_acceptance

from microfleet.api import create_app
from microfleet.bootstrap import Services
from microfleet.settings import Settings
from tests.integration.world import bearer, build_world

# The document alone (no store is opened until the app starts), to list the operations to test.
_DOCUMENT = schemathesis.openapi.from_asgi("/openapi.json", create_app(Settings(database_url="sqlite://")))
OPERATIONS = sorted(result.ok().label for result in _DOCUMENT.get_all_operations())


def test_the_contract_covers_the_spine() -> None:
    assert {"POST /api/v1/telemetry", "GET /api/v1/vehicles", "GET /api/v1/quarantine"} <= set(OPERATIONS)


def _check(operation: schemathesis.APIOperation, headers: dict[str, str], examples: int) -> None:
    @given(case=operation.as_strategy())
    @hyp_settings(max_examples=examples, suppress_health_check=list(HealthCheck), deadline=None)
    def check(case: schemathesis.Case) -> None:
        # Cross-field rules (to_ms after from_ms) cannot be written in OpenAPI; they answer a documented 422.
        case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

    check()


# Each operation is called by the caller it is meant for (20 examples) and by the two others (5 each): an
# admin and an owner (user API tokens) and a vehicle's device credential, on both stores.
CALLERS = ("root", "ann", "device_a")


def _examples(caller: str, path: str) -> int:
    meant_for = "device_a" if path == "/api/v1/telemetry" else "root"
    return 20 if caller == meant_for else 5


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Each store of the suite, with the failed-authentication throttle opened wide.

    Schemathesis sends invalid credentials on purpose, many times from one client: the throttle (tested in
    test_auth_throttling.py) would answer 429 where this test checks the 401 contract.
    """
    return settings.model_copy(update={"auth_failure_burst": 1_000_000})


@pytest.mark.parametrize("label", OPERATIONS)
def test_every_operation_keeps_its_contract(label: str, services: Services) -> None:
    tokens = build_world(services).tokens
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(services.settings, services))
    operation = schema.find_operation_by_label(label)
    assert operation is not None
    for caller in CALLERS:
        _check(operation, bearer(tokens[caller]), _examples(caller, operation.path))
