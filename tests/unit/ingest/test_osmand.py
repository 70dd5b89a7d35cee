"""The OsmAnd / Traccar Client decoder reads every request of Traccar's own decoder test as Traccar does.

The requests are test data from traccar/traccar at commit 9e5c458ad0bf44ceaddf72534bf6874787f41b6c,
``src/test/java/org/traccar/protocol/OsmAndProtocolDecoderTest.java`` (Apache-2.0). Each expected position
is what ``OsmAndProtocolDecoder.java`` at that commit builds from the request, written in Traccar's units
(speed in knots); the comparison converts with Traccar's own ``UnitsConverter`` ratio, so it also checks
Microfleet's exact conversions (1 kn = 1.852 km/h, 1 m/s = 3.6 km/h) against Traccar's rounded ones.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microfleet.domain.telemetry import RejectionReason, TelemetryRecord
from microfleet.ingest.osmand import (
    REDACTED_KEY,
    decode_json,
    decode_query,
    parse_timestamp,
    to_batch,
)

KNOTS_PER_KMH_TRACCAR = 0.539957  # UnitsConverter.KNOTS_TO_KPH_RATIO
KNOTS_PER_MPS_TRACCAR = 1.94384  # UnitsConverter.KNOTS_TO_MPS_RATIO
RECEIVED_AT_MS = 1_764_000_000_000  # the receive time a report without its own time is stamped with


def utc_ms(*parts: int) -> int:
    return int(datetime(*parts, tzinfo=UTC).timestamp() * 1000)  # type: ignore[misc]


@dataclass(frozen=True)
class TraccarPosition:
    """What Traccar's decoder returns, in its units; None: not set (Traccar leaves its default)."""

    device: str
    time_ms: int | None  # None: Traccar stamps the server's time
    lat: float | None = None
    lon: float | None = None
    speed_kn: float | None = None
    course_deg: float | None = None
    altitude_m: float | None = None
    accuracy_m: float | None = None
    attributes: dict[str, Any] = field(default_factory=dict)


QUERIES: list[tuple[str, TraccarPosition | None]] = [
    (
        "id=123456&timestamp=1377177267&cell=257,02,16,2224&cell=257,02,16,2223,-90"
        "&wifi=00-14-22-01-23-45,-80&wifi=00-1C-B3-09-85-15,-70",
        TraccarPosition("123456", 1_377_177_267_000),  # network only: no coordinates (verifyNotNull)
    ),
    ("timestamp=1377177267&lat=60.0&lon=30.0", None),  # no id: Traccar answers 400 (verifyNull)
    (
        "id=902064&lat=42.06288&lon=-88.23412&timestamp=2016-01-27T18%3A55%3A47Z&hdop=6.0&altitude=224.0"
        "&speed=0.0",
        TraccarPosition(
            "902064",
            utc_ms(2016, 1, 27, 18, 55, 47),
            42.06288,
            -88.23412,
            0.0,
            None,
            224.0,
            attributes={"hdop": 6.0},
        ),
    ),
    (
        "id=902064&lat=42.06288&lon=-88.23412&timestamp=1442068686579&hdop=6.0&altitude=224.0&speed=0.0",
        TraccarPosition(
            "902064", 1_442_068_686_579, 42.06288, -88.23412, 0.0, None, 224.0, attributes={"hdop": 6.0}
        ),
    ),
    (
        "lat=49.60688&lon=6.15788&timestamp=2014-06-04+09%3A10%3A11&altitude=384.7&speed=0.0"
        "&id=353861053849681",
        TraccarPosition(
            "353861053849681", utc_ms(2014, 6, 4, 9, 10, 11), 49.60688, 6.15788, 0.0, None, 384.7
        ),
    ),
    (
        "id=123456&timestamp=1377177267&lat=60.0&lon=30.0&speed=0.0&bearing=0.0&altitude=0&hdop=0.0",
        TraccarPosition("123456", 1_377_177_267_000, 60.0, 30.0, 0.0, 0.0, 0.0, attributes={"hdop": 0.0}),
    ),
    (
        "id=123456&timestamp=1377177267&lat=60.0&lon=30.0",
        TraccarPosition("123456", 1_377_177_267_000, 60.0, 30.0),
    ),
    (
        "lat=60.0&lon=30.0&speed=0.0&heading=0.0&vacc=0&hacc=0&altitude=0&deviceid=123456",
        TraccarPosition("123456", None, 60.0, 30.0, 0.0, 0.0, 0.0, attributes={"vacc": 0.0, "hacc": 0.0}),
    ),
    (
        "id=861001000719969&lat=41.666667&lon=-0.883333&altitude=350.059479&speed=0.000000&batt=87",
        TraccarPosition(
            "861001000719969",
            None,
            41.666667,
            -0.883333,
            0.0,
            None,
            350.059479,
            attributes={"batteryLevel": 87.0},
        ),
    ),
    (
        "id=123456&timestamp=1377177267&location=60.0,30.0",
        TraccarPosition("123456", 1_377_177_267_000, 60.0, 30.0),
    ),
    (
        "id=123456789012345&timestamp=1504763810&lat=40.7232948571&lon=-74.0061408571&bearing=7.19889788244"
        "&speed=40&ignition=true&rpm=933&fuel=24",
        TraccarPosition(
            "123456789012345",
            1_504_763_810_000,
            40.7232948571,
            -74.0061408571,
            40.0,
            7.19889788244,
            None,
            attributes={"ignition": True, "rpm": 933.0, "fuel": 24.0},
        ),
    ),
]

