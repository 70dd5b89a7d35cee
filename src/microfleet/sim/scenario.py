"""A twin scenario: which city, how many cars of which models, how long, which faults; validated."""

from __future__ import annotations

import datetime as dt
import tomllib
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from microfleet.errors import ConfigurationError
from microfleet.sim.models import MODELS

# Cities whose road extract ships in shared/data/osm (file stem) and whose climate is in climate.csv.
SHARING_FLEET_ID = "twin-sharing"
CITY_FILES = {"shanghai_center": "osm/shanghai_center.osm"}
CLIMATE_CITIES = ("Shanghai", "Hangzhou", "Guangzhou", "Amsterdam")
SENSOR_MODELS = ("ideal", "realistic")
# How a live twin's cars reach Microfleet: protocol v1 over HTTP or MQTT, a phone's OsmAnd reports, or an
# OVMS v3 module's metrics over MQTT.
PROTOCOLS = ("http", "mqtt", "osmand", "ovms")


@dataclass(frozen=True, slots=True)
class FaultRates:
    """Expected injected faults per vehicle per year of simulated time, by kind (0 = never)."""

    tyre_slow_leak: float = 1.0
    weak_cell: float = 0.5
    aux_battery_decay: float = 0.5
    motor_overheat: float = 0.5
    brake_wear: float = 0.5
    gps_glitch: float = 6.0


@dataclass(frozen=True, slots=True)
class LinkFaults:
    """Probabilities of transport faults per message, and clock skew of a share of the devices."""

    drop_p: float = 0.0
    duplicate_p: float = 0.0
    delay_p: float = 0.0
    delay_max_s: float = 600.0
    skewed_vehicle_share: float = 0.0
    skew_max_s: float = 120.0


