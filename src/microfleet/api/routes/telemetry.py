"""``POST /api/v1/telemetry``: a vehicle writes its telemetry with its device credential."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool

from microfleet.api.auth import DeviceDep
from microfleet.api.bodies import read_body
from microfleet.api.deps import HttpIngestDep, NowMsDep, SettingsDep
from microfleet.api.errors import ErrorBody

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
    report = await run_in_threadpool(
        adapter.receive,
        body,
        request.headers.get("content-type", "application/json"),
        vehicle_id=device.vehicle_id,
        client_host=request.client.host if request.client else "unknown",
        now_ms=now_ms,
    )
    return Response(adapter.encode(report), media_type="application/json")
