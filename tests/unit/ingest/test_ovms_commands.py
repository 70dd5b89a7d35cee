"""The OVMS allow-list: each action is one fixed OVMS text; nothing a command carries becomes shell text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microfleet.domain.command_wire import Action, ResultStatus, SignedCommand
from microfleet.ingest.ovms_commands import ALLOW_LIST, GENERIC, command_text, dialect_of, result_of
from microfleet.sim.ovms_sender import MODULE_COMMANDS


def _command(action: Action, **params: bool | int | float | str) -> SignedCommand:
    return SignedCommand("c-1", "car-1", action, params, 0, 60_000, "0" * 32, "k", "s")


def test_each_generic_action_is_one_fixed_text() -> None:
    texts = {a: command_text("generic", _command(a), "1234") for a in GENERIC}
    assert texts == {
        Action.LOCK: "lock 1234",
        Action.UNLOCK: "unlock 1234",
        Action.CLIMATE_ON: "climatecontrol on",
        Action.CLIMATE_OFF: "climatecontrol off",
        Action.CHARGE_START: "charge start",
        Action.CHARGE_STOP: "charge stop",
        Action.WAKE: "wakeup",
    }
    for action in set(Action) - set(GENERIC):  # no generic OVMS command: refused before anything is sent
        with pytest.raises(ValueError, match="no OVMS command"):
            command_text("generic", _command(action), "1234")


def test_the_twizy_locks_its_speed_and_sets_its_sufficient_soc() -> None:
    assert dialect_of("renault-twizy-80") == "twizy" and dialect_of("dacia-spring-65-2024") == "generic"
    assert command_text("twizy", _command(Action.LOCK), None) == "lock 6"
    assert command_text("twizy", _command(Action.SET_CHARGE_LIMIT, limit_pct=80), None) == "xrt ca 80% S"
    for bad in (5, 101, "80; reboot", True):
        with pytest.raises(ValueError, match="limit_pct"):
            command_text("twizy", _command(Action.SET_CHARGE_LIMIT, limit_pct=bad), None)
    with pytest.raises(ValueError, match="no OVMS command"):
        command_text("twizy", _command(Action.CLIMATE_ON), None)


@pytest.mark.parametrize("pin", [None, "", "12 34", "1234; reboot", "1" * 13])
def test_lock_needs_a_pin_of_digits(pin: str | None) -> None:
    with pytest.raises(ValueError, match="PIN"):
        command_text("generic", _command(Action.UNLOCK), pin)


@given(st.dictionaries(st.text(max_size=10), st.text(max_size=40), max_size=4))
def test_no_parameter_ever_reaches_the_text(params: dict[str, str]) -> None:
    for dialect, entries in ALLOW_LIST.items():
        for action, entry in entries.items():
            if "{limit_pct}" in entry.text:
                continue
            text = command_text(dialect, _command(action, **params), "1234")
            assert text == entry.text.replace("{pin}", "1234")


def test_the_answer_becomes_the_result() -> None:
    unlock = _command(Action.UNLOCK)
    assert result_of("generic", unlock, "Vehicle unlocked\n", 5).status is ResultStatus.ACKNOWLEDGED
    failed = result_of("generic", unlock, "Error: vehicle could not be unlocked\n", 5)
    assert (failed.status, failed.reason) == (ResultStatus.FAILED, "Error: vehicle could not be unlocked")
    odd = result_of("generic", unlock, "Unrecognised command\n", 5)
    assert odd.status is ResultStatus.FAILED and odd.reason == "unexpected OVMS answer: Unrecognised command"
    assert result_of("generic", _command(Action.CLIMATE_ON), "Climate Control \non\n", 5).status is (
        ResultStatus.ACKNOWLEDGED
    )


def test_the_twins_module_knows_exactly_the_generic_texts() -> None:
    for action, entry in GENERIC.items():
        words = tuple(entry.text.replace(" {pin}", "").split())
        twin_action, done, _ = MODULE_COMMANDS[words]
        assert twin_action is action
        assert done.startswith(entry.success)
    assert len(MODULE_COMMANDS) == len(GENERIC)
