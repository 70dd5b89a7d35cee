"""Answers the framework produces itself carry the same JSON error body as Microfleet's own: a crash is a
JSON 500 (no exception text), and a wrong method is a 405 that says which methods are allowed."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from microfleet.api.errors import install_error_handlers


def _app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/crash")
    def crash() -> None:
        raise RuntimeError("secret detail from deep inside")

    @app.get("/only-get")
    def only_get() -> dict[str, str]:
        return {"ok": "yes"}

    return app


def test_an_unexpected_error_is_a_json_500_without_its_text() -> None:
    with TestClient(_app(), raise_server_exceptions=False) as client:
        response = client.get("/crash")
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/json"
    assert response.json()["code"] == "internal_error"
    assert "secret" not in response.text


def test_a_wrong_method_is_a_405_with_allow() -> None:
    with TestClient(_app()) as client:
        response = client.post("/only-get")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
    assert response.json()["code"] == "method_not_allowed"
