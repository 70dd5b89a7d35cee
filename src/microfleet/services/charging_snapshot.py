"""How the stores' records become the charging planner's inputs, and a plan a stored one.

Used by :class:`~microfleet.services.charging.ChargingService`: which chargers the plan can steer, each site's
limit less what it cannot steer, a booking's energy need, a tariff's price per slot, and the plan's JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from microfleet.domain.bookings import Booking
from microfleet.domain.charge_points import (
    ChargePoint,
    ChargingSite,
    ChargingTransaction,
    PointStatus,
    StoredPlan,
)
from microfleet.domain.tariffs import DayAheadTariff, PerKwhTariff, Tariff, TimeOfUseTariff

if TYPE_CHECKING:
    from microfleet.planning.charging import ChargingPlan, FleetSnapshot

# A shared small EV's trip energy when nothing better is known: 2 kWh per booked hour, at most 80 % of the
# pack. Microfleet's assumption (a 20 km/h urban average, cf. the twin's trips, x ~0.1 kWh/km for a mini EV
# such as the Wuling Mini EV's CLTC 9.2 kWh/100 km); to be replaced by the range model's estimate.
BOOKING_KWH_PER_HOUR: Final = 2.0
BOOKING_MAX_SHARE: Final = 0.8


@dataclass(frozen=True, slots=True)
class PlanTarget:
    """Where one car of the plan charges: ``charge_point_id``'s connector, in ``transaction_id`` if open."""

    vehicle_id: str
    charge_point_id: str
    connector_id: int
    transaction_id: int | None
    smart: bool


def slot_prices(tariff: Tariff, times: Sequence[int]) -> list[float]:
    """The tariff's price per kWh at each slot start (UTC epoch ms)."""
    if isinstance(tariff, TimeOfUseTariff):
        return [tariff.price_at(t) for t in times]
    if isinstance(tariff, DayAheadTariff):
        known = [tariff.price_at(t) for t in times]
        last = next((p for p in known if p is not None), 0.0)
        prices = []
        for p in known:  # beyond the published series: the last known price (a flat forecast)
            last = p if p is not None else last
            prices.append(last)
        return prices
    if isinstance(tariff, PerKwhTariff):
        return [tariff.price_per_kwh] * len(times)
    return [0.0] * len(times)  # a flat or per-minute tariff does not price energy: every slot costs the same


def target_json(t: PlanTarget) -> dict[str, Any]:
    """A target as the plan's JSON keeps it."""
    return {
        "vehicle_id": t.vehicle_id,
        "charge_point_id": t.charge_point_id,
        "connector_id": t.connector_id,
        "transaction_id": t.transaction_id,
        "smart": t.smart,
    }


def usable_points(
    points: Sequence[ChargePoint], rejecting: set[str]
) -> tuple[list[ChargePoint], list[ChargePoint]]:
    """Chargers the plan can steer, and those it cannot (rejecting profiles: assumed to draw full power).

    A dumb charger is steered through its car (remote charge commands). A faulted or offline charger is in
    neither: it delivers nothing.
    """
    usable: list[ChargePoint] = []
    uncontrolled: list[ChargePoint] = []
    for p in points:
        if p.status in (PointStatus.FAULTED, PointStatus.UNAVAILABLE, PointStatus.OFFLINE):
            continue
        (uncontrolled if p.charge_point_id in rejecting else usable).append(p)
    return usable, uncontrolled


def site_limits(
    sites: Sequence[ChargingSite],
    uncontrolled: Sequence[ChargePoint],
    occupied: Sequence[ChargingTransaction],
    steered: Mapping[str, ChargePoint],
) -> dict[str, float]:
    """Each site's limit less what the plan cannot steer (at least a watt, for the planner).

    An uncontrolled charger may draw its full power on every connector; a car the plan does not know, on a
    steered charger, draws the charger's minimum if it is smart (its TxDefaultProfile) or all of it if dumb.
    """
    limits = {s.site_id: s.power_limit_kw for s in sites}
    for p in uncontrolled:
        limits[p.site_id] -= p.max_kw * p.connectors
    for t in occupied:
        point = steered.get(t.charge_point_id)
        if point is not None:
            limits[point.site_id] -= point.min_kw if point.smart else point.max_kw
    return {k: max(v, 0.001) for k, v in limits.items()}


def booking_need(b: Booking, start_ms: int, slot_s: int, capacity_kwh: float) -> Any:
    """The planner's booking: its start slot and the energy the trip needs (``BOOKING_KWH_PER_HOUR``)."""
    from microfleet.planning.charging import Booking as PlannedBooking

    hours = (b.end_ms - b.start_ms) / 3_600_000
    need = min(BOOKING_KWH_PER_HOUR * hours, BOOKING_MAX_SHARE * capacity_kwh)
    return PlannedBooking(str(b.booking_id), b.vehicle_id, (b.start_ms - start_ms) // (slot_s * 1000), need)


def stored_plan(
    fleet_id: str,
    now_ms: int,
    digest: str,
    trigger: str,
    snapshot: FleetSnapshot,
    result: ChargingPlan,
    context: dict[str, Any],
) -> StoredPlan:
    """The plan as stored: its figures, and per car per slot kW, bookings, targets in its JSON."""
    capacity = {c.car_id: c.capacity_kwh for c in snapshot.cars}
    cars = []
    for i, car_id in enumerate(result.car_ids):
        cars.append(
            {
                "vehicle_id": car_id,
                "power_kw": [round(float(x), 2) for x in result.power_kw[i]],
                "explanation": result.explanations.get(car_id, ""),
            }
        )
    bookings = [
        {
            "booking_id": b.booking_id,
            "vehicle_id": b.car_id,
            "start_ms": snapshot.start_ms + b.start_slot * snapshot.slot_s * 1000,
            "need_kwh": round(b.need_kwh, 3),
            "expected_kwh": round(b.expected_kwh, 3),
            "expected_soc_pct": round(100 * b.expected_kwh / capacity[b.car_id], 1),
            "shortfall_kwh": round(b.shortfall_kwh, 3),
        }
        for b in result.bookings
    ]
    body = {
        "start_ms": snapshot.start_ms,
        "slot_s": snapshot.slot_s,
        "currency": result.currency,
        "energy_kwh": round(result.energy_kwh_total, 3),
        "peak_kw_by_site": {k: round(v, 3) for k, v in result.peak_kw_by_site.items()},
        "solve_time_s": round(result.solve_time_s, 4),
        "cars": cars,
        "bookings": bookings,
        **context,
    }
    return StoredPlan(
        0,
        fleet_id,
        now_ms,
        digest,
        trigger,
        result.status,
        result.cost,
        max(result.peak_kw_by_site.values(), default=0.0),
        result.carbon_kg,
        result.losses_kwh,
        result.gap,
        body,
    )
