"""The fleet's charging plan as a use case: a snapshot from the stores, the optimiser, the stored plan.

:meth:`ChargingService.replan` builds a :class:`~microfleet.planning.charging.FleetSnapshot` of one fleet
through its ports (cars' latest SoC and usable capacity, the fleet's sites and chargers with the cars
plugged in now, their next bookings, the fleet's tariff), keeps the current plan when the snapshot's
digest has not changed (a stable plan), else calls :func:`~microfleet.planning.charging.plan` and stores
the result. :class:`ChargingWorker` re-plans every ``interval_s`` (15 min) and on a deviation, and sends
the new plan to the chargers (``ingest/ocpp_central.py``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Protocol
from zoneinfo import ZoneInfo

from microfleet.domain.access import Role, UserPrincipal, Vehicle
from microfleet.domain.bookings import Booking
from microfleet.domain.charge_points import StoredPlan
from microfleet.domain.command_wire import Action
from microfleet.domain.tariffs import StoredTariff
from microfleet.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from microfleet.services.charge_points import ChargePointPort, ChargePointService
from microfleet.services.charging_snapshot import (
    PlanTarget,
    booking_need,
    site_limits,
    slot_prices,
    stored_plan,
    target_json,
    usable_points,
)

if TYPE_CHECKING:
    from microfleet.planning.charging import FleetSnapshot

log = logging.getLogger(__name__)

SLOT_S: Final = 900  # 15-minute slots: the issue's re-plan period and the usual day-ahead settlement period
HORIZON_SLOTS: Final = 96  # one day ahead
DEFAULT_AC_KW: Final = 6.6  # a small EV's on-board charger when the catalogue says nothing (Wuling, Dayun)


class ChargingStorePort(ChargePointPort, Protocol):
    """Sites, chargers and transactions, plus the fleet's cars and its plans (``ChargingStore``)."""

    def save_plan(self, plan: StoredPlan) -> StoredPlan:
        """Store a plan."""
        ...

    def latest_plan(self, fleet_id: str) -> StoredPlan | None:
        """The fleet's newest plan."""
        ...

    def fleets_with_sites(self) -> list[str]:
        """Fleets that have a site."""
        ...

    def fleet_vehicles(self, fleet_id: str) -> list[Vehicle]:
        """The fleet's cars."""
        ...


class LatestStates(Protocol):
    """Cars' latest reported signals (``TelemetryStore``)."""

    def latest_states(
        self, vehicle_ids: Sequence[str], signals: Collection[str] | None = None
    ) -> dict[str, dict[str, Any]]:
        """Each car's newest value of these signals: ``{"signals": {name: {"value", "ts_ms"}}}``."""
        ...


class UpcomingBookings(Protocol):
    """Bookings in the store (``BookingStore``)."""

    def search(
        self, *, vehicle_ids: Sequence[str] | None, user_id: int | None, include_cancelled: bool
    ) -> list[Booking]:
        """Bookings of these vehicles."""
        ...


class FleetTariffs(Protocol):
    """User tariffs (``TariffStore``)."""

    def visible(self, vehicle_ids: Sequence[str] | None, fleet_ids: Sequence[str] = ()) -> list[StoredTariff]:
        """Tariffs of these scopes."""
        ...


# Who the audit log names for the commands the planner sends to cars on dumb chargers: a system actor, not a
# person (user id 0 is never a user's: the users table's ids start at 1).
PLANNER_ACTOR: Final = UserPrincipal(0, "charging-planner", Role.ADMIN, None)


class ChargeCommands(Protocol):
    """Remote commands (``CommandService``), for cars on chargers that take no profile."""

    def issue(
        self,
        user: UserPrincipal,
        vehicle_id: str,
        action: Action,
        params: Mapping[str, object],
        *,
        expires_in_s: float | None = None,
        idempotency_key: str | None = None,
        client: str = "unknown",
    ) -> tuple[Any, bool]:
        """Authorise, sign and queue a command."""
        ...


