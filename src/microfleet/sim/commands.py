"""A twin car's remote controls: it verifies each signed command, then acts on its own state and physics.

Each car holds a :class:`~microfleet.domain.command_wire.CommandVerifier` with its vehicle's public keys
(fetched over the API with the car's device credential, or given by the scenario) and a :class:`CarControls`:
what a remote command changes. Nothing is done unless the verifier accepts the command (signature, vehicle,
expiry, nonce); then lock/unlock change ``locked``; ``climate_on`` runs the HVAC towards its target, drawing
power from the pack and moving the cabin temperature (``physics.hvac.cabin_climate_step``);
``charge_start``/``charge_stop`` act only while a cable is plugged in (else the command fails with the
reason); charging stops at the charge limit; ``locate`` flashes and sounds the horn; ``wake`` wakes the link.

The answer is a :class:`~microfleet.domain.command_wire.CommandResult`: ``refused`` with the verifier's
reason, ``failed`` with the car's, or ``acknowledged``. A command delivered twice (a QoS 1 redelivery, or a
replay) is done once: the second copy's nonce is refused as replayed.
"""

from __future__ import annotations

import functools
import json
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

import msgspec

from microfleet.domain.command_wire import (
    Action,
    CommandRefused,
    CommandResult,
    CommandVerifier,
    ParamValue,
    ResultStatus,
    SignedCommand,
    decode,
    load_public_key,
)
from microfleet.domain.telemetry import TelemetryRecord
from microfleet.physics import hvac
from microfleet.sim.timeline import CHARGER_EFFICIENCY

# Parameter names the car reads, each with the names it also accepts (the server's, whichever it sends).
TARGET_PARAMS: Final = ("target_c", "target_temp_c", "temperature_c")
LIMIT_PARAMS: Final = ("limit_pct", "charge_limit_pct", "soc_limit_pct")
DEFAULT_TARGET_C: Final = 21.0
# What the car itself accepts, whatever the server checked: a cabin setpoint a car's HVAC can hold (16-32 °C
# on typical climate panels, widened to 5-35) and a charge limit of 50-100 % (BMS limits below 50 % are rare).
TARGET_RANGE_C: Final = (5.0, 35.0)
LIMIT_RANGE_PCT: Final = (50.0, 100.0)
REASON_MAX_CHARS: Final = 500  # command_wire.decode_result's bound


@dataclass(frozen=True, slots=True)
class CabinUnit:
    """A car's cabin and HVAC as the physics needs them (from ``VehicleParams``)."""

    cabin_ua_w_per_k: float = hvac.CABIN_UA_REFERENCE_W_PER_K * 0.6
    heat_max_kw: float = hvac.HEATER_MAX_KW_MICRO
    cool_max_kw: float = hvac.COOLER_MAX_KW_MICRO
    has_heat_pump: bool = False

    @property
    def heat_capacity_j_per_k(self) -> float:
        """The cabin's heat capacity (J/K)."""
        return hvac.cabin_heat_capacity_j_per_k(self.cabin_ua_w_per_k)


