"""Maintenance before breakdown: detectors over a car's telemetry, rule thresholds and a learned model.

``detect_all(series)`` runs every per-car detector (tyres, 12 V battery, cells, codes, motor heat, brakes,
GPS, TPMS sensors); capacity outliers need the fleet (:func:`cells.capacity_outliers`). Pure: arrays in,
:class:`DetectorResult` out. docs/maintenance.md describes each rule and its sources.
"""

from __future__ import annotations

from collections.abc import Mapping

from microfleet.intelligence.maintenance import aux_battery, cells, diagnostics, tyres
from microfleet.intelligence.maintenance.findings import DetectorResult, Verdict, threshold_factor
from microfleet.intelligence.maintenance.series import CarSeries

DETECTORS = ("tyre", "12v_battery", "cell_balance", "capacity", "dtc", "motor_thermal", "brakes", "gps",
             "tpms_sensor")  # fmt: skip


def detect_all(
    series: CarSeries, false_alarms: Mapping[str, int] | None = None, nominal_tyre_kpa: float | None = None
) -> list[DetectorResult]:
    """Every per-car detector's answer now; ``false_alarms`` (detector → marks) raise its thresholds."""
    if series.ts_ms.size == 0:
        return [DetectorResult(d, Verdict.LEARNING, "learning: no telemetry yet", learning_days_needed=None)
                for d in ("tyre", "12v_battery", "cell_balance")]  # fmt: skip
    marks = false_alarms or {}
    f = {d: threshold_factor(marks.get(d, 0)) for d in DETECTORS}
    return [
        *tyres.detect(series, nominal_tyre_kpa, f["tyre"]),
        *aux_battery.detect(series, f["12v_battery"]),
        *cells.detect(series, f["cell_balance"]),
        *diagnostics.codes(series),
        *diagnostics.thermal(series),
        *diagnostics.brakes(series),
        *diagnostics.gps(series),
        *diagnostics.tpms_sensors(series),
    ]


__all__ = ["DETECTORS", "CarSeries", "DetectorResult", "Verdict", "detect_all", "threshold_factor"]
