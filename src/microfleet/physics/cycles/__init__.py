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
        "GB/T 38146.1-2019 CLTC-P as transcribed in a public Python script (stored copy in the reference "
        "library, id 59800743356); see README.md for the checks against the standard's figures",
        CycleReference(
            1800.0, 14.48, 114.0, "dieselnet.com/standards/cycles/cltc.php; evkx.github.io CLTC guide"
        ),
    ),
}
CYCLE_NAMES: tuple[str, ...] = tuple(_SOURCES)


def load_cycle(name: str) -> DriveCycle:
    """Load a standard cycle: ``wltc_class1``, ``wltc_class2``, ``wltc_class3b``, ``nedc`` or ``cltc_p``."""
    if name not in _SOURCES:
        raise NotFoundError(f"unknown drive cycle {name!r}; known cycles: {', '.join(CYCLE_NAMES)}")
    text = resources.files(__package__).joinpath(f"{name}.csv").read_text(encoding="utf-8")
    lines = text.strip().splitlines()
    if lines[0].strip() != "speed_kmh":
        raise PhysicsInputError(f"{name}.csv must start with the header 'speed_kmh'")
    speed = np.array([float(x) if x.strip() else np.nan for x in lines[1:]], dtype=np.float64)
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
