"""Remote commands to OVMS v3 modules: verified here, then sent as ONE fixed OVMS text from an allow-list.

An OVMS module runs whatever shell command arrives on ``ovms/<user>/<vehicleid>/client/<id>/command/<n>`` and
answers its output on ``…/response/<n>`` (``components/ovms_server_v3/src/ovms_server_v3.cpp``, read at
openvehicles/Open-Vehicle-Monitoring-System-3 commit 1aa1daff). It cannot verify an Ed25519 signature, so this
relay does it for the module: each command is checked with the vehicle's :class:`CommandVerifier` (signature,
vehicle, expiry, nonce) and only then mapped through :data:`ALLOW_LIST` to its fixed text. Nothing from the
command's parameters reaches the module as text except a charge limit, an integer of 50-100 checked here.
The module's own protection is the broker's ACL: only Microfleet's login may publish on its command topics,
and only as client ``microfleet`` (``ingest/mosquitto_config.py``), so nobody else can make it run anything.

The module's answer becomes a :class:`CommandResult`: a first line starting ``Error`` (how OVMS's vehicle
shell reports a failure) is ``failed`` with that line as the reason; the allow-list's success text is
``acknowledged``; anything else is ``failed`` as an unexpected answer.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import aiomqtt

from microfleet.domain.command_wire import (
    Action,
    CommandRefused,
    CommandResult,
    CommandVerifier,
    ResultStatus,
    SignedCommand,
    load_public_key,
)
from microfleet.errors import NotFoundError
from microfleet.ingest.mosquitto_config import OVMS_CLIENT_ID
from microfleet.ingest.mqtt import MqttConnection, run_reconnecting
from microfleet.ingest.ovms import CONNECTED_METRIC, OVMS_ROOT
from microfleet.services.commands import CommandService, RemoteCommand
from microfleet.services.mqtt_access import VehicleLookup

log = logging.getLogger(__name__)

CHANNEL: Final = "ovms"
POLL_INTERVAL_S: Final = 0.05
EXPIRE_INTERVAL_S: Final = 1.0
REASON_MAX_CHARS: Final = 500
_SHELL = "OVMS vehicle/vehicle.cpp and vehicle_shell.cpp @1aa1daff"
_TWIZY = "OVMS vehicle_renaulttwizy/src/vehicle_renaulttwizy.cpp and rt_charge.cpp @1aa1daff"


class NoOvmsText(ValueError):
    """No allow-listed OVMS text for this command (caught here: the command fails with the reason)."""


@dataclass(frozen=True, slots=True)
class OvmsCommand:
    """One allow-listed OVMS command: its fixed text, what OVMS prints when it worked, and the source."""

    text: str  # "{pin}" is the module's configured PIN; "{limit_pct}" an integer 50-100; nothing else
    success: str  # the start of OVMS's answer when it worked
    source: str


# Every OVMS v3 vehicle (the vehicle framework's shell commands; a vehicle module implements or refuses each).
GENERIC: Final[Mapping[Action, OvmsCommand]] = {
    Action.LOCK: OvmsCommand("lock {pin}", "Vehicle locked", _SHELL),
    Action.UNLOCK: OvmsCommand("unlock {pin}", "Vehicle unlocked", _SHELL),
    # OVMS's climatecontrol takes no setpoint: the car heats or cools to its own.
    Action.CLIMATE_ON: OvmsCommand("climatecontrol on", "Climate Control", _SHELL),
    Action.CLIMATE_OFF: OvmsCommand("climatecontrol off", "Climate Control", _SHELL),
    Action.CHARGE_START: OvmsCommand("charge start", "Charge has been started", _SHELL),
    Action.CHARGE_STOP: OvmsCommand("charge stop", "Charge has been stopped", _SHELL),
    Action.WAKE: OvmsCommand("wakeup", "Vehicle has been woken", _SHELL),
}
# The Renault Twizy (vehicle module "RT"): "lock" is its speed lock, its argument the speed (6 km/h, the
# module's own default); the charge limit is its sufficient-SoC attribute with charge mode Stop.
TWIZY: Final[Mapping[Action, OvmsCommand]] = {
    **{a: GENERIC[a] for a in (Action.UNLOCK, Action.CHARGE_STOP, Action.WAKE)},
    Action.LOCK: OvmsCommand("lock 6", "Vehicle locked", _TWIZY),
    Action.SET_CHARGE_LIMIT: OvmsCommand("xrt ca {limit_pct}% S", "", _TWIZY),
}
ALLOW_LIST: Final[Mapping[str, Mapping[Action, OvmsCommand]]] = {"generic": GENERIC, "twizy": TWIZY}


def dialect_of(model_id: str | None) -> str:
    """Which allow-list a vehicle's model uses."""
    return "twizy" if model_id is not None and model_id.startswith("renault-twizy") else "generic"


