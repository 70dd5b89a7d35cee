"""Each vehicle's Ed25519 command key pair: created on first need, rotated, private half sealed at rest.

The private key is stored only sealed with AES-256-GCM under a key-encryption key (KEK) that is not in the
database (``MICROFLEET_COMMAND_KEY_ENCRYPTION_KEY_PATH``, a file made on first use): a stolen database or
backup holds no usable signing key. The vehicle id and key id are the sealing's associated data, so a
sealed key copied onto another vehicle's row does not open. Private keys never leave this module: no
method returns one except :meth:`CommandKeys.signing_key`, which the command service signs with.
"""

from __future__ import annotations

import base64
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

from microfleet.domain.command_wire import key_id, public_key_text
from microfleet.errors import ConfigurationError

KEK_BYTES: Final = 32  # AES-256
_NONCE_BYTES: Final = 12  # the GCM nonce size NIST SP 800-38D recommends


@dataclass(frozen=True, slots=True)
class StoredCommandKey:
    """A vehicle's key as the store holds it: the public half in base64, the private half sealed."""

    vehicle_id: str
    key_id: str
    public_key: str
    sealed_private_key: str
    created_at_ms: int
    retired_at_ms: int | None  # None: the current key, the one commands are signed with
    listed_until_ms: int | None  # a retired key is still listed to cars until then


@dataclass(frozen=True, slots=True)
class CommandKeyInfo:
    """A public key as cars and users see it."""

    key_id: str
    public_key: str
    created_at_ms: int
    current: bool
    listed_until_ms: int | None


class CommandKeyPort(Protocol):
    """Command keys in the store (``microfleet.store.commands_store.CommandKeyStore``)."""

    def current(self, vehicle_id: str) -> StoredCommandKey | None:
        """The vehicle's current key, or None before its first."""
        ...

    def add(self, key: StoredCommandKey, *, previous_listed_until_ms: int | None) -> StoredCommandKey:
        """Make ``key`` current; a current key (if ``previous_listed_until_ms`` is given) becomes previous.

        Without ``previous_listed_until_ms`` a key is added only if the vehicle has none; if another process
        added one first, that one is returned.
        """
        ...

    def listed(self, vehicle_id: str, now_ms: int) -> list[StoredCommandKey]:
        """The current key first, then retired keys still listed at ``now_ms``, newest first."""
        ...


class KeySealer:
    """Seals and opens private keys with the key-encryption key (AES-256-GCM)."""

    def __init__(self, kek: bytes | Callable[[], bytes]) -> None:
        # A callable is read on first use, so a process that never signs never touches the key file.
        self._kek = kek
        self._loaded: AESGCM | None = None

    @property
    def _aead(self) -> AESGCM:
        if self._loaded is None:
            kek = self._kek() if callable(self._kek) else self._kek
            if len(kek) != KEK_BYTES:
                raise ConfigurationError(f"the command key-encryption key must be {KEK_BYTES} bytes")
            self._loaded = AESGCM(kek)
        return self._loaded

    def seal(self, private_key: Ed25519PrivateKey, vehicle_id: str, kid: str) -> str:
        """The private key's 32 raw bytes, sealed, as base64 text (nonce first)."""
        raw = private_key.private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self._aead.encrypt(nonce, raw, _associated(vehicle_id, kid))
        return base64.b64encode(nonce + sealed).decode("ascii")

    def open(self, sealed: str, vehicle_id: str, kid: str) -> Ed25519PrivateKey:
        """The private key, or :class:`ConfigurationError` if this KEK did not seal it for this row."""
        blob = base64.b64decode(sealed)
        try:
            raw = self._aead.decrypt(blob[:_NONCE_BYTES], blob[_NONCE_BYTES:], _associated(vehicle_id, kid))
        except InvalidTag:
            raise ConfigurationError(
                f"the command key {kid} of vehicle {vehicle_id!r} does not open with this key-encryption "
                "key (MICROFLEET_COMMAND_KEY_ENCRYPTION_KEY_PATH changed?); rotate the vehicle's key"
            ) from None
        return Ed25519PrivateKey.from_private_bytes(raw)


def _associated(vehicle_id: str, kid: str) -> bytes:
    return f"microfleet-command-key\n{vehicle_id}\n{kid}".encode()


class CommandKeys:
    """Create, rotate and list vehicles' command keys; hand the command service the key to sign with."""

    def __init__(self, store: CommandKeyPort, sealer: KeySealer, *, previous_listed_ms: int) -> None:
        self._store = store
        self._sealer = sealer
        self._previous_listed_ms = previous_listed_ms

    def _new(self, vehicle_id: str, now_ms: int) -> StoredCommandKey:
        private_key = Ed25519PrivateKey.generate()
        kid = key_id(private_key.public_key())
        return StoredCommandKey(
            vehicle_id=vehicle_id,
            key_id=kid,
            public_key=public_key_text(private_key.public_key()),
            sealed_private_key=self._sealer.seal(private_key, vehicle_id, kid),
            created_at_ms=now_ms,
            retired_at_ms=None,
            listed_until_ms=None,
        )

    def current(self, vehicle_id: str, now_ms: int) -> StoredCommandKey:
        """The vehicle's current key, created now if it has none."""
        found = self._store.current(vehicle_id)
        if found is not None:
            return found
        return self._store.add(self._new(vehicle_id, now_ms), previous_listed_until_ms=None)

    def signing_key(self, vehicle_id: str, now_ms: int) -> Ed25519PrivateKey:
        """The private key the vehicle's commands are signed with now (for the command service only)."""
        key = self.current(vehicle_id, now_ms)
        return self._sealer.open(key.sealed_private_key, vehicle_id, key.key_id)

    def listed(self, vehicle_id: str, now_ms: int) -> list[CommandKeyInfo]:
        """The public keys a car should trust: the current one first (created if none), then previous."""
        self.current(vehicle_id, now_ms)
        return [_info(k) for k in self._store.listed(vehicle_id, now_ms)]

    def rotate(self, vehicle_id: str, now_ms: int) -> list[CommandKeyInfo]:
        """A new current key; the replaced one stays listed for the configured overlap."""
        self._store.add(
            self._new(vehicle_id, now_ms), previous_listed_until_ms=now_ms + self._previous_listed_ms
        )
        return [_info(k) for k in self._store.listed(vehicle_id, now_ms)]


def _info(key: StoredCommandKey) -> CommandKeyInfo:
    return CommandKeyInfo(
        key.key_id, key.public_key, key.created_at_ms, key.retired_at_ms is None, key.listed_until_ms
    )
