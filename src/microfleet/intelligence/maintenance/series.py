"""A car's telemetry as columns for the detectors, time buckets, and a robust (Theil-Sen) slope."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Final

import numpy as np
import numpy.typing as npt

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

DAY_MS: Final = 86_400_000
# Detectors judge in 6 h buckets: short enough to see a 12 V battery lose 0.12 V/day within a day, long
# enough that a bucket of a parked car (the twin and OVMS v3 send every 10 min asleep) holds ~36 samples.
BUCKET_MS: Final = 6 * 3_600_000


def _nan(n: int) -> F64:
    return np.full(n, np.nan)


@dataclass(frozen=True)
class CarSeries:
    """One car's samples in time order; NaN where a sample lacks the signal (protocol-v1 names and units)."""

    vehicle_id: str
    ts_ms: I64
    speed_kmh: F64
    ignition_on: F64  # 1, 0 or NaN
    ambient_temp_c: F64
    aux_battery_v: F64
    cell_voltage_min_v: F64
    cell_voltage_max_v: F64
    soc_pct: F64
    pack_current_a: F64
    bms_soh_pct: F64
    energy_recovered_kwh: F64
    gps_hdop: F64
    lat_deg: F64
    lon_deg: F64
    tyre_pressure_kpa: F64  # shape (n, 4): fl, fr, rl, rr
    dtc_codes: dict[int, tuple[str, ...]] = field(default_factory=dict)  # sample index → codes

    @classmethod
    def empty(cls, vehicle_id: str, ts_ms: I64) -> CarSeries:
        """A series with times only, every signal absent (tests and adapters fill what the car sends)."""
        n = ts_ms.size
        return cls(
            vehicle_id, ts_ms, _nan(n), _nan(n), _nan(n), _nan(n), _nan(n), _nan(n), _nan(n), _nan(n),
            _nan(n), _nan(n), _nan(n), _nan(n), _nan(n), np.full((n, 4), np.nan),
        )  # fmt: skip

    @classmethod
    def from_columns(
        cls, vehicle_id: str, ts_ms: I64, columns: Mapping[str, F64], tyres: F64,
        codes: dict[int, tuple[str, ...]],
    ) -> CarSeries:  # fmt: skip
        """A series from signal columns by protocol-v1 name (a signal not in ``columns`` is absent)."""
        n = ts_ms.size
        signals = {
            name: np.asarray(columns[name], dtype=np.float64) if name in columns else _nan(n)
            for name in SERIES_SIGNALS
        }
        return cls(vehicle_id=vehicle_id, ts_ms=ts_ms, tyre_pressure_kpa=tyres, dtc_codes=codes, **signals)

    @property
    def days(self) -> float:
        """How many days the series spans."""
        return 0.0 if self.ts_ms.size < 2 else float(self.ts_ms[-1] - self.ts_ms[0]) / DAY_MS

    def sends(self, signal: F64) -> bool:
        """Whether the car sends this signal at all (a finite value in any sample)."""
        return bool(np.isfinite(signal).any())


# The one-number signals of a series, by protocol-v1 name (what ``CarSeries.from_columns`` reads).
SERIES_SIGNALS: Final = tuple(
    f.name
    for f in fields(CarSeries)
    if f.name not in ("vehicle_id", "ts_ms", "tyre_pressure_kpa", "dtc_codes")
)


def theil_sen(t: F64, y: F64) -> float:
    """Theil-Sen slope (median of pairwise slopes; Sen 1968, JASA 63:1379): robust to 29 % outliers."""
    ok = np.isfinite(t) & np.isfinite(y)
    t, y = t[ok], y[ok]
    if t.size < 2:
        return float("nan")
    i, j = np.triu_indices(t.size, 1)
    dt = t[j] - t[i]
    keep = dt != 0
    return float(np.median((y[j] - y[i])[keep] / dt[keep])) if keep.any() else float("nan")


def rolling_theil_sen(y: F64, window: int) -> F64:
    """Theil-Sen slope per step over the last ``window`` equally spaced values (NaN-aware; NaN before)."""
    out = _nan(y.size)
    if y.size < window or window < 2:
        return out
    win = np.lib.stride_tricks.sliding_window_view(y, window)
    i, j = np.triu_indices(window, 1)
    slopes = (win[:, j] - win[:, i]) / (j - i)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        enough = np.isfinite(slopes).sum(axis=1) >= window  # at least as many pairs as points
        med = np.nanmedian(np.where(np.isfinite(slopes), slopes, np.nan), axis=1) if slopes.size else out
    out[window - 1 :] = np.where(enough, med, np.nan)
    return out


def bucket_medians(
    ts_ms: I64, values: F64, start_ms: int, n_buckets: int, mask: npt.NDArray[np.bool_], min_count: int = 1
) -> F64:
    """Median of ``values`` (where ``mask`` and finite) per :data:`BUCKET_MS` bucket from ``start_ms``.

    A bucket with fewer than ``min_count`` such values has no median (NaN).
    """
    out = _nan(n_buckets)
    keep = mask & np.isfinite(values)
    if not keep.any():
        return out
    b = ((ts_ms[keep] - start_ms) // BUCKET_MS).astype(np.int64)
    v = values[keep]
    ok = (b >= 0) & (b < n_buckets)
    b, v = b[ok], v[ok]
    order = np.lexsort((v, b))
    b, v = b[order], v[order]
    starts = np.flatnonzero(np.diff(b, prepend=-1))
    ends = np.append(starts[1:], b.size)
    lo, hi = (starts + ends - 1) // 2, (starts + ends) // 2
    enough = ends - starts >= min_count
    out[b[starts[enough]]] = ((v[lo] + v[hi]) / 2.0)[enough]
    return out


def n_buckets(series: CarSeries) -> tuple[int, int]:
    """The first bucket's start (ms, aligned to UTC midnight) and how many buckets cover the series."""
    start = int(series.ts_ms[0] // DAY_MS * DAY_MS)
    return start, int((series.ts_ms[-1] - start) // BUCKET_MS) + 1


def trailing_median(values: F64, lag: int, span: int, min_count: int) -> F64:
    """Per row k: NaN-aware median of rows ``k-lag-span+1 … k-lag`` (NaN with under ``min_count``)."""
    two_d = values if values.ndim == 2 else values[:, None]
    n, m = two_d.shape
    padded = np.vstack([np.full((span + lag, m), np.nan), two_d])
    win = np.lib.stride_tricks.sliding_window_view(padded, span, axis=0)[1 : n + 1]  # (n, m, span)
    count = np.isfinite(win).sum(axis=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN windows: NaN, as wanted
        med = np.nanmedian(win, axis=2)
    out = np.where(count >= min_count, med, np.nan)
    return out if values.ndim == 2 else out[:, 0]
