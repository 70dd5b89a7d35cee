"""Cited mobility, traffic and climate figures the twin is calibrated to, read from ``shared/data``.

Every figure here is quoted with its source in ``shared/data/mobility/README.md`` or
``shared/data/climate/README.md``; this module only reads those files and names the numbers.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import numpy.typing as npt

from microfleet.domain.reference_data import reference_data_dir
from microfleet.errors import ConfigurationError

F64 = npt.NDArray[np.float64]

# Cuttone, Lehmann & González, EPJ Data Science 7:2 (2018): 20-25% of transitions go to new places.
CITED_NOVEL_PLACE_SHARE: Final = (0.20, 0.25)
# Song, Koren, Wang & Barabási, Nature Physics 6:818 (2010), exploration-and-preferential-return model:
# P(new place) = rho * S^-gamma with S distinct places visited so far; fitted rho = 0.6, gamma = 0.21.
EPR_GAMMA: Final = 0.21
# Here home and work legs are fixed returns, so only about a third of legs can explore at all; with Song's
# rho = 0.6 the twin's novel share was 15% over 3 days. rho = 0.9 (calibrated, gamma kept) brings a
# two-week run into Cuttone's 20-25%; bench/twin_realism.py prints the result beside the cited range.
EPR_RHO: Final = 0.9
# Baidu "my 2014 commute": China average one-way commute by car 8.11 km (mobility/README §2).
CITED_CAR_COMMUTE_KM: Final = 8.11
# EVCARD Shanghai 2017: each car used on average 7 times a day (China Daily USA 2017-09-01).
CITED_SHARING_BOOKINGS_PER_CAR_DAY: Final = 7.0
# Free-floating car sharing, 12 cities: rental time about 30 minutes (ERTICO / TRIMS study).
CITED_SHARING_RENTAL_MIN: Final = 30.0
# Shanghai 2017: average daily distance 26.6 km per passenger car (Shanghai transport annual report 2017).
CITED_KM_PER_CAR_DAY: Final = 26.6
# Shanghai 2014 transport survey: average trip 6.9 km (all modes); Baidu 2014: car commute 8.11 km.
CITED_TRIP_KM: Final = 6.9
# TomTom Traffic Index 2016: Shanghai congestion level 41% extra travel time over free flow (24/7 mean).
SHANGHAI_CONGESTION_EXTRA_TIME: Final = 0.41


def data_dir(explicit: Path | None = None) -> Path:
    """The shared reference-data folder (explicit, else the default), checked to hold what the twin reads."""
    path = reference_data_dir(explicit)
    if not (path / "mobility").is_dir():
        raise ConfigurationError(f"reference data folder not found or incomplete: {path.resolve()}")
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@dataclass(frozen=True, slots=True)
class MobilityFigures:
    """Distributions the people are drawn from (weekday index 0, weekend index 1)."""

    trips_per_day: F64  # shape (2, 6): P(n trips) for n = 0..5, de_trips_per_day_emobpy.csv
    departure_hour_share: F64  # shape (2, 24): NHTS 2001 Wednesday / Saturday trip starts
    work_departure_halfhour: F64  # shape (48,): P(departure | destination workplace), weekdays, emobpy
    home_departure_halfhour: F64  # shape (48,): P(departure | destination home), weekdays, emobpy
    trip_distance_km: F64  # bins 1, 2, 5, 10, 20, 50, 100, 400 km
    trip_distance_p: F64  # marginal P(distance bin), emobpy DistanceDurationTrip


def load_mobility(root: Path) -> MobilityFigures:
    """Read the mobility CSVs into the distributions above."""
    mob = root / "mobility"
    tpd = _rows(mob / "de_trips_per_day_emobpy.csv")
    trips = np.array([[float(r["p_weekday"]) for r in tpd], [float(r["p_weekend"]) for r in tpd]])
    nhts = _rows(mob / "us_trip_departure_by_hour_nhts2001.csv")
    dep = np.array([[float(r["share_wednesday"]) for r in nhts], [float(r["share_saturday"]) for r in nhts]])
    commuter = [
        r for r in _rows(mob / "de_commuter_departure_destination_emobpy.csv") if r["day_type"] == "weekdays"
    ]
    commuter.sort(key=lambda r: float(r["departure_h"]))
    work = np.array([float(r["p_departure_given_dest_workplace"] or 0) for r in commuter])
    home = np.array([float(r["p_departure_given_dest_home"] or 0) for r in commuter])
    dist_rows = _rows(mob / "de_trip_distance_duration_emobpy.csv")
    bins = sorted({float(r["distance_km"]) for r in dist_rows})
    p = np.array([sum(float(r["p_joint"]) for r in dist_rows if float(r["distance_km"]) == b) for b in bins])
    return MobilityFigures(
        trips_per_day=trips / trips.sum(axis=1, keepdims=True),
        departure_hour_share=dep / dep.sum(axis=1, keepdims=True),
        work_departure_halfhour=work / work.sum(),
        home_departure_halfhour=home / home.sum(),
        trip_distance_km=np.array(bins),
        trip_distance_p=p / p.sum(),
    )


@dataclass(frozen=True, slots=True)
class MonthlyClimate:
    """Mean daily maximum and minimum temperature by month (index 0 = January), °C."""

    city: str
    tmax_c: F64
    tmin_c: F64


def load_climate(root: Path, city: str) -> MonthlyClimate:
    """Monthly tmax/tmin of a city from climate.csv (the first source listed for each month)."""
    tmax = np.full(12, np.nan)
    tmin = np.full(12, np.nan)
    for r in _rows(root / "climate" / "climate.csv"):
        if r["city"] != city or not r["month"].isdigit():
            continue
        target = {"tmax_mean_c": tmax, "tmin_mean_c": tmin}.get(r["variable"])
        month = int(r["month"]) - 1
        if target is not None and np.isnan(target[month]):
            target[month] = float(r["value_c"])
    if np.isnan(tmax).any() or np.isnan(tmin).any():
        raise ConfigurationError(f"climate.csv lacks monthly tmax/tmin for {city}")
    return MonthlyClimate(city, tmax, tmin)
