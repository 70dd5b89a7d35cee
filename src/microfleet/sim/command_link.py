"""Twin cars that take remote commands over MQTT, and fetch their vehicle's public keys over the API.

Each car is one MQTT client logged in as its vehicle id (the broker's ACL lets it read only its own
``<prefix>/v1/<id>/commands`` and write only its own ``…/command_results``). It says ``online`` (retained) on
``…/status`` once connected and leaves ``offline`` as its last will, as :mod:`microfleet.sim.mqtt_sender`'s
cars do; the MQTT sender's cars take commands the same way when given executors
(:class:`~microfleet.sim.commands.CommandExecutor`). Each command is verified and done in paho's network
thread, and its result published with QoS 1.

The twin may not import Microfleet's adapters: the topic names are written here again
(tests/integration/test_commands_mqtt.py checks them against the dispatcher's).
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from microfleet.domain.command_wire import encode_result
from microfleet.errors import ConfigurationError
from microfleet.sim.commands import CommandExecutor

if TYPE_CHECKING:
    import httpx

CONNECT_TIMEOUT_S: Final = 10.0


def commands_topic(prefix: str, vehicle_id: str) -> str:
    """Where a car reads its commands."""
    return f"{prefix}/v1/{vehicle_id}/commands"


def results_topic(prefix: str, vehicle_id: str) -> str:
    """Where a car answers them."""
    return f"{prefix}/v1/{vehicle_id}/command_results"


def answer_command(client: mqtt.Client, prefix: str, executor: CommandExecutor, payload: bytes) -> None:
    """Verify and do one command that arrived, and publish the car's answer (QoS 1)."""
    result = executor.handle(payload, time.time_ns() // 1_000_000)
    client.publish(results_topic(prefix, executor.vehicle_id), encode_result(result), qos=1)


def fetch_command_keys(
    base_url: str,
    vehicle_id: str,
    device_token: str,
    timeout_s: float = 10.0,
    client: httpx.Client | None = None,
) -> list[str]:
    """The vehicle's public keys (base64, current first), fetched with the car's own device credential.

    ``GET /api/v1/vehicles/{id}/command-keys``: trust on first use over TLS (docs/command-verifier.md).
    ``client``: an HTTP client to use instead of a new one (its base URL and timeout replace ours).
    """
    import httpx

    path = f"/api/v1/vehicles/{vehicle_id}/command-keys"
    headers = {"Authorization": f"Bearer {device_token}"}
    if client is not None:
        response = client.get(path, headers=headers)  # the client's own timeout
    else:
        response = httpx.get(f"{base_url.rstrip('/')}{path}", headers=headers, timeout=timeout_s)
    response.raise_for_status()
    body = response.json()
    items = body.get("keys", body) if isinstance(body, dict) else body
    keys: list[str] = []
    for item in items if isinstance(items, list) else []:
        text = item.get("public_key") if isinstance(item, dict) else item
        if isinstance(text, str):
            keys.append(text)
    return keys


@dataclass
class _Car:
    client: mqtt.Client
    executor: CommandExecutor
    connected: threading.Event = field(default_factory=threading.Event)
    subscribed: threading.Event = field(default_factory=threading.Event)
    refused: str | None = None


class MqttCommandCars:
    """Twin cars online on the broker only to take commands (the benchmark's and the tests' cars)."""

    def __init__(
        self,
        host: str,
        port: int,
        passwords: Mapping[str, str],
        executors: Mapping[str, CommandExecutor],
        *,
        topic_prefix: str = "microfleet",
    ) -> None:
        """Prepare one client per car in ``executors``, each with its password in ``passwords``."""
        self._host, self._port = host, port
        self._passwords = dict(passwords)
        self.executors = dict(executors)
        self._prefix = topic_prefix
        self._run = uuid.uuid4().hex[:8]
        self._cars: dict[str, _Car] = {}

    def connect(self, vehicle_id: str) -> None:
        """Bring one car online: log in, subscribe to its commands, say ``online``.

        :class:`ConfigurationError` if the broker refuses its login or does not answer.
        """
        executor = self.executors[vehicle_id]
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"twin-cmd-{self._run}-{vehicle_id}",
            clean_session=True,  # a car that was away gets no command queued for it: the server expires it
            protocol=mqtt.MQTTv311,
        )
        car = _Car(client, executor)
        client.username_pw_set(vehicle_id, self._passwords[vehicle_id])
        status = f"{self._prefix}/v1/{vehicle_id}/status"
        client.will_set(status, b"offline", qos=1, retain=True)
        prefix = self._prefix

        def on_socket_open(_client: mqtt.Client, _userdata: Any, sock: Any) -> None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def on_connect(_c: mqtt.Client, _u: Any, _flags: Any, reason: Any, _properties: Any) -> None:
            if reason.is_failure:
                car.refused = f"broker refused the login ({reason})"
            else:
                client.subscribe(commands_topic(prefix, vehicle_id), qos=1)
            car.connected.set()

        def on_subscribe(_c: mqtt.Client, _u: Any, _mid: Any, _codes: Any, _properties: Any) -> None:
            # Subscribed first, then online: the dispatcher never sends to a car that cannot hear yet.
            client.publish(status, b"online", qos=1, retain=True)
            car.subscribed.set()

        def on_message(_c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
            answer_command(client, prefix, executor, bytes(message.payload))

        client.on_socket_open = on_socket_open
        client.on_connect = on_connect
        client.on_subscribe = on_subscribe
        client.on_message = on_message
        client.connect(self._host, self._port, keepalive=30)
        client.loop_start()
        if not car.connected.wait(CONNECT_TIMEOUT_S) or car.refused is not None:
            client.loop_stop()
            raise ConfigurationError(
                f"twin car {vehicle_id}: "
                + (car.refused or f"no answer from the broker at {self._host}:{self._port}")
            )
        car.subscribed.wait(CONNECT_TIMEOUT_S)
        self._cars[vehicle_id] = car

    def connect_all(self) -> None:
        """Bring every car online."""
        for vehicle_id in self.executors:
            self.connect(vehicle_id)

    def disconnect(self, vehicle_id: str) -> None:
        """Take one car offline: ``offline`` on its status, then a clean disconnect."""
        car = self._cars.pop(vehicle_id, None)
        if car is None:
            return
        status = f"{self._prefix}/v1/{vehicle_id}/status"
        car.client.publish(status, b"offline", qos=1, retain=True).wait_for_publish(5.0)
        car.client.disconnect()
        car.client.loop_stop()

    def close(self) -> None:
        """Take every car offline."""
        for vehicle_id in list(self._cars):
            self.disconnect(vehicle_id)
