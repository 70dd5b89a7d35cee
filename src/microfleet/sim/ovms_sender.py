"""A twin car as an OVMS v3 module: each record becomes the metric messages OVMS's server-v3 client sends.

As OVMS does (openvehicles/Open-Vehicle-Monitoring-System-3 @1aa1daff, ``ovms_server_v3.cpp``; read for
Microfleet's adapter in ``microfleet.ingest.ovms``): a send is ``m.time.utc`` first, then every metric that
changed since the last send, in metric-name order, each to ``ovms/<user>/<vehicleid>/metric/<name with '/'
for '.'>``, QoS 0, retained; every metric again every 1,200 s of module time (``m_updatetime_sendall``).
Payloads as ``AsString`` writes them: floats with 6 significant digits, latitude and longitude with 6
decimals, booleans ``yes``/``no``, the gear as an integer (negative reverse, 0 neutral: OVMS has no park),
tyres comma-separated, the time as ``YYYY-MM-DD HH:MM:SS UTC``. The module logs in as ``<user>`` and leaves
``no`` on ``metric/s/v3/connected`` as its retained last will.

The twin may not import Microfleet's adapters, so the metric names are written here again (the protocol-v1
field each one fills); tests/unit/sim/test_ovms_sender.py checks them against ``ingest.ovms.METRICS`` and
decodes this sender's messages with Microfleet's assembler.

QoS 0 gets no answer: the sender counts what it published as ``unconfirmed``, never as accepted.

Given executors (:class:`~microfleet.sim.commands.CommandExecutor`), each module also runs the shell commands
that arrive on ``ovms/<user>/<vehicleid>/client/<id>/command/<n>`` and answers on ``…/response/<n>`` (QoS 1,
as ``OvmsServerV3::RunCommand`` does) with what OVMS's vehicle shell prints (``vehicle_shell.cpp``): only
the fixed texts Microfleet's allow-list sends (:data:`MODULE_COMMANDS`); anything else is
``Unrecognised command`` (``main/ovms_command.cpp``). A module verifies no signature: Microfleet's bridge
does.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from microfleet.domain.command_wire import Action
from microfleet.domain.telemetry import TelemetryRecord
from microfleet.sim.commands import CommandExecutor
from microfleet.sim.senders import SendResult

SENDALL_MS: Final = 1_200_000  # OVMS m_updatetime_sendall: every metric again every 1200 s
CONNECT_TIMEOUT_S: Final = 10.0
TIME_METRIC: Final = "m.time.utc"
CONNECTED_METRIC: Final = "s.v3.connected"


# The OVMS shell texts the twin's module runs (Microfleet's allow-list, ingest/ovms_commands.py; a test checks
# they match): words -> (action, what OVMS prints when it worked, and when the vehicle could not).
MODULE_COMMANDS: Final[dict[tuple[str, ...], tuple[Action, str, str]]] = {
    ("lock",): (Action.LOCK, "Vehicle locked", "Error: vehicle could not be locked"),
    ("unlock",): (Action.UNLOCK, "Vehicle unlocked", "Error: vehicle could not be unlocked"),
    ("climatecontrol", "on"): (Action.CLIMATE_ON, "Climate Control \non", "Error: Climate Control failed"),
    ("climatecontrol", "off"): (Action.CLIMATE_OFF, "Climate Control \noff", "Error: Climate Control failed"),
    ("charge", "start"): (Action.CHARGE_START, "Charge has been started", "Error: Could not start charge"),
    ("charge", "stop"): (Action.CHARGE_STOP, "Charge has been stopped", "Error: Could not stop charge"),
    ("wakeup",): (Action.WAKE, "Vehicle has been woken", "Error: vehicle could not be woken"),
}


def module_answer(executor: CommandExecutor, text: str, reference: str, pin: str | None = None) -> str:
    """What the twin's OVMS module prints for one shell command, having done it if it is one it knows."""
    words = tuple(text.split())
    with_pin = words[:1] in (("lock",), ("unlock",)) and len(words) == 2
    entry = MODULE_COMMANDS.get(words[:1] if with_pin else words)
    if entry is None:
        return "Unrecognised command\n"
    action, done, failed = entry
    if with_pin and pin is not None and words[1] != pin:
        return failed + "\n"  # the vehicle module refuses a wrong PIN
    return (done if executor.act_relayed(action, {}, reference).done else failed) + "\n"


def _g6(value: Any) -> str:
    return format(float(value), ".6g")  # a C++ stream's default: 6 significant digits


def _fixed6(value: Any) -> str:
    return f"{float(value):.6f}"  # metrics_standard.cpp SetFormat(6, true) for latitude and longitude


