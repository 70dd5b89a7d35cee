"""FailureThrottle.waiting_s: what a login asks before checking a password; it counts nothing itself."""

from __future__ import annotations

from microfleet.services.throttle import FailureLimits, FailureThrottle


class FakeClock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def test_waiting_is_none_until_the_burst_is_spent_then_shrinks_to_none() -> None:
    clock = FakeClock()
    throttle = FailureThrottle(FailureLimits(burst=2, per_minute=6), clock_s=clock)  # one back every 10 s
    assert throttle.waiting_s("192.0.2.1") is None  # a client never seen
    throttle.failed("192.0.2.1")
    assert throttle.waiting_s("192.0.2.1") is None
    throttle.failed("192.0.2.1")
    assert throttle.waiting_s("192.0.2.1") == 10
    assert throttle.waiting_s("192.0.2.1") == 10  # asking draws nothing
    clock.now_s += 7
    assert throttle.waiting_s("192.0.2.1") == 3
    clock.now_s += 3
    assert throttle.waiting_s("192.0.2.1") is None  # a try earned back: the real user gets in
    assert throttle.waiting_s("192.0.2.2") is None  # another address was never affected
