"""``POST /api/v1/telemetry``: a vehicle writes its telemetry with its device credential."""

from __future__ import annotations

import functools
from typing import Literal

import anyio
from fastapi import APIRouter, Request, Response
from pydantic import BaseModel

from microfleet.api.auth import DeviceDep
from microfleet.api.bodies import read_body
from microfleet.api.deps import HttpIngestDep, NowMsDep, SettingsDep
from microfleet.api.errors import ErrorBody
from microfleet.ingest.http import HttpTelemetryAdapter

router = APIRouter(tags=["telemetry"])


class RecordResult(BaseModel):
    """The fate of one record of the batch."""

    index: int
    vehicle_id: str | None
    ts_ms: int | None
    status: Literal["accepted", "duplicate", "rejected"]
    reason: str | None = None
    detail: str | None = None


class IngestResponse(BaseModel):
    """Totals and per-record results of one telemetry request, in batch order."""

    accepted: int
    duplicate: int
    rejected: int
    results: list[RecordResult]


@router.post(
    "/api/v1/telemetry",
    response_model=IngestResponse,
    summary="Write a batch of telemetry records (protocol v1)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {"type": "array", "items": {"$ref": "#/components/schemas/TelemetryRecord"}}
                },
                "application/x-ndjson": {"schema": {"type": "string", "description": "one record per line"}},
            },
        }
    },
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}, 413: {"model": ErrorBody}},
)
async def post_telemetry(
    request: Request,
    device: DeviceDep,
    adapter: HttpIngestDep,
    settings: SettingsDep,
    now_ms: NowMsDep,
) -> Response:
    """Store each record exactly once; report per record accepted, duplicate or rejected with a reason."""
    body = await read_body(request, settings.ingest_max_body_bytes)
    report = await anyio.to_thread.run_sync(
        functools.partial(
            adapter.receive,
            body,
            request.headers.get("content-type", "application/json"),
            vehicle_id=device.vehicle_id,
            client_host=request.client.host if request.client else "unknown",
            now_ms=now_ms,
        ),
        limiter=_ingest_limiter(request, adapter),
    )
    return Response(adapter.encode(report), media_type="application/json")


def _ingest_limiter(request: Request, adapter: HttpTelemetryAdapter) -> anyio.CapacityLimiter | None:
    """The app's limit on bodies ingested at once, made on first use in its event loop (None: the pool's)."""
    if adapter.concurrent is None:
        return None
    limiter: anyio.CapacityLimiter | None = getattr(request.app.state, "ingest_limiter", None)
    if limiter is None:
        limiter = anyio.CapacityLimiter(adapter.concurrent)
        request.app.state.ingest_limiter = limiter
    return limiter
