"""What the car's sensors report: true samples plus noise, quantisation, offsets and injected faults.

This is the ideal sensor model, and the realistic one's first step (:mod:`.sensor_errors` does the rest).
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from microfleet.sim.engine import Twin
from microfleet.sim.faults import SampleColumns, apply_faults
from microfleet.sim.fleet import NOMINAL_TYRE_KPA
from microfleet.sim.samples import TrueSamples
from microfleet.sim.timeline import DRIVE

F64 = npt.NDArray[np.float64]

GPS_NOISE_M: Final = 3.0  # consumer GNSS horizontal error, 1 sigma, open sky (assumed, typical u-blox)
METRES_PER_DEG_LAT: Final = 111_195.0
TYRE_KPA_PER_K: Final = NOMINAL_TYRE_KPA / 293.15  # Gay-Lussac: p ∝ T at constant volume
AC_MAINS_V: Final = 220.0  # China's single-phase mains (GB/T 156)
AUX_REST_V: Final = 12.7  # healthy 12 V lead-acid at rest (assumed, fully charged)
AUX_CHARGING_V: Final = 14.2  # DC-DC converter output while the car is awake (assumed, typical)
CELL_SPREAD_V: Final = 0.010  # healthy pack's max-min cell spread (assumed, ~10 mV)


def _q(x: F64, step: float) -> F64:
    return np.asarray(np.round(np.round(x / step) * step, 6), dtype=np.float64)


def sense(
    twin: Twin, s: TrueSamples, rng: np.random.Generator, energy_kwh: tuple[F64, F64]
) -> dict[str, object]:
    """Return protocol-v1 telemetry columns (NaN = absent) for the samples, faults applied.

    ``energy_kwh`` holds the BMS's (used, recovered) counter readings at the samples (:mod:`.bms`).
    """
    n = s.t_s.size
    veh = s.vehicle
    cars = twin.sensors  # gain, offset and its drift: all but the offset are exact in the ideal model
    sensed_a = cars.sensed_current_a(s.pack_current_a, veh, s.pack_temp_c)
    lat0 = np.radians(s.lat_deg)
    lat = s.lat_deg + rng.normal(0.0, GPS_NOISE_M, n) / METRES_PER_DEG_LAT
    lon = s.lon_deg + rng.normal(0.0, GPS_NOISE_M, n) / (METRES_PER_DEG_LAT * np.cos(lat0))
    soc_step = np.array([v.model.soc_step_pct for v in twin.fleet])[veh]
    driving = s.kind == DRIVE
    tyre = (NOMINAL_TYRE_KPA + TYRE_KPA_PER_K * (s.ambient_c + np.where(driving, 8.0, 0.0) - 20.0))[
        :, None
    ] + rng.normal(0.0, 1.0, (n, 4))
    cols = SampleColumns(
        vehicle=veh, t_s=s.t_s, driving=driving, parked=~s.awake, speed_kmh=s.speed_kmh.copy(), lat_deg=lat,
        lon_deg=lon, gps_hdop=np.clip(rng.gamma(4.0, 0.25, n), 0.5, None), tyre_kpa=tyre,
        cell_min_v=s.cell_v - CELL_SPREAD_V / 2,
        aux_v=np.where(s.awake, AUX_CHARGING_V, AUX_REST_V) + rng.normal(0, 0.02, n),
        dtc={},
    )  # fmt: skip
    apply_faults(twin.faults, cols, rng)
    connected = s.plugged
    return {
        "vehicle": veh,
        "t_s": s.t_s,
        "lat_deg": np.round(cols.lat_deg, 6),
        "lon_deg": np.round(cols.lon_deg, 6),
        "heading_deg": _q(s.heading_deg, 1.0) % 360.0,
        "gps_hdop": _q(cols.gps_hdop, 0.1),
        "speed_kmh": _q(np.clip(cols.speed_kmh + rng.normal(0, 0.3, n) * driving, 0, None), 0.1),
        "odometer_km": _q(s.odometer_km, 0.1),
        "gear": np.where(driving, "D", "P"),
        "ignition_on": driving,
        # The BMS reports SoC in whole steps, rounded down.
        "soc_pct": np.round(np.clip(np.floor(s.soc_pct / soc_step) * soc_step, 0.0, 100.0), 6),
        "pack_voltage_v": _q(s.pack_voltage_v * cars.voltage_gain[veh] + rng.normal(0, 0.05, n), 0.1),
        "pack_current_a": _q(sensed_a + rng.normal(0, 0.1, n), 0.1),
        "pack_temp_c": _q(s.pack_temp_c, 1.0),
        "cell_voltage_min_v": _q(cols.cell_min_v, 0.001),
        "cell_voltage_max_v": _q(s.cell_v + CELL_SPREAD_V / 2, 0.001),
        "charger_connected": connected,
        "charger_power_kw": np.where(connected, _q(s.charger_kw / 0.9, 0.01), np.nan),
        "charger_ac_voltage_v": np.where(
            connected & ~s.dc & (s.charger_kw > 0), _q(AC_MAINS_V + rng.normal(0, 2, n), 1.0), np.nan
        ),
        "locked": ~driving,
        "doors_open": np.zeros(n, dtype=bool),
        "cabin_temp_c": _q(s.cabin_c, 0.5),
        "ambient_temp_c": _q(s.ambient_c, 0.5),
        "hvac_on": s.hvac_kw > 0,
        "hvac_power_kw": _q(s.hvac_kw, 0.01),
        "tyre_pressure_kpa": _q(np.clip(cols.tyre_kpa, 0, None), 1.0),
        "aux_battery_v": _q(cols.aux_v, 0.01),
        "dtc": cols.dtc,
        "energy_used_kwh": energy_kwh[0],
        "energy_recovered_kwh": energy_kwh[1],
    }  # fmt: skip
