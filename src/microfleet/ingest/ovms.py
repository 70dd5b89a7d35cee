"""OVMS v3 modules over MQTT: their metric-by-metric messages become protocol-v1 records, one per instant.

Read in openvehicles/Open-Vehicle-Monitoring-System-3, commit 1aa1daff (2026-08-22):

* ``components/ovms_server_v3/src/ovms_server_v3.cpp``: the topic prefix is ``ovms/<user>/<vehicleid>/``
  (``server.v3 topic.prefix`` overrides it); each metric goes to ``<prefix>metric/<name, '.' -> '/'>``
  (``mqtt_topic`` in ``main/ovms_utils.cpp``), QoS 0, retained, payload ``metric->AsString()``; events to
  ``<prefix>event`` (the name as payload) and ``<prefix>event/<name>``; commands arrive on
  ``<prefix>client/<id>/command/<n>`` and are answered on ``…/response/<n>``; the last will is ``no`` on
  ``<prefix>metric/s/v3/connected`` (retained). Each ``ticker.1`` at most, the module sends the metrics
  changed since its last send, every 5 s with the car on, 10 s charging, 60 s awake, 600 s idle
  (``m_updatetime_*``), and every metric every 1200 s (``m_updatetime_sendall``), walking its metric list,
  which ``OvmsMetrics::RegisterMetric`` keeps sorted by name: ``m.time.utc`` (changed every second) comes
  before every ``v.*`` metric. With ``updatetime.priority`` the position metrics come first, then the time.
* ``main/ovms_metrics.cpp``: ``AsString`` with its default unit (``Other`` = ``Native``) writes a metric
  in the unit it was declared with; floats through a C++ stream (6 significant digits, so ``1.30133e-05``
  happens; latitude and longitude fixed to 6 decimals, ``metrics_standard.cpp`` ``SetFormat(6, true)``);
  booleans ``yes``/``no``; vectors comma-separated; ``DateUTC`` as ``YYYY-MM-DD HH:MM:SS UTC``.
* ``main/metrics_standard.cpp``: each standard metric's unit (the ``unit`` column of :data:`METRICS`);
  ``docs/source/userguide/metrics.rst``: what each means (``v.e.gear`` negative = reverse, 0 = neutral).

Assembly (:class:`OvmsAssembler`): a *tick* is one send of one vehicle. It starts with ``m.time.utc``
(unless only position metrics came before it: the priority send), with a metric the open tick already holds
(a metric is sent at most once a send), or after ``quiet_ms`` (500 ms, half the module's 1 s ticker) without
a metric from the vehicle; a send's metrics arrive within milliseconds.
A closed tick becomes one record stamped with the module's ``m.time.utc``
of that tick, else the module clock carried on from the last ``m.time.utc`` by the time elapsed here, else
the arrival time. OVMS sends a metric only when it changes, so the record holds the vehicle's last value
of every mapped metric (the module's own state at that tick), not only the changed ones; a value older than
``carry_max_ms`` (1500 s: the 1200 s full resend plus margin, assumed) is dropped, not carried. A metric
that arrives alone is a tick of its own: it closes after ``quiet_ms`` and gives a record. A position is
stored only as a latitude and longitude pair. Retained messages (the broker's copy of a module's last value,
of unknown age) give no record. Pure: no I/O, no clock (the caller passes arrival times).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

from microfleet.domain.telemetry import EARLIEST_TS_MS, RejectionReason
from microfleet.domain.validation import Rejection, check_item
from microfleet.errors import ConfigurationError

OVMS_ROOT: Final = "ovms"
TIME_METRIC: Final = "m.time.utc"
CONNECTED_METRIC: Final = "s.v3.connected"
QUIET_MS: Final = 500  # half of OVMS's 1 s ticker: a send's metrics arrive within ms of each other
CARRY_MAX_MS: Final = 1_500_000  # 1200 s full resend (m_updatetime_sendall) + 300 s margin, assumed
_METRICS_SOURCE: Final = "OVMS main/metrics_standard.cpp @1aa1daff"

# A C++ stream's float: digits, optional fraction, optional exponent ("1.30133e-05"); no nan/inf.
_NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_INTEGER = re.compile(r"[+-]?\d{1,10}")


class BadValue(ValueError):
    """A known metric's payload that is not what OVMS writes for it."""