@dataclass(frozen=True, slots=True)
class Scenario:
    """Everything one twin run depends on; the same scenario and seed give the same output."""

    vehicles: int = 10
    days: int = 1
    seed: int = 0
    start_date: dt.date = dt.date(2026, 1, 5)
    city: str = "shanghai_center"  # a name in CITY_FILES, or the path of another OSM XML extract
    climate_city: str = "Shanghai"
    temp_offset_c: float = 0.0
    sharing_share: float = 0.2
    models: tuple[str, ...] = ("wuling-hongguang-mini-ev-gen1-14kwh", "chery-qq-ice-cream-14kwh")
    fault_rates: FaultRates = field(default_factory=FaultRates)
    link: LinkFaults = field(default_factory=LinkFaults)
    vehicle_id_prefix: str = "twin"
    # "ideal": exact flags, offset-only current sensor (derivation checked in isolation);
    # "realistic" (the default): sensors that err like real cars' (sim/sensor_profiles.py, docs/twin.md)
    sensor_model: str = "realistic"
    # "http": POST /api/v1/telemetry with a device token; "mqtt": protocol v1 over MQTT with a broker login;
    # "osmand": a phone in each car reporting its GPS fixes to /osmand with a tracker key (no car signals);
    # "ovms": an OVMS v3 module in each car publishing metric by metric with its broker login
    protocol: str = "http"

    def validate(self, known_models: frozenset[str]) -> Scenario:
        """Return the scenario if every field is usable, else raise :class:`ConfigurationError`."""
        if self.vehicles < 1:
            raise ConfigurationError(f"vehicles must be at least 1, got {self.vehicles}")
        if self.days < 1:
            raise ConfigurationError(f"days must be at least 1, got {self.days}")
        if self.city not in CITY_FILES and not (self.city.endswith(".osm") and Path(self.city).is_file()):
            raise ConfigurationError(
                f"unknown city {self.city!r}; known: {', '.join(sorted(CITY_FILES))} or an .osm file path"
            )
        if self.climate_city not in CLIMATE_CITIES:
            raise ConfigurationError(
                f"unknown climate city {self.climate_city!r}; known: {', '.join(CLIMATE_CITIES)}"
            )
        if not 0.0 <= self.sharing_share <= 1.0:
            raise ConfigurationError(f"sharing_share must be within 0..1, got {self.sharing_share}")
        if not -40.0 <= self.temp_offset_c <= 20.0:
            raise ConfigurationError(f"temp_offset_c must be within -40..20 °C, got {self.temp_offset_c}")
        if not self.models:
            raise ConfigurationError("models must name at least one vehicle model")
        unknown = [m for m in self.models if m not in known_models]
        if unknown:
            raise ConfigurationError(
                f"unknown vehicle model(s) {', '.join(unknown)}; known: {', '.join(sorted(known_models))}"
            )
        if self.sensor_model not in SENSOR_MODELS:
            raise ConfigurationError(
                f"unknown sensor model {self.sensor_model!r}; known: {', '.join(SENSOR_MODELS)}"
            )
        if self.protocol not in PROTOCOLS:
            raise ConfigurationError(
                f"unknown protocol {self.protocol!r}; known: {', '.join(PROTOCOLS)} "
                "(how a live twin's cars send: HTTP, MQTT, an OsmAnd / Traccar Client phone, an OVMS module)"
            )
        for name in ("drop_p", "duplicate_p", "delay_p", "skewed_vehicle_share"):
            value = getattr(self.link, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigurationError(f"link.{name} must be a probability within 0..1, got {value}")
        for f in fields(FaultRates):
            if getattr(self.fault_rates, f.name) < 0:
                raise ConfigurationError(f"fault_rates.{f.name} must not be negative")
        return self

    def with_overrides(self, **changes: Any) -> Scenario:
        """Return a copy with the given fields replaced (None values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})


def _section(cls: type[Any], raw: object, name: str) -> Any:
    if not isinstance(raw, dict):
        raise ConfigurationError(f"scenario section [{name}] must be a table")
    known = {f.name for f in fields(cls)}
    extra = set(raw) - known
    if extra:
        raise ConfigurationError(f"unknown key(s) in [{name}]: {', '.join(sorted(extra))}")
    try:
        return cls(**{k: float(v) for k, v in raw.items()})
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"[{name}]: every value must be a number ({exc})") from exc


def load_scenario(path: Path) -> Scenario:
    """Read a TOML scenario file; unknown keys and wrong types are refused with the key named."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigurationError(f"cannot read scenario file {path}: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"scenario file {path} is not valid TOML: {exc}") from exc
    known = {f.name for f in fields(Scenario)}
    extra = set(raw) - known
    if extra:
        raise ConfigurationError(f"unknown key(s) in scenario {path}: {', '.join(sorted(extra))}")
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key == "fault_rates":
            values[key] = _section(FaultRates, value, key)
        elif key == "link":
            values[key] = _section(LinkFaults, value, key)
        elif key == "models":
            if not isinstance(value, list) or not all(isinstance(m, str) for m in value):
                raise ConfigurationError("models must be a list of model ids")
            values[key] = tuple(value)
        elif key == "start_date":
            if not isinstance(value, dt.date):
                raise ConfigurationError("start_date must be a TOML date such as 2026-01-05")
            values[key] = value
        else:
            expected = type(getattr(Scenario(), key))
            if expected is float and isinstance(value, int):
                value = float(value)
            if not isinstance(value, expected) or isinstance(value, bool) != (expected is bool):
                raise ConfigurationError(f"{key} must be of type {expected.__name__}, got {value!r}")
            values[key] = value
    return Scenario(**values)


@dataclass(frozen=True, slots=True)
class Registration:
    """What the server must know of a twin car before it can send: id, model, name, fleet."""

    vehicle_id: str
    model_id: str
    name: str
    fleet_id: str | None


def registrations(scenario: Scenario) -> list[Registration]:
    """The scenario's vehicles as the server registers them (no city or data needed)."""
    n_owned = scenario.vehicles - round(scenario.vehicles * scenario.sharing_share)
    out = []
    for i in range(scenario.vehicles):
        owned = i < n_owned
        model = MODELS[scenario.models[i % len(scenario.models)]]
        vehicle_id = f"{scenario.vehicle_id_prefix}-{'own' if owned else 'share'}-{i:05d}"
        name = f"{model.name} ({'owner' if owned else 'car sharing'} {i})"
        out.append(Registration(vehicle_id, model.model_id, name, None if owned else SHARING_FLEET_ID))
    return out
