"""The signed-command wire format: what a car accepts and what it refuses, with the reason."""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from microfleet.domain.command_wire import (
    MAX_CLOCK_SKEW_MS,
    MAX_LIFETIME_MS,
    Action,
    CommandRefused,
    CommandResult,
    CommandVerifier,
    Refusal,
    ResultStatus,
    SignedCommand,
    decode,
    decode_result,
    encode,
    encode_result,
    key_id,
    load_public_key,
    new_nonce,
    public_key_text,
    sign,
)

NOW = 1_780_000_000_000


def _command(**changes: object) -> SignedCommand:
    fields: dict[str, object] = {
        "command_id": "c-1",
        "vehicle_id": "car-1",
        "action": Action.SET_CHARGE_LIMIT,
        "params": {"limit_pct": 80},
        "issued_at_ms": NOW,
        "expires_at_ms": NOW + 60_000,
        "nonce": new_nonce(),
        "key_id": "",
    }
    fields.update(changes)
    return SignedCommand(**fields)  # type: ignore[arg-type]


@pytest.fixture
def server_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def car(server_key: Ed25519PrivateKey) -> CommandVerifier:
    verifier = CommandVerifier("car-1")
    # The car is provisioned with the text form, as a telematics box would be.
    verifier.trust(load_public_key(public_key_text(server_key.public_key())))
    return verifier


def _refusal(car: CommandVerifier, command: SignedCommand, now_ms: int = NOW + 1_000) -> Refusal:
    with pytest.raises(CommandRefused) as caught:
        car.verify(command, now_ms)
    return caught.value.reason


def test_a_genuine_command_survives_the_wire_and_is_accepted(
    server_key: Ed25519PrivateKey, car: CommandVerifier
) -> None:
    signed = sign(_command(), server_key)
    received = decode(encode(signed))
    assert received == signed
    assert car.verify(received, NOW + 1_000) is received
    assert received.key_id == key_id(server_key.public_key())


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("command_id", "c-2"),
        ("action", Action.UNLOCK),
        ("params", {"limit_pct": 100}),
        ("issued_at_ms", NOW + 1),
        ("expires_at_ms", NOW + 3_600_000),
        ("nonce", "0" * 32),
    ],
)
def test_any_field_edited_in_transit_breaks_the_signature(
    server_key: Ed25519PrivateKey, car: CommandVerifier, field: str, value: object
) -> None:
    forged = dataclasses.replace(sign(_command(), server_key), **{field: value})
    assert _refusal(car, forged) is Refusal.BAD_SIGNATURE


def test_a_command_re_signed_with_another_key_is_refused(
    server_key: Ed25519PrivateKey, car: CommandVerifier
) -> None:
    attacker = Ed25519PrivateKey.generate()
    resigned = sign(_command(), attacker)
    assert _refusal(car, resigned) is Refusal.UNKNOWN_KEY
    # Claiming the trusted key's id does not help: the signature is checked against the trusted key.
    claimed = dataclasses.replace(resigned, key_id=key_id(server_key.public_key()))
    assert _refusal(car, claimed) is Refusal.BAD_SIGNATURE


def test_a_command_for_another_car_is_refused(server_key: Ed25519PrivateKey, car: CommandVerifier) -> None:
    assert _refusal(car, sign(_command(vehicle_id="car-2"), server_key)) is Refusal.WRONG_VEHICLE


def test_expired_and_future_commands_are_refused(server_key: Ed25519PrivateKey, car: CommandVerifier) -> None:
    signed = sign(_command(), server_key)
    assert _refusal(car, signed, now_ms=signed.expires_at_ms) is Refusal.EXPIRED
    early = NOW + MAX_CLOCK_SKEW_MS + 2_000
    future = sign(_command(issued_at_ms=early, expires_at_ms=early + 60_000), server_key)
    assert _refusal(car, future, now_ms=NOW) is Refusal.NOT_YET_VALID
    too_long = sign(_command(expires_at_ms=NOW + MAX_LIFETIME_MS + 1), server_key)
    assert _refusal(car, too_long) is Refusal.MALFORMED


def test_a_replayed_command_is_refused_and_nonces_are_forgotten_after_expiry(
    server_key: Ed25519PrivateKey, car: CommandVerifier
) -> None:
    signed = sign(_command(), server_key)
    car.verify(signed, NOW + 1_000)
    assert _refusal(car, signed, now_ms=NOW + 2_000) is Refusal.REPLAYED
    assert car.remembered_nonces() == 1
    # After its expiry the nonce is dropped; the command itself is then refused as expired, never accepted.
    assert _refusal(car, signed, now_ms=signed.expires_at_ms + 1) is Refusal.EXPIRED
    assert car.remembered_nonces() == 0


def test_a_rotated_out_key_is_no_longer_trusted(server_key: Ed25519PrivateKey, car: CommandVerifier) -> None:
    new_key = Ed25519PrivateKey.generate()
    car.trust(new_key.public_key())
    car.verify(sign(_command(), new_key), NOW + 1_000)
    car.forget(key_id(server_key.public_key()))
    assert _refusal(car, sign(_command(), server_key)) is Refusal.UNKNOWN_KEY


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        (b"\xff\xfe", "UTF-8"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"v": 1}', "fields missing"),
        (b"x" * 5000, "over 4096 bytes"),
    ],
)
def test_malformed_payloads_are_refused_with_a_reason(payload: bytes, words: str) -> None:
    with pytest.raises(CommandRefused) as caught:
        decode(payload)
    assert caught.value.reason is Refusal.MALFORMED
    assert words in caught.value.detail


def test_field_types_are_checked_before_anything_is_trusted(server_key: Ed25519PrivateKey) -> None:
    body = json.loads(encode(sign(_command(), server_key)))
    for name, bad in [
        ("action", "self_destruct"),
        ("issued_at_ms", "soon"),
        ("issued_at_ms", True),
        ("nonce", "not-hex"),
        ("vehicle_id", "../other"),
        ("params", {"limit_pct": [80]}),
        ("v", 2),
    ]:
        tampered = dict(body, **{name: bad})
        with pytest.raises(CommandRefused) as caught:
            decode(json.dumps(tampered).encode())
        assert caught.value.reason is Refusal.MALFORMED, name
    assert decode(json.dumps(body).encode()).params == {"limit_pct": 80}
    nan_body = json.dumps(body).replace('"limit_pct": 80', '"limit_pct": NaN')
    with pytest.raises(CommandRefused):
        decode(nan_body.encode())


def test_a_bad_signature_encoding_is_a_bad_signature(
    server_key: Ed25519PrivateKey, car: CommandVerifier
) -> None:
    signed = sign(_command(), server_key)
    for signature in ("***", base64.b64encode(b"short").decode()):
        assert _refusal(car, dataclasses.replace(signed, signature=signature)) is Refusal.BAD_SIGNATURE


@given(st.binary(max_size=600))
def test_decode_refuses_arbitrary_bytes_only_with_command_refused(payload: bytes) -> None:
    reasons = []
    try:
        decode(payload)
    except CommandRefused as refused:
        reasons.append(refused.reason)
    assert reasons in ([], [Refusal.MALFORMED])


def test_results_round_trip_and_bad_results_are_refused() -> None:
    result = CommandResult("c-1", "car-1", ResultStatus.REFUSED, NOW, Refusal.REPLAYED.value)
    assert decode_result(encode_result(result)) == result
    for payload in (b'{"v": 1, "command_id": "c"}', b'{"v": 2}', b"[]"):
        with pytest.raises(ValueError, match=r"command_id|version"):
            decode_result(payload)
