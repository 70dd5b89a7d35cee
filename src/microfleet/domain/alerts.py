"""Alerts: rules over a vehicle's latest state, its recent telemetry and its geofence events.

A rule has a kind, a severity, parameters (each with a default and its reason in :data:`PARAMETERS`) and a
scope: one vehicle, one fleet, or every vehicle. :func:`evaluate` looks at one vehicle's
:class:`VehicleFacts` under one rule and says which conditions hold now (each raises, or refreshes, one
open alert: one per rule, vehicle and condition) and whether every other open alert of the rule on that car
has cleared (auto-resolve). Time-based rules also say when to look again if nothing changes.

Pure: no clock (``now_ms`` is a fact), no I/O.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from microfleet.domain.access import Role, UserPrincipal
from microfleet.domain.places import PlaceEntered, PlaceExited
from microfleet.domain.telemetry import TelemetryRecord
from microfleet.errors import InvalidInputError

MINUTE_MS: Final = 60_000


class AlertKind(enum.StrEnum):
    """What an alert is about."""

    LEFT_UNLOCKED = "left_unlocked"
    CHARGING_STOPPED = "charging_stopped"
    SOC_LOW = "soc_low"
    OFFLINE = "offline"
    GEOFENCE_ENTER = "geofence_enter"
    GEOFENCE_EXIT = "geofence_exit"
    AUX_BATTERY_LOW = "aux_battery_low"
    DTC = "dtc"
    EXTERNAL = "external"  # raised by a later model (battery, maintenance) through the service


RULE_KINDS: Final = tuple(k for k in AlertKind if k is not AlertKind.EXTERNAL)


class Severity(enum.StrEnum):
    """How urgent an alert is; ordered info < warning < critical."""

    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """0 for info, 1 for warning, 2 for critical."""
        return list(Severity).index(self)


class AlertStatus(enum.StrEnum):
    """Where an alert is in its lifecycle: raised → acknowledged → resolved."""

    RAISED = "raised"
    ACKNOWLEDGED = "acknowledged"
    RESOLVED = "resolved"


@dataclass(frozen=True, slots=True)
class Parameter:
    """One parameter of a rule kind: its default, its bounds and why the default is what it is."""

    name: str
    default: float | str | None
    low: float | None = None
    high: float | None = None
    reason: str = ""


# Every default below is Microfleet's choice unless a source is named; docs/alerts.md repeats them.
PARAMETERS: Final[Mapping[AlertKind, tuple[Parameter, ...]]] = {
    AlertKind.LEFT_UNLOCKED: (
        Parameter(
            "minutes",
            10.0,
            1,
            1440,
            "long enough not to fire while a car is loaded or unloaded at the kerb, short enough to "
            "walk back to it",
        ),
    ),
    AlertKind.CHARGING_STOPPED: (
        Parameter(
            "minutes",
            5.0,
            1,
            240,
            "an AC charge pauses for seconds when the charger renegotiates its current; five minutes "
            "at no power is a stop",
        ),
        Parameter(
            "power_kw_below",
            0.1,
            0,
            50,
            "'about zero': below the smallest charging power of a small EV (a 1.4 kW granny cable) by "
            "a factor of ten, above a sensor's zero noise",
        ),
        Parameter(
            "soc_margin_pct",
            2.0,
            0,
            20,
            "a charge that ends within 2 % of its limit finished (BMSs taper and round the last %)",
        ),
    ),
    AlertKind.SOC_LOW: (
        Parameter(
            "below_pct",
            20.0,
            1,
            99,
            "20 % of a small city EV (27-40 kWh usable) is 30-60 km: enough to reach a charger in "
            "town, not a day's driving",
        ),
        Parameter("clear_margin_pct", 2.0, 0, 20, "hysteresis: SoC noise around the threshold never flaps"),
    ),
    AlertKind.OFFLINE: (
        Parameter(
            "minutes",
            15.0,
            1,
            10_080,
            "a car that was driving or charging sends every few seconds (the twin: every 5 s); 15 "
            "minutes of silence is more than a tunnel or a car park without coverage",
        ),
        Parameter(
            "parked_minutes",
            1440.0,
            1,
            43_200,
            "a parked car sleeps and may send nothing for hours; a day without any record is offline",
        ),
    ),
    AlertKind.GEOFENCE_ENTER: (Parameter("place_id", None, reason="the place to watch (required)"),),
    AlertKind.GEOFENCE_EXIT: (Parameter("place_id", None, reason="the place to watch (required)"),),
    AlertKind.AUX_BATTERY_LOW: (
        Parameter(
            "below_v",
            11.8,
            8,
            14,
            "a lead-acid 12 V battery at rest reads about 11.8 V when nearly flat (12.6-12.7 V full; "
            "Battery University BU-903); while the car is on, its DC-DC holds it above 13 V",
        ),
        Parameter("clear_margin_v", 0.3, 0, 2, "hysteresis: a cold morning's dip never flaps"),
    ),
    AlertKind.DTC: (
        Parameter("prefix", "", reason="only codes starting with this (e.g. 'P0A'); empty: every code"),
    ),
}

# A charge limit when the car has none set (through remote commands): charge to full.
DEFAULT_CHARGE_LIMIT_PCT: Final = 100.0
# Records a rule may read back from the newest, to find when a condition started (a drive sends every
# ~5 s: 200 records are 16 minutes of driving, hours of a parked car). Microfleet's choice.
RECENT_RECORDS: Final = 200
MAX_CONDITION_CHARS: Final = 200


@dataclass(frozen=True, slots=True)
class AlertRule:
    """A rule: which kind, how severe, its parameters and whom it applies to (vehicle, fleet or all)."""

    rule_id: int
    kind: AlertKind
    severity: Severity
    params: Mapping[str, float | str]
    vehicle_id: str | None = None
    fleet_id: str | None = None
    created_by: int | None = None
    created_at_ms: int = 0

    @property
    def scope(self) -> str:
        """'vehicle', 'fleet' or 'global'."""
        return "vehicle" if self.vehicle_id else "fleet" if self.fleet_id else "global"

    def number(self, name: str) -> float:
        """A numeric parameter (its default where the rule left it out)."""
        return float(self.params[name])


def rule_params(kind: AlertKind, given: Mapping[str, Any]) -> dict[str, float | str]:
    """A kind's parameters: the given ones checked against their bounds, defaults for the rest."""
    if kind is AlertKind.EXTERNAL:
        raise InvalidInputError("external alerts are raised by models, not by rules")
    known = {p.name: p for p in PARAMETERS[kind]}
    unknown = sorted(set(given) - set(known))
    if unknown:
        raise InvalidInputError(
            f"a {kind.value} rule takes {', '.join(sorted(known))}; not {', '.join(unknown)}"
        )
    out: dict[str, float | str] = {}
    for name, spec in known.items():
        value = given.get(name, spec.default)
        if spec.low is not None:
            if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
                raise InvalidInputError(f"{kind.value} {name} must be a number")
            if not spec.low <= float(value) <= (spec.high if spec.high is not None else float("inf")):
                raise InvalidInputError(f"{kind.value} {name} must be within {spec.low:g} … {spec.high:g}")
            out[name] = float(value)
        else:
            if value is None:
                raise InvalidInputError(f"a {kind.value} rule needs {name}")
            if not isinstance(value, str) or len(value) > 64 or not value.isprintable():
                raise InvalidInputError(
                    f"{kind.value} {name} must be printable text of at most 64 characters"
                )
            out[name] = value
    return out


