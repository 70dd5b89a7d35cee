"""The live feed (``GET /api/v1/live``) on real stores: resume without gaps, the gap message, grants and
tokens changing while connected, a slow client cut off while ingest and a fast client carry on, and an
ingest in another process reaching the API process's feed.

Who sees which car (two owners, a driver, two fleets' operators, an admin, device credentials) is the
authorization matrix's WebSocket row (tests/integration/test_authorization.py).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi.testclient import TestClient
from websockets.sync.client import connect

from microfleet.api import create_app
from microfleet.bootstrap import Services, build_services, wall_clock_ms
from microfleet.services.web_sessions import session_sha256
from microfleet.settings import Settings
from microfleet.store.web_accounts import WebAccountStore
from tests.integration.conftest import NOW_MS, FrozenClock
from tests.integration.live_client import read_until, receive_within, until_ready
from tests.integration.world import World, bearer, build_world


def _send(services: Services, vehicle_id: str, ts_ms: int, soc_pct: float, now_ms: int = NOW_MS) -> None:
    """One record of a car that moved and whose state of charge changed: one event."""
    record = {
        "vehicle_id": vehicle_id,
        "ts_ms": ts_ms,
        "soc_pct": soc_pct,
        "lat_deg": 31.2 + soc_pct / 1000,
        "lon_deg": 121.4,
    }
    report = services.ingest.ingest(
        json.dumps([record]).encode(),
        "application/json",
        credential_vehicle_id=vehicle_id,
        source="test",
        now_ms=now_ms,
    )
    assert report.accepted == 1, report


def _ids_of(services: Services, vehicle_ids: set[str]) -> list[int]:
    return [e.event_id for e in services.live_log.after(0, 1_000_000) if e.vehicle_id in vehicle_ids]


def _cars_events(received: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in received if e["kind"] not in ("ready", "gap")]


@pytest.fixture
def world_client(services: Services) -> Iterator[tuple[World, TestClient]]:
    world = build_world(services)
    services.live_feed.limits = dataclasses.replace(services.live_feed.limits, poll_interval_s=0.02)
    with TestClient(create_app(services.settings, services)) as client:
        yield world, client


def test_a_client_resuming_with_its_token_misses_nothing_and_gets_nothing_twice(
    services: Services, world_client: tuple[World, TestClient]
) -> None:
    world, client = world_client
    ann = bearer(world.tokens["ann"])
    received: list[dict[str, Any]] = []
    with client.websocket_connect("/api/v1/live", headers=ann) as ws:
        received += read_until(ws, until_ready)
        for i in range(5):
            _send(services, "car-b", NOW_MS - 60_000 + i * 1000, 40 + i)
            _send(services, "car-a", NOW_MS - 60_000 + i * 1000, 50 + i)
        first = _ids_of(services, {"car-a"})
        received += read_until(ws, lambda got: first[-1] in {e["event_id"] for e in got})
    token = _cars_events(received)[-1]["event_id"]
    for i in range(5, 12):  # while ann is away
        _send(services, "car-a", NOW_MS - 60_000 + i * 1000, 50 + i)
        _send(services, "car-b", NOW_MS - 60_000 + i * 1000, 40 + i)
    with client.websocket_connect(f"/api/v1/live?after={token}", headers=ann) as ws:
        opening = read_until(ws, until_ready)
        assert not [e for e in opening if e["kind"] == "gap"]
        # Replayed from the log up to where this process's poller stood; any after that come live.
        assert opening[-1]["kind"] == "ready" and opening[-1]["payload"]["replayed"] <= 7
        received += opening
        for i in range(12, 15):
            _send(services, "car-a", NOW_MS - 60_000 + i * 1000, 50 + i)
        every = _ids_of(services, {"car-a"})
        received += read_until(ws, lambda got: every[-1] in {e["event_id"] for e in got})
    got = [e["event_id"] for e in _cars_events(received)]
    assert got == every and len(every) == 15  # in order, none missing, none twice
    assert {e["vehicle_id"] for e in _cars_events(received)} == {"car-a"}


def test_a_token_older_than_the_window_gets_a_gap_message(
    services: Services, clock: FrozenClock, world_client: tuple[World, TestClient]
) -> None:
    world, client = world_client
    for i in range(3):
        _send(services, "car-a", NOW_MS - 60_000 + i * 1000, 50 + i)
    old = _ids_of(services, {"car-a"})
    window_ms = services.live_feed.limits.window_ms
    clock.now_ms += window_ms + 60_000  # the events above are now past the window; the next write prunes
    _send(services, "car-a", clock.now_ms - 1000, 60, now_ms=clock.now_ms)
    kept = _ids_of(services, {"car-a"})
    assert kept == [old[-1] + 1]
    ann = bearer(world.tokens["ann"])
    for after in (old[0], 999_999):  # expired, and a token this server never gave
        with client.websocket_connect(f"/api/v1/live?after={after}", headers=ann) as ws:
            opening = read_until(ws, until_ready)
        gap, ready = opening
        assert gap["kind"] == "gap" and gap["vehicle_id"] is None
        assert (
            gap["payload"]["after"] == after and "fetch the vehicles' state again" in gap["payload"]["reason"]
        )
        assert ready["kind"] == "ready" and ready["payload"]["replayed"] == 0
    with client.websocket_connect(f"/api/v1/live?after={old[-1]}", headers=ann) as ws:
        # The newest kept event is right after this token: no gap, and that event (replayed or live).
        got = read_until(ws, lambda got: kept[0] in {e["event_id"] for e in got})
    assert "gap" not in [e["kind"] for e in got]
    assert [e["event_id"] for e in _cars_events(got)] == kept


def test_grants_and_tokens_are_checked_again_while_connected(
    services: Services, world_client: tuple[World, TestClient]
) -> None:
    world, client = world_client
    services.live_feed.limits = dataclasses.replace(services.live_feed.limits, visibility_refresh_s=0.1)
    with client.websocket_connect("/api/v1/live", headers=bearer(world.tokens["ann"])) as ws:
        read_until(ws, until_ready)
        _send(services, "car-b", NOW_MS - 50_000, 40)
        _send(services, "car-a", NOW_MS - 50_000, 50)
        (seen,) = _cars_events(read_until(ws, lambda got: bool(_cars_events(got))))
        assert seen["vehicle_id"] == "car-a"
        services.admin.grant("car-b", user_name="ann")
        time.sleep(0.5)  # more than the refresh interval: ann now sees car-b
        _send(services, "car-b", NOW_MS - 49_000, 41)
        (seen,) = _cars_events(read_until(ws, lambda got: bool(_cars_events(got))))
        assert seen["vehicle_id"] == "car-b"
        services.admin.revoke_tokens("ann")
        closed = receive_within(ws)
    assert (closed["type"], closed["code"]) == ("websocket.close", 1008)
    assert world.tokens["ann"] not in closed["reason"]


def test_malformed_resume_tokens_and_first_messages_are_refused_before_any_event(
    world_client: tuple[World, TestClient],
) -> None:
    world, client = world_client
    ann = bearer(world.tokens["ann"])
    for path, first in [
        ("/api/v1/live?after=-1", None),
        ("/api/v1/live?after=abc", None),
        ("/api/v1/live", "not json"),
        ("/api/v1/live", json.dumps({"token": 42})),
        ("/api/v1/live", json.dumps({"token": "mfu_wrong"})),
        ("/api/v1/live", json.dumps({"token": world.tokens["device_a"]})),
    ]:
        with client.websocket_connect(path, headers=ann if first is None else {}) as ws:
            if first is not None:
                ws.send_text(first)
            closed = receive_within(ws)
        assert (closed["type"], closed["code"]) == ("websocket.close", 1008), (path, first)
    with client.websocket_connect("/api/v1/live?after=0") as ws:  # a browser: the token as first message
        ws.send_text(json.dumps({"token": world.tokens["ann"]}))
        assert read_until(ws, until_ready)[-1]["kind"] == "ready"


# --- a real server: a client that stops reading, and an ingest in another process


@pytest.fixture
def served(services: Services) -> Iterator[tuple[World, str]]:
    """A uvicorn server in this process (its own thread and event loop) over ``services``."""
    world = build_world(services)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(services.settings, services), host="127.0.0.1", port=port, log_level="warning"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield world, f"127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=15)


def _stalled_client(address: str, token: str) -> socket.socket:
    """A WebSocket client that opens the feed and then never reads (a tiny receive buffer)."""
    host, port = address.split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /api/v1/live HTTP/1.1\r\nHost: {address}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nAuthorization: Bearer {token}\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    return sock


def _drain_to_end(sock: socket.socket, within_s: float) -> tuple[bytes, str]:
    """Read what the server still sent until it closed the connection; how it ended ('eof', 'reset')."""
    sock.settimeout(within_s)
    data = b""
    try:
        while chunk := sock.recv(1 << 16):
            data += chunk
    except ConnectionResetError:
        return data, "reset"
    return data, "eof"


def _close_code(data: bytes) -> int | None:
    """The code of a close frame among unmasked server frames, if one is there (the last frame)."""
    at, code = 0, None
    while at + 2 <= len(data):
        opcode, length, at = data[at] & 0x0F, data[at + 1] & 0x7F, at + 2
        if length == 126:
            length, at = int.from_bytes(data[at : at + 2], "big"), at + 2
        elif length == 127:
            length, at = int.from_bytes(data[at : at + 8], "big"), at + 8
        if opcode == 0x8 and length >= 2:
            code = int.from_bytes(data[at : at + 2], "big")
        at += length
    return code


@pytest.mark.parametrize("settings", ["sqlite"], indirect=True)
def test_a_client_that_stops_reading_is_cut_off_while_ingest_and_a_fast_client_go_on(
    services: Services, served: tuple[World, str]
) -> None:
    world, address = served
    services.live_feed.limits = dataclasses.replace(
        services.live_feed.limits, queue_max_events=200, poll_interval_s=0.02
    )
    stalled = _stalled_client(address, world.tokens["root"])
    fast: list[dict[str, Any]] = []
    sent = 200
    # With each record an event of 60 kB: 12 MB, three times what the kernel buffers (tcp_wmem max 4 MB) hold.
    filler = {"text": "x" * 60_000}
    with connect(
        f"ws://{address}/api/v1/live", additional_headers=bearer(world.tokens["root"]), compression=None
    ) as ws:
        fast += json.loads(ws.recv(timeout=10))
        for i in range(sent):
            _send(services, ("car-a", "car-b")[i % 2], NOW_MS - 3_600_000 + i * 1000, 20 + i / 10)
            services.live_events.publish("car-a", "probe", NOW_MS, filler)
        every = _ids_of(services, {"car-a", "car-b"})
        assert len(every) == 2 * sent  # ingest stored and announced every record
        while every[-1] not in {e["event_id"] for e in fast}:
            fast += json.loads(ws.recv(timeout=10))
    assert [e["event_id"] for e in _cars_events(fast)] == every
    data, ended = _drain_to_end(stalled, within_s=30)
    stalled.close()
    # Cut off: either its close frame (1013: resume with the token) got through, or the server gave up on
    # delivering it and dropped the connection; never all the events.
    assert data.count(b'"event_id"') < 2 * sent
    assert _close_code(data) in (1013, None) and (ended == "reset" or _close_code(data) == 1013), ended


@pytest.mark.parametrize("settings", ["sqlite", "postgres"], indirect=True)
def test_an_ingest_in_another_process_reaches_the_api_process_feed(
    services: Services, settings: Settings, tmp_path: Path
) -> None:
    world = build_world(services)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "MICROFLEET_DATABASE_URL": settings.database_url,
        "MICROFLEET_HISTORY_DERIVE_INTERVAL_S": "0",
        "MICROFLEET_LIVE_POLL_INTERVAL_S": "0.05",
    }
    if settings.database_schema:
        env["MICROFLEET_DATABASE_SCHEMA"] = settings.database_schema
    log = (tmp_path / "server.log").open("wb")
    server = subprocess.Popen(
        [sys.executable, "-m", "microfleet", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        ws = None
        deadline = time.monotonic() + 30
        while ws is None:
            try:
                ws = connect(
                    f"ws://127.0.0.1:{port}/api/v1/live", additional_headers=bearer(world.tokens["ann"])
                )
            except OSError:
                assert server.poll() is None, (tmp_path / "server.log").read_text()
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        with ws:
            assert json.loads(ws.recv(timeout=10))[-1]["kind"] == "ready"
            # This process is the ingest (as the MQTT bridge or a worker would be): its own store handle,
            # the wall clock the server prunes by.
            ingest = build_services(settings, migrate=False, clock=wall_clock_ms)
            try:
                now_ms = wall_clock_ms()
                for i in range(20):
                    _send(
                        ingest, ("car-a", "car-b")[i % 2], now_ms - 30_000 + i * 1000, 50 + i, now_ms=now_ms
                    )
                every = _ids_of(ingest, {"car-a"})
            finally:
                ingest.close()
            got: list[dict[str, Any]] = []
            while every[-1] not in {e["event_id"] for e in got}:
                got += json.loads(ws.recv(timeout=10))
    finally:
        server.terminate()
        server.wait(timeout=15)
        log.close()
    assert [e["event_id"] for e in got] == every and len(every) == 10
    assert {e["vehicle_id"] for e in got} == {"car-a"}


def test_a_driver_receives_only_the_command_events_of_their_own_commands(
    services: Services, world_client: tuple[World, TestClient]
) -> None:
    """As the commands API: a driver sees their own commands only; the car's owner sees every one."""
    world, client = world_client
    dan, ann = services.alerts.user_id_of("dan"), services.alerts.user_id_of("ann")
    for i, issuer in enumerate([dan, ann, None, dan]):  # None: issued by no user (the CLI's admin)
        payload = {"command_id": f"cmd-{i}", "action": "lock", "status": "queued", "user_id": issuer}
        services.live_events.publish("car-a", "command", NOW_MS, payload)
    for caller, user_id in [("dan", dan), ("ann", ann)]:
        with client.websocket_connect("/api/v1/live?after=0", headers=bearer(world.tokens[caller])) as ws:
            replayed = read_until(ws, until_ready)
            for issuer in (ann, dan):
                payload = {"command_id": f"live-{caller}-{issuer}", "user_id": issuer}
                services.live_events.publish("car-a", "command", NOW_MS, payload)
            last = f"live-{caller}-{dan}"
            live = read_until(
                ws, lambda got, last=last: any(e["payload"].get("command_id") == last for e in got)
            )
        got = [e["payload"]["command_id"] for e in replayed + live if e["kind"] == "command"]
        log = [
            json.loads(e.payload_json) for e in services.live_log.after(0, 1_000_000) if e.kind == "command"
        ]
        expected = [p["command_id"] for p in log if caller == "ann" or p["user_id"] == user_id]
        assert got == expected, caller
    assert got[:4] == ["cmd-0", "cmd-1", "cmd-2", "cmd-3"]  # the owner: every command, the driver's too


