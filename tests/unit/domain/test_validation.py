"""The validator: each rejection reason from its rule, and nothing valid refused."""

from __future__ import annotations

import math

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from microfleet.domain.telemetry import SIGNALS, RejectionReason, TelemetryRecord
from microfleet.domain.validation import (
    Rejection,
    VehicleScope,
    check_context,
    check_item,
    find_lone_surrogate,
    storable_text,
)

NOW_MS = 1_764_000_000_000
BASE = {"vehicle_id": "car-1", "ts_ms": NOW_MS}
SCOPE = VehicleScope("car-1")


def judge(item: object) -> TelemetryRecord | Rejection:
    outcome = check_item(item, 0, "raw")
    if isinstance(outcome, Rejection):
        return outcome
    return check_context(outcome, 0, "raw", now_ms=NOW_MS, scope=SCOPE)


@pytest.mark.parametrize(
    ("item", "reason"),
    [
        ([1, 2], RejectionReason.NOT_AN_OBJECT),
        ({"ts_ms": NOW_MS}, RejectionReason.MISSING_FIELD),
        ({"vehicle_id": "car-1"}, RejectionReason.MISSING_FIELD),
        ({**BASE, "soc_pct": -0.1}, RejectionReason.OUT_OF_RANGE),
        ({**BASE, "soc_pct": 100.1}, RejectionReason.OUT_OF_RANGE),
        ({**BASE, "speed_kmh": 250.5}, RejectionReason.OUT_OF_RANGE),
        ({**BASE, "lat_deg": 90.01}, RejectionReason.OUT_OF_RANGE),
        ({**BASE, "lon_deg": -180.5}, RejectionReason.OUT_OF_RANGE),
        ({**BASE, "tyre_pressure_kpa": [230, 230, 230]}, RejectionReason.OUT_OF_RANGE),
        ({**BASE, "cell_voltage_min_v": 3.4, "cell_voltage_max_v": 3.3}, RejectionReason.OUT_OF_RANGE),
        ({**BASE, "soc_pct": "50"}, RejectionReason.WRONG_TYPE),
        ({**BASE, "ignition_on": 1}, RejectionReason.WRONG_TYPE),
        ({**BASE, "gear": "S"}, RejectionReason.WRONG_TYPE),
        ({**BASE, "ts_ms": 1.5e12}, RejectionReason.WRONG_TYPE),
        ({**BASE, "dtc_codes": ["p0a80"]}, RejectionReason.WRONG_TYPE),
        ({**BASE, "vehicle_id": "car 1"}, RejectionReason.WRONG_TYPE),
        ({**BASE, "colour": "red"}, RejectionReason.UNKNOWN_FIELD),
        ({**BASE, "soc_pct": math.nan}, RejectionReason.NOT_FINITE),
        ({**BASE, "tyre_pressure_kpa": [230, math.inf, 230, 230]}, RejectionReason.NOT_FINITE),
        ({**BASE, "ts_ms": 1_262_303_999_999}, RejectionReason.TIMESTAMP_TOO_OLD),
        ({**BASE, "ts_ms": NOW_MS + 300_001}, RejectionReason.TIMESTAMP_IN_FUTURE),
        ({**BASE, "vehicle_id": "car-2"}, RejectionReason.VEHICLE_MISMATCH),
        ({**BASE, "vehicle_id": "car-9"}, RejectionReason.VEHICLE_MISMATCH),  # unknown id: same answer
    ],
)
def test_each_rule_gives_its_reason(item: object, reason: RejectionReason) -> None:
    outcome = judge(item)
    assert isinstance(outcome, Rejection)
    assert outcome.reason is reason
    assert outcome.detail.startswith("record 0")


def test_limits_are_inclusive_and_a_full_record_passes() -> None:
    full = {
        **BASE,
        "ts_ms": NOW_MS + 300_000,
        "soc_pct": 100,
        "speed_kmh": 250,
        "lat_deg": -90,
        "lon_deg": 180,
        "gear": "R",
        "ignition_on": False,
        "tyre_pressure_kpa": [0, 1000, 230, 230],
        "dtc_codes": ["P0A80", "U0100"],
    }
    outcome = judge(full)
    assert isinstance(outcome, TelemetryRecord)
    assert outcome.soc_pct == 100.0 and outcome.dtc_codes == ["P0A80", "U0100"]


def test_every_signal_has_a_unit_or_is_a_flag_in_its_name() -> None:
    units = ("_deg", "_kmh", "_km", "_pct", "_v", "_a", "_c", "_kw", "_kwh", "_kpa", "_m", "_hdop")
    for spec in SIGNALS:
        assert spec.kind in {"bool", "gear", "codes"} or spec.name.endswith(units), spec.name