def command_text(dialect: str, command: SignedCommand, pin: str | None) -> str:
    """The one OVMS text for a verified command; :class:`NoOvmsText` with the reason if there is none."""
    entry = ALLOW_LIST[dialect].get(command.action)
    if entry is None:
        raise NoOvmsText(f"no OVMS command for {command.action.value} on this module ({dialect})")
    fields: dict[str, str] = {}
    if "{pin}" in entry.text:
        if pin is None or not pin.isdigit() or len(pin) > 12:
            raise NoOvmsText(f"{command.action.value} over OVMS needs the module's PIN (digits) configured")
        fields["pin"] = pin
    if "{limit_pct}" in entry.text:
        limit = command.params.get("limit_pct")
        if not isinstance(limit, int | float) or isinstance(limit, bool) or not 50 <= limit <= 100:
            raise NoOvmsText("limit_pct must be a number of 50-100")
        fields["limit_pct"] = str(round(limit))
    return entry.text.format(**fields)


def result_of(dialect: str, command: SignedCommand, response: str, now_ms: int) -> CommandResult:
    """The command's result from the module's answer text."""
    first = (response.strip().splitlines() or [""])[0].strip()
    entry = ALLOW_LIST[dialect].get(command.action)
    if first.lower().startswith("error") or entry is None:
        status, reason = ResultStatus.FAILED, first or "empty answer"
    elif first.startswith(entry.success):
        status, reason = ResultStatus.ACKNOWLEDGED, None
    else:
        status, reason = ResultStatus.FAILED, f"unexpected OVMS answer: {first}"
    return CommandResult(
        command.command_id, command.vehicle_id, status, now_ms, reason and reason[:REASON_MAX_CHARS]
    )


@dataclass
class _Pending:
    command: SignedCommand
    dialect: str
    module: str