# --- who may do what -------------------------------------------------------------------------------------

# Drivers only use a car: they see its alerts and acknowledge them, but neither set rules on it nor close
# alerts by hand (the same writers as places: domain.access).
_RULE_WRITERS: Final = frozenset({Role.OWNER, Role.OPERATOR, Role.ADMIN})


def can_write_vehicle_rules(user: UserPrincipal) -> bool:
    """Tell whether a user may create or delete rules of a vehicle they see (not drivers)."""
    return user.role in _RULE_WRITERS


def can_write_fleet_rules(user: UserPrincipal, fleet_id: str) -> bool:
    """Tell whether a user may create or delete a fleet's rules: its operator, or an admin."""
    return user.role is Role.ADMIN or (user.role is Role.OPERATOR and user.fleet_id == fleet_id)


def can_resolve_by_hand(user: UserPrincipal) -> bool:
    """Tell whether a user may resolve an alert of a vehicle they see by hand (not drivers)."""
    return user.role in _RULE_WRITERS


# --- what a rule looks at ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class VehicleFacts:
    """What one vehicle looks like now: its newest values, recent records and geofence events.

    ``latest`` maps a signal to ``(value, ts_ms)``; ``recent`` holds up to :data:`RECENT_RECORDS` newest
    records, oldest first; ``place_events`` are the enter/exit events since the last evaluation, in time
    order, and ``inside`` the places that hold its newest fix (None: no fix).
    """

    vehicle_id: str
    now_ms: int
    last_record_ms: int | None
    latest: Mapping[str, tuple[Any, int]]
    recent: Sequence[TelemetryRecord] = ()
    place_events: Sequence[PlaceEntered | PlaceExited] = ()
    inside: frozenset[str] | None = None
    charge_limit_pct: float = DEFAULT_CHARGE_LIMIT_PCT

    def value(self, signal: str) -> Any:
        """The newest value of a signal (None if never sent)."""
        found = self.latest.get(signal)
        return None if found is None else found[0]


