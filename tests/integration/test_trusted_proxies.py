"""The client address is the TCP peer's unless the peer is a configured proxy: a spoofed X-Forwarded-For
from anyone else (a local process included) does not change the address quarantine records as the source.

The server is real uvicorn on a free port, started the way ``microfleet demo`` starts it."""

from __future__ import annotations

import socket
from typing import Any

import httpx
import pytest
from pydantic import ValidationError

from microfleet.bootstrap import Services
from microfleet.cli.demo import _start_server
from microfleet.settings import Settings
from tests.e2e.command import microfleet
from tests.integration.conftest import NOW_MS
from tests.integration.world import bearer, build_world

SPOOFED = "203.0.113.9"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _recorded_source(services: Services, trusted_proxies: list[str]) -> str:
    """POST a refused record with a spoofed X-Forwarded-For; the source quarantine shows for it."""
    tokens = build_world(services).tokens
    settings = services.settings.model_copy(update={"trusted_proxies": trusted_proxies})
    port = _free_port()
    server, thread = _start_server(settings, services, port)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            refused = [{"vehicle_id": "car-a", "ts_ms": NOW_MS - 1, "soc_pct": 400}]
            headers = {**bearer(tokens["device_a"]), "X-Forwarded-For": SPOOFED}
            answer = http.post("/api/v1/telemetry", json=refused, headers=headers)
            assert answer.status_code == 200 and answer.json()["rejected"] == 1
            listed = http.get("/api/v1/quarantine", headers=bearer(tokens["root"]))
            assert listed.status_code == 200
            (item,) = listed.json()["items"]
            return str(item["source"])
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.mark.parametrize(
    ("trusted_proxies", "client"),
    [
        ([], "127.0.0.1"),  # the default: nobody's forwarded headers are believed, not even a local peer's
        (["10.0.0.0/8", "192.0.2.1"], "127.0.0.1"),  # the peer is not one of the proxies
        (["127.0.0.1"], SPOOFED),  # the peer is the configured proxy: what it forwards is the client
        (["127.0.0.0/8"], SPOOFED),
    ],
)
def test_forwarded_for_is_believed_only_from_a_trusted_proxy(
    services: Services, trusted_proxies: list[str], client: str
) -> None:
    assert _recorded_source(services, trusted_proxies) == f"http {client} device car-a"


def test_trusted_proxies_are_read_comma_separated_and_must_be_addresses(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert Settings().trusted_proxies == []
    monkeypatch.setenv("MICROFLEET_TRUSTED_PROXIES", " 10.0.0.1, 192.168.0.0/16,::1 ")
    assert Settings().trusted_proxies == ["10.0.0.1", "192.168.0.0/16", "::1"]
    monkeypatch.setenv("MICROFLEET_TRUSTED_PROXIES", "10.0.0.1,proxy.internal")
    with pytest.raises(ValidationError, match=r"proxy\.internal"):
        Settings()


@pytest.mark.parametrize(
    ("variable", "expected"),
    [
        (None, {"proxy_headers": False}),
        ("10.1.2.3,10.9.0.0/16", {"proxy_headers": True, "forwarded_allow_ips": ["10.1.2.3", "10.9.0.0/16"]}),
    ],
)
def test_serve_hands_uvicorn_the_trusted_proxies(
    monkeypatch: pytest.MonkeyPatch, variable: str | None, expected: dict[str, Any]
) -> None:
    import uvicorn

    ran: list[dict[str, Any]] = []
    monkeypatch.setattr(uvicorn, "run", lambda _app, **options: ran.append(options))
    # ``serve --workers N`` hands the store to its workers through this variable; restored afterwards.
    monkeypatch.setenv("MICROFLEET_DATABASE_URL", "sqlite://")
    if variable is None:
        monkeypatch.delenv("MICROFLEET_TRUSTED_PROXIES", raising=False)
    else:
        monkeypatch.setenv("MICROFLEET_TRUSTED_PROXIES", variable)
    for workers in ("1", "2"):
        result = microfleet("serve", "--database-url", "sqlite://", "--workers", workers)
        assert result.returncode == 0, result
    assert len(ran) == 2
    for options in ran:
        forwarded = {k: v for k, v in options.items() if k in ("proxy_headers", "forwarded_allow_ips")}
        assert forwarded == expected


@pytest.fixture(autouse=True)
def _no_stray_proxy_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    # uvicorn reads FORWARDED_ALLOW_IPS itself when it is given no list; the tests must not depend on it.
    monkeypatch.delenv("FORWARDED_ALLOW_IPS", raising=False)
