"""The alert rules as pure functions of a car's facts; quiet hours, subscriptions and the retry back-off."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from microfleet.domain.access import Role, UserPrincipal
from microfleet.domain.alert_delivery import (
    MAX_ATTEMPTS,
    QuietHours,
    Subscription,
    parse_kinds,
    retry_at,
)
from microfleet.domain.alerts import (
    PARAMETERS,
    RULE_KINDS,
    AlertKind,
    AlertRule,
    Severity,
    VehicleFacts,
    can_resolve_by_hand,
    can_write_fleet_rules,
    can_write_vehicle_rules,
    evaluate,
    rule_params,
)
from microfleet.domain.places import PlaceEntered, PlaceExited
from microfleet.domain.telemetry import TelemetryRecord
from microfleet.errors import InvalidInputError

T0 = 1_764_000_000_000  # 2025-11-24T16:00:00Z
MIN = 60_000


def rule(kind: AlertKind, **params: Any) -> AlertRule:
    return AlertRule(1, kind, Severity.WARNING, rule_params(kind, params), vehicle_id="car-a")


def facts(
    now_ms: int, latest: dict[str, Any], recent: list[TelemetryRecord] = (), **more: Any
) -> VehicleFacts:  # type: ignore[assignment]
    last = max((r.ts_ms for r in recent), default=T0)
    return VehicleFacts(
        "car-a", now_ms, last, {k: (v, last) for k, v in latest.items()}, recent=recent, **more
    )


def rec(ts_ms: int, **signals: Any) -> TelemetryRecord:
    return TelemetryRecord(vehicle_id="car-a", ts_ms=ts_ms, **signals)


def test_every_rule_kind_has_parameters_with_reasons() -> None:
    assert set(PARAMETERS) == set(RULE_KINDS)
    for kind, params in PARAMETERS.items():
        for p in params:
            assert p.reason, (kind, p.name)
            if p.low is not None:
                assert p.high is not None and p.low <= float(p.default or 0) <= p.high, (kind, p.name)


def test_rule_parameters_are_checked() -> None:
    assert rule_params(AlertKind.SOC_LOW, {}) == {"below_pct": 20.0, "clear_margin_pct": 2.0}
    with pytest.raises(InvalidInputError, match="within 1 … 99"):
        rule_params(AlertKind.SOC_LOW, {"below_pct": 120})
    with pytest.raises(InvalidInputError, match="not colour"):
        rule_params(AlertKind.SOC_LOW, {"colour": 1})
    with pytest.raises(InvalidInputError, match="must be a number"):
        rule_params(AlertKind.SOC_LOW, {"below_pct": "low"})
    with pytest.raises(InvalidInputError, match="needs place_id"):
        rule_params(AlertKind.GEOFENCE_ENTER, {})
    with pytest.raises(InvalidInputError, match="raised by models"):
        rule_params(AlertKind.EXTERNAL, {})


def test_left_unlocked_counts_from_the_first_unlocked_record() -> None:
    recent = [
        rec(T0, locked=True, ignition_on=False),
        rec(T0 + MIN, locked=False, ignition_on=False),
        rec(T0 + 2 * MIN, speed_kmh=0.0),  # says nothing about the lock: neither breaks nor restarts the run
        rec(T0 + 3 * MIN, locked=False),
    ]
    latest = {"locked": False, "ignition_on": False, "speed_kmh": 0.0}
    early = evaluate(rule(AlertKind.LEFT_UNLOCKED, minutes=10), facts(T0 + 5 * MIN, latest, recent))
    assert (early.findings, early.recheck_at_ms) == ((), T0 + 11 * MIN)
    due = evaluate(rule(AlertKind.LEFT_UNLOCKED, minutes=10), facts(T0 + 11 * MIN, latest, recent))
    assert [f.condition for f in due.findings] == ["unlocked"] and due.findings[0].observed_ms == T0 + MIN
    driving = evaluate(rule(AlertKind.LEFT_UNLOCKED), facts(T0 + 60 * MIN, {**latest, "gear": "D"}, recent))
    assert (driving.findings, driving.settled) == ((), True)
    unknown = evaluate(rule(AlertKind.LEFT_UNLOCKED), facts(T0 + 60 * MIN, {"speed_kmh": 0.0}))
    assert (unknown.findings, unknown.settled) == ((), False)


def test_charging_stopped_needs_a_charge_before_the_stop_and_respects_the_limit() -> None:
    recent = [
        rec(T0, charger_connected=True, charger_power_kw=3.3, soc_pct=70.0),
        rec(T0 + MIN, charger_connected=True, charger_power_kw=0.0, soc_pct=78.0),
    ]
    latest = {"charger_connected": True, "charger_power_kw": 0.0, "soc_pct": 78.0}
    stopped = evaluate(rule(AlertKind.CHARGING_STOPPED), facts(T0 + 7 * MIN, latest, recent))
    assert [f.condition for f in stopped.findings] == ["stopped"]
    at_limit = facts(T0 + 7 * MIN, latest, recent, charge_limit_pct=80.0)
    assert evaluate(rule(AlertKind.CHARGING_STOPPED), at_limit).settled  # 78 % is within 2 % of 80 %
    never = evaluate(rule(AlertKind.CHARGING_STOPPED), facts(T0 + 7 * MIN, latest, recent[1:]))
    assert (never.findings, never.settled) == ((), False)


def test_soc_low_and_aux_battery_low_have_hysteresis() -> None:
    soc = rule(AlertKind.SOC_LOW, below_pct=20)
    assert evaluate(soc, facts(T0, {"soc_pct": 19.9})).findings
    assert not evaluate(soc, facts(T0, {"soc_pct": 21.0})).settled
    assert evaluate(soc, facts(T0, {"soc_pct": 22.0})).settled
    aux = rule(AlertKind.AUX_BATTERY_LOW)
    assert evaluate(aux, facts(T0, {"aux_battery_v": 11.7})).findings
    assert not evaluate(aux, facts(T0, {"aux_battery_v": 11.9})).settled
    assert evaluate(aux, facts(T0, {"aux_battery_v": 12.2})).settled


def test_offline_waits_longer_for_a_parked_car() -> None:
    parked = facts(T0 + 60 * MIN, {"speed_kmh": 0.0, "ignition_on": False})
    charging = facts(T0 + 60 * MIN, {"charger_power_kw": 3.0, "ignition_on": False})
    assert evaluate(rule(AlertKind.OFFLINE), parked).recheck_at_ms == T0 + 1440 * MIN
    assert [f.condition for f in evaluate(rule(AlertKind.OFFLINE), charging).findings] == ["silent"]
    never = VehicleFacts("car-a", T0, None, {})
    assert evaluate(rule(AlertKind.OFFLINE), never).findings == ()


def test_geofence_takes_the_last_crossing_of_its_place() -> None:
    enter = rule(AlertKind.GEOFENCE_ENTER, place_id="home")
    events = [PlaceExited("car-a", "home", T0), PlaceEntered("car-a", "home", T0 + MIN)]
    assert [f.condition for f in evaluate(enter, facts(T0, {}, place_events=events)).findings] == [
        "place:home"
    ]
    out = evaluate(enter, facts(T0, {}, place_events=events[:1]))
    assert (out.findings, out.settled) == ((), True)
    other = [PlaceEntered("car-a", "work", T0)]
    assert not evaluate(enter, facts(T0, {}, place_events=other, inside=frozenset({"home"}))).settled
    assert evaluate(enter, facts(T0, {}, place_events=other, inside=frozenset({"work"}))).settled


def test_dtc_raises_one_alert_per_code_with_the_prefix() -> None:
    found = evaluate(rule(AlertKind.DTC, prefix="P0A"), facts(T0, {"dtc_codes": ["P0A80", "U0100", "P0AA6"]}))
    assert [f.condition for f in found.findings] == ["code:P0A80", "code:P0AA6"] and found.settled
    assert not evaluate(rule(AlertKind.DTC), facts(T0, {})).settled


def test_who_may_set_rules_and_resolve() -> None:
    owner, driver = UserPrincipal(1, "ann", Role.OWNER, None), UserPrincipal(2, "dan", Role.DRIVER, None)
    operator = UserPrincipal(3, "olga", Role.OPERATOR, "city")
    assert can_write_vehicle_rules(owner) and not can_write_vehicle_rules(driver)
    assert can_write_fleet_rules(operator, "city") and not can_write_fleet_rules(operator, "bus")
    assert not can_write_fleet_rules(owner, "city")
    assert can_resolve_by_hand(owner) and not can_resolve_by_hand(driver)


# --- quiet hours and subscriptions


def utc_ms(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=dt.UTC).timestamp() * 1000)


def test_quiet_hours_wrap_past_midnight_in_their_time_zone() -> None:
    night = QuietHours("22:00", "07:00", "Europe/Paris")
    assert night.holds(utc_ms(2025, 11, 24, 21, 30))  # 22:30 in Paris (UTC+1)
    assert not night.holds(utc_ms(2025, 11, 24, 20, 30))  # 21:30
    assert night.ends_after(utc_ms(2025, 11, 24, 21, 30)) == utc_ms(2025, 11, 25, 6, 0)
    assert night.ends_after(utc_ms(2025, 11, 24, 12, 0)) == utc_ms(2025, 11, 24, 12, 0)


def test_quiet_hours_end_at_local_time_across_a_daylight_saving_change() -> None:
    # Paris moves to summer time on 2026-03-29 at 02:00: 07:00 that morning is 05:00 UTC, not 06:00.
    night = QuietHours("22:00", "07:00", "Europe/Paris")
    assert night.ends_after(utc_ms(2026, 3, 28, 23, 0)) == utc_ms(2026, 3, 29, 5, 0)


@pytest.mark.parametrize(
    ("start", "end", "zone", "message"),
    [
        ("7:00", "08:00", "UTC", "not HH:MM"),
        ("08:00", "08:00", "UTC", "the same"),
        ("22:00", "07:00", "Mars/Olympus", "IANA"),
    ],
)
def test_bad_quiet_hours_are_refused(start: str, end: str, zone: str, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        QuietHours(start, end, zone)


def test_critical_alerts_go_through_quiet_hours_unless_the_subscription_says_otherwise() -> None:
    quiet = QuietHours("00:00", "23:59", "UTC")
    now = utc_ms(2025, 11, 24, 12, 0)
    sub = Subscription(1, 1, "json://x", quiet=quiet)
    assert sub.send_at(Severity.CRITICAL, now) == now
    assert sub.send_at(Severity.WARNING, now) == utc_ms(2025, 11, 24, 23, 59)
    strict = Subscription(1, 1, "json://x", quiet=quiet, critical_bypasses_quiet=False)
    assert strict.send_at(Severity.CRITICAL, now) > now


def test_a_subscription_filters_by_least_severity_and_kinds() -> None:
    sub = Subscription(1, 1, "json://x", min_severity=Severity.WARNING, kinds=parse_kinds(["soc_low"]))
    assert sub.wants(AlertKind.SOC_LOW, Severity.CRITICAL)
    assert not sub.wants(AlertKind.SOC_LOW, Severity.INFO)
    assert not sub.wants(AlertKind.DTC, Severity.CRITICAL)
    with pytest.raises(InvalidInputError, match="known kinds"):
        parse_kinds(["flat_tyre"])


def test_retries_double_to_an_hour_and_stop_after_the_last_attempt() -> None:
    waits = [retry_at(0, n) for n in range(1, MAX_ATTEMPTS + 1)]
    assert waits[:4] == [30_000, 60_000, 120_000, 240_000]
    assert waits[MAX_ATTEMPTS - 2] == 3_600_000 and waits[-1] is None