@dataclass(frozen=True, slots=True)
class Finding:
    """A condition that holds: it raises an alert, or refreshes the open one with the same condition."""

    condition: str
    title: str
    detail: str
    observed_ms: int


@dataclass(frozen=True, slots=True)
class Evaluation:
    """One rule on one vehicle: what holds, whether the rest has cleared, when to look again."""

    findings: tuple[Finding, ...] = ()
    # True: every open alert of this rule on this car whose condition is not among the findings has
    # cleared (it is resolved); False: not known (no data), leave them open.
    settled: bool = False
    recheck_at_ms: int | None = None


def evaluate(rule: AlertRule, facts: VehicleFacts) -> Evaluation:
    """Evaluate one rule over one vehicle's facts."""
    return _RULES[rule.kind](rule, facts)


def _parked(facts: VehicleFacts) -> bool | None:
    """Whether no drive is in progress at the newest record (None: the car says nothing about it)."""
    ignition, speed, gear = facts.value("ignition_on"), facts.value("speed_kmh"), facts.value("gear")
    if ignition is None and speed is None and gear is None:
        return None
    moving = (speed or 0.0) > 0.5 or gear in ("D", "R")
    return not moving and ignition is not True


def _since(facts: VehicleFacts, holds: Any) -> int | None:
    """When the newest unbroken run of recent records for which ``holds(record)`` is true began.

    None if the newest record does not hold. Records that do not carry the signal (``holds`` returns None)
    neither break nor extend the run; where the run reaches the window's start, the window's first record
    is taken (the condition began then or earlier, so a timer never fires early).
    """
    start = None
    for record in reversed(facts.recent):
        verdict = holds(record)
        if verdict is None:
            continue
        if not verdict:
            break
        start = record.ts_ms
    return start


def _left_unlocked(rule: AlertRule, facts: VehicleFacts) -> Evaluation:
    locked, parked = facts.value("locked"), _parked(facts)
    if locked is None:
        return Evaluation()
    if locked or parked is False:
        return Evaluation(settled=True)
    since = _since(facts, lambda r: None if r.locked is None else not r.locked)
    if since is None:  # the window has no record of it: the latest value's own time
        since = facts.latest["locked"][1]
    due = since + round(rule.number("minutes") * MINUTE_MS)
    if facts.now_ms < due:
        return Evaluation(recheck_at_ms=due)
    minutes = (facts.now_ms - since) // MINUTE_MS
    finding = Finding("unlocked", "Left unlocked", f"unlocked and parked for {minutes} min", since)
    return Evaluation((finding,), settled=True)


def _charging_stopped(rule: AlertRule, facts: VehicleFacts) -> Evaluation:
    connected, power, soc = (facts.value(s) for s in ("charger_connected", "charger_power_kw", "soc_pct"))
    threshold = rule.number("power_kw_below")
    target = facts.charge_limit_pct - rule.number("soc_margin_pct")
    if connected is False or (power is not None and power > threshold) or (soc is not None and soc >= target):
        return Evaluation(settled=True)
    if connected is None or power is None or soc is None:
        return Evaluation()
    since = _since(facts, lambda r: None if r.charger_power_kw is None else r.charger_power_kw <= threshold)
    charged_before = any(
        r.charger_power_kw is not None
        and r.charger_power_kw > threshold
        and (since is None or r.ts_ms < since)
        for r in facts.recent
    )
    if since is None or not charged_before:  # plugged in but not charged yet (a timer): not a stop
        return Evaluation()
    due = since + round(rule.number("minutes") * MINUTE_MS)
    if facts.now_ms < due:
        return Evaluation(recheck_at_ms=due)
    detail = f"charging stopped at {soc:.0f} % with the limit at {facts.charge_limit_pct:.0f} %"
    return Evaluation((Finding("stopped", "Charging stopped early", detail, since),), settled=True)


def _soc_low(rule: AlertRule, facts: VehicleFacts) -> Evaluation:
    found = facts.latest.get("soc_pct")
    if found is None:
        return Evaluation()
    soc, ts_ms = float(found[0]), found[1]
    below = rule.number("below_pct")
    if soc < below:
        finding = Finding("low", "Battery low", f"state of charge {soc:.0f} % (below {below:g} %)", ts_ms)
        return Evaluation((finding,), settled=True)
    return Evaluation(settled=soc >= below + rule.number("clear_margin_pct"))


