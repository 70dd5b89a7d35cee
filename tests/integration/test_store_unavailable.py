"""A store that cannot be reached: clients get 503 with Retry-After and a JSON body, never a 500 or the
database's own error text (host, port, FATAL ...)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from microfleet.api import create_app
from microfleet.bootstrap import build_services
from microfleet.errors import StoreUnavailableError
from microfleet.settings import Settings

# Nothing listens on port 1 of the loopback: every connection is refused at once.
REFUSED_URL = "postgresql+psycopg://postgres@127.0.0.1:1/microfleet"


@pytest.fixture
def client() -> Iterator[TestClient]:
    settings = Settings(database_url=REFUSED_URL, history_derive_interval_s=0)
    services = build_services(settings, migrate=False)
    with TestClient(create_app(settings, services), raise_server_exceptions=False) as c:
        yield c
    services.close()


def test_a_refused_connection_is_store_unavailable() -> None:
    services = build_services(Settings(database_url=REFUSED_URL), migrate=False)
    try:
        with pytest.raises(StoreUnavailableError):
            services.telemetry.count()
    finally:
        services.close()


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/v1/vehicles"), ("POST", "/api/v1/telemetry"), ("GET", "/api/v1/quarantine")],
)
def test_api_answers_503_with_retry_after(client: TestClient, method: str, path: str) -> None:
    response = client.request(method, path, headers={"Authorization": "Bearer mfu_anything"}, content=b"[]")
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) > 0
    assert response.json()["code"] == "store_unavailable"
    assert "127.0.0.1" not in response.text and "FATAL" not in response.text


def test_readiness_says_unreachable_without_the_database_error_text(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json() == {"status": "not_ready", "reason": "store unreachable"}
