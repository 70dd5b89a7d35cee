"""Maintenance: detectors served, their alerts, false-alarm marks, service records and the fleet's week.

Runs the detectors on a car's telemetry, keeps their answers, raises and resolves alerts through the shared
alert path, takes false-alarm marks and service records, and plans the fleet's week.

The detectors are pure (``intelligence/maintenance``), the plan too (``planning/service_plan``); this module
reads a car's last :data:`WINDOW_DAYS` of telemetry through its port, stores each detector's latest answer,
raises one alert per suspected condition (source ``maintenance``, de-duplicated by the alert store) and
resolves it when the detector no longer suspects it. :class:`MaintenanceWorker` evaluates cars whose
telemetry moved, off the request path, beside the alert worker. docs/maintenance.md.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import numpy as np

from microfleet.domain.access import Role, UserPrincipal, Vehicle
from microfleet.domain.alerts import Alert, Severity, can_resolve_by_hand
from microfleet.domain.bookings import Booking
from microfleet.domain.telemetry import TelemetryRecord
from microfleet.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from microfleet.intelligence.maintenance import DETECTORS, CarSeries, DetectorResult, Verdict, detect_all
from microfleet.intelligence.maintenance.cells import capacity_estimate, capacity_outliers
from microfleet.intelligence.maintenance.series import SERIES_SIGNALS
from microfleet.planning.service_plan import (
    CarState,
    ConditionItem,
    DueItem,
    Interval,
    LastService,
    WeekPlan,
    default_intervals,
    due_items,
    plan_week,
)
from microfleet.services.accounts import AccountService
from microfleet.services.periodic import PeriodicWorker

log = logging.getLogger(__name__)

SOURCE: Final = "maintenance"  # the alerts' source: one open alert per car and condition
WINDOW_DAYS: Final = 45  # detectors read at most this much history (the 12 V and cell references: 7 days)
DAY_MS: Final = 86_400_000
MAX_ITEM_CHARS: Final = 64
MAX_NOTE_CHARS: Final = 1_000
_SEVERITY = {"info": Severity.INFO, "warning": Severity.WARNING, "critical": Severity.CRITICAL}


@dataclass(frozen=True, slots=True)
class StoredFinding:
    """A detector's latest answer for a car and condition, as stored."""

    vehicle_id: str
    detector: str
    condition: str
    verdict: str
    severity: str
    reason: str
    action: str
    score: float
    evidence: Mapping[str, Any]
    learning_days_needed: float | None
    evaluated_at_ms: int
    data_to_ms: int | None


@dataclass(frozen=True, slots=True)
class ServiceRecord:
    """Service done on a car: what, when, at which odometer reading, by whom."""

    record_id: int
    vehicle_id: str
    item: str
    done_at_ms: int
    odometer_km: float | None
    note: str
    created_by: int | None


@dataclass(frozen=True, slots=True)
class StoredInterval:
    """An interval item of a car or a fleet."""

    interval_id: int
    vehicle_id: str | None
    fleet_id: str | None
    item: str
    every_km: float | None
    every_days: float | None


class MaintenanceStorePort(Protocol):
    """Findings, intervals, records and false-alarm marks (``store/maintenance_store.py``)."""

    def replace_findings(self, vehicle_id: str, findings: Sequence[StoredFinding]) -> None:
        """Replace a car's findings in one transaction."""
        ...

    def findings(self, vehicle_ids: Sequence[str]) -> list[StoredFinding]:
        """The stored findings of these cars."""
        ...

    def vehicles(self) -> list[Vehicle]:
        """Every registered vehicle (the fleet comparison and the fleet's plan)."""
        ...

    def due_vehicles(self, limit: int) -> list[str]:
        """Cars whose newest record is newer than their last evaluation (or never evaluated)."""
        ...

    def false_alarms(self, vehicle_id: str) -> dict[str, int]:
        """A car's false-alarm marks by detector."""
        ...

    def add_false_alarm(self, vehicle_id: str, detector: str, now_ms: int) -> int:
        """Count one more false alarm of a detector on a car; return the new count."""
        ...

    def add_interval(self, interval: StoredInterval, now_ms: int) -> StoredInterval:
        """Store an interval item; returns it with its id."""
        ...

    def intervals(self, vehicle_id: str | None, fleet_id: str | None) -> list[StoredInterval]:
        """Interval items of a car and of its fleet."""
        ...

    def add_record(self, record: ServiceRecord) -> ServiceRecord:
        """Store a service record; returns it with its id."""
        ...

    def records(self, vehicle_ids: Sequence[str]) -> list[ServiceRecord]:
        """Service records of these cars, newest first."""
        ...