@dataclass
class CarControls:
    """What remote commands change on one parked twin car, and the physics they drive."""

    usable_kwh: float
    ac_charge_kw: float
    cabin: CabinUnit = field(default_factory=CabinUnit)
    soc_pct: float = 60.0
    ambient_c: float = 15.0
    cabin_c: float = 15.0
    locked: bool = True
    plugged: bool = False
    charging: bool = False
    charge_limit_pct: float = 100.0
    climate_target_c: float | None = None  # None: climate off
    hvac_kw: float = 0.0
    link_awake: bool = True
    located: int = 0  # how many times it flashed and sounded the horn
    hvac_energy_kwh: float = 0.0
    charged_energy_kwh: float = 0.0
    lock_commanded: bool = False  # a lock/unlock command holds until the car's own lock state changes
    _own_locked: bool | None = None  # the lock state the twin's car last reported by itself
    _last_ts_ms: int | None = None

    @property
    def climate_on(self) -> bool:
        """The HVAC is running towards a target."""
        return self.climate_target_c is not None

    def advance(self, dt_s: float) -> None:
        """Let ``dt_s`` s pass: the HVAC moves the cabin and draws from the pack; the charger fills it."""
        if dt_s <= 0:
            return
        self.cabin_c, self.hvac_kw = hvac.cabin_climate_step(
            self.cabin_c,
            self.ambient_c,
            self.climate_target_c,
            dt_s,
            cabin_ua_w_per_k=self.cabin.cabin_ua_w_per_k,
            heat_capacity_j_per_k=self.cabin.heat_capacity_j_per_k,
            heat_max_kw=self.cabin.heat_max_kw,
            cool_max_kw=self.cabin.cool_max_kw,
            has_heat_pump=self.cabin.has_heat_pump,
        )
        hvac_kwh = self.hvac_kw * dt_s / 3600.0
        self.hvac_energy_kwh += hvac_kwh
        charged_kwh = 0.0
        if self.charging and self.plugged:
            room_kwh = max(self.charge_limit_pct - self.soc_pct, 0.0) / 100.0 * self.usable_kwh
            charged_kwh = min(self.ac_charge_kw * CHARGER_EFFICIENCY * dt_s / 3600.0, room_kwh + hvac_kwh)
            self.charged_energy_kwh += charged_kwh
        self.soc_pct = min(max(self.soc_pct + (charged_kwh - hvac_kwh) / self.usable_kwh * 100.0, 0.0), 100.0)
        if self.charging and self.soc_pct >= self.charge_limit_pct - 1e-9:
            self.charging = False  # the BMS stops at the limit

    def observe(self, record: TelemetryRecord) -> TelemetryRecord:
        """Follow the twin's car through one of its records, and show in it what commands changed.

        The car's own state comes first: whether it is plugged in, its SoC, the outside temperature, and its
        lock (a remote lock or unlock holds until the car's own lock state next changes, at its next drive).
        Time passes between records (:meth:`advance`); while the climate runs, the record carries the
        HVAC's draw and the cabin temperature it reached.
        """
        if self._last_ts_ms is not None:
            self.advance((record.ts_ms - self._last_ts_ms) / 1000.0)
        self._last_ts_ms = record.ts_ms if self._last_ts_ms is None else max(self._last_ts_ms, record.ts_ms)
        if record.charger_connected is not None:
            self.plugged = record.charger_connected
            self.charging = self.charging and self.plugged
        if record.soc_pct is not None:
            self.soc_pct = record.soc_pct  # the twin's BMS is the truth; the HVAC's draw is counted apart
        if record.ambient_temp_c is not None:
            self.ambient_c = record.ambient_temp_c
        changes: dict[str, Any] = {}
        if record.locked is not None:
            if record.locked != self._own_locked:  # the car's own change: it overrides any command
                self._own_locked, self.locked, self.lock_commanded = record.locked, record.locked, False
            elif self.lock_commanded and record.locked != self.locked:
                changes["locked"] = self.locked
        if self.climate_on:
            changes.update(
                hvac_on=True, hvac_power_kw=round(self.hvac_kw, 2), cabin_temp_c=round(self.cabin_c, 1)
            )
        elif record.cabin_temp_c is not None:
            self.cabin_c = record.cabin_temp_c
        return msgspec.structs.replace(record, **changes) if changes else record


@dataclass(frozen=True, slots=True)
class Outcome:
    """What the car did with a genuine command: done, or failed with the reason."""

    done: bool
    reason: str | None = None


def _param(params: Mapping[str, ParamValue], names: Iterable[str]) -> float | None:
    for name in names:
        value = params.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def act(controls: CarControls, action: Action, params: Mapping[str, ParamValue]) -> Outcome:
    """Do ``action`` on the car (already verified); the outcome says whether it could."""
    if action in (Action.LOCK, Action.UNLOCK):
        controls.locked = action is Action.LOCK
        controls.lock_commanded = True
    elif action is Action.CLIMATE_ON:
        target = _param(params, TARGET_PARAMS)
        target = DEFAULT_TARGET_C if target is None else target
        if not TARGET_RANGE_C[0] <= target <= TARGET_RANGE_C[1]:
            return Outcome(
                False, f"target {target:g} °C is outside {TARGET_RANGE_C[0]:g}-{TARGET_RANGE_C[1]:g} °C"
            )
        controls.climate_target_c = target
    elif action is Action.CLIMATE_OFF:
        controls.climate_target_c = None
        controls.hvac_kw = 0.0
    elif action in (Action.CHARGE_START, Action.CHARGE_STOP):
        if not controls.plugged:
            return Outcome(False, "no charging cable is plugged in")
        if action is Action.CHARGE_START and controls.soc_pct >= controls.charge_limit_pct:
            return Outcome(False, f"state of charge is already at the {controls.charge_limit_pct:g} % limit")
        controls.charging = action is Action.CHARGE_START
    elif action is Action.SET_CHARGE_LIMIT:
        limit = _param(params, LIMIT_PARAMS)
        if limit is None or not LIMIT_RANGE_PCT[0] <= limit <= LIMIT_RANGE_PCT[1]:
            return Outcome(False, f"charge limit must be {LIMIT_RANGE_PCT[0]:g}-{LIMIT_RANGE_PCT[1]:g} %")
        controls.charge_limit_pct = limit
        if controls.charging and controls.soc_pct >= limit:
            controls.charging = False
    elif action is Action.LOCATE:
        controls.located += 1
    elif action is Action.WAKE:
        controls.link_awake = True
    return Outcome(True)


