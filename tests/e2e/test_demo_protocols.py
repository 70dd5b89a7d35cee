"""``microfleet demo`` exercises a real protocol (issue 12 item 5): MQTT through a mosquitto of its own when
one is on PATH, HTTP (said in one line) when none is; ``--protocol mqtt`` without mosquitto is refused."""

from __future__ import annotations

import re
import shutil
import socket
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select

from microfleet.store.schema import telemetry
from tests.e2e.command import Ran, microfleet

DEMO = ("demo", "--duration-s", "12", "--speedup", "40000")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _accepted(ran: Ran, db: Path) -> int:
    """Records the twin was told were accepted, checked against the demo's store."""
    totals = re.search(r"sent ([\d,]+): accepted ([\d,]+), .* not delivered ([\d,]+)", ran.stdout)
    assert totals is not None, ran.stdout + ran.stderr
    sent, accepted, failed = (int(g.replace(",", "")) for g in totals.groups())
    assert accepted > 0 and failed == 0, ran.stdout
    engine = create_engine(f"sqlite:///{db}")
    with engine.connect() as conn:
        stored = conn.execute(select(func.count()).select_from(telemetry)).scalar_one()
    engine.dispose()
    assert stored == accepted
    return sent


@pytest.mark.skipif(shutil.which("mosquitto") is None, reason="mosquitto is not installed here")
def test_the_demo_sends_over_mqtt_through_a_broker_of_its_own(tmp_path: Path) -> None:
    db = tmp_path / "demo.db"
    ran = microfleet(*DEMO, "--port", str(_free_port()), db=db)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    line = next(line for line in ran.stdout.splitlines() if "send over MQTT" in line)
    _accepted(ran, db)
    broker = re.search(r"mosquitto at 127\.0\.0\.1:(\d+)", line)
    assert broker is not None, line
    with pytest.raises(ConnectionRefusedError):  # the demo stopped its broker when it ended
        socket.create_connection(("127.0.0.1", int(broker.group(1))), 1).close()


def test_without_mosquitto_the_demo_sends_over_http(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "bin").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    db = tmp_path / "demo.db"
    ran = microfleet(*DEMO, "--port", str(_free_port()), db=db)
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert (
        "mosquitto is not on PATH: the twin's cars send over HTTP instead (POST /api/v1/telemetry)"
        in ran.stdout
    )
    assert "send over MQTT" not in ran.stdout
    _accepted(ran, db)


def test_mqtt_asked_for_without_mosquitto_is_one_sentence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    ran = microfleet("demo", "--protocol", "mqtt", "--duration-s", "1", db=tmp_path / "demo.db")
    assert ran.returncode == 2
    assert "error (configuration_error): --protocol mqtt: mosquitto is not on PATH" in ran.stdout
    assert "Traceback" not in ran.stdout + ran.stderr
