"""``/osmand``: a phone running OsmAnd or Traccar Client reports the car's position with its tracker key.

Traccar serves this protocol at the root of its port 5055; Microfleet's root is the API docs, so phones
are pointed at ``http(s)://HOST:PORT/osmand`` (docs/protocols.md). The key in ``id`` (``device_id`` in
JSON) authenticates the report: no bearer token, as the apps cannot send one.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from microfleet.api.bodies import read_body
from microfleet.api.deps import NowMsDep, OsmAndIngestDep, SettingsDep
from microfleet.api.errors import ErrorBody
from microfleet.api.routes.telemetry import IngestResponse
from microfleet.ingest.http import HttpTelemetryAdapter

router = APIRouter(tags=["osmand"])

# The apps put the key in the URL, and uvicorn's access log prints every URL: the key is cut out there.
_KEY_IN_URL = re.compile(r"(?<=[?&])(id|deviceid)=[^&\s]*")


class HideTrackerKeys(logging.Filter):
    """Redact ``id=``/``deviceid=`` (a tracker key) from the URLs of ``/osmand`` in access-log lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's URL argument, if it is an ``/osmand`` URL; never drop a line."""
        if isinstance(record.args, tuple):
            record.args = tuple(
                _KEY_IN_URL.sub(r"\1=<redacted>", arg) if isinstance(arg, str) and "/osmand?" in arg else arg
                for arg in record.args
            )
        return True


def hide_tracker_keys_from_access_log() -> None:
    """Install :class:`HideTrackerKeys` on uvicorn's access logger, once per process."""
    access = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, HideTrackerKeys) for f in access.filters):
        access.addFilter(HideTrackerKeys())


_QUERY_PARAMETERS: list[dict[str, Any]] = [
    {"name": name, "in": "query", "required": False, "schema": {"type": "string"}, "description": text}
    for name, text in (
        ("id", "the vehicle's tracker key (Microfleet issues it; never the vehicle's id)"),
        ("lat", "WGS84 latitude, degrees"),
        ("lon", "WGS84 longitude, degrees"),
        ("timestamp", "epoch s or ms, ISO-8601 with offset, or 'yyyy-MM-dd HH:mm:ss' (UTC)"),
        ("speed", "speed in MICROFLEET_OSMAND_SPEED_UNIT (knots by default)"),
        ("bearing", "course over ground, degrees"),
        ("altitude", "altitude, m"),
        ("hdop", "GPS horizontal dilution of precision"),
        ("batt", "the phone's battery, % (not stored)"),
    )
]
_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorBody, "description": "No tracker key, or one that is unknown, rotated or revoked"},
    413: {"model": ErrorBody},
    422: {"model": ErrorBody},
}
_SUMMARY = "A phone's position report (OsmAnd / Traccar Client protocol)"


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.get(
    "/osmand",
    response_model=IngestResponse,
    summary=_SUMMARY,
    openapi_extra={"parameters": _QUERY_PARAMETERS},
    responses=_RESPONSES,
)
async def osmand_get(request: Request, adapter: OsmAndIngestDep, now_ms: NowMsDep) -> Response:
    """Store the report once as a record of the key's vehicle, or quarantine it with a reason."""
    report = await run_in_threadpool(
        adapter.receive_query, request.url.query, client_host=_client(request), now_ms=now_ms
    )
    return Response(HttpTelemetryAdapter.encode(report), media_type="application/json")


@router.post(
    "/osmand",
    response_model=IngestResponse,
    summary=_SUMMARY,
    openapi_extra={
        "parameters": _QUERY_PARAMETERS,
        "requestBody": {
            "required": False,
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "properties": {"device_id": {"type": "string"}, "location": {"type": "object"}},
                    }
                },
                "application/x-www-form-urlencoded": {
                    "schema": {"type": "object", "additionalProperties": {"type": "string"}}
                },
            },
        },
    },
    responses=_RESPONSES,
)
async def osmand_post(
    request: Request, adapter: OsmAndIngestDep, settings: SettingsDep, now_ms: NowMsDep
) -> Response:
    """As GET; the report is the JSON body, else the query string, else a form body (as Traccar reads)."""
    body = await read_body(request, settings.ingest_max_body_bytes)
    client = _client(request)
    if request.headers.get("content-type", "").startswith("application/json"):
        report = await run_in_threadpool(adapter.receive_json, body, client_host=client, now_ms=now_ms)
    else:
        query = request.url.query or body.decode("ascii", "replace")
        report = await run_in_threadpool(adapter.receive_query, query, client_host=client, now_ms=now_ms)
    return Response(HttpTelemetryAdapter.encode(report), media_type="application/json")
