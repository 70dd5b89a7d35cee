"""How the twin is started: a scenario from options or a file, and a live run into a Microfleet server.

The CLI's ``simulate`` and ``demo`` commands call these; the twin reaches Microfleet only over its
protocols, each car with its own credential (the scenario's ``protocol``: a device token over HTTP, a broker
login over MQTT, a tracker key as an OsmAnd phone), never through its store or services.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from microfleet.errors import ConfigurationError
from microfleet.sim.models import MODELS
from microfleet.sim.scenario import Registration, Scenario, load_scenario, registrations

if TYPE_CHECKING:  # the twin itself (scipy, pyarrow, the city) loads only when a run starts
    from microfleet.sim.commands import CommandExecutor
    from microfleet.sim.live import LiveProgress
    from microfleet.sim.senders import ClosableSender, SendResult

CREDENTIAL_NAMES = {
    "http": "device token",
    "mqtt": "MQTT password",
    "osmand": "tracker key",
    "ovms": "MQTT password",
}


@dataclass(frozen=True, slots=True)
class MqttBroker:
    """Where twin cars publish over MQTT: the broker and Microfleet's topic prefix there."""

    host: str
    port: int
    topic_prefix: str = "microfleet"


def build_scenario(
    vehicles: int | None = None,
    days: int | None = None,
    seed: int | None = None,
    scenario_file: Path | None = None,
    **overrides: object,
) -> Scenario:
    """A validated scenario: the file's (or the defaults'), with the given options on top."""
    base = load_scenario(scenario_file) if scenario_file else Scenario()
    return base.with_overrides(vehicles=vehicles, days=days, seed=seed, **overrides).validate(
        frozenset(MODELS)
    )


def run_live_twin(
    base_url: str,
    credentials: Mapping[str, str],
    scenario: Scenario,
    *,
    speedup: float,
    on_progress: Callable[[LiveProgress], None] | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    keep_up: bool = False,
    mqtt: MqttBroker | None = None,
    command_keys: Mapping[str, Sequence[str]] | None = None,
) -> SendResult:
    """Publish a twin live over the scenario's protocol, each car with its own credential; the totals.

    ``credentials`` holds one per car: device tokens (http, to ``base_url``), MQTT passwords (mqtt, to the
    ``mqtt`` broker) or tracker keys (osmand, to ``base_url``). The scenario's days are replayed at
    ``speedup`` so that they end now; with ``keep_up`` the twin then goes on driving in real time, past the
    scenario's days, until ``should_stop``. Over MQTT, the cars in ``command_keys`` (vehicle id -> its public
    keys, base64, as ``GET /api/v1/vehicles/{id}/command-keys`` lists them) also take remote commands; over
    OVMS they run the bridge's allow-listed texts (the bridge verifies).
    """
    what = CREDENTIAL_NAMES[scenario.protocol]
    missing = [r.vehicle_id for r in registrations(scenario) if r.vehicle_id not in credentials]
    if missing:
        raise ConfigurationError(f"no {what} for {len(missing)} twin car(s): {', '.join(missing[:5])}")
    if scenario.protocol in ("mqtt", "ovms") and mqtt is None:
        raise ConfigurationError("the twin's cars send over MQTT: give the broker (host, port, topic prefix)")
    from microfleet.sim.engine import Twin
    from microfleet.sim.live import run_live

    sender = _sender(scenario.protocol, base_url, credentials, mqtt, _executors(scenario, command_keys))
    try:
        return run_live(
            Twin(scenario, open_ended=keep_up),
            sender,
            speedup=speedup,
            on_progress=on_progress,
            should_stop=should_stop,
        )
    finally:
        sender.close()


def _executors(
    scenario: Scenario, command_keys: Mapping[str, Sequence[str]] | None
) -> dict[str, CommandExecutor]:
    """A command executor for each car given its keys, with the car's model's capacity and cabin."""
    if not command_keys:
        return {}
    from microfleet.domain.command_wire import CommandVerifier
    from microfleet.sim.commands import CommandExecutor, controls_for_model

    executors = {}
    for registration in registrations(scenario):
        keys = command_keys.get(registration.vehicle_id)
        if keys:
            executor = CommandExecutor(
                CommandVerifier(registration.vehicle_id), controls_for_model(registration.model_id)
            )
            executor.trust_keys(keys)
            executors[registration.vehicle_id] = executor
    return executors


def _sender(
    protocol: str,
    base_url: str,
    credentials: Mapping[str, str],
    mqtt: MqttBroker | None,
    executors: Mapping[str, CommandExecutor] | None = None,
) -> ClosableSender:
    if protocol == "mqtt":
        from microfleet.sim.mqtt_sender import MqttSender

        assert mqtt is not None
        return MqttSender(
            mqtt.host, mqtt.port, credentials, topic_prefix=mqtt.topic_prefix, executors=executors
        )
    if protocol == "ovms":
        from microfleet.sim.ovms_sender import OvmsSender

        assert mqtt is not None
        return OvmsSender(mqtt.host, mqtt.port, credentials, executors=executors)
    from microfleet.sim.senders import HttpSender, OsmAndSender

    return OsmAndSender(base_url, credentials) if protocol == "osmand" else HttpSender(base_url, credentials)


def demo_scenario(owners: int = 3, sharing: int = 5, days: int = 1, seed: int = 0) -> Scenario:
    """The demo's twin: a few owners' cars and a small car-sharing fleet (register them, then run live)."""
    total = owners + sharing
    models = ("wuling-hongguang-mini-ev-gen1-14kwh", "chery-qq-ice-cream-14kwh", "dacia-spring-65-2024")
    return Scenario(
        vehicles=total, days=days, seed=seed, sharing_share=sharing / total, models=models
    ).validate(frozenset(MODELS))


def demo_registrations(scenario: Scenario) -> list[Registration]:
    """The vehicles to register on the server before :func:`run_live_twin` (id, model, name, fleet)."""
    return registrations(scenario)