def _offline(rule: AlertRule, facts: VehicleFacts) -> Evaluation:
    if facts.last_record_ms is None:  # never heard from: nothing to miss yet
        return Evaluation()
    charging = (facts.value("charger_power_kw") or 0.0) > 0.0
    asleep = _parked(facts) is not False and not charging
    minutes = rule.number("parked_minutes" if asleep else "minutes")
    due = facts.last_record_ms + round(minutes * MINUTE_MS)
    if facts.now_ms < due:
        return Evaluation(settled=True, recheck_at_ms=due)
    silent_min = (facts.now_ms - facts.last_record_ms) // MINUTE_MS
    how = "parked" if asleep else "driving or charging"
    detail = f"no record for {silent_min} min; it was {how} when last heard from"
    return Evaluation((Finding("silent", "Offline", detail, facts.last_record_ms),), settled=True)


def _geofence(rule: AlertRule, facts: VehicleFacts) -> Evaluation:
    place_id = str(rule.params["place_id"])
    wanted = PlaceEntered if rule.kind is AlertKind.GEOFENCE_ENTER else PlaceExited
    mine = [e for e in facts.place_events if e.place_id == place_id]
    if mine:
        last = mine[-1]
        if isinstance(last, wanted):
            verb = "entered" if wanted is PlaceEntered else "left"
            finding = Finding(f"place:{place_id}", f"Place {verb}", f"{verb} place {place_id}", last.ts_ms)
            return Evaluation((finding,), settled=True)
        return Evaluation(settled=True)
    if facts.inside is None:
        return Evaluation()
    is_in = place_id in facts.inside
    return Evaluation(settled=is_in != (wanted is PlaceEntered))


def _aux_battery_low(rule: AlertRule, facts: VehicleFacts) -> Evaluation:
    found = facts.latest.get("aux_battery_v")
    if found is None:
        return Evaluation()
    volts, ts_ms = float(found[0]), found[1]
    below = rule.number("below_v")
    if volts < below:
        detail = f"12 V battery at {volts:.2f} V (below {below:g} V)"
        return Evaluation((Finding("low", "12 V battery low", detail, ts_ms),), settled=True)
    return Evaluation(settled=volts >= below + rule.number("clear_margin_v"))


def _dtc(rule: AlertRule, facts: VehicleFacts) -> Evaluation:
    found = facts.latest.get("dtc_codes")
    if found is None:
        return Evaluation()
    codes, ts_ms = found
    prefix = str(rule.params.get("prefix", ""))
    present = sorted({str(c) for c in codes or () if str(c).startswith(prefix)})
    findings = tuple(
        Finding(f"code:{c}", f"Fault code {c}", f"diagnostic trouble code {c} active", ts_ms) for c in present
    )
    return Evaluation(findings, settled=True)


_RULES: Final = {
    AlertKind.LEFT_UNLOCKED: _left_unlocked,
    AlertKind.CHARGING_STOPPED: _charging_stopped,
    AlertKind.SOC_LOW: _soc_low,
    AlertKind.OFFLINE: _offline,
    AlertKind.GEOFENCE_ENTER: _geofence,
    AlertKind.GEOFENCE_EXIT: _geofence,
    AlertKind.AUX_BATTERY_LOW: _aux_battery_low,
    AlertKind.DTC: _dtc,
}


def open_key(source: str, vehicle_id: str, condition: str) -> str:
    """The de-duplication key of an open alert: one per rule (or external source), vehicle and condition."""
    return f"{source}|{vehicle_id}|{condition}"


def rule_source(rule_id: int) -> str:
    """The source name of a rule's alerts (an external alert's source is the model's name)."""
    return f"rule:{rule_id}"


@dataclass(frozen=True, slots=True)
class Alert:
    """A raised alert and where it is in its lifecycle (``*_by``: a user id; None: Microfleet itself)."""

    alert_id: int
    source: str  # 'rule:<id>', or the name of the model that raised it (external)
    rule_id: int | None
    kind: AlertKind
    severity: Severity
    vehicle_id: str
    condition: str
    title: str
    detail: str
    status: AlertStatus
    raised_at_ms: int
    last_seen_ms: int
    occurrences: int = 1
    acknowledged_at_ms: int | None = None
    acknowledged_by: int | None = None
    resolved_at_ms: int | None = None
    resolved_by: int | None = None
