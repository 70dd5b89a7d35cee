"""The derivation queue derives less often when its rounds take long: after a round of T seconds it waits
at least PACE x T (never less than its interval), so derivation never holds more than half the server."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from microfleet.services.derivation import PACE, DerivationQueue, RecomputeReport


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class SlowDeriver:
    """Each car takes ``seconds`` of the fake clock to derive."""

    def __init__(self, clock: Clock, seconds: Sequence[float]) -> None:
        self.clock, self.seconds, self.rounds = clock, list(seconds), 0

    def records_landed(self, vehicle_id: str, ts_ms: Sequence[int]) -> RecomputeReport | None:
        self.clock.now += self.seconds[self.rounds]
        self.rounds += 1
        return RecomputeReport(vehicle_id, ts_ms[0], 1, 0, 0, 0)


class OneCarEachRound:
    def __init__(self) -> None:
        self.fresh = False

    def claim_stale(self, limit: int, skip: Collection[str] = ()) -> dict[str, int]:
        self.fresh = not self.fresh  # one car, then nothing (the round ends)
        return {"car": 1} if self.fresh else {}

    def mark_stale(self, vehicle_id: str, from_ms: int) -> None:
        raise AssertionError("no derivation fails here")

    def stale_count(self) -> int:
        return 0


class Waits:
    """Stands in for the queue's stop event: records each wait and stops after ``rounds`` of them."""

    def __init__(self, rounds: int) -> None:
        self.waited: list[float] = []
        self.rounds = rounds

    def wait(self, timeout: float) -> bool:
        self.waited.append(timeout)
        return len(self.waited) > self.rounds

    def is_set(self) -> bool:
        return False


def test_a_round_longer_than_the_interval_is_followed_by_a_longer_wait() -> None:
    clock = Clock()
    deriver = SlowDeriver(clock, [1.0, 12.0, 2.0])
    queue = DerivationQueue(deriver, OneCarEachRound(), interval_s=5.0, monotonic=clock)  # type: ignore[arg-type]
    waits = Waits(rounds=3)
    queue._stopping = waits  # type: ignore[assignment]
    queue._loop()
    assert deriver.rounds == 3
    # before the first round the interval; after a 1 s round the interval; after 12 s, PACE x 12 s
    assert waits.waited == [5.0, 5.0, max(5.0, PACE * 12.0), 5.0]


def test_next_wait_is_never_shorter_than_the_interval() -> None:
    queue = DerivationQueue(SlowDeriver(Clock(), []), OneCarEachRound(), interval_s=5.0)  # type: ignore[arg-type]
    assert queue.next_wait_s(0.0) == 5.0
    assert queue.next_wait_s(4.9) == 5.0
    assert queue.next_wait_s(30.0) == PACE * 30.0
