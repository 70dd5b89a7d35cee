"""The derivation queue: one car whose derivation fails never stops or loses another's; it is listed with
its error and retried with a growing back-off until it succeeds."""

from __future__ import annotations

from collections.abc import Sequence

from microfleet.bootstrap import Services
from microfleet.services.derivation import (
    RETRY_FIRST_S,
    DerivationQueue,
    HistoryDeriver,
    RecomputeReport,
)
from tests.integration.test_history_day import body, day_records

BAD, GOOD = "car-a-bad", "car-b-good"  # the failing car sorts first in the claimed batch


class FailingFor:
    """The real deriver, with a fault injected for one car until ``healed``."""

    def __init__(self, deriver: HistoryDeriver, vehicle_id: str) -> None:
        self.deriver = deriver
        self.vehicle_id = vehicle_id
        self.healed = False

    def records_landed(self, vehicle_id: str, ts_ms: Sequence[int]) -> RecomputeReport | None:
        if vehicle_id == self.vehicle_id and not self.healed:
            raise RuntimeError("corrupt window")
        return self.deriver.records_landed(vehicle_id, ts_ms)


class Clock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def test_a_failing_car_is_listed_retried_with_back_off_and_never_costs_another(services: Services) -> None:
    for car in (BAD, GOOD):
        services.admin.add_vehicle(car)
        services.ingest.ingest(
            body(day_records(car)[:200]),
            "application/json",
            credential_vehicle_id=car,
            source="test",
            now_ms=services.clock(),
        )
    faulty = FailingFor(services.deriver, BAD)
    clock = Clock()
    queue = DerivationQueue(faulty, services.telemetry, interval_s=5, monotonic=clock)  # type: ignore[arg-type]

    first = queue.run_pending()
    assert [r.vehicle_id for r in first] == [GOOD]  # derived although the car before it failed
    assert services.history.states(GOOD, 0, 2**62, 100)
    (failure,) = queue.failing()
    assert (failure.vehicle_id, failure.attempts) == (BAD, 1)
    assert "corrupt window" in failure.error
    assert failure.retry_in_s == RETRY_FIRST_S
    assert queue.pending() == 1  # still listed: nothing lost

    assert queue.run_pending() == []  # waiting out its back-off: not retried at once
    clock.now_s += RETRY_FIRST_S
    assert queue.run_pending() == []  # retried, failed again
    (failure,) = queue.failing()
    assert failure.attempts == 2 and failure.retry_in_s == 2 * RETRY_FIRST_S

    faulty.healed = True
    clock.now_s += 2 * RETRY_FIRST_S
    assert [r.vehicle_id for r in queue.run_pending()] == [BAD]
    assert queue.failing() == [] and queue.pending() == 0
