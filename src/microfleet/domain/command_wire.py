"""Signed remote commands on the wire: the one format Microfleet signs and every car verifies.

This module is the reference verifier a telematics box can embed: it depends only on the standard library and
``cryptography``, and nothing else in Microfleet, so it can be copied as it is. The server signs with the
vehicle's Ed25519 private key (``sign``); the car holds the matching public key, provisioned when the car is
enrolled and replaced on rotation, and acts on a command only if ``CommandVerifier.verify`` accepts it:

* the signature covers every field that changes the command's meaning — command id, vehicle, action,
  parameters, issue and expiry times, nonce and key id — in one canonical byte string (``signed_bytes``), so a
  field edited in transit, or a command re-signed with any other key, fails;
* a command for another vehicle is refused (a command stolen from one car's topic cannot open another car);
* an expired command is refused (a car that was offline never acts late), and so is one issued further in the
  future than the clock skew allows;
* a nonce seen before is refused (a replayed command never runs twice); nonces are remembered only until their
  command expires, since an expired command is refused anyway — the memory a box needs is bounded by
  ``MAX_LIFETIME_MS`` times the command rate.

Why Ed25519: 64-byte signatures and 32-byte keys fit any MQTT payload and a microcontroller's flash; it has no
nonce of its own to get wrong (RFC 8032, section 5.1.6), and ``cryptography`` wraps OpenSSL's implementation.
"""

from __future__ import annotations

import base64
import enum
import hashlib
import json
import math
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

WIRE_VERSION = 1
# Domain separation: these bytes can never be mistaken for any other message Microfleet signs.
_CONTEXT = b"microfleet-command-v1\n"
# A command may live at most one day: long enough to reach a car that sleeps between wake-ups, short
# enough that a box's nonce memory stays small.
# The server gives each command a much shorter expiry (services/commands.py).
MAX_LIFETIME_MS = 24 * 3600 * 1000
# Clock skew tolerated between the server and the car (the same 5 minutes ingest tolerates, issue 3).
MAX_CLOCK_SKEW_MS = 5 * 60 * 1000
MAX_PAYLOAD_BYTES = 4096
_VEHICLE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_HEX = re.compile(r"^[0-9a-f]+$")
ParamValue = bool | int | float | str


class Action(enum.StrEnum):
    """What a remote command asks a car to do."""

    LOCK = "lock"
    UNLOCK = "unlock"
    CLIMATE_ON = "climate_on"
    CLIMATE_OFF = "climate_off"
    CHARGE_START = "charge_start"
    CHARGE_STOP = "charge_stop"
    SET_CHARGE_LIMIT = "set_charge_limit"
    LOCATE = "locate"
    WAKE = "wake"


class Refusal(enum.StrEnum):
    """Why a car refuses a command; sent back in the command result."""

    MALFORMED = "malformed"
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_KEY = "unknown_key"
    WRONG_VEHICLE = "wrong_vehicle"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    REPLAYED = "replayed"


class CommandRefused(Exception):
    """The car must not act on this command; ``reason`` says why."""

    def __init__(self, reason: Refusal, detail: str) -> None:
        super().__init__(f"{reason.value}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class SignedCommand:
    """One command as it travels to the car; ``signature`` covers every other field."""

    command_id: str
    vehicle_id: str
    action: Action
    params: Mapping[str, ParamValue]
    issued_at_ms: int
    expires_at_ms: int
    nonce: str
    key_id: str
    signature: str = ""


def key_id(public_key: Ed25519PublicKey) -> str:
    """A short, stable name for a public key: the first 8 bytes of its SHA-256, in hex."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_text(public_key: Ed25519PublicKey) -> str:
    """The public key as a car is provisioned with it: 32 raw bytes in base64."""
    return base64.b64encode(public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)).decode("ascii")


def load_public_key(text: str) -> Ed25519PublicKey:
    """Read a public key written by :func:`public_key_text`."""
    try:
        raw = base64.b64decode(text, validate=True)
        return Ed25519PublicKey.from_public_bytes(raw)
    except ValueError as error:
        raise CommandRefused(Refusal.UNKNOWN_KEY, "not a base64 Ed25519 public key") from error


def new_nonce() -> str:
    """128 random bits in hex: unique per command, never reused."""
    return secrets.token_hex(16)


def signed_bytes(command: SignedCommand) -> bytes:
    """The canonical bytes the signature covers: sorted-key compact JSON of every field but the signature."""
    body = {
        "v": WIRE_VERSION,
        "command_id": command.command_id,
        "vehicle_id": command.vehicle_id,
        "action": command.action.value,
        "params": dict(command.params),
        "issued_at_ms": command.issued_at_ms,
        "expires_at_ms": command.expires_at_ms,
        "nonce": command.nonce,
        "key_id": command.key_id,
    }
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return _CONTEXT + text.encode("ascii")


def sign(command: SignedCommand, private_key: Ed25519PrivateKey) -> SignedCommand:
    """``command`` with its signature and the signing key's id filled in."""
    unsigned = replace(command, key_id=key_id(private_key.public_key()), signature="")
    signature = private_key.sign(signed_bytes(unsigned))
    return replace(unsigned, signature=base64.b64encode(signature).decode("ascii"))


def encode(command: SignedCommand) -> bytes:
    """The command as a JSON payload (the MQTT ``commands`` topic's format)."""
    body = {
        "v": WIRE_VERSION,
        "command_id": command.command_id,
        "vehicle_id": command.vehicle_id,
        "action": command.action.value,
        "params": dict(command.params),
        "issued_at_ms": command.issued_at_ms,
        "expires_at_ms": command.expires_at_ms,
        "nonce": command.nonce,
        "key_id": command.key_id,
        "signature": command.signature,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), allow_nan=False).encode("utf-8")


