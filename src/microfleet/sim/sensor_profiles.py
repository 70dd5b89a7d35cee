"""What each car's sensors get wrong, drawn once per car: the scenario's ``sensor_model``.

``"ideal"`` (the default for now) keeps the twin's old sensors: a current-sensor zero offset, noise and
quantisation, flags that are exact functions of the true state. ``"realistic"`` adds what real small EVs
send (issue 11): a current- and voltage-sensor gain error, an offset that drifts with temperature, a BMS
that believes in a capacity its pack no longer has, per-model signal profiles (some models never send a
gear, an ignition flag or any pack electrics), flag lags, a receiver's multipath and a device clock that
jitters and steps. Every band is here with its source or marked assumed; ``docs/twin.md`` tables them.
Draws come from their own seeded stream ([seed, 6]), so choosing a sensor model never changes the people.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from microfleet.sim.fleet import TwinVehicle

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Bools = npt.NDArray[np.bool_]

# Open-loop Hall current sensors of the kind BMSs use (LEM DHAB S/24 datasheet: "sensitivity error" and
# "thermal offset drift" specified over -40..125 °C) err in gain by about 0.5-2 % once mounted (assumed
# band, issue 11), sign random; the zero offset drifts with temperature (assumed 2-20 mA/K, either sign).
CURRENT_GAIN_ERROR_PCT: Final = (0.5, 2.0)
CURRENT_OFFSET_TEMPCO_A_PER_K: Final = (0.002, 0.020)
OFFSET_REFERENCE_C: Final = 25.0  # datasheets state the offset at 25 °C, drift relative to it
VOLTAGE_GAIN_ERROR_PCT: Final = 0.5  # pack voltage divider + ADC, uniform within ±0.5 % (assumed)
# The BMS counts charge against the capacity it believes in: the new pack's, -5 to +8 % (assumed), not the
# aged pack's true one (0-8 % lower in the twin), so its coulomb count drifts on the LFP plateau.
BMS_CAPACITY_BELIEF: Final = (0.95, 1.08)
CELL_VOLTAGE_BIAS_MV: Final = 3.0  # BMS cell-voltage measurement bias, uniform within ±3 mV (assumed)
# A lifetime energy counter at fitting: the car's odometer x 0.08-0.13 kWh/km (assumed, small EVs'
# 8-13 kWh/100 km), regeneration 8-15 % of that (assumed).
LIFETIME_KWH_PER_KM: Final = (0.08, 0.13)
LIFETIME_REGEN_SHARE: Final = (0.08, 0.15)
# Energy counters reset when the module or BMS loses its 12 V supply or reboots (firmware update,
# watchdog): 6 per car-year (assumed); a reset shows as a reading of 0 at the next sample.
COUNTER_RESETS_PER_YEAR: Final = 6.0
FLAG_LAG_MAX_SAMPLES: Final = 3  # a car's flags trail the true state by 0..n samples (assumed, 0-3)
SHIFT_AT_STOP_HABIT: Final = (0.3, 1.0)  # share of long stops a driver shifts out of D (assumed)
GPS_RECEIVER_FACTOR: Final = (0.7, 1.5)  # antenna and receiver quality scales multipath error (assumed)
CLOCK_JITTER_SD_MS: Final = (50.0, 300.0)  # device timestamp jitter, 1 sigma (assumed)
CLOCK_DRIFT_PPM: Final = 20.0  # uncompensated RTC crystal, uniform within ±20 ppm (assumed, typical spec)
# Tyres, 12 V and cells as the maintenance detectors read them (issue 18). TPMS sensors are specified to
# ±1.5 psi ≈ ±10 kPa: each wheel's sensor keeps its own offset, 1 sigma 3 kPa (assumed within that spec).
TPMS_OFFSET_SD_KPA: Final = 3.0
# A healthy tyre loses about 1 psi (7 kPa) a month through the rubber (NHTSA, FMVSS 138 final rule, 2005):
# 0.1-0.35 kPa/day per wheel, until the owner tops it up, once a month at a day of their own (assumed).
TYRE_PERMEATION_KPA_PER_DAY: Final = (0.1, 0.35)
TYRE_TOPUP_EVERY_DAYS: Final = 30.0
# Each 12 V battery rests at its own level: 12.55-12.75 V when healthy and full (Battery University
# BU-903: 12.6-12.7 V at full charge; band assumed), against the twin's nominal 12.7 V.
AUX_REST_LEVEL_V: Final = (12.55, 12.75)
# Each pack's healthy max-min cell spread at rest (assumed 5-15 mV, the twin's nominal 10 mV in the middle).
CELL_SPREAD_MV: Final = (5.0, 15.0)


@dataclass(frozen=True, slots=True)
class SignalProfile:
    """What one car model's telematics sends, as the twin assumes it (no public signal lists exist)."""

    gear: bool  # sends the selected gear
    stop_gear: str  # the gear a driver shifts to at a long stop: "D" (stays), "N" or "P"
    ignition: bool  # sends an ignition / ready flag
    pack_electrics: bool  # sends pack current and voltage, cell voltages and the energy counters
    soc_step_pct: float  # the BMS SoC's resolution as sent
    counter_step_kwh: float  # the energy counters' resolution
    counter_wrap_kwh: float  # the counters roll over to 0 here (inf: never in a car's life)


