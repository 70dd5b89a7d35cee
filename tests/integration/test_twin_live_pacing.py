from __future__ import annotations

from pathlib import Path

import msgspec

from microfleet.domain.telemetry import TelemetryRecord
from microfleet.sim.engine import Twin
from microfleet.sim.live import LiveProgress, live_origin_ms, run_live
from microfleet.sim.run import run_days
from microfleet.sim.scenario import LinkFaults, Scenario
from microfleet.sim.senders import NdjsonFileSender

NOW_MS = 1_767_000_000_000
SCENARIO = Scenario(vehicles=4, days=1, seed=5, link=LinkFaults(delay_p=0.05, skewed_vehicle_share=0.5))


class FakeWall:
    """A wall clock that moves only when the runner sleeps."""

    def __init__(self) -> None:
        self.t_s = 0.0
        self.slept_s = 0.0

    def monotonic(self) -> float:
        return self.t_s

    def sleep(self, seconds: float) -> None:
        self.t_s += seconds
        self.slept_s += seconds


def test_live_run_paces_messages_by_speedup_and_never_stamps_the_future(tmp_path: Path) -> None:
    wall = FakeWall()
    out = tmp_path / "sent.ndjson"
    sender = NdjsonFileSender(out)
    progress: list[LiveProgress] = []
    result = run_live(
        Twin(SCENARIO), sender, speedup=3600.0, on_progress=progress.append,
        now_ms=lambda: NOW_MS, monotonic_s=wall.monotonic, sleep=wall.sleep,
    )  # fmt: skip
    sender.close()
    expected = sum(d.telemetry.num_rows for d in run_days(Twin(SCENARIO)))
    assert result.sent == result.accepted == expected
    records = [msgspec.json.decode(line, type=TelemetryRecord) for line in out.read_bytes().splitlines()]
    assert len(records) == expected
    origin = live_origin_ms(1, NOW_MS)
    # A day at 3,600× takes 24 wall seconds; skewed clocks may run at most 120 s ahead.
    assert 23.0 <= wall.slept_s <= 25.0
    assert all(origin - 200_000 <= r.ts_ms <= NOW_MS + 120_000 for r in records)
    sims = [p.sim_ms for p in progress]
    assert sims == sorted(sims) and sims[-1] == origin + 86_400_000


def test_live_run_stops_when_asked(tmp_path: Path) -> None:
    wall = FakeWall()
    sender = NdjsonFileSender(tmp_path / "sent.ndjson")
    result = run_live(
        Twin(SCENARIO), sender, speedup=3600.0, now_ms=lambda: NOW_MS, monotonic_s=wall.monotonic,
        sleep=wall.sleep, should_stop=lambda: wall.t_s > 6.0,
    )  # fmt: skip
    sender.close()
    assert 0 < result.sent < sum(d.telemetry.num_rows for d in run_days(Twin(SCENARIO))) / 2
