from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import msgspec

from microfleet.domain.telemetry import TelemetryRecord
from microfleet.sim.engine import Twin
from microfleet.sim.live import LiveProgress, live_origin_ms, run_live
from microfleet.sim.run import run_days
from microfleet.sim.scenario import LinkFaults, Scenario
from microfleet.sim.senders import NdjsonFileSender, SendResult

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


class WallStampedSender:
    """Keeps each record with the (fake) wall second it was sent at."""

    def __init__(self, wall: FakeWall) -> None:
        self.wall = wall
        self.sent: list[tuple[float, TelemetryRecord]] = []

    def send(self, vehicle_id: str, records: Sequence[TelemetryRecord]) -> SendResult:
        self.sent.extend((self.wall.t_s, r) for r in records)
        return SendResult(accepted=len(records))


def test_an_open_ended_live_run_keeps_driving_in_real_time_after_catching_up() -> None:
    # At 3,600× the simulated day (ending now) catches up with the wall clock after 86,400/3,599 ≈ 24 s;
    # the run then follows the wall clock at 1× for ten minutes, past the scenario's only day.
    wall = FakeWall()
    sender = WallStampedSender(wall)
    catch_up_s = 86_400 / 3599
    progress: list[LiveProgress] = []
    result = run_live(
        Twin(SCENARIO, open_ended=True), sender, speedup=3600.0, on_progress=progress.append,
        now_ms=lambda: NOW_MS, monotonic_s=wall.monotonic, sleep=wall.sleep,
        should_stop=lambda: wall.t_s > catch_up_s + 600.0,
    )  # fmt: skip
    assert result.sent == len(sender.sent)
    after = [(t, r) for t, r in sender.sent if t > catch_up_s + 1.0]
    # Cars keep reporting in the ten minutes after catch-up: in every minute of it, records stamped after
    # the moment the run caught up (the scenario's end; a delayed link may still deliver older ones) ...
    fresh = [(t, r) for t, r in after if r.ts_ms > NOW_MS]
    assert len(fresh) > 50
    assert {int((t - catch_up_s) // 60) for t, _ in fresh} >= set(range(10))
    # ... each sent no earlier than the wall clock allows (a skewed device clock runs ≤ 120 s ahead).
    assert all(r.ts_ms <= NOW_MS + t * 1000 + 120_000 for t, r in after)
    assert max(r.ts_ms for _, r in after) > NOW_MS + 500_000
    assert progress[-1].caught_up and progress[-1].day == 1
