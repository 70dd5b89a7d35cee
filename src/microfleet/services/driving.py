"""Driver scores as a use case: who drove which drive, their harsh events, speeding, score and energy.

A drive belongs to the driver whose booking (not cancelled) held the car when it started; a drive outside
every booking is nobody's (an owner's own car) and is counted as unattributed. Nothing is stored: scores
are computed on request from the derived drives and the stored telemetry (docs/driver-score.md).

Who sees what: a driver sees only their own score and the events of drives in their own bookings; an
operator sees the drivers of their own fleet; an admin sees any fleet. A driver's energy factor is taken
against every driver of the cars they booked, but only their own row is returned.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

import numpy as np
import numpy.typing as npt

from microfleet.domain.access import Role, UserPrincipal
from microfleet.domain.bookings import Booking
from microfleet.domain.drives import Drive
from microfleet.errors import InvalidInputError, NotFoundError, PermissionDeniedError
from microfleet.intelligence.driver_energy import (
    DriveEnergy,
    count_stops,
    traction_kwh,
)
from microfleet.intelligence.driving import (
    NO_FACTORS,
    DriveSamples,
    HarshEvent,
    HarshThresholds,
    SafetyFactors,
    harsh_events,
    safety_factors,
    safety_score,
)
from microfleet.intelligence.speeding import NO_SPEEDING, SpeedingReport, SpeedLimitMap, speeding
from microfleet.services.accounts import AccountService
from microfleet.services.driver_scores import DriverScore, learning, scores

F64 = npt.NDArray[np.float64]
DAY_MS: Final = 86_400_000
MAX_DAYS: Final = 90
MAX_DRIVES_PER_VEHICLE: Final = 2_000
# A drive is assessed for harsh events only when most of it came at 1 Hz-like cadence (samples ≤ 2 s
# apart): at a 5 s cadence a 3 s braking is averaged away, and "no harsh events" would be a false comfort.
MIN_ASSESSED_SHARE: Final = 0.5
UTC_OFFSET_H: Final = 8  # the rush hours of the energy controls are China Standard Time (the shipped city)


@dataclass(frozen=True, slots=True)
class DriveSignals:
    """A window of one car's telemetry as columns: what driver scores read (NaN = not sent)."""

    ts_ms: npt.NDArray[np.int64]
    speed_kmh: F64
    lat_deg: F64
    lon_deg: F64
    heading_deg: F64
    pack_voltage_v: F64
    pack_current_a: F64
    ambient_temp_c: F64

    def between(self, start_ms: int, end_ms: int) -> DriveSignals:
        """The samples in ``[start_ms, end_ms]``."""
        a, b = np.searchsorted(self.ts_ms, [start_ms, end_ms + 1])
        return DriveSignals(*(getattr(self, f)[a:b] for f in self.__slots__))


class DriveSignalsPort(Protocol):
    """Stored telemetry of one car over a window (``microfleet.store.drive_signals.DriveSignalStore``)."""

    def signals(self, vehicle_id: str, from_ms: int, to_ms: int) -> DriveSignals:
        """The car's records in ``[from_ms, to_ms)`` in time order."""
        ...


class DrivesPort(Protocol):
    """Derived drives (``microfleet.store.history.HistoryStore``)."""

    def drives(self, vehicle_id: str, from_ms: int, to_ms: int, limit: int) -> list[Drive]:
        """Drives that started in ``[from_ms, to_ms)``, oldest first."""
        ...


class BookingsPort(Protocol):
    """Bookings (``microfleet.store.commands_store.BookingStore``)."""

    def search(
        self, *, vehicle_ids: Sequence[str] | None, user_id: int | None, include_cancelled: bool
    ) -> list[Booking]:
        """Bookings of these vehicles (all if None) and of this user (any if None), by start."""
        ...


class SpeedLimitsPort(Protocol):
    """The roads' speed limits (``microfleet.store.osm_roads.OsmSpeedLimits``)."""

    def speed_limit_map(self) -> SpeedLimitMap:
        """The map of limits, built once."""
        ...