def _yes_no(value: Any) -> str:
    return "yes" if value else "no"


def _gear(value: Any) -> str:
    return {"R": "-1", "N": "0", "P": "0", "D": "1"}[value]


def _list(value: Any) -> str:
    return ",".join(_g6(v) for v in value)


# OVMS standard metric -> (protocol-v1 field, how OVMS writes it), in metric-name order (OVMS's list order).
METRICS: Final[tuple[tuple[str, str, Callable[[Any], str]], ...]] = tuple(
    sorted(
        (
            ("v.p.latitude", "lat_deg", _fixed6),
            ("v.p.longitude", "lon_deg", _fixed6),
            ("v.p.direction", "heading_deg", _g6),
            ("v.p.gpshdop", "gps_hdop", _g6),
            ("v.p.altitude", "altitude_m", _g6),
            ("v.p.speed", "speed_kmh", _g6),
            ("v.p.odometer", "odometer_km", _g6),
            ("v.e.gear", "gear", _gear),
            ("v.e.on", "ignition_on", _yes_no),
            ("v.b.soc", "soc_pct", _g6),
            ("v.b.soh", "bms_soh_pct", _g6),
            ("v.b.voltage", "pack_voltage_v", _g6),
            ("v.b.current", "pack_current_a", _g6),
            ("v.b.temp", "pack_temp_c", _g6),
            ("v.b.p.voltage.min", "cell_voltage_min_v", _g6),
            ("v.b.p.voltage.max", "cell_voltage_max_v", _g6),
            ("v.b.energy.used.total", "energy_used_kwh", _g6),
            ("v.b.energy.recd.total", "energy_recovered_kwh", _g6),
            ("v.b.12v.voltage", "aux_battery_v", _g6),
            ("v.c.pilot", "charger_connected", _yes_no),
            ("v.c.power", "charger_power_kw", _g6),
            ("v.c.voltage", "charger_ac_voltage_v", _g6),
            ("v.e.locked", "locked", _yes_no),
            ("v.e.cabintemp", "cabin_temp_c", _g6),
            ("v.e.temp", "ambient_temp_c", _g6),
            ("v.e.hvac", "hvac_on", _yes_no),
            ("v.t.pressure", "tyre_pressure_kpa", _list),
        )
    )
)


def module_time(ts_ms: int) -> str:
    """``m.time.utc`` as OVMS writes a DateUTC metric (whole seconds)."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(ts_ms // 1000))


def metric_topic(user: str, vehicle: str, name: str) -> str:
    """``ovms/<user>/<vehicleid>/metric/<name, '.' -> '/'>`` (OVMS ``mqtt_topic``)."""
    return f"ovms/{user}/{vehicle}/metric/{name.replace('.', '/')}"


@dataclass
class ModuleState:
    """What one module last sent: each metric's text, and when it last sent them all (module ms)."""

    sent: dict[str, str] = field(default_factory=dict)
    sendall_ms: int | None = None


def module_send(record: TelemetryRecord, state: ModuleState) -> list[tuple[str, str]]:
    """The ``(metric, payload)`` messages of one send for this record, updating ``state``."""
    send_all = state.sendall_ms is None or record.ts_ms - state.sendall_ms >= SENDALL_MS
    if send_all:
        state.sendall_ms = record.ts_ms
    messages = [(TIME_METRIC, module_time(record.ts_ms))]
    for name, target, write in METRICS:
        value = getattr(record, target)
        if value is None:
            # OVMS keeps a metric's last value: a signal the car lacks now sends nothing, except in the
            # full resend, which repeats the value the module still holds
            if send_all and name in state.sent:
                messages.append((name, state.sent[name]))
            continue
        text = write(value)
        if send_all or state.sent.get(name) != text:
            messages.append((name, text))
            state.sent[name] = text
    return messages


@dataclass
class _Module:
    client: mqtt.Client
    state: ModuleState = field(default_factory=ModuleState)
    connected: threading.Event = field(default_factory=threading.Event)
    refused: str | None = None


