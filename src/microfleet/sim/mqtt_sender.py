"""A twin car on MQTT: protocol-v1 batches to its own telemetry topic, with its own broker login.

Each car is one MQTT client logged in as its vehicle id (the broker's ACL confines it to its topics). It
leaves ``offline`` as its retained last will on ``…/status`` and says ``online`` there once connected,
publishes each batch with QoS 1 and waits for the broker's PUBACK, then reads Microfleet's per-record
answers on ``…/ingest_results`` and counts them as :class:`SendResult` counts HTTP's.

Given executors (:class:`~microfleet.sim.commands.CommandExecutor`), a car also subscribes to its own
``…/commands`` (before it says ``online``) and verifies, does and answers each remote command there
(:func:`microfleet.sim.command_link.answer_command`); its records then show what the commands changed
(:meth:`~microfleet.sim.commands.CarControls.observe`: the lock, the climate's draw and cabin temperature).

The topic layout is Microfleet's (``microfleet.ingest.mqtt.MqttTopics``); the twin may not import the
ingest adapters (it reaches Microfleet only over its protocols), so the three topic names are written here
again, and tests/integration/test_twin_mqtt.py checks they match the adapter's.
"""

from __future__ import annotations

import queue
import socket
import ssl
import threading
import uuid
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec
import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from microfleet.domain.telemetry import TelemetryRecord
from microfleet.sim.command_link import answer_command, commands_topic
from microfleet.sim.commands import CommandExecutor
from microfleet.sim.senders import SendResult, verdicts

CONNECT_TIMEOUT_S: Final = 10.0
_ENCODER = msgspec.json.Encoder()
_NO_ANSWER, _NOT_JSON = object(), object()


def car_topic(prefix: str, vehicle_id: str, kind: str) -> str:
    """``<prefix>/v1/<vehicle_id>/<kind>``, kind being telemetry, status or ingest_results (as MqttTopics)."""
    return f"{prefix}/v1/{vehicle_id}/{kind}"


@dataclass
class _Car:
    """One car's client, whether it got in, and the answers Microfleet sent it."""

    client: mqtt.Client
    connected: threading.Event = field(default_factory=threading.Event)
    refused: str | None = None
    answers: queue.Queue[dict[str, Any] | None] = field(default_factory=queue.Queue)  # None: not JSON
    late: int = 0  # answers still owed to messages of an earlier send that timed out waiting for them


