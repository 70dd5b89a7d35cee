"""Tariffs: the built-in examples and users' own (time-of-use, day-ahead, flat, per kWh, per minute)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator
from starlette.concurrency import run_in_threadpool

from microfleet.api.auth import UserDep
from microfleet.api.bodies import read_body
from microfleet.api.deps import TariffsDep
from microfleet.api.errors import ErrorBody
from microfleet.domain.tariffs import (
    MAX_BANDS,
    MAX_SOURCE_CHARS,
    TARIFF_ID_PATTERN,
    DayAheadTariff,
    StoredTariff,
    parse_tariff,
    tariff_spec,
)
from microfleet.domain.telemetry import VEHICLE_ID_PATTERN
from microfleet.errors import InvalidInputError

router = APIRouter(tags=["tariffs"], responses={401: {"model": ErrorBody}, 403: {"model": ErrorBody}})

# A day-ahead CSV of the most intervals a series holds (40,000 lines of ~35 bytes) fits in 2 MB.
MAX_DAY_AHEAD_CSV_BYTES = 2_000_000
_ERRORS: dict[int | str, dict[str, Any]] = {404: {"model": ErrorBody}, 422: {"model": ErrorBody}}
TariffIdPath = Annotated[str, Path(pattern=TARIFF_ID_PATTERN, description="the tariff's id")]
Price = Annotated[float, Field(description="in the tariff's currency; 0 to 100,000")]


class BandIn(BaseModel):
    """A time-of-use band: local times ``[start, end)`` (``end`` before ``start`` wraps past midnight)."""

    model_config = ConfigDict(extra="forbid")
    months: list[int] | None = Field(None, max_length=12, description="1-12; all months when left out")
    weekdays: list[int] | None = Field(None, max_length=7, description="0 = Monday … 6; all when left out")
    start: str = Field(max_length=5, description="HH:MM on a quarter hour")
    end: str = Field(max_length=5, description="HH:MM on a quarter hour; 24:00 is midnight")
    price_per_kwh: Price


class TariffSpecIn(BaseModel):
    """A tariff's definition: ``kind`` says which fields it takes (``docs/history.md``, Tariffs)."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["flat", "per_kwh", "per_minute", "time_of_use", "day_ahead"]
    currency: str = Field(max_length=3, description="a 3-letter code in capitals, e.g. EUR")
    source: str | None = Field(None, max_length=MAX_SOURCE_CHARS, description="where the prices come from")
    price_per_session: Price | None = Field(None, description="flat")
    price_per_kwh: Price | None = Field(None, description="per_kwh")
    session_fee: Price | None = Field(None, description="per_kwh")
    price_per_min: Price | None = Field(None, description="per_minute")
    timezone: str | None = Field(None, max_length=64, description="time_of_use, day_ahead: an IANA name")
    bands: list[BandIn] | None = Field(None, max_length=MAX_BANDS, description="time_of_use")
    default_price_per_kwh: Price | None = Field(None, description="time_of_use: where no band applies")
    fee_per_kwh: Price | None = Field(None, description="time_of_use, day_ahead: added to every kWh")
    interval_min: int | None = Field(None, description="day_ahead: 15, 30 or 60 (default 60)")

    def spec(self, tariff_id: str) -> dict[str, Any]:
        """The domain's spec of this tariff (fields left out stay out)."""
        body = self.model_dump(exclude_none=True)
        return {"tariff_id": tariff_id, **body}


class TariffIn(TariffSpecIn):
    """A tariff to create, for exactly one of: a vehicle, a fleet, or every vehicle (``is_global``)."""

    tariff_id: str = Field(pattern=TARIFF_ID_PATTERN, description="like a vehicle id; not a built-in one")
    vehicle_id: Annotated[str, Field(pattern=VEHICLE_ID_PATTERN)] | None = None
    fleet_id: Annotated[str, Field(pattern=VEHICLE_ID_PATTERN)] | None = None
    is_global: bool = False

    @model_validator(mode="after")
    def _one_scope(self) -> TariffIn:
        if [self.vehicle_id is not None, self.fleet_id is not None, self.is_global].count(True) != 1:
            raise ValueError("give exactly one of vehicle_id, fleet_id or is_global: true")
        return self

    def spec(self, tariff_id: str) -> dict[str, Any]:
        """The domain's spec of this tariff, without its scope."""
        body = self.model_dump(
            exclude_none=True, exclude={"tariff_id", "vehicle_id", "fleet_id", "is_global"}
        )
        return {"tariff_id": tariff_id, **body}


class BandOut(BaseModel):
    """A time-of-use band."""

    months: list[int]
    weekdays: list[int]
    start: str
    end: str
    price_per_kwh: float


