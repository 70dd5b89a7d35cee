"""Liveness and readiness probes for orchestrators and load balancers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from microfleet.api.deps import StoreStatusDep
from microfleet.services.health import check_readiness

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    """Answer as long as the process serves requests."""
    return {"status": "ok"}


@router.get("/readyz", summary="The process can serve: store reachable and migrated")
def readyz(store: StoreStatusDep) -> JSONResponse:
    """Check the store answers and its schema is migrated."""
    readiness = check_readiness(store)
    if not readiness.ready:
        return JSONResponse({"status": "not_ready", "reason": readiness.reason}, 503)
    return JSONResponse({"status": "ready", "schema_revision": readiness.schema_revision})