class MqttSender:
    """Publishes each car's records over MQTT with the car's own login, and counts Microfleet's answers."""

    def __init__(
        self,
        host: str,
        port: int,
        passwords: Mapping[str, str],
        *,
        topic_prefix: str = "microfleet",
        max_batch_records: int = 500,
        answer_timeout_s: float = 30.0,
        tls_context: ssl.SSLContext | None = None,
        executors: Mapping[str, CommandExecutor] | None = None,
    ) -> None:
        """Prepare clients for the broker at ``host:port``, one per vehicle id in ``passwords``.

        ``executors``: the cars that take remote commands, by vehicle id.
        """
        self._host, self._port = host, port
        self._passwords = dict(passwords)
        self._prefix = topic_prefix
        self._max = max_batch_records
        self._answer_timeout_s = answer_timeout_s
        self._tls = tls_context
        self._executors = dict(executors or {})
        self._run = uuid.uuid4().hex[:8]  # client ids unique to this run: no stale session answers
        self._cars: dict[str, _Car] = {}
        self.refused_credentials: dict[str, str] = {}

    def send(self, vehicle_id: str, records: Sequence[TelemetryRecord]) -> SendResult:
        """Publish ``records`` in messages of at most ``max_batch_records``; wait for every answer."""
        car = self._car(vehicle_id)
        if car is None or car.refused is not None:
            reason = self.refused_credentials.get(vehicle_id, "no MQTT login for this vehicle")
            return SendResult(failed=len(records), reasons=Counter({f"not sent: {reason}": len(records)}))
        executor = self._executors.get(vehicle_id)
        if executor is not None:  # the car's records show what remote commands changed
            records = [executor.observe(record) for record in records]
        batches = [records[i : i + self._max] for i in range(0, len(records), self._max)]
        topic = car_topic(self._prefix, vehicle_id, "telemetry")
        published = [car.client.publish(topic, _ENCODER.encode(list(batch)), qos=1) for batch in batches]
        total = SendResult()
        for batch, info in zip(batches, published, strict=True):
            # paho keeps a QoS 1 message and sends it again after a reconnection until the broker's PUBACK.
            info.wait_for_publish(self._answer_timeout_s)
            if not info.is_published():
                car.late += 1
                reason = f"no PUBACK from the broker within {self._answer_timeout_s:g} s"
                total.add(SendResult(failed=len(batch), reasons=Counter({reason: len(batch)})))
                continue
            answer = self._answer(car)
            if isinstance(answer, dict):
                total.add(verdicts(answer))
            else:
                reason = (
                    "an answer on ingest_results that is not JSON"
                    if answer is _NOT_JSON
                    else f"at the broker, no answer on ingest_results within {self._answer_timeout_s:g} s"
                )
                total.add(SendResult(failed=len(batch), reasons=Counter({reason: len(batch)})))
        return total

    def _answer(self, car: _Car) -> dict[str, Any] | object:
        """The next answer to this send's messages; answers owed to a timed-out earlier send are skipped.

        The bridge answers a car's messages one by one in the order it published them (one session, QoS 1
        in order), so the n-th answer is the n-th message's.
        """
        while True:
            try:
                answer = car.answers.get(timeout=self._answer_timeout_s)
            except queue.Empty:
                car.late += 1
                return _NO_ANSWER
            if car.late == 0:
                return _NOT_JSON if answer is None else answer
            car.late -= 1

    def _car(self, vehicle_id: str) -> _Car | None:
        if vehicle_id in self._cars:
            return self._cars[vehicle_id]
        password = self._passwords.get(vehicle_id)
        if password is None:
            return None
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"twin-{self._run}-{vehicle_id}",
            # A clean session: answers are counted per send, so none from an earlier run may be queued.
            clean_session=True,
            protocol=mqtt.MQTTv311,
        )
        car = _Car(client)
        self._cars[vehicle_id] = car
        client.username_pw_set(vehicle_id, password)
        status = car_topic(self._prefix, vehicle_id, "status")
        results = car_topic(self._prefix, vehicle_id, "ingest_results")
        client.will_set(status, b"offline", qos=1, retain=True)
        if self._tls is not None:
            client.tls_set_context(self._tls)

        def on_socket_open(_client: mqtt.Client, _userdata: Any, sock: Any) -> None:
            # Without it Nagle holds a message behind our PUBACK of the last answer (~40 ms each).
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def on_connect(
            _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _properties: Any
        ) -> None:
            if reason.is_failure:
                car.refused = f"broker refused the login ({reason})"
                self.refused_credentials[vehicle_id] = car.refused
            else:  # also after a reconnection: a clean session has lost the subscription
                client.subscribe(results, qos=1)
                if vehicle_id in self._executors:  # subscribed before it says online
                    client.subscribe(commands_topic(self._prefix, vehicle_id), qos=1)
                client.publish(status, b"online", qos=1, retain=True)
            car.connected.set()

        def on_message(_client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
            executor = self._executors.get(vehicle_id)
            if executor is not None and message.topic == commands_topic(self._prefix, vehicle_id):
                answer_command(client, self._prefix, executor, bytes(message.payload))
                return
            try:
                answer = msgspec.json.decode(message.payload)
            except msgspec.DecodeError:
                answer = None
            car.answers.put(answer if isinstance(answer, dict) else None)

        client.on_socket_open = on_socket_open
        client.on_connect = on_connect
        client.on_message = on_message
        try:
            client.connect(self._host, self._port, keepalive=30)
        except OSError as exc:
            car.refused = f"cannot reach the broker at {self._host}:{self._port}: {exc}"
            self.refused_credentials[vehicle_id] = car.refused
            return car
        client.loop_start()
        if not car.connected.wait(CONNECT_TIMEOUT_S):
            car.refused = (
                f"no answer from the broker at {self._host}:{self._port} within {CONNECT_TIMEOUT_S:g} s"
            )
            self.refused_credentials[vehicle_id] = car.refused
        if car.refused is not None:
            client.loop_stop()
            client.disconnect()
        return car

    def close(self) -> None:
        """Say ``offline`` on each car's status and disconnect (a clean disconnect sends no last will)."""
        for vehicle_id, car in self._cars.items():
            if car.refused is None:
                status = car_topic(self._prefix, vehicle_id, "status")
                car.client.publish(status, b"offline", qos=1, retain=True).wait_for_publish(5.0)
                car.client.disconnect()
                car.client.loop_stop()
        self._cars.clear()
