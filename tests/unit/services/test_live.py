"""What a committed telemetry batch announces on the live feed, and which events others may publish."""

from __future__ import annotations

import json
import math

import pytest

from microfleet.errors import InvalidInputError
from microfleet.services.live import LiveEvent, check_event, telemetry_event


def stored(**signals: tuple[int, object]) -> dict[str, tuple[int, str]]:
    return {name: (ts, json.dumps(value)) for name, (ts, value) in signals.items()}


def test_a_first_batch_announces_its_fix_and_every_signal() -> None:
    event = telemetry_event(
        "car-a",
        {"lat_deg": (10, 31.2), "lon_deg": (10, 121.4), "speed_kmh": (10, 20.0), "soc_pct": (9, 50.0)},
        {},
    )
    assert event is not None and (event.kind, event.ts_ms) == ("position", 10)
    assert event.payload == {
        "position": {"ts_ms": 10, "lat_deg": 31.2, "lon_deg": 121.4, "speed_kmh": 20.0},
        "signals": {"speed_kmh": {"value": 20.0, "ts_ms": 10}, "soc_pct": {"value": 50.0, "ts_ms": 9}},
    }


def test_only_changed_signals_are_announced_and_an_unchanged_batch_announces_nothing() -> None:
    before = stored(soc_pct=(5, 50.0), locked=(5, True), lat_deg=(5, 31.2), lon_deg=(5, 121.4))
    event = telemetry_event("car-a", {"soc_pct": (10, 49.5), "locked": (10, True)}, before)
    assert event is not None and event.kind == "state"
    assert event.payload == {"signals": {"soc_pct": {"value": 49.5, "ts_ms": 10}}}
    same_place = {"lat_deg": (10, 31.2), "lon_deg": (10, 121.4), "locked": (10, True)}
    assert telemetry_event("car-a", same_place, before) is None  # a parked car's repeated fix is not news


def test_a_late_record_older_than_the_stored_state_announces_nothing() -> None:
    before = stored(soc_pct=(100, 50.0), lat_deg=(100, 31.2), lon_deg=(100, 121.4))
    late = {"soc_pct": (50, 60.0), "lat_deg": (50, 31.0), "lon_deg": (50, 121.0)}
    assert telemetry_event("car-a", late, before) is None


def test_a_fix_carries_only_the_extras_measured_with_it() -> None:
    newest = {
        "lat_deg": (20, 31.3),
        "lon_deg": (20, 121.4),
        "speed_kmh": (19, 5.0),
        "heading_deg": (20, 90.0),
    }
    event = telemetry_event("car-a", newest, stored(lat_deg=(10, 31.2), lon_deg=(10, 121.4)))
    assert event is not None
    assert event.payload["position"] == {"ts_ms": 20, "lat_deg": 31.3, "lon_deg": 121.4, "heading_deg": 90.0}


@pytest.mark.parametrize(
    "event",
    [
        LiveEvent("car-a", "gap", 1, {}),
        LiveEvent("car-a", "ready", 1, {}),
        LiveEvent("car-a", "Command", 1, {}),
        LiveEvent("car-a", "", 1, {}),
        LiveEvent("car-a", "alert", 1, {"value": math.nan}),
        LiveEvent("car-a", "alert", 1, {"value": object()}),
        LiveEvent("car-a", "alert", 1, [1, 2]),  # type: ignore[arg-type]
    ],
)
def test_events_the_feed_could_not_send_are_refused(event: LiveEvent) -> None:
    with pytest.raises(InvalidInputError):
        check_event(event)


def test_commands_and_alerts_may_publish() -> None:
    check_event(LiveEvent("car-a", "command", 1, {"command_id": "c1", "status": "acknowledged"}))
    check_event(LiveEvent("car-a", "alert", 1, {"alert_id": 7, "status": "raised"}))