finite = st.floats(allow_nan=False, allow_infinity=False, width=32)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@given(
    st.dictionaries(
        st.sampled_from([s.name for s in SIGNALS] + ["vehicle_id", "ts_ms", "extra"]), json_values, max_size=8
    )
)
# each cause the random objects rarely hit, so its reason is checked on every run
@example({"vehicle_id": "car-1", "ts_ms": NOW_MS, "extra": 1})
@example({"vehicle_id": "car-2", "ts_ms": NOW_MS})
@example({"vehicle_id": "car-1", "ts_ms": NOW_MS + 300_001})
@example({"vehicle_id": "car-1", "ts_ms": 0})
@example({"vehicle_id": "car-1", "ts_ms": NOW_MS, "soc_pct": math.inf})
def test_arbitrary_objects_are_judged_without_raising(item: dict[str, object]) -> None:
    outcome = judge(item)
    missing = not {"vehicle_id", "ts_ms"} <= item.keys()
    if "extra" in item or missing or _holds_non_finite(item):
        assert isinstance(outcome, Rejection)  # such an object can never be a record
    if isinstance(outcome, TelemetryRecord):
        assert outcome.vehicle_id == "car-1" and outcome.ts_ms == item["ts_ms"]
        return
    # an object is never refused for what only a body or a batch can be, and each reason has its cause
    assert outcome.reason in OBJECT_REASONS, outcome
    assert outcome.detail.startswith("record 0")
    if outcome.reason is RejectionReason.MISSING_FIELD:
        assert missing
    if outcome.reason is RejectionReason.UNKNOWN_FIELD:
        assert "extra" in item
    if outcome.reason is RejectionReason.NOT_FINITE:
        assert _holds_non_finite(item)
    elif _holds_non_finite(item):  # checked before any type: NaN gets its precise reason
        assert outcome.reason is RejectionReason.INVALID_UTF8
    if outcome.reason is RejectionReason.VEHICLE_MISMATCH:
        assert item["vehicle_id"] != "car-1"
    if outcome.reason is RejectionReason.TIMESTAMP_IN_FUTURE:
        assert item["ts_ms"] > NOW_MS + 300_000  # type: ignore[operator]


OBJECT_REASONS = {
    RejectionReason.INVALID_UTF8,
    RejectionReason.NOT_FINITE,
    RejectionReason.MISSING_FIELD,
    RejectionReason.UNKNOWN_FIELD,
    RejectionReason.WRONG_TYPE,
    RejectionReason.OUT_OF_RANGE,
    RejectionReason.TIMESTAMP_TOO_OLD,
    RejectionReason.TIMESTAMP_IN_FUTURE,
    RejectionReason.VEHICLE_MISMATCH,
}


def _holds_non_finite(value: object) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_holds_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_holds_non_finite(v) for v in value)
    return False


@given(soc=finite, speed=finite)
def test_range_rules_match_the_physical_limits(soc: float, speed: float) -> None:
    outcome = judge({**BASE, "soc_pct": soc, "speed_kmh": speed})
    valid = 0 <= soc <= 100 and 0 <= speed <= 250
    assert isinstance(outcome, TelemetryRecord) is valid


@pytest.mark.parametrize(
    ("item", "path"),
    [
        ({**BASE, "gear": "\udc00"}, "$.gear"),
        ({**BASE, "dtc_codes": ["P0A80", "x\ud800"]}, "$.dtc_codes[1]"),
        ({**BASE, "\udfff": 1}, "$ (a field name)"),
        ({"vehicle_id": "\udc00", "ts_ms": NOW_MS}, "$.vehicle_id"),
    ],
)
def test_a_lone_surrogate_is_invalid_utf8_wherever_it_is(item: dict[str, object], path: str) -> None:
    assert find_lone_surrogate(item) == path
    outcome = judge(item)
    assert isinstance(outcome, Rejection) and outcome.reason is RejectionReason.INVALID_UTF8
    assert path in outcome.detail
    # A proper pair is one character, not a lone surrogate.
    assert find_lone_surrogate({**BASE, "gear": "\U0001f600"}) is None


@given(st.text(st.characters(exclude_categories=())))
def test_storable_text_is_utf8_without_nul_and_leaves_clean_text_alone(text: str) -> None:
    stored = storable_text(text)
    stored.encode("utf-8")
    assert "\x00" not in stored
    clean = "\x00" not in text and not any("\ud800" <= c <= "\udfff" for c in text)
    assert (stored == text) is clean


def test_a_rejection_keeps_only_storable_text() -> None:
    rejection = Rejection(0, RejectionReason.UNKNOWN_FIELD, "field `\x00\udc00`", "{\x00}", "\udc00")
    assert rejection.detail == "field `\\x00\\udc00`"
    assert rejection.raw_text == "{\\x00}"
    assert rejection.vehicle_id == "\\udc00"