def decode(payload: bytes) -> SignedCommand:
    """Parse a payload written by :func:`encode`; anything else is refused as malformed, with the reason."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise CommandRefused(Refusal.MALFORMED, f"payload over {MAX_PAYLOAD_BYTES} bytes")
    try:
        body = json.loads(payload.decode("utf-8"), parse_constant=_refuse_constant)
    except (UnicodeDecodeError, ValueError) as error:
        raise CommandRefused(Refusal.MALFORMED, "payload is not UTF-8 JSON") from error
    if not isinstance(body, dict):
        raise CommandRefused(Refusal.MALFORMED, "payload is not a JSON object")
    expected = {
        "v",
        "command_id",
        "vehicle_id",
        "action",
        "params",
        "issued_at_ms",
        "expires_at_ms",
        "nonce",
        "key_id",
        "signature",
    }
    if set(body) != expected:
        missing, extra = sorted(expected - set(body)), sorted(set(body) - expected)
        raise CommandRefused(Refusal.MALFORMED, f"fields missing {missing}, unknown {extra}")
    if body["v"] != WIRE_VERSION:
        raise CommandRefused(Refusal.MALFORMED, f"wire version {body['v']!r} is not {WIRE_VERSION}")
    try:
        action = Action(body["action"])
    except ValueError as error:
        raise CommandRefused(Refusal.MALFORMED, f"unknown action {body['action']!r}") from error
    for name in ("command_id", "vehicle_id", "nonce", "key_id", "signature"):
        if not isinstance(body[name], str) or not body[name]:
            raise CommandRefused(Refusal.MALFORMED, f"{name} must be a non-empty string")
    for name in ("issued_at_ms", "expires_at_ms"):
        if not isinstance(body[name], int) or isinstance(body[name], bool) or not 0 <= body[name] < 2**53:
            raise CommandRefused(Refusal.MALFORMED, f"{name} must be an integer of milliseconds")
    if not _VEHICLE_ID.match(body["vehicle_id"]):
        raise CommandRefused(Refusal.MALFORMED, "vehicle_id is not a vehicle id")
    if not (_HEX.match(body["nonce"]) and len(body["nonce"]) == 32):
        raise CommandRefused(Refusal.MALFORMED, "nonce must be 32 lowercase hex digits")
    params = body["params"]
    if not isinstance(params, dict) or not all(
        isinstance(k, str) and _is_param_value(v) for k, v in params.items()
    ):
        raise CommandRefused(Refusal.MALFORMED, "params must map names to numbers, strings or booleans")
    return SignedCommand(
        command_id=body["command_id"],
        vehicle_id=body["vehicle_id"],
        action=action,
        params=params,
        issued_at_ms=body["issued_at_ms"],
        expires_at_ms=body["expires_at_ms"],
        nonce=body["nonce"],
        key_id=body["key_id"],
        signature=body["signature"],
    )


class ResultStatus(enum.StrEnum):
    """What became of a command on the car."""

    ACKNOWLEDGED = "acknowledged"  # done: the car acted on it
    FAILED = "failed"  # genuine, but the car could not do it (say, charge_start with no cable)
    REFUSED = "refused"  # the verifier refused it (the reason is a Refusal)


@dataclass(frozen=True, slots=True)
class CommandResult:
    """The car's answer to one command (the MQTT ``command_results`` topic's payload)."""

    command_id: str
    vehicle_id: str
    status: ResultStatus
    ts_ms: int
    reason: str | None = None


def encode_result(result: CommandResult) -> bytes:
    """A command result as a JSON payload."""
    body = {
        "v": WIRE_VERSION,
        "command_id": result.command_id,
        "vehicle_id": result.vehicle_id,
        "status": result.status.value,
        "ts_ms": result.ts_ms,
        "reason": result.reason,
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode("utf-8")


def decode_result(payload: bytes) -> CommandResult:
    """Parse a payload written by :func:`encode_result`; ``ValueError`` with the reason otherwise."""
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"result payload over {MAX_PAYLOAD_BYTES} bytes")
    body = json.loads(payload.decode("utf-8"), parse_constant=_refuse_constant)
    if not isinstance(body, dict) or body.get("v") != WIRE_VERSION:
        raise ValueError(f"not a version {WIRE_VERSION} command result object")
    command_id, vehicle_id, ts_ms, reason = (
        body.get("command_id"),
        body.get("vehicle_id"),
        body.get("ts_ms"),
        body.get("reason"),
    )
    if not isinstance(command_id, str) or not isinstance(vehicle_id, str) or not command_id:
        raise ValueError("command_id and vehicle_id must be strings")
    if not isinstance(ts_ms, int) or isinstance(ts_ms, bool):
        raise ValueError("ts_ms must be an integer of milliseconds")
    if reason is not None and (not isinstance(reason, str) or len(reason) > 500):
        raise ValueError("reason must be a string of at most 500 characters")
    return CommandResult(command_id, vehicle_id, ResultStatus(str(body.get("status"))), ts_ms, reason)


@dataclass
class CommandVerifier:
    """What a car runs before acting: one per vehicle, holding its trusted public keys and the nonces seen.

    ``keys`` maps key id to public key; during a rotation a car holds the old and the new key until the server
    confirms the rotation, then forgets the old one (``trust`` / ``forget``).
    """

    vehicle_id: str
    keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)
    _seen: dict[str, int] = field(default_factory=dict)

    def trust(self, public_key: Ed25519PublicKey) -> str:
        """Accept commands signed by ``public_key`` from now on; returns its key id."""
        kid = key_id(public_key)
        self.keys[kid] = public_key
        return kid

    def forget(self, kid: str) -> None:
        """Stop accepting commands signed by the key ``kid`` (after a rotation)."""
        self.keys.pop(kid, None)

    def verify(self, command: SignedCommand, now_ms: int) -> SignedCommand:
        """``command`` if the car may act on it now; otherwise :class:`CommandRefused` with the reason.

        A command that passes is remembered, so the same nonce is refused from then until it expires.
        """
        self._forget_expired(now_ms)
        if command.vehicle_id != self.vehicle_id:
            raise CommandRefused(Refusal.WRONG_VEHICLE, f"command is for {command.vehicle_id!r}")
        public_key = self.keys.get(command.key_id)
        if public_key is None:
            raise CommandRefused(Refusal.UNKNOWN_KEY, f"no trusted key {command.key_id!r}")
        try:
            signature = base64.b64decode(command.signature, validate=True)
            public_key.verify(signature, signed_bytes(command))
        except (ValueError, InvalidSignature) as error:
            raise CommandRefused(Refusal.BAD_SIGNATURE, "signature does not match the command") from error
        # Times are checked only on a command known to be genuine, so a forger learns nothing from the reason.
        if command.expires_at_ms - command.issued_at_ms > MAX_LIFETIME_MS or (
            command.expires_at_ms <= command.issued_at_ms
        ):
            raise CommandRefused(Refusal.MALFORMED, "expiry is not within a day after issue")
        if now_ms >= command.expires_at_ms:
            raise CommandRefused(Refusal.EXPIRED, f"expired {now_ms - command.expires_at_ms} ms ago")
        if command.issued_at_ms > now_ms + MAX_CLOCK_SKEW_MS:
            raise CommandRefused(Refusal.NOT_YET_VALID, "issued beyond the clock skew allowed")
        if command.nonce in self._seen:
            raise CommandRefused(Refusal.REPLAYED, f"nonce of command {command.command_id!r} seen before")
        self._seen[command.nonce] = command.expires_at_ms
        return command

    def remembered_nonces(self) -> int:
        """How many nonces the verifier holds (bounded by the command rate times ``MAX_LIFETIME_MS``)."""
        return len(self._seen)

    def _forget_expired(self, now_ms: int) -> None:
        expired = [nonce for nonce, expires in self._seen.items() if expires <= now_ms]
        for nonce in expired:
            del self._seen[nonce]


def _is_param_value(value: object) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return isinstance(value, (bool, int, str))


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number")
