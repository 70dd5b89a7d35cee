"""Liveness and readiness probes for orchestrators and load balancers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy import text

from microfleet.api.auth import ServicesDep
from microfleet.store.migrate import current_revision

router = APIRouter(tags=["health"])


@router.get("/healthz", summary="The process is alive")
def healthz() -> dict[str, str]:
    """Answer as long as the process serves requests."""
    return {"status": "ok"}


@router.get("/readyz", summary="The process can serve: store reachable and migrated")
def readyz(svc: ServicesDep) -> JSONResponse:
    """Check the store answers and its schema is migrated."""
    try:
        with svc.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        revision = current_revision(svc.engine)
    except Exception as exc:  # any failure of the store means not ready; say which
        return JSONResponse({"status": "not_ready", "reason": f"store unreachable: {exc}"}, 503)
    if revision is None:
        return JSONResponse(
            {"status": "not_ready", "reason": "store not migrated: run `microfleet db upgrade`"}, 503
        )
    return JSONResponse({"status": "ready", "schema_revision": revision})
