"""Mosquitto's password and ACL files for Microfleet's MQTT users, written by Microfleet.

Each car logs in with its vehicle id as user name and a password of its own. The ACL (``pattern`` lines,
``%u`` being the user name) lets a car write only ``<prefix>/v1/<its id>/telemetry``, ``…/status`` and
``…/command_results`` and read only ``…/ingest_results`` and ``…/commands``; Microfleet's ingest user (the
bridges' login) reads every car's telemetry, status and command results and writes their ingest results and
commands. An OVMS v3 module (its user name = its ``server.v3 user``) writes only under ``ovms/<its user>/``
and reads only its own ``client/`` topics; the ingest user reads every module's metrics and events and the
responses to its own client id, and writes only commands as that client id
(``ovms/+/+/client/microfleet/command/+``: the fixed texts of ``ingest/ovms_commands.py``). Mosquitto reads
both files at start and again on SIGHUP
(mosquitto.conf(5), "password_file", "acl_file"), so a credential issued or revoked takes effect at once.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import secrets
import signal
from collections.abc import Iterator
from pathlib import Path

from microfleet.errors import ConfigurationError
from microfleet.ingest.ovms import OVMS_ROOT

# The OVMS client id Microfleet's bridge sends its commands as (``…/client/<id>/command/<n>``).
OVMS_CLIENT_ID = "microfleet"
PASSWORD_FILE_NAME = "passwords"
ACL_FILE_NAME = "acl"
CONF_FILE_NAME = "microfleet.conf"

# Mosquitto 2.0's own hash, "$7$<iterations>$<base64 salt>$<base64 PBKDF2-HMAC-SHA512>": 12-byte salt and
# 101 iterations are mosquitto_passwd's defaults (eclipse/mosquitto common/password_mosq.c, SALT_LEN and
# PW_DEFAULT_ITERATIONS); tests/unit/ingest/test_mqtt_config.py checks a line mosquitto_passwd 2.0.11 wrote.
MOSQUITTO_SALT_BYTES = 12
MOSQUITTO_PBKDF2_ITERATIONS = 101


def mosquitto_password_hash(
    password: str, *, salt: bytes | None = None, iterations: int = MOSQUITTO_PBKDF2_ITERATIONS
) -> str:
    """The password file's form of ``password`` (Mosquitto's ``$7$`` PBKDF2-SHA512)."""
    salt = salt if salt is not None else secrets.token_bytes(MOSQUITTO_SALT_BYTES)
    derived = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(derived).decode()}"


def check_topic_prefix(prefix: str) -> str:
    """Refuse a topic prefix that is empty, has wildcards or NUL, or starts/ends with '/'."""
    if (
        not prefix
        or any(c in prefix for c in "+#\0")
        or prefix.startswith(("/", "$"))
        or prefix.endswith("/")
    ):
        raise ConfigurationError(
            f"MQTT topic prefix {prefix!r} must be non-empty, without '+', '#', NUL, a leading '/' or '$' "
            "or a trailing '/'"
        )
    return prefix


def render_acl(topic_prefix: str, ingest_username: str, ovms_root: str = OVMS_ROOT) -> str:
    """The ACL file: each car and each OVMS module its own topics (by user name), the ingest user every car's.

    OVMS modules (docs/protocols.md) need no list of their own: a ``pattern`` confines every login, a
    module's user name being its ``server.v3 user``, to ``<ovms_root>/<that name>/``.
    """
    base = f"{check_topic_prefix(topic_prefix)}/v1"
    ovms = check_topic_prefix(ovms_root)
    return "\n".join(
        [
            "# Written by Microfleet (microfleet mqtt setup); edits are overwritten.",
            "# Microfleet's ingest user: every car's telemetry, status and command results in, ingest",
            "# results and signed commands out; every OVMS module's metrics and events in, and only the",
            "# allow-listed commands out as client 'microfleet' (an OVMS command is a shell command).",
            f"user {ingest_username}",
            f"topic read {base}/+/telemetry",
            f"topic read {base}/+/status",
            f"topic read {base}/+/command_results",
            f"topic write {base}/+/ingest_results",
            f"topic write {base}/+/commands",
            f"topic readwrite {base}/+/alerts",  # every alert, for integrations as this user (alerts.md)
            f"topic read {ovms}/+/+/metric/#",
            f"topic read {ovms}/+/+/event/#",
            f"topic read {ovms}/+/+/event",
            f"topic write {ovms}/+/+/client/{OVMS_CLIENT_ID}/command/+",
            f"topic read {ovms}/+/+/client/{OVMS_CLIENT_ID}/response/+",
            "",
            "# Every car (user name = vehicle id): its own topics only.",
            f"pattern write {base}/%u/telemetry",
            f"pattern write {base}/%u/status",
            f"pattern write {base}/%u/command_results",
            f"pattern read {base}/%u/ingest_results",
            f"pattern read {base}/%u/commands",
            "# Every OVMS v3 module (user name = its server.v3 user): its own tree only.",
            f"pattern write {ovms}/%u/#",
            f"pattern read {ovms}/%u/+/client/#",
            "",
        ]
    )


def render_listener_conf(
    config_dir: Path,
    *,
    port: int,
    bind_address: str = "127.0.0.1",
    persistence_dir: Path | None = None,
    tls_cert_path: Path | None = None,
    tls_key_path: Path | None = None,
) -> str:
    """A mosquitto.conf listener that takes only Microfleet's users, with their ACL.

    Persistence keeps the ingest user's queued QoS 1 messages across a broker restart (written on a clean
    shutdown and every ``autosave_interval`` s); TLS when a certificate and key are given.
    """
    lines = [
        "# Written by Microfleet (microfleet mqtt setup).",
        "per_listener_settings true",
        f"listener {port} {bind_address}",
        "allow_anonymous false",
        f"password_file {config_dir / PASSWORD_FILE_NAME}",
        f"acl_file {config_dir / ACL_FILE_NAME}",
    ]
    if (tls_cert_path is None) != (tls_key_path is None):
        raise ConfigurationError("a TLS listener needs both a certificate and its key")
    if tls_cert_path is not None and tls_key_path is not None:
        lines += [f"certfile {tls_cert_path}", f"keyfile {tls_key_path}"]
    if persistence_dir is not None:
        lines += ["persistence true", f"persistence_location {persistence_dir}/", "autosave_interval 10"]
    return "\n".join(lines) + "\n"


def _write_private(path: Path, text: str) -> None:
    """Replace ``path`` atomically with ``text``, readable by its owner and group only.

    The broker reads it as its own user (Mosquitto drops root for ``mosquitto``): give the folder that
    user's group with the set-group-id bit (``chgrp mosquitto DIR; chmod 2750 DIR``) and files inherit it.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
    with os.fdopen(fd, "w") as file:
        file.write(text)
    os.replace(tmp, path)


