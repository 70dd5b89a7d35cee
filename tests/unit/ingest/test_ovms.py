"""OVMS v3: each standard metric, as OVMS writes it, becomes its protocol-v1 value; ticks become records."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microfleet.domain.telemetry import SIGNALS, RejectionReason
from microfleet.errors import ConfigurationError
from microfleet.ingest.ovms import (
    BY_NAME,
    METRICS,
    BadValue,
    OvmsAssembler,
    parse_module_map,
    parse_topic,
    parse_utc,
)

T0_MS = 1_764_000_000_000  # 2025-11-24T16:00:00Z
T0_TEXT = "2025-11-24 16:00:00 UTC"

# One payload per mapped metric, as OVMS writes it, and the v1 value it must give.
EXAMPLES = {
    "v.p.latitude": ("51.302300", 51.3023),
    "v.p.longitude": ("-7.390060", -7.39006),
    "v.p.direction": ("31.2", 31.2),
    "v.p.gpshdop": ("1.3", 1.3),
    "v.p.altitude": ("327.8", 327.8),
    "v.p.speed": ("36", 36.0),
    "v.p.odometer": ("123457", 123457.0),
    "v.e.gear": ("-1", "R"),
    "v.e.on": ("yes", True),
    "v.b.soc": ("96.3", 96.3),
    "v.b.soh": ("85", 85.0),
    "v.b.voltage": ("57.4", 57.4),
    "v.b.current": ("-9.70588", -9.70588),
    "v.b.temp": ("13", 13.0),
    "v.b.p.voltage.min": ("4.09", 4.09),
    "v.b.p.voltage.max": ("4.105", 4.105),
    "v.b.energy.used.total": ("3177.02", 3177.02),
    "v.b.energy.recd.total": ("1.30133e-05", 1.30133e-05),
    "v.b.12v.voltage": ("12.29", 12.29),
    "v.c.pilot": ("no", False),
    "v.c.power": ("3.3", 3.3),
    "v.c.voltage": ("230", 230.0),
    "v.e.locked": ("yes", True),
    "v.e.cabintemp": ("20", 20.0),
    "v.e.temp": ("-4.5", -4.5),
    "v.e.hvac": ("no", False),
    "v.t.pressure": ("206.8,216.4,210,209.5", [206.8, 216.4, 210.0, 209.5]),
}


def test_every_metric_has_an_example_and_fills_a_v1_field_once() -> None:
    assert set(EXAMPLES) == set(BY_NAME)
    targets = [m.target for m in METRICS]
    assert len(targets) == len(set(targets))
    assert set(targets) <= {s.name for s in SIGNALS}
    assert all(m.source and m.unit for m in METRICS)


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_each_metric_converts_as_ovms_writes_it(name: str) -> None:
    text, expected = EXAMPLES[name]
    assembler = OvmsAssembler()
    _, refused = assembler.feed("car-1", name, text, 0)
    assert refused is None
    assert BY_NAME[name].parse(text) == expected


def test_gear_signs() -> None:
    assert [BY_NAME["v.e.gear"].parse(t) for t in ("-2", "0", "1", "3")] == ["R", "N", "D", "D"]


@pytest.mark.parametrize(
    ("name", "text", "reason"),
    [
        ("v.e.on", "true", RejectionReason.WRONG_TYPE),  # OVMS writes yes/no, never true/false
        ("v.b.soc", "nan", RejectionReason.WRONG_TYPE),
        ("v.b.soc", "96.3%", RejectionReason.WRONG_TYPE),
        ("v.b.soc", "150", RejectionReason.OUT_OF_RANGE),
        ("v.t.pressure", "206.8,216.4", RejectionReason.WRONG_TYPE),
        ("v.e.gear", "1.5", RejectionReason.WRONG_TYPE),
        ("v.p.latitude", "91.000000", RejectionReason.OUT_OF_RANGE),
    ],
)
def test_a_malformed_value_is_refused_alone_and_its_tick_keeps_the_rest(
    name: str, text: str, reason: RejectionReason
) -> None:
    assembler = OvmsAssembler()
    assembler.feed("car-1", "m.time.utc", T0_TEXT, 0)
    assembler.feed("car-1", "v.p.speed", "12", 1)
    _, refused = assembler.feed("car-1", name, text, 2)
    assert refused is not None and refused.reason == reason and name in refused.detail
    (item,) = assembler.due(10_000)
    assert item == {"vehicle_id": "car-1", "ts_ms": T0_MS, "speed_kmh": 12.0}


def test_a_malformed_time_is_refused() -> None:
    _, refused = OvmsAssembler().feed("car-1", "m.time.utc", "1764000000", 0)
    assert refused is not None and refused.reason == RejectionReason.WRONG_TYPE
    assert parse_utc(T0_TEXT) == T0_MS


def test_a_tick_is_one_record_stamped_with_the_module_time_and_a_repeat_starts_the_next() -> None:
    assembler = OvmsAssembler()
    feed = [
        ("v.p.latitude", "51.302300"),
        ("v.p.longitude", "7.390060"),
        ("m.time.utc", T0_TEXT),
        ("v.b.soc", "80"),
        ("v.p.latitude", "51.302400"),  # next tick, no gap needed: a metric is sent once per tick
        ("m.time.utc", "2025-11-24 16:00:05 UTC"),
    ]
    out = []
    for i, (name, text) in enumerate(feed):
        items, refused = assembler.feed("car-1", name, text, i)
        assert refused is None
        out += items
    assert out == [
        {"vehicle_id": "car-1", "ts_ms": T0_MS, "lat_deg": 51.3023, "lon_deg": 7.39006, "soc_pct": 80.0}
    ]
    assert assembler.due(4 + 499) == []  # not quiet long enough yet
    (second,) = assembler.due(5 + 500)
    # carried forward: OVMS sent only the latitude, the longitude and SoC are the module's last values
    assert second == {
        "vehicle_id": "car-1",
        "ts_ms": T0_MS + 5000,
        "lat_deg": 51.3024,
        "lon_deg": 7.39006,
        "soc_pct": 80.0,
    }


def test_a_lone_metric_flushes_after_the_quiet_time_on_the_module_clock() -> None:
    assembler = OvmsAssembler()
    assembler.feed("car-1", "m.time.utc", T0_TEXT, 1_000)
    assembler.feed("car-1", "v.b.soc", "80", 1_001)
    assert len(assembler.due(2_000)) == 1
    assembler.feed("car-1", "v.b.soc", "79", 61_000)  # alone, a minute later, no time with it
    (item,) = assembler.due(61_500)
    assert item == {"vehicle_id": "car-1", "ts_ms": T0_MS + 60_000, "soc_pct": 79.0}


def test_without_any_module_time_the_arrival_time_stamps_the_record() -> None:
    assembler = OvmsAssembler()
    assembler.feed("car-1", "v.b.soc", "80", T0_MS + 7)
    assert assembler.due(T0_MS + 600) == [{"vehicle_id": "car-1", "ts_ms": T0_MS + 7, "soc_pct": 80.0}]


def test_two_sends_in_one_module_second_keep_distinct_ordered_times() -> None:
    assembler = OvmsAssembler()
    assembler.feed("car-1", "m.time.utc", T0_TEXT, 0)
    assembler.feed("car-1", "v.b.soc", "80", 1)
    items = assembler.due(600)
    assembler.feed("car-1", "m.time.utc", T0_TEXT, 700)  # one module second, two sends (immediately)
    assembler.feed("car-1", "v.b.soc", "79.9", 701)
    items += assembler.due(1300)
    assert [i["ts_ms"] for i in items] == [T0_MS, T0_MS + 1]


def test_a_value_older_than_the_carry_limit_is_not_carried() -> None:
    assembler = OvmsAssembler(carry_max_ms=10_000)
    assembler.feed("car-1", "v.e.temp", "12", 0)
    assembler.feed("car-1", "v.b.soc", "80", 1)
    assembler.due(600)
    assembler.feed("car-1", "v.b.soc", "79", 20_000)
    (item,) = assembler.due(21_000)
    assert "ambient_temp_c" not in item and item["soc_pct"] == 79.0


def test_half_a_position_is_not_stored_and_vehicles_do_not_mix() -> None:
    assembler = OvmsAssembler()
    assembler.feed("car-1", "v.p.latitude", "51.302300", 0)
    assembler.feed("car-1", "v.b.soc", "80", 1)
    assembler.feed("car-2", "v.p.speed", "5", 2)
    items = sorted(assembler.due(1_000), key=lambda i: i["vehicle_id"])
    assert [set(i) - {"vehicle_id", "ts_ms"} for i in items] == [{"soc_pct"}, {"speed_kmh"}]


def test_a_tick_of_nothing_mapped_gives_no_record() -> None:
    assembler = OvmsAssembler()
    assembler.feed("car-1", "m.time.utc", T0_TEXT, 0)
    assert assembler.due(1_000) == [] and assembler.flush("car-1") == []


def test_topics() -> None:
    metric = parse_topic("ovms/alice/TWIZY1/metric/v/b/soc")
    assert metric is not None and (metric.module, metric.kind, metric.name) == (
        "alice/TWIZY1",
        "metric",
        "v.b.soc",
    )
    event = parse_topic("ovms/alice/TWIZY1/event/vehicle/charge/start")
    assert event is not None and (event.kind, event.name) == ("event", "vehicle.charge.start")
    legacy = parse_topic("ovms/alice/TWIZY1/event")
    assert legacy is not None and (legacy.kind, legacy.name) == ("event", "")
    assert parse_topic("other/alice/TWIZY1/metric/v/b/soc") is None
    assert parse_topic("ovms/alice//metric/v/b/soc") is None
    assert parse_topic("ovms/alice") is None


def test_module_map() -> None:
    assert parse_module_map(["alice/TWIZY1=car-1", "bob/X=car-2"]) == {
        "alice/TWIZY1": "car-1",
        "bob/X": "car-2",
    }
    for bad in ("alice=car-1", "alice/TWIZY1", "alice/T/1=car-1", "/T=car-1", "alice/T="):
        with pytest.raises(ConfigurationError, match="USER/VEHICLEID"):
            parse_module_map([bad])


@given(name=st.sampled_from(sorted(BY_NAME)), text=st.text(max_size=40))
def test_any_text_is_a_value_or_a_clear_refusal(name: str, text: str) -> None:
    with contextlib.suppress(BadValue):  # a value, or BadValue: never another exception
        BY_NAME[name].parse(text)
    _, refused = OvmsAssembler().feed("car-1", name, text, 0)
    assert refused is None or refused.detail.startswith(f"ovms {name}")


@given(text=st.text(max_size=40))
def test_any_time_text_is_a_time_or_a_clear_refusal(text: str) -> None:
    with contextlib.suppress(BadValue):
        assert parse_utc(text) % 1000 == 0


def test_the_time_starts_a_send_as_ovms_sorted_metric_list_sends_it_first() -> None:
    assembler = OvmsAssembler()
    out = []
    for i, (name, text) in enumerate(
        [
            ("m.time.utc", T0_TEXT),
            ("v.b.soc", "80"),
            ("m.time.utc", "2025-11-24 16:00:05 UTC"),  # the next send, however soon it comes
            ("v.p.speed", "10"),
        ]
    ):
        out += assembler.feed("car-1", name, text, i)[0]
    out += assembler.due(1_000)
    assert [(i["ts_ms"], i.get("speed_kmh")) for i in out] == [(T0_MS, None), (T0_MS + 5000, 10.0)]


@given(st.text(alphabet="ovms/abc.+#", max_size=30))
def test_any_topic_parses_to_its_own_parts_or_none(text: str) -> None:
    parsed = parse_topic(text)
    if parsed is None:
        parts = text.split("/")
        assert len(parts) < 4 or parts[0] != "ovms" or "" in parts[1:4]
    else:
        assert text.startswith(f"ovms/{parsed.user}/{parsed.vehicle}/{parsed.kind}")
        assert all(p and "/" not in p for p in (parsed.user, parsed.vehicle, parsed.kind))
