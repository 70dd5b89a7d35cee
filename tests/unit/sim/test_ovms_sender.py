"""A twin car as an OVMS module: its messages are OVMS's (names, order, formats), and Microfleet's own OVMS
assembler turns them back into the twin's records, to the precision OVMS writes."""

from __future__ import annotations

import math

import pytest

from microfleet.ingest import ovms
from microfleet.sim.engine import Twin
from microfleet.sim.ovms_sender import METRICS, ModuleState, metric_topic, module_send
from microfleet.sim.run import run_days
from microfleet.sim.scenario import Scenario
from microfleet.sim.senders import records_from_rows


def test_the_metric_names_are_the_adapter_s() -> None:
    assert {name: target for name, target, _ in METRICS} == {m.name: m.target for m in ovms.METRICS}
    assert [name for name, _, _ in METRICS] == sorted(name for name, _, _ in METRICS)
    topic = ovms.parse_topic(metric_topic("u1", "car-1", "v.b.p.voltage.min"))
    assert topic is not None and (topic.module, topic.kind, topic.name) == (
        "u1/car-1",
        "metric",
        "v.b.p.voltage.min",
    )


def test_only_changes_are_sent_after_the_first_send_and_the_time_comes_first() -> None:
    rows = next(run_days(Twin(Scenario(vehicles=1, days=1, seed=20)))).telemetry.slice(0, 40).to_pylist()
    records = records_from_rows(rows)
    state = ModuleState()
    first = module_send(records[0], state)
    second = module_send(records[1], state)
    assert first[0][0] == second[0][0] == "m.time.utc" and first[0][1].endswith(" UTC")
    assert [n for n, _ in first[1:]] == sorted(n for n, _ in first[1:])
    assert len(second) < len(first)  # what did not change is not sent again


def test_the_assembler_gets_the_twin_s_records_back() -> None:
    rows = [
        r for day in run_days(Twin(Scenario(vehicles=1, days=1, seed=20))) for r in day.telemetry.to_pylist()
    ]
    records = records_from_rows(rows)
    assembler, state = ovms.OvmsAssembler(), ModuleState()
    assembled: list[dict[str, object]] = []
    for record in records:
        for name, payload in module_send(record, state):
            closed, refused = assembler.feed("car", name, payload, record.ts_ms)
            assert refused is None, (name, payload)
            assembled.extend(closed)
    assembled.extend(assembler.flush("car"))
    assert len(assembled) == len(records) > 500
    for record, item in zip(records, assembled, strict=True):
        assert item["ts_ms"] // 1000 == record.ts_ms // 1000  # OVMS's clock: whole seconds
        for _, target, _ in METRICS:
            sent = getattr(record, target)
            if sent is None:
                continue
            got = item[target]
            if target == "gear":
                assert got == {"P": "N"}.get(sent, sent)  # OVMS has no park
            elif target in ("lat_deg", "lon_deg"):
                assert got == pytest.approx(sent, abs=5e-7)  # 6 decimals
            elif isinstance(sent, bool):
                assert got is sent
            elif isinstance(sent, list):
                assert got == pytest.approx(sent, rel=5e-6)
            else:
                assert math.isclose(got, sent, rel_tol=5e-6, abs_tol=1e-300), (target, got, sent)  # type: ignore[arg-type]