_J1 = (
    '{"location":{"timestamp":"2025-06-15T13:45:12.862Z","coords":{"latitude":37.4219983,"longitude":-122.084,'
    '"accuracy":5,"speed":0,"heading":-1,"altitude":5},"is_moving":false,"odometer":0,"event":"motionchange",'
    '"battery":{"level":1,"is_charging":false},"activity":{"type":"still"},"extras":{EXTRAS},'
    '"_":"&id=48241179&lat=37.4219983&lon=-122.084&timestamp=2025-06-15T13:45:12.862Z&"},"device_id":"48241179"}'
)
_J1_ATTRIBUTES = {
    "event": "motionchange",
    "motion": False,
    "odometer": 0,
    "activity": "still",
    "batteryLevel": 100,
}
_J2_EXTRAS = (
    '{"device_string_test":"long_device_id","device_bool_test":true,"device_bool_false_test":false,'
    '"device_integer_test":1,"device_integer_twelve_test":12,"device_double_test":1.345,'
    '"device_very_long_double_test":1763636.3442}'
)
JSONS: list[tuple[str, TraccarPosition]] = [
    (
        _J1.replace("{EXTRAS}", "{}"),
        TraccarPosition(
            "48241179",
            utc_ms(2025, 6, 15, 13, 45, 12) + 862,
            37.4219983,
            -122.084,
            0.0,
            None,
            5.0,
            5.0,
            _J1_ATTRIBUTES,
        ),
    ),
    (
        _J1.replace("{EXTRAS}", _J2_EXTRAS),
        TraccarPosition(
            "48241179",
            utc_ms(2025, 6, 15, 13, 45, 12) + 862,
            37.4219983,
            -122.084,
            0.0,
            None,
            5.0,
            5.0,
            _J1_ATTRIBUTES | json.loads(_J2_EXTRAS),  # verifyAttribute: device_integer_twelve_test = 12L
        ),
    ),
    (
        '{"location":{"extras":{},"mock":true,"coords":{"speed_accuracy":-1,"speed":-1,"longitude":-122.406417,'
        '"ellipsoidal_altitude":0,"floor":null,"heading_accuracy":-1,"latitude":37.785834000000001,"accuracy":5,'
        '"altitude_accuracy":-1,"altitude":0,"heading":-1},"is_moving":false,"age":188,"odometer":0,'
        '"uuid":"2FB04C65-99CF-42AB-8DD3-EBCB4B108BF8","event":"motionchange","battery":{"level":-1,'
        '"is_charging":false},"activity":{"type":"unknown","confidence":100},'
        '"timestamp":"2025-05-09T04:11:30.579Z"},"device_id":"658765"}',
        TraccarPosition(
            "658765",
            utc_ms(2025, 5, 9, 4, 11, 30) + 579,
            37.785834,
            -122.406417,
            None,
            None,
            0.0,
            5.0,
            {"mock": True, "motion": False, "odometer": 0, "event": "motionchange", "activity": "unknown"},
        ),
    ),
    (
        '{"location":{"event":"motionchange","is_moving":false,"uuid":"0e9a2473-a9a7-4c00-997b-fb97d2154e75",'
        '"timestamp":"2021-07-21T08:06:34.444Z","odometer":0,"coords":{"latitude":-6.1148096,'
        '"longitude":106.6837015,"accuracy":3.8,"speed":18.67,"speed_accuracy":0.26,"heading":63,'
        '"heading_accuracy":0.28,"altitude":35.7,"altitude_accuracy":3.8},"activity":{"type":"still",'
        '"confidence":100},"battery":{"is_charging":false,"level":0.79},"extras":{}},"device_id":"8737767034"}',
        TraccarPosition(
            "8737767034",
            utc_ms(2021, 7, 21, 8, 6, 34) + 444,
            -6.1148096,
            106.6837015,
            18.67 * KNOTS_PER_MPS_TRACCAR,
            63.0,
            35.7,
            3.8,
            {
                "event": "motionchange",
                "motion": False,
                "odometer": 0,
                "activity": "still",
                "batteryLevel": 79,
            },
        ),
    ),
]

