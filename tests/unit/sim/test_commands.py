"""The twin car's command executor: genuine commands change its state and physics; nothing else does."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from microfleet.domain.command_wire import (
    Action,
    CommandVerifier,
    ParamValue,
    ResultStatus,
    SignedCommand,
    encode,
    new_nonce,
    public_key_text,
    sign,
)
from microfleet.domain.telemetry import TelemetryRecord
from microfleet.sim.commands import CarControls, CommandExecutor, controls_for_model

NOW_MS = 1_780_000_000_000
KEY = Ed25519PrivateKey.generate()


def _command(
    action: Action,
    params: Mapping[str, ParamValue] | None = None,
    *,
    vehicle_id: str = "car-1",
    key: Ed25519PrivateKey = KEY,
    expires_in_ms: int = 60_000,
    command_id: str | None = None,
) -> SignedCommand:
    nonce = new_nonce()
    return sign(
        SignedCommand(
            command_id=command_id or f"cmd-{nonce[:8]}",
            vehicle_id=vehicle_id,
            action=action,
            params=dict(params or {}),
            issued_at_ms=NOW_MS - 1000,
            expires_at_ms=NOW_MS - 1000 + expires_in_ms,
            nonce=nonce,
            key_id="",
        ),
        key,
    )


def _car(**state: float | bool) -> CommandExecutor:
    executor = CommandExecutor(
        CommandVerifier("car-1"), CarControls(usable_kwh=13.8, ac_charge_kw=1.5, **state)
    )  # type: ignore[arg-type]
    executor.trust_keys([public_key_text(KEY.public_key())])
    return executor


def _run(
    car: CommandExecutor, command: SignedCommand, now_ms: int = NOW_MS
) -> tuple[ResultStatus, str | None]:
    result = car.handle(encode(command), now_ms)
    assert result.vehicle_id == "car-1"
    assert result.command_id == command.command_id
    return result.status, result.reason


def test_lock_and_unlock_change_the_lock() -> None:
    car = _car(locked=True)
    assert _run(car, _command(Action.UNLOCK)) == (ResultStatus.ACKNOWLEDGED, None)
    assert car.controls.locked is False
    assert _run(car, _command(Action.LOCK))[0] is ResultStatus.ACKNOWLEDGED
    assert car.controls.locked is True
    assert car.counts["acknowledged"] == 2


def test_climate_on_warms_the_cabin_from_the_pack_and_off_stops_the_draw() -> None:
    car = _car(ambient_c=0.0, cabin_c=0.0, soc_pct=80.0)
    assert _run(car, _command(Action.CLIMATE_ON, {"target_c": 21.0}))[0] is ResultStatus.ACKNOWLEDGED
    controls = car.controls
    assert controls.climate_target_c == 21.0
    for _ in range(60):  # ten minutes in 10 s steps
        controls.advance(10.0)
    assert controls.cabin_c > 10.0  # warming towards 21 °C
    assert controls.hvac_kw > 0.0
    assert controls.soc_pct < 80.0  # the heater drew from the pack
    drawn = (80.0 - controls.soc_pct) / 100.0 * controls.usable_kwh
    assert drawn == pytest.approx(controls.hvac_energy_kwh)
    assert _run(car, _command(Action.CLIMATE_OFF))[0] is ResultStatus.ACKNOWLEDGED
    soc, cabin = controls.soc_pct, controls.cabin_c
    controls.advance(600.0)
    assert controls.hvac_kw == 0.0
    assert controls.soc_pct == soc
    assert controls.cabin_c < cabin  # cooling back towards 0 °C


def test_climate_on_in_the_heat_cools_the_cabin() -> None:
    car = _car(ambient_c=35.0, cabin_c=45.0)
    _run(car, _command(Action.CLIMATE_ON, {"target_c": 22.0}))
    for _ in range(120):
        car.controls.advance(10.0)
    assert car.controls.cabin_c < 35.0


def test_a_climate_target_the_car_cannot_hold_fails_and_changes_nothing() -> None:
    car = _car()
    status, reason = _run(car, _command(Action.CLIMATE_ON, {"target_c": 80.0}))
    assert status is ResultStatus.FAILED and reason is not None and "80" in reason
    assert car.controls.climate_target_c is None


def test_charging_only_when_plugged_and_it_stops_at_the_limit() -> None:
    car = _car(soc_pct=70.0, plugged=False)
    status, reason = _run(car, _command(Action.CHARGE_START))
    assert status is ResultStatus.FAILED and reason == "no charging cable is plugged in"
    assert _run(car, _command(Action.CHARGE_STOP))[0] is ResultStatus.FAILED
    assert car.controls.charging is False
    car.controls.plugged = True
    assert _run(car, _command(Action.SET_CHARGE_LIMIT, {"limit_pct": 80}))[0] is ResultStatus.ACKNOWLEDGED
    assert _run(car, _command(Action.CHARGE_START))[0] is ResultStatus.ACKNOWLEDGED
    assert car.controls.charging
    for _ in range(24):  # two hours at 1.5 kW x 0.9 fill 13.8 kWh by ~20 %
        car.controls.advance(300.0)
    assert car.controls.soc_pct == pytest.approx(80.0)
    assert car.controls.charging is False  # stopped at the limit
    status, _ = _run(car, _command(Action.CHARGE_START))
    assert status is ResultStatus.FAILED  # already at the limit
    car.controls.charging = True
    assert _run(car, _command(Action.CHARGE_STOP))[0] is ResultStatus.ACKNOWLEDGED
    assert car.controls.charging is False


def test_a_lower_limit_stops_a_running_charge_and_a_silly_one_fails() -> None:
    car = _car(soc_pct=75.0, plugged=True, charging=True)
    assert _run(car, _command(Action.SET_CHARGE_LIMIT, {"limit_pct": 70}))[0] is ResultStatus.ACKNOWLEDGED
    assert car.controls.charging is False
    status, _ = _run(car, _command(Action.SET_CHARGE_LIMIT, {"limit_pct": 5}))
    assert status is ResultStatus.FAILED
    assert car.controls.charge_limit_pct == 70


def test_locate_and_wake() -> None:
    car = _car(link_awake=False)
    assert _run(car, _command(Action.LOCATE))[0] is ResultStatus.ACKNOWLEDGED
    assert _run(car, _command(Action.WAKE))[0] is ResultStatus.ACKNOWLEDGED
    assert car.controls.located == 1 and car.controls.link_awake


def _state(car: CommandExecutor) -> dict[str, object]:
    return dataclasses.asdict(car.controls)


def test_forged_replayed_expired_and_foreign_commands_are_refused_and_change_nothing() -> None:
    car = _car(locked=True)
    genuine = _command(Action.UNLOCK)
    edited = dataclasses.replace(genuine, action=Action.LOCATE, nonce=new_nonce())
    other_key = _command(Action.UNLOCK, key=Ed25519PrivateKey.generate())
    foreign = _command(Action.UNLOCK, vehicle_id="car-2")
    expired = _command(Action.UNLOCK, expires_in_ms=500)
    before = _state(car)
    reasons = [_run(car, c)[1] for c in (edited, other_key, foreign, expired)]
    assert _state(car) == before
    assert [r.split(":")[0] for r in reasons if r] == [
        "bad_signature",
        "unknown_key",
        "wrong_vehicle",
        "expired",
    ]
    assert _run(car, genuine)[0] is ResultStatus.ACKNOWLEDGED
    after = _state(car)
    # The same command again (a replay, or a QoS 1 redelivery) is done once.
    status, reason = _run(car, genuine)
    assert status is ResultStatus.REFUSED and reason is not None and reason.startswith("replayed")
    assert _state(car) == after
    assert car.executed == [genuine.command_id]
    assert car.refused == 5


@pytest.mark.parametrize("payload", [b"", b"not json", b"[]", json.dumps({"command_id": "c-9"}).encode()])
def test_malformed_payloads_are_refused_with_the_id_when_there_is_one(payload: bytes) -> None:
    car = _car()
    result = car.handle(payload, NOW_MS)
    assert result.status is ResultStatus.REFUSED
    assert result.reason is not None and result.reason.startswith("malformed")
    assert result.command_id == ("c-9" if b"c-9" in payload else "-")
    assert car.executed == []


def test_a_catalogue_model_gets_its_capacity_and_cabin() -> None:
    controls = controls_for_model("dacia-spring-65-2024", soc_pct=50.0)
    assert controls.usable_kwh == pytest.approx(25.0, rel=0.1)
    assert controls.ac_charge_kw == 7.0
    assert controls.cabin.cabin_ua_w_per_k > 0 and controls.cabin.heat_capacity_j_per_k > 0


def _record(ts_s: int, **signals: object) -> TelemetryRecord:
    return TelemetryRecord(vehicle_id="car-1", ts_ms=NOW_MS + ts_s * 1000, **signals)  # type: ignore[arg-type]


def test_the_cars_records_show_what_commands_changed_until_the_car_changes_it_itself() -> None:
    car = _car()
    parked = {
        "locked": True,
        "ambient_temp_c": 2.0,
        "cabin_temp_c": 3.0,
        "charger_connected": True,
        "soc_pct": 50.0,
    }
    assert car.observe(_record(0, **parked)).locked is True
    assert car.controls.plugged and car.controls.soc_pct == 50.0  # the twin's own state, followed
    _run(car, _command(Action.UNLOCK))
    _run(car, _command(Action.CLIMATE_ON, {"target_c": 20.0}))
    assert _run(car, _command(Action.CHARGE_START))[0] is ResultStatus.ACKNOWLEDGED  # plugged, per the twin
    first = car.observe(_record(60, **parked))
    later = car.observe(_record(600, **parked))
    assert first.locked is False and later.locked is False  # the remote unlock shows
    assert later.hvac_on is True and later.hvac_power_kw is not None and later.hvac_power_kw > 0
    assert later.cabin_temp_c is not None and first.cabin_temp_c is not None
    assert 3.0 < first.cabin_temp_c < later.cabin_temp_c <= 20.0
    # The car drives off (its own unlock) and is locked again at the end: its own state wins from then on.
    assert car.observe(_record(700, **{**parked, "locked": False})).locked is False
    assert car.observe(_record(800, **parked)).locked is True
    unplugged = car.observe(_record(900, **{**parked, "charger_connected": False}))
    assert car.controls.charging is False and unplugged.charger_connected is False