def test_a_browser_session_ending_closes_its_feed(
    services: Services, world_client: tuple[World, TestClient]
) -> None:
    """A feed opened with the session cookie is closed (1008) once the session ends (log-out here)."""
    _world, client = world_client
    services.live_feed.limits = dataclasses.replace(services.live_feed.limits, visibility_refresh_s=0.1)
    token = "mfs_live_feed_test_session"
    store = WebAccountStore(services.engine, lambda: NOW_MS)
    store.open_session(services.alerts.user_id_of("ann"), session_sha256(token), "csrf", NOW_MS + 3_600_000)
    headers = {"cookie": f"microfleet_session={token}", "origin": "http://testserver"}
    with client.websocket_connect("/api/v1/live", headers=headers) as ws:
        read_until(ws, until_ready)
        _send(services, "car-a", NOW_MS - 50_000, 50)
        (seen,) = _cars_events(read_until(ws, lambda got: bool(_cars_events(got))))
        assert seen["vehicle_id"] == "car-a"
        services.web_sessions.logout(token)
        closed = receive_within(ws)
    assert (closed["type"], closed["code"]) == ("websocket.close", 1008)
    assert "session" in closed["reason"] and token not in closed["reason"]


def test_a_real_command_event_names_its_issuer_and_reaches_the_owner_not_another_driver(
    services: Services, world_client: tuple[World, TestClient]
) -> None:
    world, client = world_client
    with client.websocket_connect("/api/v1/live", headers=bearer(world.tokens["dan"])) as dan_ws:
        read_until(dan_ws, until_ready)
        with client.websocket_connect("/api/v1/live", headers=bearer(world.tokens["ann"])) as ann_ws:
            read_until(ann_ws, until_ready)
            issued = client.post(
                "/api/v1/vehicles/car-a/commands",
                json={"action": "wake"},
                headers=bearer(world.tokens["ann"]),
            )
            assert issued.status_code == 201, issued.text
            got = read_until(ann_ws, lambda got: any(e["kind"] == "command" for e in got))
            (command,) = [e for e in got if e["kind"] == "command"]
            assert command["payload"]["command_id"] == issued.json()["command_id"]
            assert command["payload"]["user_id"] == services.alerts.user_id_of("ann")
        # dan, a driver of car-a, gets the next event of the car but not ann's command before it
        _send(services, "car-a", NOW_MS - 50_000, 50)
        dan_got = read_until(dan_ws, lambda got: bool(_cars_events(got)))
    assert [e["kind"] for e in _cars_events(dan_got)] == ["position"]