def _command_id_of(payload: bytes) -> str:
    """The command id of a payload too malformed to decode, if it has one (for the answer), else '-'."""
    try:
        body = json.loads(payload.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return "-"
    value = body.get("command_id") if isinstance(body, dict) else None
    return value[:200] if isinstance(value, str) and value else "-"


@dataclass
class CommandExecutor:
    """One twin car's command handling: verify, act, answer; ``counts`` tallies every outcome."""

    verifier: CommandVerifier
    controls: CarControls
    counts: Counter[str] = field(default_factory=Counter)
    executed: list[str] = field(default_factory=list)  # command ids acted on, in order
    # A car's commands arrive on its MQTT client's thread while its records are sent from another.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def vehicle_id(self) -> str:
        """The car's vehicle id."""
        return self.verifier.vehicle_id

    def trust_keys(self, public_keys: Iterable[str]) -> None:
        """Trust each base64 Ed25519 public key (the vehicle's current one first, then any still valid)."""
        for text in public_keys:
            self.verifier.trust(load_public_key(text))

    def observe(self, record: TelemetryRecord) -> TelemetryRecord:
        """The car's record as it leaves the car, with what commands changed (:meth:`CarControls.observe`)."""
        with self._lock:
            return self.controls.observe(record)

    def handle(self, payload: bytes, now_ms: int) -> CommandResult:
        """Verify one command payload as it arrived and act on it if genuine; the answer to publish."""
        with self._lock:
            return self._handle(payload, now_ms)

    def _handle(self, payload: bytes, now_ms: int) -> CommandResult:
        try:
            command = self.verifier.verify(decode(payload), now_ms)
        except CommandRefused as refused:
            self.counts[f"refused {refused.reason.value}"] += 1
            return CommandResult(
                _command_id_of(payload),
                self.vehicle_id,
                ResultStatus.REFUSED,
                now_ms,
                f"{refused.reason.value}: {refused.detail}"[:REASON_MAX_CHARS],
            )
        return self._result(command, act(self.controls, command.action, command.params), now_ms)

    def act_relayed(self, action: Action, params: Mapping[str, ParamValue], reference: str) -> Outcome:
        """Do a command a trusted relay verified (an OVMS module's case: Microfleet's bridge verifies)."""
        with self._lock:
            outcome = act(self.controls, action, params)
        self.counts["acknowledged" if outcome.done else "failed"] += 1
        if outcome.done:
            self.executed.append(reference)
        return outcome

    def _result(self, command: SignedCommand, outcome: Outcome, now_ms: int) -> CommandResult:
        if not outcome.done:
            self.counts["failed"] += 1
            return CommandResult(
                command.command_id, self.vehicle_id, ResultStatus.FAILED, now_ms, outcome.reason
            )
        self.counts["acknowledged"] += 1
        self.executed.append(command.command_id)
        return CommandResult(command.command_id, self.vehicle_id, ResultStatus.ACKNOWLEDGED, now_ms)

    @property
    def refused(self) -> int:
        """Commands refused by the verifier, every reason together."""
        return sum(n for key, n in self.counts.items() if key.startswith("refused "))


@functools.lru_cache(maxsize=32)
def _model_unit(model_id: str) -> tuple[float, float, CabinUnit]:
    from microfleet.sim.vehicles import TwinPhysics  # the catalogue loads only when a car is built

    physics = TwinPhysics.load((model_id,))
    p, model = physics.params[model_id], physics.models[model_id]
    unit = CabinUnit(
        float(p.cabin_ua_w_per_k[0]),
        float(p.hvac_heat_max_kw[0]),
        float(p.hvac_cool_max_kw[0]),
        bool(p.has_heat_pump[0]),
    )
    return model.usable_kwh, model.ac_charge_kw, unit


def controls_for_model(model_id: str, **state: float | bool) -> CarControls:
    """A parked car of the twin's model (capacity, charger, cabin and HVAC from the catalogue)."""
    usable_kwh, ac_charge_kw, unit = _model_unit(model_id)
    return CarControls(usable_kwh=usable_kwh, ac_charge_kw=ac_charge_kw, cabin=unit, **state)  # type: ignore[arg-type]
