"""Remote commands: issue one to a vehicle, read one, the vehicle's audit list, and its command keys.

Who may command is the service's rule (docs/commands.md): an owner their cars, a driver during their own
booking, an operator their fleet's cars, an admin any; every refusal is audited with the caller's address.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from microfleet.api.auth import UserDep, principal
from microfleet.api.deps import CommandsDep
from microfleet.api.errors import ErrorBody
from microfleet.domain.access import DevicePrincipal, Principal
from microfleet.domain.command_wire import MAX_LIFETIME_MS
from microfleet.domain.commands import parse_action
from microfleet.domain.telemetry import VEHICLE_ID_PATTERN
from microfleet.services.command_keys import CommandKeyInfo
from microfleet.services.commands import IDEMPOTENCY_KEY_MAX_CHARS, AuditEvent, RemoteCommand

router = APIRouter(
    tags=["commands"],
    responses={
        401: {"model": ErrorBody},
        403: {"model": ErrorBody},
        404: {"model": ErrorBody},
        422: {"model": ErrorBody},
    },
)
VehicleIdPath = Annotated[str, Path(pattern=VEHICLE_ID_PATTERN, description="the vehicle's id")]
CommandIdPath = Annotated[str, Path(min_length=1, max_length=36, pattern=r"^[0-9a-f-]+$")]
ParamValue = bool | int | float | Annotated[str, Field(max_length=200)]
_BASE = "/api/v1/vehicles/{vehicle_id}"


class CommandIn(BaseModel):
    """A command to send: the action, its parameters, and how long it may wait for the car."""

    model_config = ConfigDict(extra="forbid")
    action: str = Field(
        max_length=32,
        description="lock, unlock, climate_on, climate_off, charge_start, charge_stop, set_charge_limit, "
        "locate, wake",
    )
    params: dict[Annotated[str, Field(max_length=32)], ParamValue] = Field(
        default_factory=dict,
        max_length=8,
        description="climate_on: target_c (16-30 degC, optional); set_charge_limit: limit_pct (50-100)",
    )
    expires_in_s: float | None = Field(
        None,
        ge=1,
        le=MAX_LIFETIME_MS // 1000,
        allow_inf_nan=False,
        description="seconds the command may wait for the car (default MICROFLEET_COMMAND_EXPIRY_DEFAULT_S)",
    )


class CommandOut(BaseModel):
    """A command as stored: its status, times (UTC epoch ms), who issued it and how it was sent."""

    command_id: str
    vehicle_id: str
    action: str
    params: dict[str, Any]
    status: str
    issued_at_ms: int
    expires_at_ms: int
    issued_by: str
    client: str
    key_id: str
    sent_at_ms: int | None
    channel: str | None
    result_at_ms: int | None
    result_reason: str | None


class AuditEventOut(BaseModel):
    """One line of the audit log: who did what to the command (or tried), when and from where."""

    at_ms: int
    event: str
    actor: str
    client: str
    action: str | None
    detail: str
    command_id: str | None


class CommandDetailOut(BaseModel):
    """A command and its audit lines, newest first."""

    command: CommandOut
    events: list[AuditEventOut]


class CommandListOut(BaseModel):
    """A vehicle's commands, newest first, and the attempts that were refused (nothing was stored)."""

    commands: list[CommandOut]
    refused_attempts: list[AuditEventOut]


class CommandKeyOut(BaseModel):
    """A public key the car trusts (base64 of the 32 raw Ed25519 bytes); the current one comes first."""

    key_id: str
    public_key: str
    created_at_ms: int
    current: bool
    listed_until_ms: int | None


class CommandKeysOut(BaseModel):
    """The vehicle's command public keys (private keys never leave the server)."""

    vehicle_id: str
    keys: list[CommandKeyOut]


def _command(c: RemoteCommand) -> CommandOut:
    return CommandOut(
        command_id=c.command_id,
        vehicle_id=c.vehicle_id,
        action=c.action.value,
        params=dict(c.params),
        status=c.status.value,
        issued_at_ms=c.issued_at_ms,
        expires_at_ms=c.expires_at_ms,
        issued_by=c.issued_by,
        client=c.client,
        key_id=c.signed.key_id,
        sent_at_ms=c.sent_at_ms,
        channel=c.channel,
        result_at_ms=c.result_at_ms,
        result_reason=c.result_reason,
    )