@dataclass(frozen=True, slots=True)
class DriveAssessment:
    """One drive as driver scores see it: its events, Tesla factors, speeding and energy."""

    vehicle_id: str
    start_ts_ms: int
    end_ts_ms: int
    driver: str | None
    distance_km: float
    assessed: bool  # enough samples ≤ 2 s apart to judge harsh events
    note: str
    events: list[HarshEvent]
    hard_braking_pct: float
    aggressive_turning_pct: float
    safety_score: float | None
    speeding_share: float | None
    max_speed_over_limit_kmh: float
    traction_kwh: float | None
    factors: SafetyFactors = field(repr=False, default=NO_FACTORS)
    speeding_report: SpeedingReport = field(repr=False, default=NO_SPEEDING)
    energy: DriveEnergy | None = field(repr=False, default=None)


@dataclass(frozen=True, slots=True)
class FleetDriverScores:
    """A fleet's drivers over a period, and how many drives belonged to no booking."""

    fleet_id: str
    from_ms: int
    to_ms: int
    drivers: list[DriverScore]
    unattributed_drives: int


class DrivingService:
    """Harsh events, speeding, Tesla-formula safety scores and energy factors, for whoever may see them."""

    def __init__(
        self,
        signals: DriveSignalsPort,
        drives: DrivesPort,
        bookings: BookingsPort,
        limits: SpeedLimitsPort,
        accounts: AccountService,
        clock: Callable[[], int],
        thresholds: HarshThresholds | None = None,
    ) -> None:
        self._signals = signals
        self._drives = drives
        self._bookings = bookings
        self._limits = limits
        self._accounts = accounts
        self._clock = clock
        self._th = thresholds or HarshThresholds()

    def _window(self, days: int) -> tuple[int, int]:
        if not 1 <= days <= MAX_DAYS:
            raise InvalidInputError(f"days must be within 1..{MAX_DAYS}, got {days}")
        now = self._clock()
        return now - days * DAY_MS, now

    def fleet_scores_for(self, user: UserPrincipal, fleet_id: str, days: int = 30) -> FleetDriverScores:
        """A fleet's driver scores: its operator or an admin (others 403; an unknown fleet 404)."""
        self._accounts.require_fleet(fleet_id)
        if not (user.role is Role.ADMIN or (user.role is Role.OPERATOR and user.fleet_id == fleet_id)):
            raise PermissionDeniedError("only the fleet's operator or an admin sees its driver scores")
        return self.fleet_scores(fleet_id, days, self._accounts.fleet_vehicle_ids(user, fleet_id))

    def fleet_scores(self, fleet_id: str, days: int, vehicle_ids: Sequence[str]) -> FleetDriverScores:
        """Every driver of these cars over the last ``days`` (the installation's administrator, the CLI)."""
        from_ms, to_ms = self._window(days)
        bookings = self._bookings.search(vehicle_ids=list(vehicle_ids), user_id=None, include_cancelled=False)
        assessed = self._assess(vehicle_ids, bookings, from_ms, to_ms)
        unattributed = sum(1 for a in assessed if a.driver is None)
        return FleetDriverScores(fleet_id, from_ms, to_ms, scores(assessed), unattributed)

    def my_score(self, user: UserPrincipal, days: int = 30) -> DriverScore:
        """The caller's own score over their bookings' drives (energy against the same cars' drivers)."""
        from_ms, to_ms = self._window(days)
        mine = self._bookings.search(vehicle_ids=None, user_id=user.user_id, include_cancelled=False)
        cars = sorted({b.vehicle_id for b in mine if b.end_ms > from_ms and b.start_ms < to_ms})
        bookings = (
            self._bookings.search(vehicle_ids=cars, user_id=None, include_cancelled=False) if cars else []
        )
        assessed = self._assess(cars, bookings, from_ms, to_ms)
        for score in scores(assessed):
            if score.driver == user.name:
                return score
        return learning(user.name, [], "learning: no drive in your bookings yet; 5 more drives needed")

    def drive_events(self, user: UserPrincipal, vehicle_id: str, start_ts_ms: int) -> DriveAssessment:
        """One drive's assessment: for whoever sees the car, but a driver only for their own bookings."""
        self._accounts.vehicle_for(user, vehicle_id)
        drive = next(iter(self._drives.drives(vehicle_id, start_ts_ms, start_ts_ms + 1, 1)), None)
        if drive is None:
            raise NotFoundError(f"no drive of {vehicle_id!r} starts at {start_ts_ms}")
        bookings = self._bookings.search(vehicle_ids=[vehicle_id], user_id=None, include_cancelled=False)
        driver = _driver_of(drive, bookings)
        if user.role is Role.DRIVER and driver != user.name:
            raise NotFoundError(f"no drive of {vehicle_id!r} in your bookings starts at {start_ts_ms}")
        signals = self._signals.signals(vehicle_id, drive.start_ts_ms, drive.end_ts_ms + 1)
        model = self._accounts.require_vehicle(vehicle_id).model_id or vehicle_id
        return self._assess_drive(drive, driver, model, signals, self._limits.speed_limit_map())

    def _assess(
        self, vehicle_ids: Sequence[str], bookings: list[Booking], from_ms: int, to_ms: int
    ) -> list[DriveAssessment]:
        limits = self._limits.speed_limit_map()
        out: list[DriveAssessment] = []
        for vehicle_id in vehicle_ids:
            drives = self._drives.drives(vehicle_id, from_ms, to_ms, MAX_DRIVES_PER_VEHICLE)
            if not drives:
                continue
            own = [b for b in bookings if b.vehicle_id == vehicle_id]
            model = self._accounts.require_vehicle(vehicle_id).model_id or vehicle_id
            window = self._signals.signals(vehicle_id, drives[0].start_ts_ms, drives[-1].end_ts_ms + 1)
            for drive in drives:
                signals = window.between(drive.start_ts_ms, drive.end_ts_ms)
                out.append(self._assess_drive(drive, _driver_of(drive, own), model, signals, limits))
        return out

    def _assess_drive(
        self, drive: Drive, driver: str | None, model_id: str, sig: DriveSignals, limits: SpeedLimitMap
    ) -> DriveAssessment:
        samples = DriveSamples(sig.ts_ms, sig.speed_kmh, sig.lat_deg, sig.lon_deg, sig.heading_deg)
        km = drive.distance_odometer_km if drive.distance_odometer_km is not None else drive.distance_gps_km
        factors = safety_factors(samples, km, self._th)
        assessed = drive.duration_s > 0 and factors.assessed_s >= MIN_ASSESSED_SHARE * drive.duration_s
        note = (
            ""
            if assessed
            else (
                f"not assessed for harsh events: {factors.assessed_s:.0f} of {drive.duration_s:.0f} s "
                f"came with samples at most {self._th.max_gap_s:g} s apart (harsh events need 1 Hz data)"
            )
        )
        factors = factors if assessed else SafetyFactors(0.0, 0.0, 0.0, 0.0, 0.0, km)
        report = speeding(samples, limits)
        power_kw = sig.pack_voltage_v * sig.pack_current_a / 1000.0
        kwh = traction_kwh(power_kw, sig.speed_kmh, sig.ts_ms) if np.isfinite(power_kw).any() else math.nan
        allowed = limits.allowed_kmh(sig.lat_deg, sig.lon_deg)
        ok = np.isfinite(allowed)
        ambient = sig.ambient_temp_c[np.isfinite(sig.ambient_temp_c)]
        energy = None
        if driver is not None and math.isfinite(kwh):
            energy = DriveEnergy(
                driver=driver,
                model_id=model_id,
                distance_km=km,
                energy_kwh=kwh,
                ambient_temp_c=float(ambient.mean()) if ambient.size else math.nan,
                road_speed_kmh=float(allowed[ok].mean()) if ok.any() else 30.0,
                stops=count_stops(sig.speed_kmh, sig.ts_ms),
                local_hour=int((drive.start_ts_ms // 3_600_000 + UTC_OFFSET_H) % 24),
            )
        return DriveAssessment(
            vehicle_id=drive.vehicle_id,
            start_ts_ms=drive.start_ts_ms,
            end_ts_ms=drive.end_ts_ms,
            driver=driver,
            distance_km=km,
            assessed=assessed,
            note=note,
            events=harsh_events(samples, self._th) if assessed else [],
            hard_braking_pct=factors.hard_braking_pct,
            aggressive_turning_pct=factors.aggressive_turning_pct,
            safety_score=safety_score(factors) if assessed else None,
            speeding_share=report.speeding_share,
            max_speed_over_limit_kmh=report.max_excess_kmh,
            traction_kwh=kwh if math.isfinite(kwh) else None,
            factors=factors,
            speeding_report=report,
            energy=energy,
        )


def _driver_of(drive: Drive, bookings: Sequence[Booking]) -> str | None:
    """The driver whose booking held the car when the drive started, if any."""
    for b in bookings:
        if b.vehicle_id == drive.vehicle_id and b.active_at(drive.start_ts_ms):
            return b.user_name
    return None
