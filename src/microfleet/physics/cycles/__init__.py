"""Standard drive cycles as data: 1 Hz speed traces with their sources (see ``README.md`` here)."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np
from numpy.typing import NDArray

from microfleet.errors import NotFoundError, PhysicsInputError

FloatArray = NDArray[np.float64]


@dataclass(frozen=True)
class CycleReference:
    """Published figures a trace is checked against: duration (s), distance (km), top speed (km/h)."""

    duration_s: float
    distance_km: float
    max_speed_kmh: float
    source: str


@dataclass(frozen=True)
class DriveCycle:
    """A speed trace sampled at 1 Hz (``speed_kmh[k]`` at ``t = k`` s) with its source."""

    name: str
    speed_kmh: FloatArray
    source: str
    reference: CycleReference | None = None

    def __post_init__(self) -> None:
        """Refuse traces that are empty, non-finite, negative or too short to be a cycle."""
        validate_speed_trace(self.speed_kmh, self.name)

    @property
    def duration_s(self) -> float:
        """Duration (s): samples are at t = 0 … N−1."""
        return float(len(self.speed_kmh) - 1)

    @property
    def distance_km(self) -> float:
        """Distance (km) by the trapezoid rule, as the WLTP checksums count it (1 Hz sum)."""
        v = self.speed_kmh
        return float(np.sum(0.5 * (v[1:] + v[:-1])) / 3600.0)

    @property
    def speed_mps(self) -> FloatArray:
        """The trace in m/s."""
        return np.asarray(self.speed_kmh / 3.6)


def validate_speed_trace(speed_kmh: FloatArray, name: str = "cycle") -> None:
    """Raise :class:`PhysicsInputError` for a trace with gaps (NaN), negative speeds or < 2 samples."""
    v = np.asarray(speed_kmh)
    if v.ndim != 1 or v.shape[0] < 2:
        raise PhysicsInputError(
            f"{name}: a drive cycle needs a 1-D trace of at least 2 samples, got shape {v.shape}"
        )
    gaps = np.flatnonzero(~np.isfinite(v))
    if gaps.size:
        raise PhysicsInputError(
            f"{name}: trace has gaps (missing or non-finite speed) at t = {gaps[:5].tolist()} s"
        )
    negative = np.flatnonzero(v < 0.0)
    if negative.size:
        raise PhysicsInputError(f"{name}: trace has negative speeds at t = {negative[:5].tolist()} s")


_JRC = "JRC wltp 0.1.2a0 (PyPI, EUPL 1.1+), wltp/cycles/{file}, data from UN GTR No. 15 Annex 1"
_FASTSIM_WMTC = (
    "NREL FASTSim (Apache-2.0), branch fastsim-2 @ bd9111bb, python/fastsim/resources/cycles/{file}, "
    "m/s x 3.6; "
    "agrees with carculator-utils 1.3.5 (BSD-3-Clause) within 0.1 km/h"
)
_WMTC_REF = "UN GTR No. 2 WMTC characteristics as usually quoted (cycle README: table not at hand)"
_SOURCES: dict[str, tuple[str, CycleReference]] = {
    "wltc_class1": (
        _JRC.format(file="class1.py") + " (Low1 + Medium1 + Low1 repeated, per the GTR)",
        CycleReference(1611.0, 11.43, 64.4, "GTR 15 Annex 1; JRC wltp class1 (checksum 41,139.6 km/h·s)"),
    ),
    "wltc_class2": (
        _JRC.format(file="class2.py"),
        CycleReference(1800.0, 22.65, 123.1, "GTR 15 Annex 1; JRC wltp class2 (checksum 81,536.9 km/h·s)"),
    ),
    "wltc_class3b": (
        _JRC.format(file="class3.py") + " (class_data_b)",
        CycleReference(1800.0, 23.27, 131.3, "GTR 15 Annex 1; Mercedes-Benz WLTP page (23.27 km)"),
    ),
    "nedc": (
        _JRC.format(file="nedc.py") + "; UNECE R83/R101 (ECE-15 x4 + EUDC)",
        CycleReference(1180.0, 11.0, 120.0, "Mercedes-Benz and Volvo WLTP-vs-NEDC pages (catalogue README)"),
    ),
    "cltc_p": (
        "GB/T 38146.1-2019 CLTC-P, github.com/sicilyala/project-data @ 419e10d7, "
        "standard_driving_cycles/mat-data/CLTC_P.mat (m/s x 3.6; the standard's own table, "
        "no licence stated)",
        CycleReference(
            1800.0, 14.48, 114.0, "dieselnet.com/standards/cycles/cltc.php; evkx.github.io CLTC guide"
        ),
    ),
    "wmtc_part1": (
        _FASTSIM_WMTC.format(file="wmtc_part1.csv"),
        CycleReference(600.0, 4.066, 60.0, _WMTC_REF),
    ),
    "wmtc_part2": (
        _FASTSIM_WMTC.format(file="wmtc_part2.csv"),
        CycleReference(600.0, 9.112, 94.9, _WMTC_REF),
    ),
    "wmtc_part3": (
        _FASTSIM_WMTC.format(file="wmtc_part3.csv"),
        CycleReference(600.0, 15.737, 125.3, _WMTC_REF),
    ),
    "wmtc_part1_reduced_speed": (
        "carculator-utils 1.3.5 (PyPI, BSD-3-Clause), carculator_utils/data/driving_cycles/two-wheeler.csv, "
        "column 'Moped <4kW', rows 1-600 (WMTC part 1 reduced speed, classes 1 and 2-1; not checked against "
        "the GTR No. 2 table)",
        CycleReference(600.0, 3.944, 50.0, "cycle README (source file's own figures; GTR table not at hand)"),
    ),
}
CYCLE_NAMES: tuple[str, ...] = tuple(_SOURCES)


def _parse(name: str, text: str) -> FloatArray:
    """Speeds (km/h) of a cycle file: one column ``speed_kmh`` (t = 0, 1, ... s) or ``time_s,speed_kmh``.

    A time column must step by exactly 1 s; the trace starts at its first stamp (the reduced-speed WMTC
    part 1 is stamped 1-600 s as in its source and the GTR's tables).
    """
    lines = text.strip().splitlines()
    header = lines[0].strip()
    if header == "speed_kmh":
        return np.array([float(x) if x.strip() else np.nan for x in lines[1:]], dtype=np.float64)
    if header != "time_s,speed_kmh":
        raise PhysicsInputError(f"{name}.csv must start with the header 'speed_kmh' or 'time_s,speed_kmh'")
    rows = [ln.split(",") for ln in lines[1:]]
    if any(len(r) != 2 for r in rows):
        raise PhysicsInputError(f"{name}.csv: every row needs a time and a speed")
    time_s = np.array([float(t) for t, _ in rows])
    steps = np.diff(time_s)
    if steps.size and not np.all(steps == 1.0):
        bad = int(np.flatnonzero(steps != 1.0)[0])
        raise PhysicsInputError(
            f"{name}.csv: time must step by 1 s; it jumps from {time_s[bad]} to {time_s[bad + 1]} s"
        )
    return np.array([float(v) if v.strip() else np.nan for _, v in rows], dtype=np.float64)


def load_cycle(name: str) -> DriveCycle:
    """Load a standard cycle by name (one of :data:`CYCLE_NAMES`: WLTC classes, NEDC, CLTC-P, WMTC parts)."""
    if name not in _SOURCES:
        raise NotFoundError(f"unknown drive cycle {name!r}; known cycles: {', '.join(CYCLE_NAMES)}")
    text = resources.files(__package__).joinpath(f"{name}.csv").read_text(encoding="utf-8")
    speed = _parse(name, text)
    source, reference = _SOURCES[name]
    return DriveCycle(name=name, speed_kmh=speed, source=source, reference=reference)


def wltc_class_for(power_to_mass_w_per_kg: float, top_speed_kmh: float = 200.0) -> str:
    """The WLTC class a car is tested on from its power-to-mass ratio (W/kg; GTR 15: ≤22, ≤34, >34).

    Class 3b applies above 34 W/kg and v_max ≥ 120 km/h; below 120 km/h (class 3a) the 3b trace is used as
    the nearest stored one.
    """
    if power_to_mass_w_per_kg <= 22.0:
        return "wltc_class1"
    if power_to_mass_w_per_kg <= 34.0:
        return "wltc_class2"
    return "wltc_class3b"
