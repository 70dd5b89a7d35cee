"""The quarantine as its readers see it: refused records with reasons, and replay after a fix."""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel

from microfleet.api.auth import UserDep
from microfleet.api.deps import QuarantineDep
from microfleet.api.errors import INT32_MAX, ErrorBody
from microfleet.domain.telemetry import RejectionReason

router = APIRouter(
    tags=["quarantine"],
    responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}},
)


class QuarantinedOut(BaseModel):
    """A refused record, verbatim, with why and where it came from."""

    quarantine_id: int
    received_at_ms: int
    source: str
    credential_vehicle_id: str | None
    vehicle_id: str | None
    ts_ms: int | None
    reason: RejectionReason
    detail: str
    raw_text: str
    replayed_at_ms: int | None
    replay_status: str | None


class QuarantinePage(BaseModel):
    """A page of quarantined records, bounded in rows and bytes; ask again with ``after_id=next_after_id``."""

    items: list[QuarantinedOut]
    next_after_id: int | None


class ReplayOut(BaseModel):
    """What became of a replayed record: accepted, duplicate, or rejected again (with why)."""

    quarantine_id: int
    status: str
    reason: str | None
    detail: str | None


@router.get("/api/v1/quarantine", response_model=QuarantinePage, summary="Refused telemetry records")
def list_quarantine(
    user: UserDep,
    quarantine: QuarantineDep,
    reason: Annotated[RejectionReason | None, Query(description="only this reason")] = None,
    after_id: Annotated[int, Query(ge=0, le=INT32_MAX, description="page after this quarantine id")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    include_replayed: bool = True,
) -> QuarantinePage:
    """List refused records of the vehicles you see (all of them for an admin).

    A page ends early when its records' texts (raw text and detail) would pass the server's byte bound
    (`MICROFLEET_QUARANTINE_PAGE_MAX_BYTES`); `next_after_id` then continues it.
    """
    page = quarantine.page_for(
        user,
        reason=reason.value if reason else None,
        after_id=after_id,
        limit=limit,
        include_replayed=include_replayed,
    )
    return QuarantinePage(
        items=[QuarantinedOut(**asdict(q)) for q in page.items], next_after_id=page.next_after_id
    )


@router.post(
    "/api/v1/quarantine/{quarantine_id}/replay",
    response_model=ReplayOut,
    summary="Run a quarantined record through today's validator again",
    responses={404: {"model": ErrorBody}},
)
def replay_quarantined(
    quarantine_id: Annotated[int, Path(ge=1, le=INT32_MAX)], user: UserDep, quarantine: QuarantineDep
) -> ReplayOut:
    """Replay one quarantined record (admin only); it is stored if it now passes."""
    outcome = quarantine.replay_as(user, quarantine_id)
    return ReplayOut(**asdict(outcome))