class OvmsCommandRelay:
    """Queued commands to OVMS modules that are online, verified and allow-listed; their answers back."""

    def __init__(
        self,
        commands: CommandService,
        vehicles: VehicleLookup,
        modules: Mapping[str, str],
        clock: Callable[[], int],
        *,
        pin: str | None = None,
        root: str = OVMS_ROOT,
        poll_interval_s: float = POLL_INTERVAL_S,
    ) -> None:
        self._commands = commands
        self._vehicles = vehicles
        self._modules = dict(modules)  # "<user>/<vehicleid>" -> vehicle id
        self._module_of = {v: m for m, v in self._modules.items()}
        self._clock = clock
        self._pin = pin
        self.root = root
        self._poll_s = poll_interval_s
        self._verifiers: dict[str, CommandVerifier] = {}
        self._pending: dict[str, _Pending] = {}
        self.online: dict[str, bool] = {}
        self.counts: Counter[str] = Counter()

    @property
    def subscriptions(self) -> tuple[str, ...]:
        """The modules' connected metric and the answers to Microfleet's client id."""
        return (
            f"{self.root}/+/+/metric/{CONNECTED_METRIC.replace('.', '/')}",
            f"{self.root}/+/+/client/{OVMS_CLIENT_ID}/response/+",
        )

    def command_topic(self, module: str, n: str) -> str:
        """Where the module reads command ``n`` from Microfleet's client id."""
        return f"{self.root}/{module}/client/{OVMS_CLIENT_ID}/command/{n}"

    def _verifier(self, vehicle_id: str) -> CommandVerifier:
        verifier = self._verifiers.get(vehicle_id)
        if verifier is None:
            verifier = self._verifiers[vehicle_id] = CommandVerifier(vehicle_id)
        known = set(verifier.keys)
        for text in self._commands.public_keys(vehicle_id):  # a rotation adds the new key
            key = load_public_key(text)
            if verifier.trust(key) not in known:
                self.counts["keys trusted"] += 1
        return verifier

    def handle_message(self, topic: str, payload: bytes) -> None:
        """A module's connected metric, or an answer to a command (blocking: records the result)."""
        parts = topic.split("/")
        if len(parts) < 4 or parts[0] != self.root:
            return
        module = f"{parts[1]}/{parts[2]}"
        if parts[3] == "metric":
            value = {"yes": True, "no": False}.get(payload.decode("utf-8", "replace").strip())
            if module in self._modules and value is not None:
                self.online[self._modules[module]] = value
            return
        pending = self._pending.pop(parts[-1], None)
        if pending is None or pending.module != module:
            self.counts["answer to no command of ours"] += 1
            log.warning("ovms commands: answer on %r matches no command sent to that module", topic)
            return
        result = result_of(
            pending.dialect, pending.command, payload.decode("utf-8", "replace"), self._clock()
        )
        verdict = self._commands.record_result(
            result, reporting_vehicle_id=pending.command.vehicle_id, now_ms=self._clock()
        )
        self.counts[f"result {result.status.value} {verdict.value}"] += 1

    def due(self) -> list[tuple[str, bytes]]:
        """Verify and translate the due commands of online modules; the (topic, text) to publish (blocking).

        A command the relay refuses (bad signature: ``refused``; no allow-listed text: ``failed``) is marked
        sent and answered at once with its reason, so it is audited and never retried.
        """
        online = sorted(v for v, up in self.online.items() if up and v in self._module_of)
        if not online:
            return []
        out: list[tuple[str, bytes]] = []
        now_ms = self._clock()
        for queued in self._commands.due_for_dispatch(now_ms, 100, online):
            out.extend(self._translate(queued, now_ms))
        return out

    def _translate(self, queued: RemoteCommand, now_ms: int) -> list[tuple[str, bytes]]:
        command, module = queued.signed, self._module_of[queued.vehicle_id]
        try:
            dialect = dialect_of(self._vehicles.require_vehicle(queued.vehicle_id).model_id)
            self._verifier(queued.vehicle_id).verify(command, now_ms)
            text = command_text(dialect, command, self._pin)
        except CommandRefused as refused:
            return self._answer_here(queued, ResultStatus.REFUSED, str(refused), now_ms)
        except NoOvmsText as no_text:
            return self._answer_here(queued, ResultStatus.FAILED, str(no_text), now_ms)
        except NotFoundError as gone:
            return self._answer_here(queued, ResultStatus.FAILED, str(gone), now_ms)
        n = queued.command_id
        self._pending[n] = _Pending(command, dialect, module)
        return [(self.command_topic(module, n), text.encode())]

    def _answer_here(
        self, queued: RemoteCommand, status: ResultStatus, reason: str, now_ms: int
    ) -> list[tuple[str, bytes]]:
        """A command the relay will not send: marked sent and answered at once (audited, not retried)."""
        self.counts[f"not sent: {status.value}"] += 1
        self._commands.mark_sent(queued.command_id, now_ms, CHANNEL)
        result = CommandResult(
            queued.command_id, queued.vehicle_id, status, now_ms, reason[:REASON_MAX_CHARS]
        )
        self._commands.record_result(result, reporting_vehicle_id=queued.vehicle_id, now_ms=now_ms)
        return []

    def mark_sent(self, topic: str) -> None:
        """Record the command published on ``topic`` as sent (blocking)."""
        n = topic.rsplit("/", 1)[-1]
        if self._commands.mark_sent(n, self._clock(), CHANNEL):
            self.counts["sent"] += 1

    def expire(self) -> None:
        """Expire commands past their expiry; forget the ones no answer will come for (blocking)."""
        self.counts["expired"] += self._commands.expire_due(self._clock())
        now_ms = self._clock()
        for n in [n for n, p in self._pending.items() if p.command.expires_at_ms < now_ms - 60_000]:
            del self._pending[n]

    async def run(
        self, connection: MqttConnection, stop: asyncio.Event, *, connected: asyncio.Event | None = None
    ) -> None:
        """Relay until ``stop`` is set, reconnecting with a doubling back-off on any loss."""

        def count_loss() -> None:
            self.counts["reconnects"] += 1

        try:
            await run_reconnecting(
                self._session, connection, stop, connected, count_loss, log, "ovms commands"
            )
        finally:
            log.info("ovms commands stopped: %s", dict(self.counts))

    async def _session(
        self, connection: MqttConnection, stopping: asyncio.Future[Any], connected: asyncio.Event | None
    ) -> None:
        client = connection.client("-ovms-commands", clean_session=True)
        async with client:
            for topic_filter in self.subscriptions:
                await client.subscribe(topic_filter, qos=1)
            if connected is not None:
                connected.set()
            messages = aiter(client.messages)
            receiving: asyncio.Future[aiomqtt.Message] = asyncio.ensure_future(anext(messages))
            next_poll = next_expiry = time.monotonic()
            try:
                while not stopping.done():
                    wait_s = max(min(next_poll, next_expiry) - time.monotonic(), 0.0)
                    await asyncio.wait(
                        {receiving, stopping}, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED
                    )
                    if receiving.done():
                        message = receiving.result()
                        payload = (
                            bytes(message.payload) if isinstance(message.payload, bytes | bytearray) else b""
                        )
                        await asyncio.to_thread(self.handle_message, str(message.topic), payload)
                        receiving = asyncio.ensure_future(anext(messages))
                    now = time.monotonic()
                    if now >= next_expiry:
                        await asyncio.to_thread(self.expire)
                        next_expiry = now + EXPIRE_INTERVAL_S
                    if now >= next_poll and not stopping.done():
                        for topic, text in await asyncio.to_thread(self.due):
                            await client.publish(topic, text, qos=1)
                            await asyncio.to_thread(self.mark_sent, topic)
                        next_poll = time.monotonic() + self._poll_s
            finally:
                receiving.cancel()