CarSpec = Callable[[str | None], tuple[float | None, float | None]]  # model -> (usable kWh, AC kW)


class ChargingService:
    """Build snapshots, plan, store and read plans; who may read a fleet's plan."""

    def __init__(
        self,
        store: ChargingStorePort,
        points: ChargePointService,
        states: LatestStates,
        bookings: UpcomingBookings,
        tariffs: FleetTariffs,
        car_spec: CarSpec,
        clock: Callable[[], int],
        *,
        default_tariff: Callable[[], StoredTariff],
        time_limit_s: float = 10.0,
    ) -> None:
        self._store = store
        self._points = points
        self._states = states
        self._bookings = bookings
        self._tariffs = tariffs
        self._car_spec = car_spec
        self._clock = clock
        self._default_tariff = default_tariff
        self._time_limit_s = time_limit_s

    def plan_for(self, user: UserPrincipal, fleet_id: str) -> StoredPlan:
        """The fleet's current plan, made now if it has none (its operator or an admin)."""
        self._points.require_fleet_operator(user, fleet_id)
        current = self._store.latest_plan(fleet_id)
        return current if current is not None else self.replan(fleet_id, "request")

    def latest(self, fleet_id: str) -> StoredPlan | None:
        """The fleet's newest stored plan."""
        return self._store.latest_plan(fleet_id)

    def event_inputs(self, fleet_id: str) -> str:
        """A digest of what people change between rounds: the fleet's bookings and its tariff's prices.

        The worker compares it every ``poll_s``: a new, moved or cancelled booking, or a price update,
        re-plans at once instead of at the next 15-minute round (SoC alone waits for the round).
        """
        vehicles = [v.vehicle_id for v in self._store.fleet_vehicles(fleet_id)]
        bookings = self._bookings.search(vehicle_ids=vehicles, user_id=None, include_cancelled=True)
        own = [t for t in self._tariffs.visible([], [fleet_id]) if t.fleet_id == fleet_id]
        key = repr(
            (
                sorted(
                    (b.booking_id, b.vehicle_id, b.start_ms, b.end_ms, b.cancelled_at_ms) for b in bookings
                ),
                [repr(t.tariff) for t in own],
            )
        )
        return hashlib.sha256(key.encode()).hexdigest()

    def fleets(self) -> list[str]:
        """Fleets with at least one charging site."""
        return self._store.fleets_with_sites()

    def replan(self, fleet_id: str, trigger: str) -> StoredPlan:
        """Plan the fleet now; the current plan is kept if the inputs have not changed."""
        from microfleet.planning.charging import plan

        snapshot, context = self.snapshot(fleet_id)
        digest = hashlib.sha256(repr(snapshot).encode()).hexdigest()
        current = self._store.latest_plan(fleet_id)
        if current is not None and current.inputs_sha256 == digest:
            return current
        result = plan(snapshot, time_limit_s=self._time_limit_s)
        return self._store.save_plan(
            stored_plan(fleet_id, self._clock(), digest, trigger, snapshot, result, context)
        )

    def snapshot(self, fleet_id: str) -> tuple[FleetSnapshot, dict[str, Any]]:
        """The fleet as the planner sees it now, and what the stored plan needs besides (targets, ids)."""
        from microfleet.planning.charging import Booking as PlannedBooking
        from microfleet.planning.charging import Car, Charger, FleetSnapshot, Site

        sites = self._store.sites(fleet_id)
        if not sites:
            raise NotFoundError(f"fleet {fleet_id} has no charging site")
        now_ms = self._clock()
        start_ms = now_ms - now_ms % (SLOT_S * 1000)
        points = self._store.charge_points([s.site_id for s in sites])
        usable, uncontrolled = usable_points(points, self._points.rejecting)
        vehicles = sorted(self._store.fleet_vehicles(fleet_id), key=lambda v: v.vehicle_id)
        upcoming = self._bookings.search(
            vehicle_ids=[v.vehicle_id for v in vehicles], user_id=None, include_cancelled=False
        )
        horizon_ms = start_ms + HORIZON_SLOTS * SLOT_S * 1000
        states = self._states.latest_states([v.vehicle_id for v in vehicles], ["soc_pct"])
        known: dict[str, tuple[float, float | None, float]] = {}  # vehicle -> capacity, AC kW, SoC %
        for vehicle in vehicles:
            capacity_kwh, ac_kw = self._car_spec(vehicle.model_id)
            soc = states.get(vehicle.vehicle_id, {}).get("signals", {}).get("soc_pct")
            soc_pct = None if soc is None else soc["value"]
            away = any(
                b.start_ms <= now_ms < b.end_ms for b in upcoming if b.vehicle_id == vehicle.vehicle_id
            )
            if (
                capacity_kwh is None
                or not isinstance(soc_pct, int | float)
                or not math.isfinite(soc_pct)
                or away
            ):
                continue  # the planner cannot see a car of unknown capacity or charge; one on a trip is away
            known[vehicle.vehicle_id] = (capacity_kwh, ac_kw, float(soc_pct))
        transactions = self._store.open_transactions([p.charge_point_id for p in points])
        open_tx = {t.vehicle_id: t for t in transactions if t.vehicle_id in known}
        # A car the plan does not know (another fleet's, one of unknown charge) holds its connector and
        # draws what the charger gives it unplanned: its TxDefaultProfile's minimum, or all of a dumb one.
        occupied = [t for t in transactions if t.vehicle_id not in known]
        limits = site_limits(sites, uncontrolled, occupied, {p.charge_point_id: p for p in usable})
        taken = {f"{t.charge_point_id}/{t.connector_id}" for t in occupied}
        chargers = [
            Charger(f"{p.charge_point_id}/{c}", p.site_id, p.max_kw, p.min_kw)
            for p in usable
            for c in range(1, p.connectors + 1)
            if p.min_kw <= limits[p.site_id] and f"{p.charge_point_id}/{c}" not in taken
        ]
        charger_ids = {c.charger_id for c in chargers}
        smart = {p.charge_point_id: p.smart for p in points}
        cars: list[Car] = []
        bookings: list[PlannedBooking] = []
        targets: list[PlanTarget] = []
        for vehicle in vehicles:
            if vehicle.vehicle_id not in known:
                continue
            capacity_kwh, ac_kw, soc_pct = known[vehicle.vehicle_id]
            own = sorted(
                (
                    b
                    for b in upcoming
                    if b.vehicle_id == vehicle.vehicle_id and now_ms <= b.start_ms < horizon_ms
                ),
                key=lambda b: b.start_ms,
            )
            tx = open_tx.get(vehicle.vehicle_id)
            charger_id = None if tx is None else f"{tx.charge_point_id}/{tx.connector_id}"
            if charger_id not in charger_ids:
                charger_id = None
            until = None if not own else (own[0].start_ms - start_ms) // (SLOT_S * 1000)
            cars.append(
                Car(
                    vehicle.vehicle_id,
                    soc_kwh=min(max(soc_pct, 0.0), 100.0) / 100 * capacity_kwh,
                    capacity_kwh=capacity_kwh,
                    max_ac_kw=ac_kw or DEFAULT_AC_KW,
                    plugged_charger=charger_id,
                    plugged_until_slot=None if charger_id is None else until,
                )
            )
            if tx is not None and charger_id is not None:
                targets.append(
                    PlanTarget(
                        vehicle.vehicle_id,
                        tx.charge_point_id,
                        tx.connector_id,
                        tx.transaction_id,
                        smart[tx.charge_point_id],
                    )
                )
            for b in own:
                need = booking_need(b, start_ms, SLOT_S, capacity_kwh)
                if bookings and (bookings[-1].car_id, bookings[-1].start_slot) == (
                    need.car_id,
                    need.start_slot,
                ):
                    # two short trips in one slot: the planner sees one, needing both trips' energy
                    total = min(bookings[-1].energy_kwh + need.energy_kwh, capacity_kwh)
                    bookings[-1] = dataclasses.replace(bookings[-1], energy_kwh=total)
                    continue
                bookings.append(need)
        tariff, utc_offset_s = self._tariff(fleet_id, start_ms)
        snapshot = FleetSnapshot(
            start_ms=start_ms,
            n_slots=HORIZON_SLOTS,
            cars=tuple(cars),
            chargers=tuple(chargers),
            sites=tuple(Site(s.site_id, limits[s.site_id]) for s in sites),
            bookings=tuple(bookings),
            tariff=tariff,
            slot_s=SLOT_S,
            utc_offset_s=utc_offset_s,
        )
        context = {
            "targets": [target_json(t) for t in targets],
            "uncontrolled": sorted(p.charge_point_id for p in uncontrolled),
        }
        return snapshot, context

    def command_dumb_chargers(self, plan: StoredPlan, commands: ChargeCommands) -> dict[str, str]:
        """Start or stop the charge of each car on a dumb charger as the plan's current slot says.

        A command is sent once per change in the plan (its idempotency key names the plan, the car and the
        slot where the current run of on or off began), expires at the slot's end, and is audited as the
        ``charging-planner``'s. On or off only: the car draws what it and the charger can while on.
        """
        body = plan.plan
        slot = (self._clock() - body["start_ms"]) // (body["slot_s"] * 1000)
        kw_by_car = {c["vehicle_id"]: c["power_kw"] for c in body["cars"]}
        sent: dict[str, str] = {}
        for target in body.get("targets", []):
            kw = kw_by_car.get(target["vehicle_id"])
            if target["smart"] or kw is None or not 0 <= slot < len(kw):
                continue
            on = kw[slot] > 0
            run_start = slot
            while run_start > 0 and (kw[run_start - 1] > 0) == on:
                run_start -= 1
            action = Action.CHARGE_START if on else Action.CHARGE_STOP
            key = f"charging-plan:{plan.plan_id}:{target['vehicle_id']}:{run_start}:{action.value}"
            try:
                commands.issue(
                    PLANNER_ACTOR,
                    target["vehicle_id"],
                    action,
                    {},
                    expires_in_s=float(body["slot_s"]),
                    idempotency_key=key,
                    client="charging-planner",
                )
                sent[target["vehicle_id"]] = action.value
            except (InvalidInputError, NotFoundError, PermissionDeniedError) as refused:
                log.warning("charging plan %s: %s for %s refused: %s", plan.plan_id, action, target, refused)
                sent[target["vehicle_id"]] = f"refused: {refused}"
        return sent

    def _tariff(self, fleet_id: str, start_ms: int) -> tuple[Any, int]:
        """The fleet's prices per slot, and the UTC offset of its tariff's zone at ``start_ms`` (0: none).

        The offset puts the plan's explanations in the fleet's own clock ("charges 01:00–03:30"), the
        clock its time-of-use bands are written in; a tariff without a zone leaves them in UTC.
        """
        from microfleet.planning.charging import Tariff

        own = [t for t in self._tariffs.visible([], [fleet_id]) if t.fleet_id == fleet_id]
        stored = own[0] if own else self._default_tariff()
        tariff = stored.tariff
        times = [start_ms + i * SLOT_S * 1000 for i in range(HORIZON_SLOTS)]
        zone = getattr(tariff, "timezone", None)
        offset = datetime.fromtimestamp(start_ms / 1000, tz=ZoneInfo(zone)).utcoffset() if zone else None
        utc_offset_s = int(offset.total_seconds()) if offset is not None else 0
        return Tariff(tuple(slot_prices(tariff, times)), currency=tariff.currency), utc_offset_s
