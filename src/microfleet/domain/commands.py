"""Remote commands as rules: their lifecycle, each action's parameters, and who may command a car.

Pure: no clock, no store. :mod:`microfleet.services.commands` applies these rules before a command is
stored or signed, so an unsupported action or an out-of-range parameter never reaches a car. The wire
format the car verifies is :mod:`microfleet.domain.command_wire`; what each model can do is
:mod:`microfleet.domain.capabilities`.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

from microfleet.domain.access import Role, UserPrincipal, Vehicle
from microfleet.domain.command_wire import Action, ParamValue
from microfleet.errors import ConflictError, InvalidInputError


class CommandStatus(enum.StrEnum):
    """Where a remote command is in its life."""

    QUEUED = "queued"  # stored and signed, waiting for the car to be online
    SENT = "sent"  # published to the car (MQTT QoS 1 / the OVMS command channel)
    ACKNOWLEDGED = "acknowledged"  # the car acted on it
    FAILED = "failed"  # genuine, but the car could not do it
    REFUSED = "refused"  # the car's verifier refused it (forged, replayed, expired on arrival...)
    EXPIRED = "expired"  # not answered before its expiry: never delivered late


TERMINAL: Final = frozenset(
    {CommandStatus.ACKNOWLEDGED, CommandStatus.FAILED, CommandStatus.REFUSED, CommandStatus.EXPIRED}
)
RESULTS: Final = frozenset({CommandStatus.ACKNOWLEDGED, CommandStatus.FAILED, CommandStatus.REFUSED})

# The legal moves. A result may find its command still queued: the dispatcher publishes first and marks it
# sent after, and a car on a fast link answers in between. An expired command that had been sent may still
# get the car's answer (the car acted just before expiry): the audit then says what the car did.
_TRANSITIONS: Final[Mapping[CommandStatus, frozenset[CommandStatus]]] = {
    CommandStatus.QUEUED: frozenset({CommandStatus.SENT, CommandStatus.EXPIRED, *RESULTS}),
    CommandStatus.SENT: frozenset({CommandStatus.EXPIRED, *RESULTS}),
    CommandStatus.EXPIRED: RESULTS,
    CommandStatus.ACKNOWLEDGED: frozenset(),
    CommandStatus.FAILED: frozenset(),
    CommandStatus.REFUSED: frozenset(),
}


def can_move(current: CommandStatus, new: CommandStatus, *, was_sent: bool = True) -> bool:
    """Tell whether a command may go from ``current`` to ``new`` (an expired one only if it was sent)."""
    if current is CommandStatus.EXPIRED and not was_sent:
        return False
    return new in _TRANSITIONS[current]


def check_move(current: CommandStatus, new: CommandStatus, *, was_sent: bool = True) -> None:
    """Refuse an illegal move with :class:`ConflictError` naming both states."""
    if not can_move(current, new, was_sent=was_sent):
        raise ConflictError(f"a {current.value} command cannot become {new.value}")


# --- parameters -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ParamRule:
    """One numeric parameter of an action: its bounds, unit and where they come from."""

    name: str
    minimum: float
    maximum: float
    integer: bool
    required: bool
    source: str


# Cabin target. 16-30 degC is the span automatic climate controls of small cars commonly offer (Renault
# and Dacia set in 0.5 degC steps between 16 and 30, e.g. Renault Zoe's multimedia manual); assumption for
# cars whose manual we have not read. An 80 degC request is refused here, not at the car.
CLIMATE_TARGET: Final = ParamRule(
    "target_c",
    16.0,
    30.0,
    integer=False,
    required=False,
    source="assumption: the usual 16-30 degC span of automatic climate controls (Renault/Dacia manuals)",
)
# Charge limit. 50 % floor: below it a city car leaves a booking with too little range for its day
# (Tesla's app uses the same 50 % floor); 100 % is full. Microfleet's choice, not a standard.
CHARGE_LIMIT: Final = ParamRule(
    "limit_pct",
    50.0,
    100.0,
    integer=True,
    required=True,
    source="assumption: 50-100 %, the floor Tesla's app uses; below it too little range is left",
)

PARAMS: Final[Mapping[Action, tuple[ParamRule, ...]]] = {
    Action.CLIMATE_ON: (CLIMATE_TARGET,),
    Action.SET_CHARGE_LIMIT: (CHARGE_LIMIT,),
}


def check_params(action: Action, params: Mapping[str, object]) -> dict[str, ParamValue]:
    """The parameters as they will be signed, or :class:`InvalidInputError` saying what is wrong."""
    rules = {rule.name: rule for rule in PARAMS.get(action, ())}
    unknown = sorted(set(params) - set(rules))
    if unknown:
        allowed = ", ".join(sorted(rules)) or "none"
        raise InvalidInputError(
            f"{action.value} takes no parameter {', '.join(unknown)} (allowed: {allowed})"
        )
    out: dict[str, ParamValue] = {}
    for name, rule in rules.items():
        if name not in params:
            if rule.required:
                raise InvalidInputError(f"{action.value} needs {name} ({_bounds(rule)})")
            continue
        value = params[name]
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise InvalidInputError(f"{name} must be a number ({_bounds(rule)})")
        if rule.integer and value != int(value):
            raise InvalidInputError(f"{name} must be a whole number ({_bounds(rule)})")
        if not rule.minimum <= value <= rule.maximum:
            raise InvalidInputError(f"{name} {value:g} is out of range: {_bounds(rule)}")
        out[name] = int(value) if rule.integer else float(value)
    return out


def _bounds(rule: ParamRule) -> str:
    unit = {"target_c": " degC", "limit_pct": " %"}.get(rule.name, "")
    return f"{rule.minimum:g} to {rule.maximum:g}{unit}"


def parse_action(text: str) -> Action:
    """The action named ``text``, or :class:`InvalidInputError` listing the actions there are."""
    try:
        return Action(text)
    except ValueError:
        names = ", ".join(a.value for a in Action)
        raise InvalidInputError(f"unknown action {text!r}; actions: {names}") from None


# --- who may command ---------------------------------------------------------------------------------


def command_refusal(user: UserPrincipal, vehicle: Vehicle, *, booked_now: bool) -> str | None:
    """Why ``user`` may not command ``vehicle`` now, or None if they may (they already see it).

    An owner commands the cars granted to them; a driver only during their own booking of the car; an
    operator only the cars of their own fleet (a car merely granted to them is for reading); an admin any
    car, each command audited like everyone's.
    """
    if user.role is Role.ADMIN or user.role is Role.OWNER:
        return None
    if user.role is Role.OPERATOR:
        if user.fleet_id is not None and vehicle.fleet_id == user.fleet_id:
            return None
        return "an operator commands only the cars of their own fleet"
    if booked_now:
        return None
    return "a driver commands a car only during their own booking of it"


def may_read_command_keys(user: UserPrincipal, vehicle: Vehicle) -> bool:
    """Owners, the operator of the car's fleet and admins read and rotate a car's command keys."""
    if user.role in (Role.ADMIN, Role.OWNER):
        return True
    return user.role is Role.OPERATOR and user.fleet_id is not None and vehicle.fleet_id == user.fleet_id