def _number(text: str) -> float:
    if not _NUMBER.fullmatch(text.strip()):
        raise BadValue(f"{text!r} is not a number as OVMS writes one")
    value = float(text)
    if not math.isfinite(value):
        raise BadValue(f"{text!r} is out of any float's range")
    return value


def _scaled(factor: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        return _number(text) * factor

    return parse


def _yes_no(text: str) -> bool:
    value = {"yes": True, "no": False}.get(text.strip())
    if value is None:
        raise BadValue(f"{text!r} is neither 'yes' nor 'no' (OvmsMetricBool::AsString)")
    return value


def _gear(text: str) -> str:
    if not _INTEGER.fullmatch(text.strip()):
        raise BadValue(f"{text!r} is not an integer gear")
    number = int(text)
    # metrics.rst: "negative=reverse, 0=neutral"; OVMS has no park position, so a parked car reads N.
    return "R" if number < 0 else "N" if number == 0 else "D"


def _tyres(text: str) -> list[float]:
    parts = text.split(",")
    if len(parts) != 4:
        raise BadValue(
            f"{text!r} holds {len(parts)} values, not four (front left, front right, rear left, rear right)"
        )
    return [_number(p) for p in parts]


def parse_utc(text: str) -> int:
    """UTC epoch ms of a ``DateUTC`` metric as OVMS writes it (``2026-12-03 12:00:00 UTC``)."""
    try:
        moment = datetime.strptime(text.strip(), "%Y-%m-%d %H:%M:%S UTC").replace(tzinfo=UTC)
    except ValueError:
        raise BadValue(f"{text!r} is not 'YYYY-MM-DD HH:MM:SS UTC' (OvmsMetricInt64 DateUTC)") from None
    return int(moment.timestamp()) * 1000


@dataclass(frozen=True, slots=True)
class OvmsMetric:
    """One OVMS metric Microfleet reads: the protocol-v1 field it fills and how its text becomes a value."""

    name: str
    target: str  # a protocol-v1 field
    unit: str  # the unit OVMS declares it in (and so sends it in)
    parse: Callable[[str], Any]
    source: str = _METRICS_SOURCE


_SAME: Final = _scaled(1.0)  # OVMS's unit is protocol v1's: no conversion

# Standard metrics that have a protocol-v1 field. All are sent in v1's own units; a car's OVMS units setting
# changes what the shell and apps show, not what server-v3 sends (AsString's default unit is Native).
METRICS: Final[tuple[OvmsMetric, ...]] = (
    OvmsMetric("v.p.latitude", "lat_deg", "degrees (6 decimals)", _SAME),
    OvmsMetric("v.p.longitude", "lon_deg", "degrees (6 decimals)", _SAME),
    OvmsMetric("v.p.direction", "heading_deg", "Degrees", _SAME),
    OvmsMetric("v.p.gpshdop", "gps_hdop", "(none)", _SAME),
    OvmsMetric("v.p.altitude", "altitude_m", "Meters", _SAME),
    OvmsMetric("v.p.speed", "speed_kmh", "Kph", _SAME),
    OvmsMetric("v.p.odometer", "odometer_km", "Kilometers", _SAME),
    OvmsMetric("v.e.gear", "gear", "integer, <0 reverse, 0 neutral", _gear),
    OvmsMetric("v.e.on", "ignition_on", "yes/no", _yes_no),
    OvmsMetric("v.b.soc", "soc_pct", "Percentage", _SAME),
    OvmsMetric("v.b.soh", "bms_soh_pct", "Percentage", _SAME),
    OvmsMetric("v.b.voltage", "pack_voltage_v", "Volts", _SAME),
    # metrics.rst: "output=positive", as v1's positive = discharge.
    OvmsMetric("v.b.current", "pack_current_a", "Amps", _SAME),
    OvmsMetric("v.b.temp", "pack_temp_c", "Celcius", _SAME),
    OvmsMetric("v.b.p.voltage.min", "cell_voltage_min_v", "Volts", _SAME),
    OvmsMetric("v.b.p.voltage.max", "cell_voltage_max_v", "Volts", _SAME),
    OvmsMetric("v.b.energy.used.total", "energy_used_kwh", "kWh", _SAME),
    OvmsMetric("v.b.energy.recd.total", "energy_recovered_kwh", "kWh", _SAME),
    OvmsMetric("v.b.12v.voltage", "aux_battery_v", "Volts", _SAME),
    # The pilot signal is present while the car is plugged into an EVSE: v1's cable plugged in.
    OvmsMetric("v.c.pilot", "charger_connected", "yes/no", _yes_no),
    OvmsMetric("v.c.power", "charger_power_kw", "kW (charger input)", _SAME),
    OvmsMetric("v.c.voltage", "charger_ac_voltage_v", "Volts (supply)", _SAME),
    OvmsMetric("v.e.locked", "locked", "yes/no", _yes_no),
    OvmsMetric("v.e.cabintemp", "cabin_temp_c", "Celcius", _SAME),
    OvmsMetric("v.e.temp", "ambient_temp_c", "Celcius", _SAME),
    OvmsMetric("v.e.hvac", "hvac_on", "yes/no", _yes_no),
    OvmsMetric("v.t.pressure", "tyre_pressure_kpa", "kPa, 4 comma-separated", _tyres),
)
BY_NAME: Final = {m.name: m for m in METRICS}
_POSITION: Final = ("lat_deg", "lon_deg")
# TransmitPriorityMetrics' defaults, sent before m.time.utc when updatetime.priority is on.
PRIORITY_METRICS: Final = frozenset(
    {"v.p.latitude", "v.p.longitude", "v.p.altitude", "v.p.speed", "v.p.gpsspeed"}
)


@dataclass(frozen=True, slots=True)
class OvmsTopic:
    """A topic of a module's tree: who sent it, what kind (metric, event, client...) and the rest."""

    user: str
    vehicle: str
    kind: str
    name: str  # a metric's or event's dotted name; '' for the legacy event topic

    @property
    def module(self) -> str:
        """``<user>/<vehicleid>``: the module's key in the vehicle map."""
        return f"{self.user}/{self.vehicle}"


def parse_topic(topic: str, root: str = OVMS_ROOT) -> OvmsTopic | None:
    """``ovms/<user>/<vehicleid>/<kind>[/<name with / for .>]``, or None for any other topic."""
    parts = topic.split("/")
    if len(parts) < 4 or parts[0] != root or not parts[1] or not parts[2] or not parts[3]:
        return None
    return OvmsTopic(parts[1], parts[2], parts[3], ".".join(parts[4:]))


def parse_module_map(entries: list[str]) -> dict[str, str]:
    """``USER/VEHICLEID=MICROFLEET_ID`` entries as a map; ConfigurationError names a malformed entry."""
    modules: dict[str, str] = {}
    for entry in entries:
        module, sep, vehicle_id = entry.partition("=")
        user, slash, ovms_vehicle = module.partition("/")
        if not sep or not slash or not user or not ovms_vehicle or "/" in ovms_vehicle or not vehicle_id:
            raise ConfigurationError(f"{entry!r} is not USER/VEHICLEID=MICROFLEET_VEHICLE_ID")
        modules[module] = vehicle_id
    return modules


@dataclass(frozen=True, slots=True)
class MetricRefused:
    """A known metric whose value cannot be stored: why, for the quarantine."""

    reason: RejectionReason
    detail: str


@dataclass(slots=True)
class _Tick:
    first_arrival_ms: int
    last_arrival_ms: int
    names: set[str] = field(default_factory=set)
    module_ms: int | None = None


@dataclass(slots=True)
class _Vehicle:
    last: dict[str, tuple[Any, int]] = field(default_factory=dict)  # field -> (value, arrival ms)
    tick: _Tick | None = None
    clock: tuple[int, int] | None = None  # (module ms, arrival ms) of the last m.time.utc
    last_ts_ms: int | None = None


class OvmsAssembler:
    """Metrics in, one protocol-v1 item (a dict the v1 validator judges) per vehicle per tick out."""

    def __init__(self, *, quiet_ms: int = QUIET_MS, carry_max_ms: int = CARRY_MAX_MS) -> None:
        self.quiet_ms = quiet_ms
        self.carry_max_ms = carry_max_ms
        self._vehicles: dict[str, _Vehicle] = {}

    def feed(
        self, vehicle_id: str, name: str, payload: str, arrival_ms: int
    ) -> tuple[list[dict[str, Any]], MetricRefused | None]:
        """Take one metric of a vehicle: the items of ticks it closed, and why it is refused, if it is.

        The caller checks ``name`` is :data:`TIME_METRIC` or in :data:`BY_NAME` first.
        """
        state = self._vehicles.setdefault(vehicle_id, _Vehicle())
        closed: list[dict[str, Any]] = []
        tick = state.tick
        if tick is not None and (
            name in tick.names
            or arrival_ms - tick.last_arrival_ms >= self.quiet_ms
            or (name == TIME_METRIC and not tick.names <= PRIORITY_METRICS)
        ):
            closed.extend(self._close(vehicle_id, state))
            tick = None
        if tick is None:
            tick = state.tick = _Tick(arrival_ms, arrival_ms)
        tick.names.add(name)
        tick.last_arrival_ms = arrival_ms
        try:
            if name == TIME_METRIC:
                tick.module_ms = parse_utc(payload)
                state.clock = (tick.module_ms, arrival_ms)
                return closed, None
            metric = BY_NAME[name]
            value = metric.parse(payload)
        except BadValue as exc:
            return closed, MetricRefused(RejectionReason.WRONG_TYPE, f"ovms {name}: {exc}")
        # v1's own validator judges the value alone, so a bad metric never costs the rest of its tick.
        judged = check_item({"vehicle_id": "ovms", "ts_ms": EARLIEST_TS_MS, metric.target: value}, 0, "")
        if isinstance(judged, Rejection):
            return closed, MetricRefused(judged.reason, f"ovms {name} = {payload.strip()!r}: {judged.detail}")
        state.last[metric.target] = (value, arrival_ms)
        return closed, None

    def due(self, now_ms: int) -> list[dict[str, Any]]:
        """Items of every tick that has been quiet for ``quiet_ms`` by ``now_ms``."""
        closed: list[dict[str, Any]] = []
        for vehicle_id, state in self._vehicles.items():
            if state.tick is not None and now_ms - state.tick.last_arrival_ms >= self.quiet_ms:
                closed.extend(self._close(vehicle_id, state))
        return closed

    def flush(self, vehicle_id: str) -> list[dict[str, Any]]:
        """Close a vehicle's open tick now (its module went offline)."""
        state = self._vehicles.get(vehicle_id)
        return self._close(vehicle_id, state) if state is not None and state.tick is not None else []

    def _close(self, vehicle_id: str, state: _Vehicle) -> list[dict[str, Any]]:
        tick = state.tick
        assert tick is not None
        state.tick = None
        if tick.module_ms is not None:
            ts_ms = tick.module_ms
        elif state.clock is not None:
            ts_ms = state.clock[0] + tick.first_arrival_ms - state.clock[1]
        else:
            ts_ms = tick.first_arrival_ms
        if state.last_ts_ms is not None and ts_ms <= state.last_ts_ms:
            ts_ms = state.last_ts_ms + 1  # two sends in one module second: keep order and one key each
        fresh = {
            target: value
            for target, (value, at_ms) in state.last.items()
            if tick.last_arrival_ms - at_ms <= self.carry_max_ms
        }
        if not all(k in fresh for k in _POSITION):
            for k in _POSITION:
                fresh.pop(k, None)
        if not fresh:
            return []
        state.last_ts_ms = ts_ms
        return [{"vehicle_id": vehicle_id, "ts_ms": ts_ms, **fresh}]