class MosquittoFiles:
    """The broker's password and ACL files in one folder, and the broker's reload (SIGHUP by pid file)."""

    def __init__(
        self, config_dir: Path, *, topic_prefix: str, ingest_username: str, pid_path: Path | None = None
    ) -> None:
        self._dir = config_dir
        self._prefix = check_topic_prefix(topic_prefix)
        self._ingest_username = ingest_username
        self._pid_path = pid_path

    @property
    def password_path(self) -> Path:
        """The password file Mosquitto reads."""
        return self._dir / PASSWORD_FILE_NAME

    def _entries(self) -> dict[str, str]:
        if not self.password_path.exists():
            return {}
        entries: dict[str, str] = {}
        for line in self.password_path.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                username, _, hashed = line.partition(":")
                entries[username] = hashed
        return entries

    def _save(self, entries: dict[str, str]) -> None:
        self._dir.mkdir(parents=True, exist_ok=True)
        _write_private(self.password_path, "".join(f"{u}:{h}\n" for u, h in sorted(entries.items())))

    @contextlib.contextmanager
    def _editing(self) -> Iterator[dict[str, str]]:
        """The password file's entries, saved on exit; two commands at once take turns (an flock)."""
        self._dir.mkdir(parents=True, exist_ok=True)
        with (self._dir / ".passwords.lock").open("a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            entries = self._entries()
            before = dict(entries)
            yield entries
            if entries != before:
                self._save(entries)

    def set_password(self, username: str, password: str) -> None:
        """Give a user this password (a new user, or a rotation: the old password stops at the reload)."""
        if ":" in username or "\n" in username:
            raise ConfigurationError(f"MQTT user name {username!r} cannot hold ':' or a line break")
        with self._editing() as entries:
            entries[username] = mosquitto_password_hash(password)

    def remove(self, username: str) -> bool:
        """Take a user out of the password file; False if it was not there."""
        with self._editing() as entries:
            return entries.pop(username, None) is not None

    def usernames(self) -> list[str]:
        """Every user in the password file, sorted."""
        return sorted(self._entries())

    def apply(self) -> bool:
        """Write the ACL and tell the broker to reread both files; False if no broker pid is known."""
        self._dir.mkdir(parents=True, exist_ok=True)
        _write_private(self._dir / ACL_FILE_NAME, render_acl(self._prefix, self._ingest_username))
        if not self.password_path.exists():
            self._save({})
        if self._pid_path is None or not self._pid_path.exists():
            return False
        try:
            os.kill(int(self._pid_path.read_text().strip()), signal.SIGHUP)
        except (ValueError, ProcessLookupError):
            raise ConfigurationError(
                f"no running broker has the pid in {self._pid_path}; start Mosquitto or fix "
                "MICROFLEET_MQTT_BROKER_PID_PATH"
            ) from None
        return True