# Traccar's attribute names, and where Microfleet's fix keeps each (signals: stored in protocol v1).
SIGNAL_OF_ATTRIBUTE = {"hdop": "gps_hdop", "ignition": "ignition_on"}
EXTRA_OF_ATTRIBUTE = {"batteryLevel": "phone_battery_pct", "odometer": "phone_odometer_m"}


def _assert_same_position(fix: Any, expected: TraccarPosition) -> None:
    assert fix.refused is None
    assert fix.key == expected.device
    assert fix.ts_ms == expected.time_ms
    assert fix.signals.get("lat_deg") == expected.lat
    assert fix.signals.get("lon_deg") == expected.lon
    if expected.speed_kn is None:
        assert "speed_kmh" not in fix.signals
    else:  # Traccar's km/h is knots / 0.539957; ours is exact: 3 ppm apart at most
        assert fix.signals["speed_kmh"] == pytest.approx(expected.speed_kn / KNOTS_PER_KMH_TRACCAR, rel=5e-6)
    assert fix.signals.get("heading_deg") == expected.course_deg
    assert fix.signals.get("altitude_m") == expected.altitude_m
    assert fix.extras.get("accuracy_m") == expected.accuracy_m
    for name, value in expected.attributes.items():
        if name in SIGNAL_OF_ATTRIBUTE:
            assert fix.signals[SIGNAL_OF_ATTRIBUTE[name]] == value, name
        else:
            assert fix.extras[EXTRA_OF_ATTRIBUTE.get(name, name)] == value, name


@pytest.mark.parametrize(("query", "expected"), QUERIES)
def test_every_query_of_traccars_test_decodes_to_traccars_position(
    query: str, expected: TraccarPosition | None
) -> None:
    fix = decode_query(query)
    if expected is None:
        assert fix.key is None  # refused before anything is stored (the adapter answers 401)
        return
    _assert_same_position(fix, expected)
    batch = to_batch(fix, "car-a", received_at_ms=RECEIVED_AT_MS)
    assert batch.rejections == []
    [(_, record)] = batch.records
    assert record.vehicle_id == "car-a"  # the key's vehicle, never the id the phone sent
    assert record.ts_ms == (expected.time_ms if expected.time_ms is not None else RECEIVED_AT_MS)


@pytest.mark.parametrize(("body", "expected"), JSONS)
def test_every_json_body_of_traccars_test_decodes_to_traccars_position(
    body: str, expected: TraccarPosition
) -> None:
    fix = decode_json(body.encode())
    _assert_same_position(fix, expected)
    assert expected.device not in fix.raw_text and REDACTED_KEY in fix.raw_text
    [(_, record)] = to_batch(fix, "car-a", received_at_ms=RECEIVED_AT_MS).records
    assert record.ts_ms == expected.time_ms


def test_the_cell_and_wifi_report_keeps_its_network_but_stores_only_its_time() -> None:
    fix = decode_query(QUERIES[0][0])
    assert fix.extras == {
        "cell": ["257,02,16,2224", "257,02,16,2223,-90"],
        "wifi": ["00-14-22-01-23-45,-80", "00-1C-B3-09-85-15,-70"],
    }
    [(_, record)] = to_batch(fix, "car-a", received_at_ms=RECEIVED_AT_MS).records
    assert record == TelemetryRecord("car-a", 1_377_177_267_000)


@pytest.mark.parametrize(("unit", "kmh"), [("kn", 74.08), ("kmh", 40.0), ("mps", 144.0), ("mph", 64.37376)])
def test_the_query_speed_unit_is_a_setting_knots_by_default(unit: Any, kmh: float) -> None:
    fix = decode_query("id=k&lat=1&lon=2&speed=40", speed_unit=unit)
    assert fix.signals["speed_kmh"] == pytest.approx(kmh, rel=1e-12)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("1377177267", 1_377_177_267_000),  # seconds: below Java's Integer.MAX_VALUE
        ("2147483646", 2_147_483_646_000),
        ("2147483647", 2_147_483_647),  # from Integer.MAX_VALUE up: milliseconds
        ("1442068686579", 1_442_068_686_579),
        ("2016-01-27T18:55:47Z", 1_453_920_947_000),
        ("2016-01-27T20:55:47+02:00", 1_453_920_947_000),
        ("2025-06-15T13:45:12.8629Z", 1_749_995_112_862),  # floored to the ms, as Instant.toEpochMilli
        ("2014-06-04 09:10:11", 1_401_873_011_000),  # read as UTC
    ],
)
def test_each_timestamp_form(text: str, ms: int) -> None:
    assert parse_timestamp(text) == ms