class OvmsSender:
    """Publishes each car's records as an OVMS v3 module would, logged in as the car's own broker user.

    ``passwords`` maps vehicle id to broker password; the module's ``server.v3 user`` and vehicle id are
    both the twin's vehicle id (map them to Microfleet with ``VEHICLE_ID/VEHICLE_ID=VEHICLE_ID``).
    """

    def __init__(
        self,
        host: str,
        port: int,
        passwords: Mapping[str, str],
        *,
        executors: Mapping[str, CommandExecutor] | None = None,
        pin: str | None = None,
    ) -> None:
        """Prepare one module client per vehicle id in ``passwords``, connected at its first send.

        With ``executors``, those modules also run the commands Microfleet sends them (``pin``: the
        vehicle's PIN lock and unlock must carry, if any).
        """
        self._host, self._port = host, port
        self._passwords = dict(passwords)
        self._executors = dict(executors or {})
        self._pin = pin
        self._run = uuid.uuid4().hex[:8]
        self._modules: dict[str, _Module] = {}
        self.refused_credentials: dict[str, str] = {}

    def send(self, vehicle_id: str, records: Sequence[TelemetryRecord]) -> SendResult:
        """Publish every record's send (QoS 0: no answer comes, so each is counted as unconfirmed)."""
        module = self._module(vehicle_id)
        if module is None or module.refused is not None:
            reason = self.refused_credentials.get(vehicle_id, "no MQTT login for this vehicle")
            return SendResult(failed=len(records), reasons=Counter({f"not sent: {reason}": len(records)}))
        last = None
        executor = self._executors.get(vehicle_id)
        for sent in records:
            record = sent if executor is None else executor.observe(sent)  # what commands changed shows
            for name, payload in module_send(record, module.state):
                topic = metric_topic(vehicle_id, vehicle_id, name)
                last = module.client.publish(topic, payload.encode(), qos=0, retain=True)
        if last is not None:
            last.wait_for_publish(CONNECT_TIMEOUT_S)  # paho's queue written out, in order, to the socket
        return SendResult(unconfirmed=len(records))

    def _module(self, vehicle_id: str) -> _Module | None:
        if vehicle_id in self._modules:
            return self._modules[vehicle_id]
        password = self._passwords.get(vehicle_id)
        if password is None:
            return None
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"ovms-{self._run}-{vehicle_id}", protocol=mqtt.MQTTv311
        )
        module = _Module(client)
        self._modules[vehicle_id] = module
        connected = metric_topic(vehicle_id, vehicle_id, CONNECTED_METRIC)
        client.username_pw_set(vehicle_id, password)
        client.will_set(connected, b"no", qos=0, retain=True)

        def on_socket_open(_client: mqtt.Client, _userdata: Any, sock: Any) -> None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def on_connect(
            _client: mqtt.Client, _userdata: Any, _flags: Any, reason: Any, _properties: Any
        ) -> None:
            if reason.is_failure:
                module.refused = f"broker refused the login ({reason})"
                self.refused_credentials[vehicle_id] = module.refused
            else:
                if vehicle_id in self._executors:  # as OvmsServerV3 subscribes to client/+/command/+
                    client.subscribe(f"ovms/{vehicle_id}/{vehicle_id}/client/+/command/+", qos=1)
                client.publish(connected, b"yes", qos=0, retain=True)
                module.state.sendall_ms = None  # a module sends everything after (re)connecting
            module.connected.set()

        def on_message(_client: mqtt.Client, _userdata: Any, message: mqtt.MQTTMessage) -> None:
            head, _, n = message.topic.rpartition("/command/")
            executor = self._executors.get(vehicle_id)
            if executor is None or not n:
                return
            text = bytes(message.payload).decode("utf-8", "replace")
            answer = module_answer(executor, text, n, self._pin)
            client.publish(f"{head}/response/{n}", answer.encode(), qos=1)

        client.on_socket_open = on_socket_open
        client.on_connect = on_connect
        client.on_message = on_message
        try:
            client.connect(self._host, self._port, keepalive=30)
        except OSError as exc:
            module.refused = f"cannot reach the broker at {self._host}:{self._port}: {exc}"
        else:
            client.loop_start()
            if not module.connected.wait(CONNECT_TIMEOUT_S):
                module.refused = f"no answer from the broker within {CONNECT_TIMEOUT_S:g} s"
        if module.refused is not None:
            self.refused_credentials[vehicle_id] = module.refused
            client.loop_stop()
            client.disconnect()
        return module

    def connect(self, vehicle_id: str) -> bool:
        """Bring a module online before its first send; False if the broker refused it."""
        module = self._module(vehicle_id)
        return module is not None and module.refused is None

    def close(self) -> None:
        """Say ``no`` on each module's connected metric and disconnect."""
        for vehicle_id, module in self._modules.items():
            if module.refused is None:
                topic = metric_topic(vehicle_id, vehicle_id, CONNECTED_METRIC)
                module.client.publish(topic, b"no", qos=0, retain=True).wait_for_publish(5.0)
                module.client.disconnect()
                module.client.loop_stop()
        self._modules.clear()
