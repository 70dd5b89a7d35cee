"""What a charge costs: flat, per kWh, per minute and time-of-use tariffs, with cited examples.

Example tariffs ship as CSV under ``domain/data/tariffs/`` (copied from the project's cited data; the
``source`` column of every row says where each price was read). Time-of-use bands are local clock
time in the tariff's time zone; the energy of each interval is priced at the band it falls in.
"""

from __future__ import annotations

import csv
import datetime as dt
from dataclasses import dataclass
from importlib import resources
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt

from microfleet.errors import ConfigurationError

MS_PER_H: Final = 3_600_000.0

# Time zone of each shipped tariff (the sources quote local clock time).
_TARIFF_TZ: Final = {
    "cn_sh_residential_tou": "Asia/Shanghai",
    "cn_sz_residential_tou": "Asia/Shanghai",
    "cn_bj_public_ev_charging_2016": "Asia/Shanghai",
    "sce_tou_ev_8_oct_2018": "America/Los_Angeles",
}
_TARIFF_FILES: Final = {
    "cn_sh_residential_tou": "cn_shanghai_residential_tou.csv",
    "cn_sz_residential_tou": "cn_shenzhen_residential_tou.csv",
    "cn_bj_public_ev_charging_2016": "cn_beijing_public_ev_charging_2016.csv",
    "sce_tou_ev_8_oct_2018": "us_sce_tou_ev_8_2018.csv",
}


@dataclass(frozen=True, slots=True)
class FlatTariff:
    """A fixed price per charging session."""

    tariff_id: str
    price_per_session: float
    currency: str
    source: str


@dataclass(frozen=True, slots=True)
class PerKwhTariff:
    """One price per kWh drawn from the grid, plus an optional fixed fee per session."""

    tariff_id: str
    price_per_kwh: float
    currency: str
    source: str
    session_fee: float = 0.0


@dataclass(frozen=True, slots=True)
class PerMinuteTariff:
    """A price per minute plugged in (many public chargers bill time, not energy)."""

    tariff_id: str
    price_per_min: float
    currency: str
    source: str


@dataclass(frozen=True, slots=True)
class TouBand:
    """One time-of-use band: months, weekdays (Mon=0), local minutes [start, end) and price per kWh."""

    months: frozenset[int]
    weekdays: frozenset[int]
    start_min: int
    end_min: int  # end < start wraps past midnight
    price_per_kwh: float

    def applies(self, local: dt.datetime) -> bool:
        """Whether this band prices energy drawn at local time ``local``."""
        if local.month not in self.months or local.weekday() not in self.weekdays:
            return False
        m = local.hour * 60 + local.minute
        if self.start_min <= self.end_min:
            return self.start_min <= m < self.end_min
        return m >= self.start_min or m < self.end_min


@dataclass(frozen=True, slots=True)
class TimeOfUseTariff:
    """Prices per kWh that change with local time of day, weekday and season."""

    tariff_id: str
    bands: tuple[TouBand, ...]
    timezone: str
    currency: str
    source: str
    fee_per_kwh: float = 0.0  # e.g. a charging service fee added to every kWh

    def price_at(self, ts_ms: int) -> float:
        """Price per kWh (fee included) at UTC epoch ms ``ts_ms``; the first matching band wins."""
        local = dt.datetime.fromtimestamp(ts_ms / 1000, tz=ZoneInfo(self.timezone))
        for band in self.bands:
            if band.applies(local):
                return band.price_per_kwh + self.fee_per_kwh
        raise ConfigurationError(f"tariff {self.tariff_id} has no band for {local.isoformat()}")


Tariff = FlatTariff | PerKwhTariff | PerMinuteTariff | TimeOfUseTariff


def charge_cost(
    tariff: Tariff, ts_ms: npt.NDArray[np.int64], grid_power_kw: npt.NDArray[np.float64]
) -> float:
    """Cost of one charging session in the tariff's currency.

    Parameters
    ----------
    tariff : Tariff
        The tariff of the place where the car charged.
    ts_ms : numpy.ndarray
        Sample times of the session, UTC epoch ms, ascending (first = plug-in, last = unplug).
    grid_power_kw : numpy.ndarray
        Power drawn from the grid at each sample, kW (NaN = unknown, counted as 0).

    Returns
    -------
    float
        Cost in the tariff's currency; energy between two samples is priced at the interval's start.

    """
    if isinstance(tariff, FlatTariff):
        return tariff.price_per_session
    if isinstance(tariff, PerMinuteTariff):
        return tariff.price_per_min * float(ts_ms[-1] - ts_ms[0]) / 60_000 if ts_ms.size else 0.0
    if ts_ms.size < 2:
        return tariff.session_fee if isinstance(tariff, PerKwhTariff) else 0.0
    p = np.nan_to_num(grid_power_kw, nan=0.0)
    e_kwh = (p[1:] + p[:-1]) / 2 * np.diff(ts_ms) / MS_PER_H
    if isinstance(tariff, PerKwhTariff):
        return tariff.session_fee + tariff.price_per_kwh * float(e_kwh.sum())
    # Price per interval; bands change on the quarter hour at most, so price each quarter hour once.
    quarter = (ts_ms[:-1] // 900_000).astype(np.int64)
    uniq, inv = np.unique(quarter, return_inverse=True)
    prices = np.array([tariff.price_at(int(q) * 900_000) for q in uniq.tolist()])
    return float(np.sum(prices[inv] * e_kwh))


def _months(spec: str) -> frozenset[int]:
    out: set[int] = set()
    for part in spec.split(","):
        lo, _, hi = part.strip().partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return frozenset(out)


def _minutes(hhmm: str) -> int:
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def example_tariff_ids() -> tuple[str, ...]:
    """Identifiers of the cited example tariffs shipped with Microfleet."""
    return tuple(_TARIFF_FILES)


def load_example_tariff(tariff_id: str) -> TimeOfUseTariff:
    """Load one shipped time-of-use tariff (see ``domain/data/tariffs/README.md`` for sources)."""
    name = _TARIFF_FILES[tariff_id]
    text = resources.files("microfleet.domain").joinpath("data", "tariffs", name).read_text("utf-8")
    rows = [r for r in csv.DictReader(text.splitlines()) if r["tariff_id"] == tariff_id]
    bands = tuple(
        TouBand(
            months=_months(r["season_months"]),
            weekdays=frozenset(i for i, c in enumerate(r["weekday_mask"]) if c == "1"),
            start_min=_minutes(r["start_hhmm"]),
            end_min=_minutes(r["end_hhmm"]),
            price_per_kwh=float(r["price_per_kwh"]),
        )
        for r in rows
    )
    fee = float(rows[0].get("service_fee_per_kwh") or 0.0)
    return TimeOfUseTariff(
        tariff_id, bands, _TARIFF_TZ[tariff_id], rows[0]["currency"], rows[0]["source"], fee
    )