@pytest.mark.parametrize(
    ("query", "reason", "words"),
    [
        ("id=k&lat=north&lon=2", RejectionReason.WRONG_TYPE, "lat 'north' is not a decimal number"),
        ("id=k&lat=nan&lon=2", RejectionReason.WRONG_TYPE, "lat 'nan' is not a decimal number"),
        ("id=k&lat=1e999&lon=2", RejectionReason.NOT_FINITE, "out of any float's range"),
        ("id=k&location=60.0", RejectionReason.WRONG_TYPE, "location '60.0' is not 'lat,lon'"),
        ("id=k&timestamp=2016-01-27T18:55:47", RejectionReason.WRONG_TYPE, "has no UTC offset"),
        ("id=k&timestamp=yesterday", RejectionReason.WRONG_TYPE, "is not epoch seconds or ms"),
    ],
)
def test_a_value_traccar_would_throw_on_is_refused_with_its_reason(
    query: str, reason: RejectionReason, words: str
) -> None:
    fix = decode_query(query)
    assert fix.refused is not None and fix.refused[0] is reason and words in fix.refused[1]
    [rejection] = to_batch(fix, "car-a", received_at_ms=RECEIVED_AT_MS).rejections
    assert rejection.reason is reason and rejection.vehicle_id == "car-a"
    assert rejection.raw_text.startswith(f"id={REDACTED_KEY}&")  # the key never reaches the quarantine


def test_a_value_out_of_protocol_v1_range_is_refused_by_the_v1_validator_in_v1_form() -> None:
    [rejection] = to_batch(
        decode_query("id=k&lat=91&lon=2&timestamp=1377177267"), "car-a", received_at_ms=0
    ).rejections
    assert rejection.reason is RejectionReason.OUT_OF_RANGE and "lat_deg" in rejection.detail
    assert json.loads(rejection.raw_text) == {
        "vehicle_id": "car-a",
        "ts_ms": 1_377_177_267_000,
        "lat_deg": 91.0,
        "lon_deg": 2.0,
    }


def test_unknown_speed_and_bearing_and_an_invalid_fix_keep_no_position() -> None:
    assert decode_query("id=k&lat=1&lon=2&speed=-1&bearing=-1").signals == {"lat_deg": 1.0, "lon_deg": 2.0}
    fix = decode_query("id=k&valid=false&lat=1&lon=2&speed=3&ignition=false")
    assert fix.signals == {"ignition_on": False} and fix.extras["valid"] is False


def test_the_phones_battery_is_never_the_cars() -> None:
    fix = decode_query("id=k&batt=87&charge=true")
    assert "soc_pct" not in fix.signals and "charger_connected" not in fix.signals
    assert fix.extras == {"phone_battery_pct": 87.0, "phone_charging": True}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", RejectionReason.MALFORMED_JSON),
        (b"[" * 100 + b"]" * 100, RejectionReason.TOO_DEEP),
        (b'{"device_id":"k"}', RejectionReason.MISSING_FIELD),
        (b'{"device_id":"k","location":{"coords":{}}}', RejectionReason.MISSING_FIELD),
        (b'{"device_id":"k","location":{"timestamp":"2021-07-21 08:06:34"}}', RejectionReason.WRONG_TYPE),
        (
            b'{"device_id":"k","location":{"timestamp":"2021-07-21T08:06:34Z","coords":{"latitude":"1"}}}',
            RejectionReason.WRONG_TYPE,
        ),
    ],
)
def test_a_json_body_traccar_would_throw_on_is_refused_with_its_reason(
    body: bytes, reason: RejectionReason
) -> None:
    fix = decode_json(body)
    assert fix.refused is not None and fix.refused[0] is reason


@given(st.text(max_size=300))
def test_any_query_decodes_or_is_refused_never_raises(query: str) -> None:
    fix = decode_query(query)
    batch = to_batch(fix, "car-a", received_at_ms=RECEIVED_AT_MS)
    assert len(batch.records) + len(batch.rejections) == 1
    assert all(math.isfinite(v) for v in fix.signals.values() if isinstance(v, float))


@given(
    st.recursive(
        st.none() | st.booleans() | st.floats(allow_nan=False) | st.integers() | st.text(max_size=20),
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.sampled_from(
                    [
                        "device_id",
                        "location",
                        "timestamp",
                        "coords",
                        "latitude",
                        "longitude",
                        "speed",
                        "heading",
                        "battery",
                        "level",
                        "is_charging",
                        "extras",
                        "activity",
                        "type",
                        "odometer",
                        "x",
                    ]
                ),
                inner,
                max_size=6,
            )
        ),
        max_leaves=30,
    )
)
def test_any_json_value_decodes_or_is_refused_never_raises(value: Any) -> None:
    fix = decode_json(json.dumps(value).encode())
    batch = to_batch(fix, "car-a", received_at_ms=RECEIVED_AT_MS)
    assert len(batch.records) + len(batch.rejections) == 1
