"""Service planning: interval and condition items per car, and which cars to pull in this week.

Interval items are every N km or days (as Traccar's maintenance); condition items come from the detectors.
The week's plan places each pressing car where it disturbs the fewest booking minutes.

Pure: the service gathers intervals, records, odometers, findings and bookings; this module decides.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

DAY_MS: Final = 86_400_000
HOUR_MS: Final = 3_600_000
# Defaults Microfleet offers when a fleet has set no intervals. Assumed typical small-EV schedules: the
# Wuling Hongguang Mini EV's maintenance manual asks for a check every 10,000 km or 12 months (SAIC-GM-Wuling
# owner's manual, maintenance schedule); tyre pressure monthly (NHTSA "TireWise": check once a month).
DEFAULT_INTERVALS: Final = (
    ("general inspection", 10_000.0, 365.0),
    ("tyre pressure check", None, 30.0),
    ("brake fluid", None, 730.0),
)
DUE_SOON_DAYS: Final = 7.0
DUE_SOON_KM: Final = 500.0
SEVERITY_RANK: Final = {"info": 0, "warning": 1, "critical": 2}


@dataclass(frozen=True, slots=True)
class Interval:
    """An interval item: every ``every_km`` km and/or every ``every_days`` days, whichever comes first."""

    item: str
    every_km: float | None
    every_days: float | None


@dataclass(frozen=True, slots=True)
class LastService:
    """When an item was last done (None: never recorded; counted from the car's first record)."""

    done_at_ms: int
    odometer_km: float | None


@dataclass(frozen=True, slots=True)
class ConditionItem:
    """A detector's suspected fault to service: its detector, condition, severity, reason and action."""

    detector: str
    condition: str
    severity: str
    reason: str
    action: str


@dataclass(frozen=True, slots=True)
class DueItem:
    """One thing to do on a car: an interval item or a condition item, how soon, and why."""

    item: str
    kind: str  # "interval" or "condition"
    severity: str
    due_in_days: float | None
    due_in_km: float | None
    reason: str

    @property
    def pressing(self) -> bool:
        """Due within a week (or 500 km), overdue, or a suspected fault of warning or critical severity."""
        if self.kind == "condition":
            return SEVERITY_RANK.get(self.severity, 0) >= 1
        days = self.due_in_days if self.due_in_days is not None else float("inf")
        km = self.due_in_km if self.due_in_km is not None else float("inf")
        return days <= DUE_SOON_DAYS or km <= DUE_SOON_KM


@dataclass(frozen=True)
class CarState:
    """What the planner knows of a car: odometer now, first record, last services, findings, bookings."""

    vehicle_id: str
    odometer_km: float | None
    first_seen_ms: int
    last_service: Mapping[str, LastService] = field(default_factory=dict)
    conditions: Sequence[ConditionItem] = ()
    bookings: Sequence[tuple[int, int]] = ()  # (start_ms, end_ms), not cancelled


def due_items(car: CarState, intervals: Sequence[Interval], now_ms: int) -> list[DueItem]:
    """The car's interval and condition items, most urgent first."""
    out: list[DueItem] = []
    for iv in intervals:
        last = car.last_service.get(iv.item)
        since_ms = last.done_at_ms if last else car.first_seen_ms
        days = None if iv.every_days is None else iv.every_days - (now_ms - since_ms) / DAY_MS
        km = None
        if iv.every_km is not None and car.odometer_km is not None:
            base = last.odometer_km if last and last.odometer_km is not None else None
            km = None if base is None else iv.every_km - (car.odometer_km - base)
        when = [f"{d:.0f} days" for d in [days] if d is not None] + [
            f"{k:.0f} km" for k in [km] if k is not None
        ]
        every = " / ".join(
            [f"every {iv.every_km:g} km" for _ in [0] if iv.every_km] + [f"every {iv.every_days:g} days"
                                                                       for _ in [0] if iv.every_days]
        )  # fmt: skip
        overdue = any(x is not None and x < 0 for x in (days, km))
        text = f"{iv.item} ({every}): " + ("overdue" if overdue else "due in " + " or ".join(when or ["?"]))
        out.append(DueItem(iv.item, "interval", "warning" if overdue else "info", days, km, text))
    for c in car.conditions:
        out.append(DueItem(f"{c.detector}: {c.action}", "condition", c.severity, None, None, c.reason))
    return sorted(out, key=_urgency)


def _urgency(d: DueItem) -> tuple[int, float]:
    rank = 3 if d.kind == "condition" and d.severity == "critical" else 2 if d.kind == "condition" else 1
    soon = min(x for x in (d.due_in_days, d.due_in_km and d.due_in_km / 50.0, float("inf")) if x is not None)
    return (-rank, soon)


@dataclass(frozen=True, slots=True)
class Visit:
    """A car pulled in: when, what for, and how many minutes of bookings it moves."""

    vehicle_id: str
    start_ms: int
    end_ms: int
    items: tuple[str, ...]
    disrupted_booking_min: float
    severity: str


@dataclass(frozen=True)
class WeekPlan:
    """Which cars to pull in this week, and the pressing cars left out (no workshop slot)."""

    visits: list[Visit]
    unplaced: list[str]


def plan_week(
    cars: Sequence[CarState], intervals: Sequence[Interval] | Mapping[str, Sequence[Interval]], now_ms: int,
    *, visit_h: float = 3.0, workshop_open_h: tuple[int, int] = (8, 18), slots_per_window: int = 1,
) -> WeekPlan:  # fmt: skip
    """Place each pressing car in the week's workshop window that disturbs the fewest booking minutes.

    Earlier wins a tie; the most urgent cars choose first. Windows start on the hour (UTC).
    """
    first_day = now_ms // DAY_MS * DAY_MS
    hours = range(workshop_open_h[0], workshop_open_h[1] - int(visit_h) + 1)
    every = [first_day + d * DAY_MS + h * HOUR_MS for d in range(8) for h in hours]
    starts = [s for s in every if now_ms <= s < now_ms + 7 * DAY_MS]
    length = int(visit_h * HOUR_MS)
    wanted = []
    for car in cars:
        ivs = intervals.get(car.vehicle_id, ()) if isinstance(intervals, Mapping) else intervals
        items = [d for d in due_items(car, ivs, now_ms) if d.pressing]
        if items:
            wanted.append((_urgency(items[0]), car, items))
    wanted.sort(key=lambda w: w[0])
    taken: dict[int, int] = {}
    visits, unplaced = [], []
    for _, car, items in wanted:
        best: tuple[float, int] | None = None
        for s in starts:
            if taken.get(s, 0) >= slots_per_window:
                continue
            lost = sum(max(0, min(e, s + length) - max(b, s)) for b, e in car.bookings) / 60_000
            if best is None or lost < best[0]:
                best = (lost, s)
        if best is None:
            unplaced.append(car.vehicle_id)
            continue
        taken[best[1]] = taken.get(best[1], 0) + 1
        sev = max((i.severity for i in items), key=lambda s: SEVERITY_RANK.get(s, 0))
        visits.append(
            Visit(car.vehicle_id, best[1], best[1] + length, tuple(i.item for i in items), best[0], sev)
        )
    return WeekPlan(sorted(visits, key=lambda v: v.start_ms), unplaced)


def default_intervals() -> list[Interval]:
    """The intervals offered when a fleet has set none."""
    return [Interval(item, km, days) for item, km, days in DEFAULT_INTERVALS]
