"""Weather and traffic over time: ambient temperature by day and hour, travel-time factor by hour."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from microfleet.sim.reference import SHANGHAI_CONGESTION_EXTRA_TIME, MobilityFigures, MonthlyClimate

F64 = npt.NDArray[np.float64]

# Day-to-day weather anomaly: AR(1) with 0.7 lag-1 correlation and 2.5 °C spread (assumed; typical of
# mid-latitude daily mean temperature anomalies).
ANOMALY_SD_C: Final = 2.5
ANOMALY_LAG1: Final = 0.7
WARMEST_HOUR: Final = 15.0  # diurnal maximum mid-afternoon, minimum near dawn (textbook diurnal cycle)


@dataclass(frozen=True, slots=True)
class Weather:
    """Hourly ambient temperature for every simulated hour (index = hour since the start), °C."""

    hourly_c: F64

    def at(self, t_s: F64) -> F64:
        """Ambient temperature at seconds since the start, linearly interpolated between hours."""
        hours = np.arange(self.hourly_c.size, dtype=np.float64) * 3600.0
        return np.asarray(np.interp(t_s, hours, self.hourly_c), dtype=np.float64)


def make_weather(
    climate: MonthlyClimate, first_day_of_year: int, days: int, offset_c: float, rng: np.random.Generator
) -> Weather:
    """Hourly temperatures from monthly means of daily max/min, a diurnal cosine and daily anomalies."""
    mid_month = np.array([15.5, 45, 74.5, 105, 135.5, 166, 196.5, 227.5, 258, 288.5, 319, 349.5])
    doy = (first_day_of_year + np.arange(days + 1)) % 365
    wrap_x = np.concatenate([mid_month - 365, mid_month, mid_month + 365])
    tmax = np.interp(doy, wrap_x, np.tile(climate.tmax_c, 3))
    tmin = np.interp(doy, wrap_x, np.tile(climate.tmin_c, 3))
    anomaly = np.zeros(days + 1)
    shocks = rng.normal(0.0, ANOMALY_SD_C * np.sqrt(1 - ANOMALY_LAG1**2), days + 1)
    anomaly[0] = rng.normal(0.0, ANOMALY_SD_C)
    for i in range(1, days + 1):
        anomaly[i] = ANOMALY_LAG1 * anomaly[i - 1] + shocks[i]
    hour = np.arange((days + 1) * 24)
    day = hour // 24
    swing = np.cos(2 * np.pi * ((hour % 24) - WARMEST_HOUR) / 24.0)
    hourly = (tmax[day] + tmin[day]) / 2 + (tmax[day] - tmin[day]) / 2 * swing + anomaly[day] + offset_c
    return Weather(hourly_c=np.asarray(hourly, dtype=np.float64))


def congestion_factor(mobility: MobilityFigures, weekend: bool) -> F64:
    """Travel-time multiplier by hour of day (24 values, ≥ 1).

    The extra time over free flow is proportional to the hourly share of trip starts (NHTS 2001
    profile) and scaled so that its 24-hour mean is Shanghai's TomTom congestion level (41%).
    Peak hours then run at about 1.8× free-flow time, e.g. a 50 km/h main road at about 27 km/h,
    in line with Hangzhou's 21 km/h peak average and Shanghai's slowest sections (~20 km/h).
    """
    share = mobility.departure_hour_share[1 if weekend else 0]
    relative = share / share.mean()
    return np.asarray(1.0 + SHANGHAI_CONGESTION_EXTRA_TIME * relative, dtype=np.float64)
