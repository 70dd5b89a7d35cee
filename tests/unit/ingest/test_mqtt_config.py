"""The broker's files Microfleet writes: Mosquitto's own password hash, the ACL, the listener."""

from __future__ import annotations

import base64
import threading
from pathlib import Path

import pytest

from microfleet.errors import ConfigurationError
from microfleet.ingest.mosquitto_config import (
    MosquittoFiles,
    check_topic_prefix,
    mosquitto_password_hash,
    render_acl,
    render_listener_conf,
)

# Written by `mosquitto_passwd -c -b FILE car-1 secret-pw` (mosquitto 2.0.11) on this machine.
MOSQUITTO_PASSWD_LINE = (
    "car-1:$7$101$6/o3r5CVYoPsVvSZ$VsvNb/Mh5Lg2RsX4/izFtD0fsKrFmju//ti9jCc9JNQt0WuI7uLmoavO8V97/r+lgCPkJI0d"
    "PLl4tbhS9Ea0LQ=="
)


def test_password_hash_is_the_one_mosquitto_passwd_writes() -> None:
    _, hashed = MOSQUITTO_PASSWD_LINE.split(":", 1)
    salt = base64.b64decode(hashed.split("$")[3])
    assert mosquitto_password_hash("secret-pw", salt=salt) == hashed
    assert mosquitto_password_hash("secret-pX", salt=salt) != hashed


def test_each_hash_has_a_fresh_salt() -> None:
    first, second = mosquitto_password_hash("pw"), mosquitto_password_hash("pw")
    assert first != second
    assert first.startswith("$7$101$") and len(base64.b64decode(first.split("$")[3])) == 12


def test_acl_confines_each_car_to_its_own_topics() -> None:
    acl = render_acl("run-7", "mf-ingest").splitlines()
    assert "user mf-ingest" in acl
    assert "topic read run-7/v1/+/telemetry" in acl
    assert "topic write run-7/v1/+/ingest_results" in acl
    assert "topic read run-7/v1/+/command_results" in acl
    assert "topic write run-7/v1/+/commands" in acl
    assert "topic read ovms/+/+/metric/#" in acl  # every OVMS module's metrics
    # Under ovms/ the bridge writes only commands as its own client id, and reads only their responses.
    assert [line for line in acl if line.startswith("topic write ovms")] == [
        "topic write ovms/+/+/client/microfleet/command/+"
    ]
    assert "topic read ovms/+/+/client/microfleet/response/+" in acl
    patterns = [line for line in acl if line.startswith("pattern")]
    assert patterns == [
        "pattern write run-7/v1/%u/telemetry",
        "pattern write run-7/v1/%u/status",
        "pattern write run-7/v1/%u/command_results",
        "pattern read run-7/v1/%u/ingest_results",
        "pattern read run-7/v1/%u/commands",
        "pattern write ovms/%u/#",
        "pattern read ovms/%u/+/client/#",
    ]
    # No line grants a car or a module (a pattern) anything with a wildcard in the user's place.
    assert not any(line.split()[2].split("/%u/")[0].count("+") or "%u" not in line for line in patterns)


@pytest.mark.parametrize("prefix", ["", "a/+", "a/#", "/a", "a/", "$SYS", "a\0b"])
def test_a_prefix_that_would_widen_the_acl_is_refused(prefix: str) -> None:
    with pytest.raises(ConfigurationError):
        check_topic_prefix(prefix)


def test_listener_takes_no_anonymous_client_and_names_both_files(tmp_path: Path) -> None:
    conf = render_listener_conf(tmp_path, port=18830, persistence_dir=tmp_path).splitlines()
    assert "allow_anonymous false" in conf
    assert f"password_file {tmp_path / 'passwords'}" in conf
    assert f"acl_file {tmp_path / 'acl'}" in conf
    assert "listener 18830 127.0.0.1" in conf
    with pytest.raises(ConfigurationError):
        render_listener_conf(tmp_path, port=8883, tls_cert_path=tmp_path / "cert.pem")


def test_files_add_replace_and_remove_users(tmp_path: Path) -> None:
    files = MosquittoFiles(tmp_path / "broker", topic_prefix="p", ingest_username="mf-ingest")
    files.set_password("car-1", "one")
    files.set_password("car-2", "two")
    before = files.password_path.read_text()
    files.set_password("car-1", "three")  # a rotation replaces the line, never adds a second one
    assert files.usernames() == ["car-1", "car-2"]
    assert before.splitlines()[1] == files.password_path.read_text().splitlines()[1]
    assert before.splitlines()[0] != files.password_path.read_text().splitlines()[0]
    assert files.password_path.stat().st_mode & 0o007 == 0  # hashes are not world-readable
    assert files.remove("car-1") and not files.remove("car-1")
    assert files.usernames() == ["car-2"]
    assert files.apply() is False  # no pid file: nobody to tell
    assert (tmp_path / "broker" / "acl").read_text() == render_acl("p", "mf-ingest")
    with pytest.raises(ConfigurationError):
        files.set_password("car:3\nmf-ingest", "x")


def test_two_commands_adding_users_at_once_lose_none(tmp_path: Path) -> None:
    files = MosquittoFiles(tmp_path / "broker", topic_prefix="p", ingest_username="mf-ingest")

    def add(first: int) -> None:
        for i in range(first, first + 15):
            files.set_password(f"car-{i:03d}", "pw")

    threads = [threading.Thread(target=add, args=(first,)) for first in (0, 100, 200)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(files.usernames()) == 45