# All assumed, per catalogue model; the Mini EV 13.8 kWh is issue 11's real small-EV log (1 Hz speed, GPS,
# SoC to 0.01 %, gear N/D/R, no ignition flag, no pack current or voltage).
SIGNAL_PROFILES: Final[dict[str, SignalProfile]] = {
    "wuling-hongguang-mini-ev-gen1-14kwh": SignalProfile(True, "N", False, False, 0.01, 0.001, np.inf),
    # the older, smaller pack's T-box: whole-percent SoC, otherwise the same platform
    "wuling-hongguang-mini-ev-gen1-9kwh": SignalProfile(True, "N", False, False, 1.0, 0.001, np.inf),
    # gear P at long lights; counters of 10 Wh in 16 bits: they wrap at 65,536 x 0.01 kWh
    "chery-qq-ice-cream-14kwh": SignalProfile(True, "P", True, True, 0.5, 0.01, 655.36),
    # OVMS-style CAN access; drivers keep D at stops; counters integrated by the module in Wh
    "dacia-spring-65-2024": SignalProfile(True, "D", True, True, 0.5, 0.001, np.inf),
    # 48 V quadricycle: no gear signal (push-button D/N/R), no pack electrics on its diagnostic bus
    "citroen-ami": SignalProfile(False, "D", True, False, 1.0, 0.001, np.inf),
}


