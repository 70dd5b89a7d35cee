"""Errors as the API shows them: JSON with a machine ``code`` and a human ``message``."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException

from microfleet.errors import (
    AuthenticationError,
    ConfigurationError,
    ConflictError,
    InvalidInputError,
    LiveFeedEndedError,
    MicrofleetError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    StoreUnavailableError,
    TooManyRequestsError,
)

# Every integer the API takes is bounded by the column it lands in, so anything larger is refused at the
# door (422) instead of failing in the store: BIGINT for times, INTEGER for quarantine ids.
INT64_MAX = 2**63 - 1
INT32_MAX = 2**31 - 1

# The most specific class first: the first match wins.
STATUS_BY_ERROR: dict[type[MicrofleetError], int] = {
    PayloadTooLargeError: 413,
    StoreUnavailableError: 503,
    AuthenticationError: 401,
    PermissionDeniedError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    TooManyRequestsError: 429,
    # Only ever a WebSocket close (api/routes/live.py); over HTTP the subscription would be gone.
    LiveFeedEndedError: 410,
    InvalidInputError: 422,
    ConfigurationError: 422,
}


class ErrorBody(BaseModel):
    """Every error the API returns."""

    code: str
    message: str


RETRY_AFTER_S = 5  # what a client waits before retrying while the store is unavailable


def _status_for(exc: MicrofleetError) -> int:
    for kind, status in STATUS_BY_ERROR.items():
        if isinstance(exc, kind):
            return status
    return 500


def install_error_handlers(app: FastAPI) -> None:
    """Make every error a JSON :class:`ErrorBody`."""

    async def microfleet_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, MicrofleetError)
        headers = None
        if isinstance(exc, AuthenticationError):
            headers = {"WWW-Authenticate": "Bearer"}
        elif isinstance(exc, StoreUnavailableError):
            headers = {"Retry-After": str(RETRY_AFTER_S)}
        elif isinstance(exc, TooManyRequestsError):
            headers = {"Retry-After": str(exc.retry_after_s)}
        return JSONResponse({"code": exc.code, "message": exc.message}, _status_for(exc), headers=headers)

    async def validation_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        parts = [f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors()]
        return JSONResponse({"code": "invalid_request", "message": "; ".join(parts)}, 422)

    async def http_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        # Starlette's own headers travel on: a 405 says which methods are allowed (RFC 9110 §15.5.6).
        return JSONResponse({"code": code, "message": str(exc.detail)}, exc.status_code, headers=exc.headers)

    async def internal_error(_request: Request, _exc: Exception) -> JSONResponse:
        # A bug, not anything a client sent: the JSON body every other error has, nothing of the exception
        # itself (the server log has the traceback).
        return JSONResponse(
            {"code": "internal_error", "message": "the server failed to answer; the error is logged"}, 500
        )

    app.add_exception_handler(MicrofleetError, microfleet_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(HTTPException, http_error)
    app.add_exception_handler(Exception, internal_error)