class MaintenanceTelemetry(Protocol):
    """Raw telemetry and the latest state (``TelemetryStore``)."""

    def records(self, vehicle_id: str, from_ms: int, to_ms: int) -> Iterator[TelemetryRecord]:
        """A car's records in ``[from_ms, to_ms)``, oldest first."""
        ...

    def latest_state(self, vehicle_id: str) -> dict[str, Any] | None:
        """The newest value of every signal, with its time."""
        ...


class MaintenanceAlerts(Protocol):
    """The shared alert path (``AlertService``)."""

    def raise_external(
        self, vehicle_id: str, source: str, condition: str, severity: Severity, title: str, detail: str = ""
    ) -> Alert:
        """Raise (or refresh) an open alert of this source and condition."""
        ...

    def resolve_external(self, vehicle_id: str, source: str, condition: str) -> Alert | None:
        """Resolve the open alert of this source and condition, if any."""
        ...

    def resolve_as(self, user: UserPrincipal, alert_id: int) -> Alert:
        """Resolve an alert by hand (visibility and role checked)."""
        ...


class MaintenanceBookings(Protocol):
    """Bookings (``BookingStore``)."""

    def search(
        self, *, vehicle_ids: Sequence[str] | None, user_id: int | None, include_cancelled: bool
    ) -> list[Booking]:
        """Bookings of these vehicles, by start."""
        ...


def series_of(vehicle_id: str, records: Sequence[TelemetryRecord]) -> CarSeries:
    """A car's records as the detectors' columns (NaN where a record lacks a signal)."""
    n = len(records)

    def col(name: str) -> np.ndarray:
        vals = [getattr(r, name) for r in records]
        return np.array([np.nan if v is None else float(v) for v in vals], dtype=np.float64)

    tyres = np.full((n, 4), np.nan)
    codes: dict[int, tuple[str, ...]] = {}
    for i, r in enumerate(records):
        if r.tyre_pressure_kpa is not None:
            tyres[i] = r.tyre_pressure_kpa
        if r.dtc_codes:
            codes[i] = tuple(r.dtc_codes)
    ts = np.array([r.ts_ms for r in records], dtype=np.int64)
    return CarSeries.from_columns(vehicle_id, ts, {name: col(name) for name in SERIES_SIGNALS}, tyres, codes)


def _stored(vid: str, r: DetectorResult, now_ms: int, data_to_ms: int | None) -> StoredFinding:
    return StoredFinding(
        vid, r.detector, r.condition or r.detector, r.verdict.value, r.severity, r.reason, r.action,
        float(r.score) if np.isfinite(r.score) else 0.0, dict(r.evidence), r.learning_days_needed, now_ms,
        data_to_ms,
    )  # fmt: skip


@dataclass(frozen=True)
class VehicleMaintenance:
    """A car's maintenance now: detector answers, due items, service records."""

    vehicle_id: str
    findings: list[StoredFinding]
    due: list[DueItem]
    records: list[ServiceRecord]
    false_alarms: dict[str, int] = field(default_factory=dict)


