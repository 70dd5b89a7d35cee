"""The twin's charger follows what a central system set: TxProfile over TxDefaultProfile, in W or A."""

from __future__ import annotations

from typing import Any

from microfleet.sim.charge_points import Profile, TwinChargePoint

T0 = 1_800_000_000_000


def _schedule(unit: str, periods: list[tuple[int, float]], duration_s: int = 3600) -> dict[str, Any]:
    return {
        "start_schedule": "2027-01-15T08:00:00Z",
        "duration": duration_s,
        "charging_rate_unit": unit,
        "charging_schedule_period": [{"start_period": s, "limit": v} for s, v in periods],
    }


def _twin(behaviour: str = "follow") -> TwinChargePoint:
    return TwinChargePoint("cp", None, max_kw=11.0, phases=3, behaviour=behaviour)  # type: ignore[arg-type]


def test_a_profile_gives_each_periods_limit_and_nothing_outside_its_span() -> None:
    p = Profile("TxProfile", 1, T0, "W", [(0, 3000.0), (900, 0.0), (1800, 7000.0)], 3600)
    assert [p.limit_at(T0 + s * 1000) for s in (-1, 0, 899, 900, 1800, 3599, 3600)] == [
        None,
        3000.0,
        3000.0,
        0.0,
        7000.0,
        7000.0,
        None,
    ]


def test_the_twin_follows_tx_profile_over_tx_default_in_watts_and_amps() -> None:
    twin = _twin()
    start_ms = 1_800_000_000_000 - 1_800_000_000_000 % 1000
    connector = twin.connectors[1]
    connector.transaction_id = 7
    twin.clock = lambda: start_ms
    answer = twin.on_set_charging_profile(
        1,
        {
            "charging_profile_purpose": "TxDefaultProfile",
            "charging_schedule": {**_schedule("A", [(0, 10.0)], 7200), "start_schedule": None},
        },
    )
    assert answer.status == "Accepted"
    assert abs(twin.limit_kw(1, start_ms) - 6.9) < 1e-9  # 10 A x 3 phases x 230 V
    answer = twin.on_set_charging_profile(
        1,
        {
            "charging_profile_purpose": "TxProfile",
            "transaction_id": 7,
            "charging_schedule": {**_schedule("W", [(0, 2500.0)]), "start_schedule": None},
        },
    )
    assert answer.status == "Accepted"
    assert twin.limit_kw(1, start_ms) == 2.5
    assert twin.limit_kw(1, start_ms + 3_600_000) == 6.9  # the TxProfile's span is over: the default again


def test_a_tx_profile_for_another_transaction_is_rejected() -> None:
    twin = _twin()
    twin.connectors[1].transaction_id = 7
    answer = twin.on_set_charging_profile(
        1,
        {
            "charging_profile_purpose": "TxProfile",
            "transaction_id": 8,
            "charging_schedule": _schedule("W", [(0, 1.0)]),
        },
    )
    assert answer.status == "Rejected" and not twin.connectors[1].profiles


def test_faulty_chargers_ignore_or_reject_profiles() -> None:
    body = {
        "charging_profile_purpose": "TxDefaultProfile",
        "charging_schedule": _schedule("W", [(0, 1000.0)]),
    }
    ignoring, rejecting = _twin("ignore"), _twin("reject")
    assert ignoring.on_set_charging_profile(1, body).status == "Accepted"
    assert ignoring.limit_kw(1, 0) == 11.0  # accepted, yet full power
    assert rejecting.on_set_charging_profile(1, body).status == "Rejected"
    assert rejecting.profiles_received and not rejecting.connectors[1].profiles
