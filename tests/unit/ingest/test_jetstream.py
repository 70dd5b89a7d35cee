"""The scale-out stream's pure parts: partitions, batch ids and the envelope a worker reads back."""

from __future__ import annotations

import zlib

from hypothesis import given
from hypothesis import strategies as st

from microfleet.ingest.jetstream import (
    HEADER_CONTENT_TYPE,
    HEADER_RECEIVED_MS,
    HEADER_VEHICLE,
    Envelope,
    JetStreamConfig,
    OutgoingBatch,
    batch_id,
    partition_of,
    read_envelope,
)

VEHICLE_IDS = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,30}", fullmatch=True)


@given(VEHICLE_IDS, st.integers(1, 1024))
def test_a_vehicle_always_lands_in_the_same_partition(vehicle_id: str, partitions: int) -> None:
    partition = partition_of(vehicle_id, partitions)
    assert 0 <= partition < partitions
    assert partition == zlib.crc32(vehicle_id.encode()) % partitions  # the same in every process


def test_the_same_batch_has_the_same_id_and_another_car_s_does_not() -> None:
    payload = b'{"vehicle_id":"car-1","ts_ms":1764000000000}'
    assert batch_id("car-1", payload) == batch_id("car-1", bytes(payload))
    assert batch_id("car-1", payload) != batch_id("car-2", payload)
    assert batch_id("car-1", payload) != batch_id("car-1", payload + b"\n")


def test_subjects_and_names_follow_the_prefix_and_stream() -> None:
    config = JetStreamConfig(servers=("nats://x:4222",), prefix="fleet-a", stream="FLEET_A", partitions=4)
    assert config.subject(3) == "fleet-a.telemetry.3"
    assert config.telemetry_filter == "fleet-a.telemetry.*"
    assert config.consumer(3) == "FLEET_A_p3"
    assert config.lease_bucket == "FLEET_A_leases"


def test_a_batch_s_headers_read_back_as_its_envelope() -> None:
    outgoing = OutgoingBatch(
        "car-1", b"{}", "application/x-ndjson", "mqtt p/v1/car-1/telemetry", 1_764_000_000_000
    )
    assert read_envelope(outgoing.headers()) == Envelope(
        "car-1", "mqtt p/v1/car-1/telemetry", 1_764_000_000_000, "application/x-ndjson"
    )


def test_headers_that_are_not_an_adapter_s_say_why() -> None:
    good = OutgoingBatch("car-1", b"{}", "application/json", "mqtt t", 1).headers()
    assert "names no vehicle" in str(read_envelope(None))
    assert "not a vehicle id" in str(read_envelope({**good, HEADER_VEHICLE: "car 1/../x"}))
    assert "epoch milliseconds" in str(read_envelope({**good, HEADER_RECEIVED_MS: "yesterday"}))
    assert "neither of" in str(read_envelope({**good, HEADER_CONTENT_TYPE: "text/csv"}))