class MaintenanceService:
    """Detectors served: evaluation, alerts, false alarms, service records and the week's plan."""

    def __init__(
        self, store: MaintenanceStorePort, telemetry: MaintenanceTelemetry, alerts: MaintenanceAlerts,
        bookings: MaintenanceBookings, accounts: AccountService, clock: Callable[[], int],
    ) -> None:  # fmt: skip
        self._store = store
        self._telemetry = telemetry
        self._alerts = alerts
        self._bookings = bookings
        self._accounts = accounts
        self._clock = clock

    # --- evaluation (the worker, the CLI) ----------------------------------------------------------------

    def evaluate(self, vehicle_id: str) -> list[StoredFinding]:
        """Run every detector on the car's recent telemetry, store the answers, raise and resolve alerts."""
        self._accounts.require_vehicle(vehicle_id)
        now = self._clock()
        latest = self._telemetry.latest_state(vehicle_id)
        to_ms = int(latest["last_ts_ms"]) + 1 if latest else now
        records = list(self._telemetry.records(vehicle_id, to_ms - WINDOW_DAYS * DAY_MS, to_ms))
        series = series_of(vehicle_id, records)
        results = detect_all(series, self._store.false_alarms(vehicle_id))
        stored = [_stored(vehicle_id, r, now, to_ms - 1 if records else None) for r in results]
        before = {(f.detector, f.condition): f for f in self._store.findings([vehicle_id])}
        keep_capacity = [f for f in before.values() if f.detector == "capacity"]
        self._store.replace_findings(vehicle_id, stored + keep_capacity)
        self._sync_alerts(vehicle_id, [f for f in before.values() if f.detector != "capacity"], stored)
        return stored

    def _sync_alerts(
        self, vehicle_id: str, before: Sequence[StoredFinding], now: Sequence[StoredFinding]
    ) -> None:
        suspected = {f.condition for f in now if f.verdict == Verdict.SUSPECTED}
        for f in now:
            if f.verdict == Verdict.SUSPECTED:
                detail = f"suggested action: {f.action}" if f.action else ""
                self._alerts.raise_external(
                    vehicle_id, SOURCE, f.condition, _SEVERITY.get(f.severity, Severity.WARNING),
                    f.reason[:200], detail[:1000],
                )  # fmt: skip
        for f in before:
            if f.verdict == Verdict.SUSPECTED and f.condition not in suspected:
                self._alerts.resolve_external(vehicle_id, SOURCE, f.condition)

    def evaluate_due(self, limit: int = 200) -> int:
        """Evaluate every car whose telemetry moved since its last evaluation, then compare capacities."""
        due = self._store.due_vehicles(limit)
        for vid in due:
            try:
                self.evaluate(vid)
            except Exception:  # one car's failure must not stop the others
                log.exception("maintenance evaluation of %s failed", vid)
        if due:
            self.compare_capacity()
        return len(due)

    def compare_capacity(self) -> int:
        """Capacity outliers within each model across every car with telemetry; returns cars compared."""
        cars = [v for v in self._accounts_all() if v.model_id]
        estimates: dict[str, tuple[str, float]] = {}
        for v in cars:
            latest = self._telemetry.latest_state(v.vehicle_id)
            if latest is None:
                continue
            to_ms = int(latest["last_ts_ms"]) + 1
            recs = list(self._telemetry.records(v.vehicle_id, to_ms - 7 * DAY_MS, to_ms))
            if recs:
                estimates[v.vehicle_id] = (str(v.model_id), capacity_estimate(series_of(v.vehicle_id, recs)))
        now = self._clock()
        for vid, res in capacity_outliers(estimates).items():
            others = [f for f in self._store.findings([vid]) if f.detector != "capacity"]
            was = [f for f in self._store.findings([vid]) if f.detector == "capacity"]
            new = _stored(vid, res, now, None)
            self._store.replace_findings(vid, [*others, new])
            self._sync_alerts(vid, was, [new])
        return len(estimates)

    def _accounts_all(self) -> list[Vehicle]:
        return self._store.vehicles()

    # --- what a user sees and does -----------------------------------------------------------------------

    def vehicle_maintenance(self, user: UserPrincipal, vehicle_id: str) -> VehicleMaintenance:
        """A visible car's detector answers, due items and service records."""
        vehicle = self._accounts.vehicle_for(user, vehicle_id)
        return self._report(vehicle)

    def report(self, vehicle_id: str) -> VehicleMaintenance:
        """A car's report (the CLI, as the installation's administrator)."""
        return self._report(self._accounts.require_vehicle(vehicle_id))

    def _report(self, vehicle: Vehicle) -> VehicleMaintenance:
        vid = vehicle.vehicle_id
        findings = self._store.findings([vid])
        car = self._car_state(vehicle, findings)
        return VehicleMaintenance(
            vid, findings, due_items(car, self._intervals(vehicle), self._clock()),
            self._store.records([vid]),
            self._store.false_alarms(vid),
        )  # fmt: skip

    def _intervals(self, vehicle: Vehicle) -> list[Interval]:
        stored = self._store.intervals(vehicle.vehicle_id, vehicle.fleet_id)
        if not stored:
            return default_intervals()
        # a car's own interval for an item replaces its fleet's
        by_item: dict[str, StoredInterval] = {}
        for s in sorted(stored, key=lambda s: s.vehicle_id is not None):
            by_item[s.item] = s
        return [Interval(s.item, s.every_km, s.every_days) for s in by_item.values()]

    def _car_state(self, vehicle: Vehicle, findings: Sequence[StoredFinding]) -> CarState:
        vid = vehicle.vehicle_id
        latest = self._telemetry.latest_state(vid) or {}
        odo = (latest.get("signals") or {}).get("odometer_km", {}).get("value")
        last: dict[str, LastService] = {}
        for r in reversed(self._store.records([vid])):  # oldest first: the newest wins
            last[r.item] = LastService(r.done_at_ms, r.odometer_km)
        conditions = [
            ConditionItem(f.detector, f.condition, f.severity, f.reason, f.action)
            for f in findings
            if f.verdict == Verdict.SUSPECTED
        ]
        now = self._clock()
        bookings = [
            (b.start_ms, b.end_ms)
            for b in self._bookings.search(vehicle_ids=[vid], user_id=None, include_cancelled=False)
            if b.end_ms > now and b.cancelled_at_ms is None
        ]
        return CarState(
            vid, None if odo is None else float(odo), vehicle.created_at_ms, last, conditions, bookings
        )

    def mark_false_alarm(self, user: UserPrincipal, vehicle_id: str, condition: str) -> dict[str, Any]:
        """Mark a car's maintenance alert a false alarm: resolve it and raise that detector's thresholds."""
        self._accounts.vehicle_for(user, vehicle_id)
        if not can_resolve_by_hand(user):
            raise PermissionDeniedError(f"a {user.role.value} may not mark false alarms")
        found = [f for f in self._store.findings([vehicle_id]) if f.condition == condition]
        if not found:
            raise NotFoundError(f"no maintenance finding {condition!r} on {vehicle_id}")
        detector = found[0].detector
        resolved = self._alerts.resolve_external(vehicle_id, SOURCE, condition)
        count = self._store.add_false_alarm(vehicle_id, detector, self._clock())
        from microfleet.intelligence.maintenance import threshold_factor

        return {
            "vehicle_id": vehicle_id, "detector": detector, "condition": condition, "false_alarms": count,
            "threshold_factor": threshold_factor(count),
            "alert_id": resolved.alert_id if resolved is not None else None,
        }  # fmt: skip

    def add_record_as(
        self, user: UserPrincipal, vehicle_id: str, item: str, done_at_ms: int, odometer_km: float | None,
        note: str = "",
    ) -> ServiceRecord:  # fmt: skip
        """Record service done on a car (its owner, its fleet's operator, an admin; not drivers)."""
        self._accounts.vehicle_for(user, vehicle_id)
        if user.role is Role.DRIVER:
            raise PermissionDeniedError("a driver may not record service")
        return self.add_record(vehicle_id, item, done_at_ms, odometer_km, note, user.user_id)

    def add_record(
        self, vehicle_id: str, item: str, done_at_ms: int, odometer_km: float | None, note: str = "",
        by: int | None = None,
    ) -> ServiceRecord:  # fmt: skip
        """Record service done (checked input)."""
        self._accounts.require_vehicle(vehicle_id)
        item = _item(item)
        if len(note) > MAX_NOTE_CHARS or "\x00" in note:  # PostgreSQL's text holds no NUL character
            raise InvalidInputError(f"a note is at most {MAX_NOTE_CHARS} characters, without NUL")
        if done_at_ms > self._clock() + DAY_MS:
            raise InvalidInputError("service cannot be recorded as done in the future")
        return self._store.add_record(ServiceRecord(0, vehicle_id, item, done_at_ms, odometer_km, note, by))

    def add_interval_as(
        self, user: UserPrincipal, fleet_id: str, item: str, every_km: float | None, every_days: float | None
    ) -> StoredInterval:
        """Set a fleet's interval item (its operator or an admin)."""
        self._require_fleet_operator(user, fleet_id)
        if every_km is None and every_days is None:
            raise InvalidInputError("an interval needs every_km, every_days or both")
        iv = StoredInterval(0, None, fleet_id, _item(item), every_km, every_days)
        return self._store.add_interval(iv, self._clock())

    def _require_fleet_operator(self, user: UserPrincipal, fleet_id: str) -> None:
        self._accounts.require_fleet(fleet_id)
        if not (user.role is Role.ADMIN or (user.role is Role.OPERATOR and user.fleet_id == fleet_id)):
            raise PermissionDeniedError("only the fleet's operator or an admin plans its service")

    def service_plan_for(
        self, user: UserPrincipal, fleet_id: str
    ) -> tuple[WeekPlan, list[VehicleMaintenance]]:
        """The fleet's week: which cars to pull in and when, and each car's due items."""
        self._require_fleet_operator(user, fleet_id)
        return self.service_plan(fleet_id)

    def service_plan(self, fleet_id: str) -> tuple[WeekPlan, list[VehicleMaintenance]]:
        """The fleet's week (no permission check: the CLI)."""
        self._accounts.require_fleet(fleet_id)
        cars = [v for v in self._accounts_all() if v.fleet_id == fleet_id]
        states, reports = [], []
        for v in cars:
            findings = self._store.findings([v.vehicle_id])
            state = self._car_state(v, findings)
            states.append((state, self._intervals(v)))
            reports.append(self._report(v))
        now = self._clock()
        # each car is planned with its own intervals (its own over its fleet's); the week's windows are shared
        plan = plan_week([s for s, _ in states], {s.vehicle_id: ivs for s, ivs in states}, now)
        return plan, reports


def _item(item: str) -> str:
    item = item.strip()
    if not item or len(item) > MAX_ITEM_CHARS or not item.isprintable():
        raise InvalidInputError(f"an item is printable text of 1-{MAX_ITEM_CHARS} characters")
    return item


class MaintenanceWorker(PeriodicWorker):
    """Evaluates cars whose telemetry moved, every ``interval_s``, in a background thread."""

    def __init__(self, service: MaintenanceService, *, interval_s: float) -> None:
        super().__init__("maintenance", service.evaluate_due, interval_s=interval_s)


__all__ = ["DETECTORS", "MaintenanceService", "MaintenanceWorker"]