class TariffOut(BaseModel):
    """A tariff, whom it is for, and the fields of its kind (the others are null)."""

    tariff_id: str
    kind: str
    scope: Literal["builtin", "vehicle", "fleet", "global"]
    vehicle_id: str | None
    fleet_id: str | None
    currency: str
    source: str
    price_per_session: float | None = None
    price_per_kwh: float | None = None
    session_fee: float | None = None
    price_per_min: float | None = None
    timezone: str | None = None
    bands: list[BandOut] | None = None
    default_price_per_kwh: float | None = None
    fee_per_kwh: float | None = None
    interval_min: int | None = None
    series_intervals: int | None = Field(None, description="day_ahead: intervals priced")
    series_from_ms: int | None = Field(None, description="day_ahead: first interval's start, UTC epoch ms")
    series_to_ms: int | None = Field(None, description="day_ahead: last interval's end, UTC epoch ms")


class DayAheadOut(BaseModel):
    """What an upload did: prices read, and the tariff now."""

    read: int
    tariff: TariffOut


def _out(stored: StoredTariff) -> TariffOut:
    t = stored.tariff
    extra: dict[str, Any] = {}
    if isinstance(t, DayAheadTariff):
        span = t.span_ms
        extra = {
            "series_intervals": len(t.starts_ms),
            "series_from_ms": span[0] if span else None,
            "series_to_ms": span[1] if span else None,
        }
    return TariffOut(
        **tariff_spec(t),
        **extra,
        scope=stored.scope,
        vehicle_id=stored.vehicle_id,
        fleet_id=stored.fleet_id,
    )


@router.get("/api/v1/tariffs", response_model=list[TariffOut], summary="Tariffs you may see")
def list_tariffs(user: UserDep, tariffs: TariffsDep) -> list[TariffOut]:
    """The built-in example tariffs, then global ones, your fleet's and those of every vehicle you see."""
    return [_out(t) for t in tariffs.visible_to(user)]


@router.get("/api/v1/tariffs/{tariff_id}", response_model=TariffOut, summary="One tariff", responses=_ERRORS)
def get_tariff(tariff_id: TariffIdPath, user: UserDep, tariffs: TariffsDep) -> TariffOut:
    """A built-in example or a tariff you see (404 otherwise)."""
    return _out(tariffs.get_as(user, tariff_id))


@router.post(
    "/api/v1/tariffs",
    response_model=TariffOut,
    status_code=201,
    summary="Create a tariff",
    responses={**_ERRORS, 409: {"model": ErrorBody}},
)
def create_tariff(body: TariffIn, user: UserDep, tariffs: TariffsDep) -> TariffOut:
    """Create a tariff for a vehicle you see, your fleet (operators) or everyone (admins).

    Time-of-use bands must price every quarter hour of every weekday of every month exactly once, unless
    a ``default_price_per_kwh`` prices the times no band covers. A day-ahead tariff starts without
    prices: upload them with ``POST /api/v1/tariffs/{tariff_id}/day-ahead``. Name it in a place's
    ``tariff_id`` to cost the charges there.
    """
    tariff = parse_tariff(body.spec(body.tariff_id))
    return _out(tariffs.create(user, tariff, vehicle_id=body.vehicle_id, fleet_id=body.fleet_id))


@router.put(
    "/api/v1/tariffs/{tariff_id}",
    response_model=TariffOut,
    summary="Replace a tariff's definition",
    responses=_ERRORS,
)
def replace_tariff(
    tariff_id: TariffIdPath, body: TariffSpecIn, user: UserDep, tariffs: TariffsDep
) -> TariffOut:
    """Replace a tariff you may change (its scope stays; a day-ahead tariff keeps its prices).

    Charges at every place naming it are re-costed.
    """
    return _out(tariffs.replace_as(user, parse_tariff(body.spec(tariff_id))))


@router.delete(
    "/api/v1/tariffs/{tariff_id}",
    status_code=204,
    response_class=Response,
    summary="Delete a tariff",
    responses={404: {"model": ErrorBody}, 409: {"model": ErrorBody}},
)
def delete_tariff(tariff_id: TariffIdPath, user: UserDep, tariffs: TariffsDep) -> Response:
    """Delete a tariff you may change; refused (409, with their names) while places name it."""
    tariffs.delete_as(user, tariff_id)
    return Response(status_code=204)


@router.post(
    "/api/v1/tariffs/{tariff_id}/day-ahead",
    response_model=DayAheadOut,
    summary="Upload day-ahead prices (CSV)",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/csv": {
                    "schema": {
                        "type": "string",
                        "description": "header start,price_per_kwh; start is ISO 8601 with a UTC offset",
                    }
                }
            },
        }
    },
    responses={**_ERRORS, 413: {"model": ErrorBody}},
)
async def upload_day_ahead(
    request: Request,
    tariff_id: TariffIdPath,
    user: UserDep,
    tariffs: TariffsDep,
    replace: Annotated[bool, Query(description="replace the whole series instead of adding to it")] = False,
) -> DayAheadOut:
    """Add prices to a day-ahead tariff you may change (a price for a start already priced replaces it).

    Charges at every place naming it are re-costed; a charge drawing energy when the series has no price
    stays uncosted.
    """
    body = await read_body(request, MAX_DAY_AHEAD_CSV_BYTES)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInputError("the CSV is not UTF-8 text") from None
    done = await run_in_threadpool(tariffs.import_day_ahead_as, user, tariff_id, text, replace_all=replace)
    return DayAheadOut(read=done.read, tariff=_out(done.stored))