@dataclass
class CarSensors:
    """Each car's sensor errors and signal profile, index = vehicle (truth: never sent)."""

    realistic: bool
    current_gain: F64  # sensed / true current, 1 + gain error
    current_offset_a: F64  # zero offset at OFFSET_REFERENCE_C
    offset_a_per_k: F64  # offset drift with pack temperature
    voltage_gain: F64
    bms_capacity_belief: F64  # capacity the BMS counts against / the new pack's usable capacity
    cell_voltage_bias_mv: F64
    counter_used0_kwh: F64  # the counters' lifetime readings when the run starts
    counter_recd0_kwh: F64
    counter_resets_per_year: F64
    flag_lag_max: I64
    shift_habit: F64
    gps_factor: F64
    clock_jitter_sd_ms: F64
    clock_drift_ppm: F64
    sends_gear: Bools
    stop_gear: npt.NDArray[np.str_]
    sends_ignition: Bools
    sends_pack: Bools
    soc_step_pct: F64
    counter_step_kwh: F64
    counter_wrap_kwh: F64
    tpms_offset_kpa: F64  # shape (n, 4)
    tyre_permeation_kpa_per_day: F64  # shape (n, 4)
    tyre_topup_day: F64  # the day (0 to TYRE_TOPUP_EVERY_DAYS) the owner first tops the tyres up
    aux_rest_v: F64  # this 12 V battery's rest level, healthy and full
    cell_spread_mv: F64  # this pack's healthy max-min cell spread at rest

    @classmethod
    def draw(cls, fleet: list[TwinVehicle], sensor_model: str, rng: np.random.Generator) -> CarSensors:
        """The fleet's sensors: the old exact ones for ``"ideal"``, drawn per car for ``"realistic"``."""
        n = len(fleet)
        offset = np.array([v.current_offset_a for v in fleet], dtype=np.float64)
        step = np.array([v.model.soc_step_pct for v in fleet], dtype=np.float64)
        if sensor_model != "realistic":
            ones, zeros, yes = np.ones(n), np.zeros(n), np.ones(n, dtype=bool)
            return cls(
                realistic=False, current_gain=ones, current_offset_a=offset, offset_a_per_k=zeros,
                voltage_gain=ones, bms_capacity_belief=ones, cell_voltage_bias_mv=zeros,
                counter_used0_kwh=zeros, counter_recd0_kwh=zeros, counter_resets_per_year=zeros,
                flag_lag_max=np.zeros(n, dtype=np.int64), shift_habit=zeros, gps_factor=zeros,
                clock_jitter_sd_ms=zeros, clock_drift_ppm=zeros, sends_gear=yes, stop_gear=np.full(n, "D"),
                sends_ignition=yes, sends_pack=yes, soc_step_pct=step, counter_step_kwh=np.full(n, 0.001),
                counter_wrap_kwh=np.full(n, np.inf), tpms_offset_kpa=np.zeros((n, 4)),
                tyre_permeation_kpa_per_day=np.zeros((n, 4)), tyre_topup_day=zeros,
                aux_rest_v=np.full(n, np.nan), cell_spread_mv=np.full(n, np.nan),  # unused: nominal levels
            )  # fmt: skip
        prof = [SIGNAL_PROFILES[v.model.model_id] for v in fleet]
        pack = np.array([p.pack_electrics for p in prof])
        sign = rng.choice([-1.0, 1.0], (3, n))
        odo = np.array([v.odometer_km for v in fleet])
        used0 = odo * rng.uniform(*LIFETIME_KWH_PER_KM, n)
        return cls(
            realistic=True,
            current_gain=1.0 + sign[0] * rng.uniform(*CURRENT_GAIN_ERROR_PCT, n) / 100.0,
            current_offset_a=offset,
            offset_a_per_k=sign[1] * rng.uniform(*CURRENT_OFFSET_TEMPCO_A_PER_K, n),
            voltage_gain=1.0 + rng.uniform(-VOLTAGE_GAIN_ERROR_PCT, VOLTAGE_GAIN_ERROR_PCT, n) / 100.0,
            bms_capacity_belief=rng.uniform(*BMS_CAPACITY_BELIEF, n),
            cell_voltage_bias_mv=rng.uniform(-CELL_VOLTAGE_BIAS_MV, CELL_VOLTAGE_BIAS_MV, n),
            counter_used0_kwh=used0,
            counter_recd0_kwh=used0 * rng.uniform(*LIFETIME_REGEN_SHARE, n),
            counter_resets_per_year=np.where(pack, COUNTER_RESETS_PER_YEAR, 0.0),  # no counters: no resets
            flag_lag_max=rng.integers(0, FLAG_LAG_MAX_SAMPLES + 1, n),
            shift_habit=rng.uniform(*SHIFT_AT_STOP_HABIT, n),
            gps_factor=rng.uniform(*GPS_RECEIVER_FACTOR, n),
            clock_jitter_sd_ms=rng.uniform(*CLOCK_JITTER_SD_MS, n),
            clock_drift_ppm=sign[2] * rng.uniform(0.0, CLOCK_DRIFT_PPM, n),
            sends_gear=np.array([p.gear for p in prof]),
            stop_gear=np.array([p.stop_gear for p in prof]),
            sends_ignition=np.array([p.ignition for p in prof]),
            sends_pack=pack,
            soc_step_pct=np.array([p.soc_step_pct for p in prof]),
            counter_step_kwh=np.array([p.counter_step_kwh for p in prof]),
            counter_wrap_kwh=np.array([p.counter_wrap_kwh for p in prof]),
            # drawn last, so that adding them left every earlier draw (and earlier runs' sensors) unchanged
            tpms_offset_kpa=rng.normal(0.0, TPMS_OFFSET_SD_KPA, (n, 4)),
            tyre_permeation_kpa_per_day=rng.uniform(*TYRE_PERMEATION_KPA_PER_DAY, (n, 4)),
            tyre_topup_day=rng.uniform(0.0, TYRE_TOPUP_EVERY_DAYS, n),
            aux_rest_v=rng.uniform(*AUX_REST_LEVEL_V, n),
            cell_spread_mv=rng.uniform(*CELL_SPREAD_MV, n),
        )

    def sensed_current_a(self, true_a: F64, vehicle: I64, pack_temp_c: F64) -> F64:
        """The current the car's sensor reads (before noise): gain, offset and its temperature drift."""
        drift = self.offset_a_per_k[vehicle] * (pack_temp_c - OFFSET_REFERENCE_C)
        return true_a * self.current_gain[vehicle] + self.current_offset_a[vehicle] + drift