def _event(e: AuditEvent) -> AuditEventOut:
    return AuditEventOut(
        at_ms=e.at_ms,
        event=e.event,
        actor=e.actor,
        client=e.client,
        action=e.action,
        detail=e.detail,
        command_id=e.command_id,
    )


def _keys(vehicle_id: str, keys: list[CommandKeyInfo]) -> CommandKeysOut:
    return CommandKeysOut(
        vehicle_id=vehicle_id,
        keys=[
            CommandKeyOut(
                key_id=k.key_id,
                public_key=k.public_key,
                created_at_ms=k.created_at_ms,
                current=k.current,
                listed_until_ms=k.listed_until_ms,
            )
            for k in keys
        ],
    )


@router.post(
    f"{_BASE}/commands",
    response_model=CommandOut,
    status_code=201,
    summary="Send a remote command to a vehicle",
    responses={200: {"model": CommandOut, "description": "The command already sent with this key"}},
)
def issue_command(
    vehicle_id: VehicleIdPath,
    body: CommandIn,
    user: UserDep,
    commands: CommandsDep,
    request: Request,
    response: Response,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            max_length=IDEMPOTENCY_KEY_MAX_CHARS,
            description="the same key again returns the command it created (200), never a second one",
        ),
    ] = None,
) -> CommandOut:
    """Queue a signed command for the car (201); it waits at most ``expires_in_s`` for the car to be online.

    Refused before anything is stored or sent: a car you do not see (404), one you may not command now
    (403: a driver outside their booking, an operator outside their fleet), an action the car's model does
    not support or a parameter out of range (422). Each refusal is audited.
    """
    client = request.client.host if request.client else "unknown"
    command, created = commands.issue(
        user,
        vehicle_id,
        parse_action(body.action),
        body.params,
        expires_in_s=body.expires_in_s,
        idempotency_key=idempotency_key,
        client=client,
    )
    if not created:
        response.status_code = 200
    return _command(command)


@router.get(
    f"{_BASE}/commands/{{command_id}}",
    response_model=CommandDetailOut,
    summary="A remote command and its audit lines",
)
def get_command(
    vehicle_id: VehicleIdPath, command_id: CommandIdPath, user: UserDep, commands: CommandsDep
) -> CommandDetailOut:
    """The command's status and every change it went through (a driver sees only their own commands)."""
    command, events = commands.get(user, vehicle_id, command_id)
    return CommandDetailOut(command=_command(command), events=[_event(e) for e in events])


@router.get(f"{_BASE}/commands", response_model=CommandListOut, summary="A vehicle's command audit list")
def list_commands(
    vehicle_id: VehicleIdPath,
    user: UserDep,
    commands: CommandsDep,
    limit: Annotated[int, Query(ge=1, le=1000, description="most commands (and refusals) returned")] = 100,
) -> CommandListOut:
    """The vehicle's commands and refused attempts, newest first (a driver sees only their own)."""
    found, refused = commands.list_for_vehicle(user, vehicle_id, limit)
    return CommandListOut(
        commands=[_command(c) for c in found], refused_attempts=[_event(e) for e in refused]
    )


@router.get(f"{_BASE}/command-keys", response_model=CommandKeysOut, summary="A vehicle's command public keys")
def command_keys(
    vehicle_id: VehicleIdPath,
    caller: Annotated[Principal, Depends(principal)],
    commands: CommandsDep,
) -> CommandKeysOut:
    """The public keys the car verifies commands with, current first; created on first request.

    For the car's own device credential (its box fetches them at start: trust on first use over TLS), its
    owner, its fleet's operator and admins.
    """
    if isinstance(caller, DevicePrincipal):
        return _keys(vehicle_id, commands.command_keys_for_device(caller.vehicle_id, vehicle_id))
    return _keys(vehicle_id, commands.command_keys_for(caller, vehicle_id))


@router.post(
    f"{_BASE}/command-keys/rotate",
    response_model=CommandKeysOut,
    summary="Rotate a vehicle's command key",
)
def rotate_command_key(vehicle_id: VehicleIdPath, user: UserDep, commands: CommandsDep) -> CommandKeysOut:
    """Sign the car's commands with a new key from now on; the previous public key stays listed a while."""
    return _keys(vehicle_id, commands.rotate_key_for(user, vehicle_id))
