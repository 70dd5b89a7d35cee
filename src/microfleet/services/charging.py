"""The fleet's charging plan as a use case: a snapshot from the stores, the optimiser, the stored plan.

:meth:`ChargingService.replan` builds a :class:`~microfleet.planning.charging.FleetSnapshot` of one fleet
through its ports (cars' latest SoC and usable capacity, the fleet's sites and chargers with the cars
plugged in now, their next bookings, the fleet's tariff), keeps the current plan when the snapshot's
digest has not changed (a stable plan), else calls :func:`~microfleet.planning.charging.plan` and stores
the result. :class:`ChargingWorker` re-plans every ``interval_s`` (15 min) and on a deviation, and sends
the new plan to the chargers (``ingest/ocpp_central.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import math
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Protocol

from microfleet.domain.access import Role, UserPrincipal, Vehicle
from microfleet.domain.bookings import Booking
from microfleet.domain.charge_points import ChargePoint, ChargingSite, PointStatus, StoredPlan
from microfleet.domain.command_wire import Action
from microfleet.domain.tariffs import DayAheadTariff, PerKwhTariff, StoredTariff, TimeOfUseTariff
from microfleet.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from microfleet.services.charge_points import ChargePointPort, ChargePointService, Deviation

if TYPE_CHECKING:
    from microfleet.planning.charging import ChargingPlan, FleetSnapshot

log = logging.getLogger(__name__)

SLOT_S: Final = 900  # 15-minute slots: the issue's re-plan period and the usual day-ahead settlement period
HORIZON_SLOTS: Final = 96  # one day ahead
# A shared small EV's trip energy when nothing better is known: 2 kWh per booked hour, at most 80 % of the
# pack. Microfleet's assumption (a 20 km/h urban average, cf. the twin's trips, x ~0.1 kWh/km for a mini EV
# such as the Wuling Mini EV's CLTC 9.2 kWh/100 km); to be replaced by the range model's estimate.
BOOKING_KWH_PER_HOUR: Final = 2.0
BOOKING_MAX_SHARE: Final = 0.8
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


@dataclass(frozen=True, slots=True)
class PlanTarget:
    """Where one car of the plan charges: ``charge_point_id``'s connector, in ``transaction_id`` if open."""

    vehicle_id: str
    charge_point_id: str
    connector_id: int
    transaction_id: int | None
    smart: bool


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
            _stored(fleet_id, self._clock(), digest, trigger, snapshot, result, context)
        )

    def snapshot(self, fleet_id: str) -> tuple[FleetSnapshot, dict[str, Any]]:
        """The fleet as the planner sees it now, and what the stored plan needs besides (targets, ids)."""
        from microfleet.planning.charging import Car, Charger, FleetSnapshot, Site

        sites = self._store.sites(fleet_id)
        if not sites:
            raise NotFoundError(f"fleet {fleet_id} has no charging site")
        now_ms = self._clock()
        start_ms = now_ms - now_ms % (SLOT_S * 1000)
        points = self._store.charge_points([s.site_id for s in sites])
        usable, uncontrolled = _usable_points(points, self._points.rejecting)
        limits = _site_limits(sites, uncontrolled)
        chargers = [
            Charger(f"{p.charge_point_id}/{c}", p.site_id, p.max_kw, p.min_kw)
            for p in usable
            for c in range(1, p.connectors + 1)
            if p.min_kw <= limits[p.site_id]
        ]
        charger_ids = {c.charger_id for c in chargers}
        open_tx = {
            t.vehicle_id: t
            for t in self._store.open_transactions([p.charge_point_id for p in points])
            if t.vehicle_id is not None
        }
        smart = {p.charge_point_id: p.smart for p in points}
        cars, bookings, targets = [], [], []
        vehicles = sorted(self._store.fleet_vehicles(fleet_id), key=lambda v: v.vehicle_id)
        upcoming = self._bookings.search(
            vehicle_ids=[v.vehicle_id for v in vehicles], user_id=None, include_cancelled=False
        )
        horizon_ms = start_ms + HORIZON_SLOTS * SLOT_S * 1000
        states = self._states.latest_states([v.vehicle_id for v in vehicles], ["soc_pct"])
        for vehicle in vehicles:
            capacity_kwh, ac_kw = self._car_spec(vehicle.model_id)
            soc = states.get(vehicle.vehicle_id, {}).get("signals", {}).get("soc_pct")
            soc_pct = None if soc is None else soc["value"]
            if capacity_kwh is None or not isinstance(soc_pct, int | float) or not math.isfinite(soc_pct):
                continue  # the planner cannot see a car of unknown capacity or charge
            own = sorted(
                (
                    b
                    for b in upcoming
                    if b.vehicle_id == vehicle.vehicle_id and now_ms <= b.start_ms < horizon_ms
                ),
                key=lambda b: b.start_ms,
            )
            if any(b.start_ms <= now_ms < b.end_ms for b in upcoming if b.vehicle_id == vehicle.vehicle_id):
                continue  # on a trip now
            tx = open_tx.get(vehicle.vehicle_id)
            charger_id = None if tx is None else f"{tx.charge_point_id}/{tx.connector_id}"
            if charger_id not in charger_ids:
                charger_id = None
            until = None if not own else (own[0].start_ms - start_ms) // (SLOT_S * 1000)
            cars.append(
                Car(
                    vehicle.vehicle_id,
                    soc_kwh=min(max(float(soc_pct), 0.0), 100.0) / 100 * capacity_kwh,
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
                bookings.append(_booking(b, start_ms, capacity_kwh))
        snapshot = FleetSnapshot(
            start_ms=start_ms,
            n_slots=HORIZON_SLOTS,
            cars=tuple(cars),
            chargers=tuple(chargers),
            sites=tuple(Site(s.site_id, limits[s.site_id]) for s in sites),
            bookings=tuple(bookings),
            tariff=self._tariff(fleet_id, start_ms),
            slot_s=SLOT_S,
        )
        context = {
            "targets": [_target_json(t) for t in targets],
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

    def _tariff(self, fleet_id: str, start_ms: int) -> Any:
        from microfleet.planning.charging import Tariff

        own = [t for t in self._tariffs.visible([], [fleet_id]) if t.fleet_id == fleet_id]
        stored = own[0] if own else self._default_tariff()
        tariff = stored.tariff
        times = [start_ms + i * SLOT_S * 1000 for i in range(HORIZON_SLOTS)]
        if isinstance(tariff, TimeOfUseTariff):
            prices = [tariff.price_at(t) for t in times]
        elif isinstance(tariff, DayAheadTariff):
            known = [tariff.price_at(t) for t in times]
            last = next((p for p in known if p is not None), 0.0)
            prices = []
            for p in known:  # beyond the published series: the last known price (a flat forecast)
                last = p if p is not None else last
                prices.append(last)
        elif isinstance(tariff, PerKwhTariff):
            prices = [tariff.price_per_kwh] * HORIZON_SLOTS
        else:  # a flat or per-minute tariff does not price energy: every slot costs the same
            prices = [0.0] * HORIZON_SLOTS
        return Tariff(tuple(prices), currency=tariff.currency)


def _target_json(t: PlanTarget) -> dict[str, Any]:
    return {
        "vehicle_id": t.vehicle_id,
        "charge_point_id": t.charge_point_id,
        "connector_id": t.connector_id,
        "transaction_id": t.transaction_id,
        "smart": t.smart,
    }


def _usable_points(
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


def _site_limits(sites: Sequence[ChargingSite], uncontrolled: Sequence[ChargePoint]) -> dict[str, float]:
    """Each site's limit less what its uncontrolled chargers may draw (at least a watt, for the planner)."""
    limits = {s.site_id: s.power_limit_kw for s in sites}
    for p in uncontrolled:
        limits[p.site_id] -= p.max_kw * p.connectors
    return {k: max(v, 0.001) for k, v in limits.items()}


def _booking(b: Booking, start_ms: int, capacity_kwh: float) -> Any:
    from microfleet.planning.charging import Booking as PlannedBooking

    hours = (b.end_ms - b.start_ms) / 3_600_000
    need = min(BOOKING_KWH_PER_HOUR * hours, BOOKING_MAX_SHARE * capacity_kwh)
    return PlannedBooking(str(b.booking_id), b.vehicle_id, (b.start_ms - start_ms) // (SLOT_S * 1000), need)


def _stored(
    fleet_id: str,
    now_ms: int,
    digest: str,
    trigger: str,
    snapshot: FleetSnapshot,
    result: ChargingPlan,
    context: dict[str, Any],
) -> StoredPlan:
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


class ProfileApplier(Protocol):
    """Chargers that take a plan (``ingest.ocpp_central.OcppCentral``)."""

    async def apply_plan(self, plan: StoredPlan, points: Sequence[ChargePoint]) -> dict[str, str]:
        """Send the plan to its chargers; returns each order's answer."""
        ...


class ChargingWorker:
    """Re-plans each fleet every ``interval_s`` and at once on a deviation, and applies the plan."""

    def __init__(
        self,
        service: ChargingService,
        points: ChargePointService,
        store: ChargingStorePort,
        *,
        interval_s: float,
        poll_s: float = 30.0,
    ) -> None:
        self._service = service
        self._store = store
        self._interval_s = interval_s
        self._poll_s = min(poll_s, interval_s)
        self._seen: dict[str, str] = {}  # fleet -> its bookings' and tariff's digest at the last look
        self._pending: dict[str, str] = {}
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self.applier: ProfileApplier | None = None
        self.commands: ChargeCommands | None = None
        self.rounds = 0
        points.on_deviation(self.notify)

    def notify(self, deviation: Deviation) -> None:
        """Note a deviation (from any thread): its fleet is re-planned at once."""
        self._pending[deviation.fleet_id] = deviation.kind
        if self._loop is not None and self._wake is not None:
            self._loop.call_soon_threadsafe(self._wake.set)

    def start(self, applier: ProfileApplier | None, commands: ChargeCommands | None = None) -> None:
        """Run on the current event loop (the API's lifespan); profiles to ``applier``, commands to cars."""
        self.applier = applier
        self.commands = commands
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        """Stop after the round in progress."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def run_once(self, fleets: dict[str, str]) -> list[StoredPlan]:
        """Re-plan these fleets (fleet -> trigger) and apply each new plan."""
        plans = []
        for fleet_id, trigger in fleets.items():
            current = self._service.latest(fleet_id)
            plan = await asyncio.to_thread(self._service.replan, fleet_id, trigger)
            plans.append(plan)
            fresh = current is None or plan.plan_id != current.plan_id
            if self.applier is not None and (fresh or trigger != "periodic"):
                points = await asyncio.to_thread(
                    self._store.charge_points, [s.site_id for s in self._store.sites(fleet_id)]
                )
                await self.applier.apply_plan(plan, points)
            if self.commands is not None:
                await asyncio.to_thread(self._service.command_dumb_chargers, plan, self.commands)
        self.rounds += 1
        return plans

    def _changed_fleets(self) -> None:
        """Mark for a re-plan every fleet whose bookings or tariff changed since the last look."""
        for fleet_id in self._service.fleets():
            digest = self._service.event_inputs(fleet_id)
            if self._seen.get(fleet_id, digest) != digest:
                self._pending.setdefault(fleet_id, "booking or price")
            self._seen[fleet_id] = digest

    async def _run(self) -> None:
        assert self._wake is not None
        loop = asyncio.get_running_loop()
        next_round = loop.time() + self._interval_s
        while True:
            try:
                await asyncio.wait_for(
                    self._wake.wait(), timeout=max(0.0, min(self._poll_s, next_round - loop.time()))
                )
            except TimeoutError:
                try:
                    if loop.time() >= next_round:
                        next_round = loop.time() + self._interval_s
                        for fleet_id in await asyncio.to_thread(self._service.fleets):
                            self._pending.setdefault(fleet_id, "periodic")
                    await asyncio.to_thread(self._changed_fleets)
                except Exception:  # the store briefly unreachable: look again at the next poll
                    log.exception("the charging worker could not read the fleets; retrying")
            self._wake.clear()
            if not self._pending:
                continue
            fleets, self._pending = self._pending, {}
            try:
                await self.run_once(fleets)
            except Exception:  # e.g. the store briefly unreachable or a bad input: next round again
                log.exception("a charging re-plan failed; retrying in %.0f s", self._interval_s)
