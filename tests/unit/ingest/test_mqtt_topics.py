"""Microfleet's MQTT topic tree: which topics are a car's telemetry or status, and which are not."""

from __future__ import annotations

import pytest

from microfleet.ingest.mqtt import MqttTopics, _sniff_content_type

TOPICS = MqttTopics("run-1")


def test_a_car_topics_round_trip() -> None:
    assert TOPICS.parse(TOPICS.telemetry("car-7")) == ("car-7", "telemetry")
    assert TOPICS.parse(TOPICS.status("car-7")) == ("car-7", "status")
    assert TOPICS.ingest_results("car-7") == "run-1/v1/car-7/ingest_results"
    assert TOPICS.telemetry_filter == "run-1/v1/+/telemetry"


@pytest.mark.parametrize(
    "topic",
    [
        "run-1/v1/car-7/ingest_results",  # Microfleet's own answer
        "run-1/v1/car-7/telemetry/extra",
        "run-1/v1//telemetry",
        "run-2/v1/car-7/telemetry",  # another installation's prefix
        "run-1/v2/car-7/telemetry",
        "run-1/v1/car-7",
    ],
)
def test_other_topics_are_not_a_car_s(topic: str) -> None:
    assert TOPICS.parse(topic) is None


@pytest.mark.parametrize(
    ("payload", "content_type"),
    [
        (b'[{"vehicle_id": "a", "ts_ms": 1}]', "application/json"),
        (b'  \n[{"vehicle_id": "a"}]', "application/json"),
        (b'{"vehicle_id": "a", "ts_ms": 1}\n{"vehicle_id": "a", "ts_ms": 2}', "application/x-ndjson"),
        (b"not json", "application/x-ndjson"),
    ],
)
def test_a_payload_without_content_type_is_an_array_or_ndjson(payload: bytes, content_type: str) -> None:
    assert _sniff_content_type(payload) == content_type
