"""The rules of remote commands: lifecycle, parameter bounds, the capability table and who may command."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microfleet.domain.access import Role, UserPrincipal, Vehicle
from microfleet.domain.capabilities import (
    CAPABILITIES,
    GENERIC,
    capabilities_of,
    capability_markdown,
    check_capability,
)
from microfleet.domain.catalogue import _MODEL_IDS
from microfleet.domain.command_wire import Action
from microfleet.domain.commands import (
    CHARGE_LIMIT,
    CLIMATE_TARGET,
    PARAMS,
    TERMINAL,
    CommandStatus,
    can_move,
    check_move,
    check_params,
    command_refusal,
    parse_action,
)
from microfleet.errors import ConflictError, InvalidInputError

S = CommandStatus


@pytest.mark.parametrize(
    ("current", "new", "legal"),
    [
        (S.QUEUED, S.SENT, True),
        (S.QUEUED, S.EXPIRED, True),
        (S.QUEUED, S.ACKNOWLEDGED, True),  # the car answered before the dispatcher marked it sent
        (S.SENT, S.ACKNOWLEDGED, True),
        (S.SENT, S.FAILED, True),
        (S.SENT, S.REFUSED, True),
        (S.SENT, S.EXPIRED, True),
        (S.SENT, S.QUEUED, False),
        (S.SENT, S.SENT, False),
        (S.EXPIRED, S.SENT, False),  # never delivered late
        (S.EXPIRED, S.QUEUED, False),
    ],
)
def test_legal_moves(current: CommandStatus, new: CommandStatus, legal: bool) -> None:
    assert can_move(current, new) is legal


def test_answered_commands_never_change_and_an_unsent_expired_one_takes_no_answer() -> None:
    for done in TERMINAL - {S.EXPIRED}:
        assert not any(can_move(done, new) for new in CommandStatus)
    assert can_move(S.EXPIRED, S.ACKNOWLEDGED, was_sent=True)
    assert not can_move(S.EXPIRED, S.ACKNOWLEDGED, was_sent=False)
    with pytest.raises(ConflictError, match="a acknowledged command cannot become sent"):
        check_move(S.ACKNOWLEDGED, S.SENT)


@given(st.floats(allow_nan=False, allow_infinity=False, min_value=-1e6, max_value=1e6))
def test_a_climate_target_is_taken_exactly_within_its_bounds(target_c: float) -> None:
    inside = CLIMATE_TARGET.minimum <= target_c <= CLIMATE_TARGET.maximum
    if inside:
        assert check_params(Action.CLIMATE_ON, {"target_c": target_c}) == {"target_c": target_c}
    else:
        with pytest.raises(InvalidInputError, match="out of range: 16 to 30 degC"):
            check_params(Action.CLIMATE_ON, {"target_c": target_c})


@given(st.integers(min_value=-1000, max_value=1000))
def test_a_charge_limit_is_a_whole_percentage_from_50_to_100(limit_pct: int) -> None:
    if CHARGE_LIMIT.minimum <= limit_pct <= CHARGE_LIMIT.maximum:
        assert check_params(Action.SET_CHARGE_LIMIT, {"limit_pct": limit_pct}) == {"limit_pct": limit_pct}
    else:
        with pytest.raises(InvalidInputError, match="out of range"):
            check_params(Action.SET_CHARGE_LIMIT, {"limit_pct": limit_pct})


@pytest.mark.parametrize(
    ("action", "params", "says"),
    [
        (Action.CLIMATE_ON, {"target_c": 80}, "target_c 80 is out of range: 16 to 30 degC"),
        (Action.SET_CHARGE_LIMIT, {"limit_pct": 5}, "limit_pct 5 is out of range: 50 to 100 %"),
        (Action.SET_CHARGE_LIMIT, {"limit_pct": True}, "must be a number"),
        (Action.SET_CHARGE_LIMIT, {"limit_pct": float("nan")}, "must be a number"),
        (Action.SET_CHARGE_LIMIT, {}, "needs limit_pct"),
        (Action.UNLOCK, {"pin": "1234"}, "takes no parameter pin (allowed: none)"),
    ],
)
def test_bad_parameters_are_refused_with_the_bound(
    action: Action, params: dict[str, object], says: str
) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(says)):
        check_params(action, params)


def test_every_catalogue_model_has_a_capability_row_and_every_entry_a_source() -> None:
    catalogued = set(_MODEL_IDS.values())
    rows = [m for row in CAPABILITIES for m in row.models]
    assert len(rows) == len(set(rows)), "a model in two rows"
    assert set(rows) == catalogued
    for row in (*CAPABILITIES, GENERIC):
        assert len({c.action for c in row.capabilities}) == len(row.capabilities), row.platform
        for capability in row.capabilities:
            assert capability.source.startswith(("https://", "assumption")), (row.platform, capability)
            assert capability.how
            rules = {rule.name for rule in PARAMS.get(capability.action, ())}
            assert capability.params <= rules
            required = {rule.name for rule in PARAMS.get(capability.action, ()) if rule.required}
            assert required <= capability.params, (row.platform, capability.action)  # else never usable


def test_a_twizy_locks_by_its_speed_lock_and_has_no_climate() -> None:
    twizy = capabilities_of("renault-twizy-80")
    lock = twizy.find(Action.LOCK)
    assert lock is not None and "speed lock" in lock.how and "openvehicles" in lock.source
    with pytest.raises(InvalidInputError, match="cannot climate_on remotely"):
        check_capability("renault-twizy-80", Action.CLIMATE_ON, {})


def test_a_spring_takes_climate_on_but_no_target() -> None:
    assert check_capability("dacia-spring-65-2024", Action.CLIMATE_ON, {}) == {}
    with pytest.raises(InvalidInputError, match="cannot take target_c"):
        check_capability("dacia-spring-65-2024", Action.CLIMATE_ON, {"target_c": 21})


def test_a_car_without_a_known_model_is_the_generic_box() -> None:
    assert capabilities_of(None) is GENERIC and capabilities_of("a-self-built-car") is GENERIC
    assert check_capability(None, Action.CLIMATE_ON, {"target_c": 21}) == {"target_c": 21.0}
    with pytest.raises(InvalidInputError, match="unknown action 'open_boot'; actions: lock, unlock"):
        parse_action("open_boot")


def _user(role: Role, fleet: str | None = None) -> UserPrincipal:
    return UserPrincipal(1, role.value, role, fleet)


CAR = Vehicle("car-a", "Car", None, "city", 0)


@pytest.mark.parametrize(
    ("user", "booked", "refused"),
    [
        (_user(Role.ADMIN), False, False),
        (_user(Role.OWNER), False, False),
        (_user(Role.OPERATOR, "city"), False, False),
        (_user(Role.OPERATOR, "other"), False, True),
        (_user(Role.OPERATOR), False, True),
        (_user(Role.DRIVER), False, True),
        (_user(Role.DRIVER), True, False),
    ],
)
def test_who_may_command(user: UserPrincipal, booked: bool, refused: bool) -> None:
    assert (command_refusal(user, CAR, booked_now=booked) is not None) is refused


def test_the_capability_table_in_the_docs_is_the_declared_one() -> None:
    page = (Path(__file__).parents[3] / "docs" / "commands.md").read_text()
    assert capability_markdown() in page, "regenerate docs/commands.md's table with capability_markdown()"
