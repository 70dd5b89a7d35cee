"""A drive's energy starts at its departure, not at the first record that already shows it moving."""

from __future__ import annotations

import numpy as np
import pytest

from microfleet.domain.derivation import derive_history
from microfleet.domain.vehicle_state import GEAR_CODES, TelemetryColumns

PARKED_KW = 0.25  # awake, parked: 12 V converter and modem
DRIVE_KW = 4.0
DEPART_S = 600
DRIVE_S = 300


def _car(flag_lag_records: int) -> tuple[TelemetryColumns, float]:
    """Parked awake (a record a minute), a record at the departure instant (still standing, already
    drawing drive power), 5 min at 30 km/h (a record every 5 s, flags ``flag_lag_records`` late), parked.
    Counters integrate the pack power exactly; returns the columns and the drive's true energy (kWh)."""
    ts = [*range(0, DEPART_S, 60), DEPART_S, *range(DEPART_S + 5, DEPART_S + DRIVE_S + 1, 5)]
    end_s = DEPART_S + DRIVE_S
    ts += list(range(end_s + 60, end_s + 900, 60))
    t = np.array(ts, dtype=np.float64)
    driving = (t >= DEPART_S) & (t <= end_s)
    moving = (t > DEPART_S) & (t < end_s)
    kw = np.where(driving, DRIVE_KW, PARKED_KW)
    # counter: parked power until the departure, drive power until the end, parked after
    used = (
        np.minimum(t, DEPART_S) * PARKED_KW
        + np.clip(t - DEPART_S, 0, DRIVE_S) * DRIVE_KW
        + np.maximum(t - end_s, 0) * PARKED_KW
    ) / 3600
    flagged = np.zeros(t.size, dtype=bool)
    first = int(np.flatnonzero(moving)[0]) + flag_lag_records
    flagged[first : int(np.flatnonzero(moving)[-1]) + 1] = True
    arrays = {
        "ts_ms": (t * 1000).astype(np.int64),
        "speed_kmh": np.where(moving, 30.0, 0.0),
        "gear_code": np.where(flagged, GEAR_CODES["D"], GEAR_CODES["P"]),
        "ignition_on": flagged.astype(np.float64),
        "pack_voltage_v": np.full(t.size, 100.0),
        "pack_current_a": kw * 10.0,
        "energy_used_kwh": used,
        "energy_recovered_kwh": np.zeros(t.size),
    }
    return TelemetryColumns.from_arrays("car-1", arrays), DRIVE_KW * DRIVE_S / 3600


@pytest.mark.parametrize("flag_lag_records", [0, 2])
def test_drive_energy_counts_the_seconds_before_its_first_moving_record(flag_lag_records: int) -> None:
    cols, truth_kwh = _car(flag_lag_records)
    (drive,) = derive_history(cols).drives
    assert drive.energy_source == "counters"
    assert drive.energy_used_kwh is not None
    # from the first moving record it would miss 5 s x 4 kW = 5.6 Wh (1.7 %); from the parked record
    # a minute earlier it would add 60 s x 0.25 kW = 4.2 Wh
    assert drive.energy_used_kwh == pytest.approx(truth_kwh, abs=0.5e-3)


def test_a_parked_record_a_minute_before_is_not_the_departure() -> None:
    cols, truth_kwh = _car(0)
    keep = np.flatnonzero(cols.ts_ms != DEPART_S * 1000)  # no record at the departure instant
    names = ("ts_ms", "speed_kmh", "gear_code", "ignition_on", "pack_voltage_v", "pack_current_a")
    names += ("energy_used_kwh", "energy_recovered_kwh")
    sparse = TelemetryColumns.from_arrays("car-1", {name: getattr(cols, name)[keep] for name in names})
    (drive,) = derive_history(sparse).drives
    assert drive.energy_used_kwh is not None
    # the window starts at the first moving record: 5.6 Wh short, never the parked minute's 4.2 Wh more
    assert drive.energy_used_kwh == pytest.approx(truth_kwh - 5 * DRIVE_KW / 3600, abs=0.5e-3)
