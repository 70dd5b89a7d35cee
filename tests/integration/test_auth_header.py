"""One spelling per credential: the Bearer scheme in any letter case (RFC 7235), one space, the token.
Ambiguous forms (two spaces, a tab, trailing blanks, another scheme) are refused with 401."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from microfleet.api import create_app
from microfleet.bootstrap import Services
from tests.integration.world import World, build_world


@pytest.fixture
def api(services: Services) -> Iterator[tuple[TestClient, World]]:
    world = build_world(services)
    with TestClient(create_app(services.settings, services)) as c:
        yield c, world


@pytest.mark.parametrize(
    ("form", "status"),
    [
        ("Bearer {t}", 200),
        ("bearer {t}", 200),
        ("BEARER {t}", 200),
        ("Bearer  {t}", 401),
        ("Bearer\t{t}", 401),
        ("Bearer {t} ", 401),
        (" Bearer {t}", 401),
        ("Basic {t}", 401),
        ("Bearer", 401),
    ],
)
def test_the_authorization_header_has_one_spelling(
    api: tuple[TestClient, World], form: str, status: int
) -> None:
    c, world = api
    response = c.get("/api/v1/vehicles", headers={"Authorization": form.format(t=world.tokens["ann"])})
    assert response.status_code == status, form
    if status == 401:
        assert response.headers["WWW-Authenticate"] == "Bearer"
        assert response.json()["code"] == "not_authenticated"
