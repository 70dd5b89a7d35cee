"""What a charge costs: flat, per kWh, per minute, time-of-use and day-ahead tariffs, with cited examples.

Example tariffs ship as CSV under ``domain/data/tariffs/`` (copied from the project's cited data; the
``source`` column of every row says where each price was read). Time-of-use bands are local clock
time in the tariff's time zone; the energy of each interval is priced at the band it falls in.

Users add their own tariffs as a JSON spec (:func:`parse_tariff`, every rule refused with a sentence that
names it) and day-ahead price series as CSV (:func:`parse_day_ahead_csv`); ``docs/history.md`` (Tariffs)
documents both formats.
"""

from __future__ import annotations

import bisect
import csv
import datetime as dt
import itertools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from functools import cache
from importlib import resources
from typing import Any, Final, Literal
from zoneinfo import ZoneInfo, available_timezones

import numpy as np
import numpy.typing as npt

from microfleet.domain.telemetry import VEHICLE_ID_PATTERN
from microfleet.errors import ConfigurationError, InvalidInputError

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
    default_price_per_kwh: float | None = None  # the price when no band applies (None: a band always does)

    def price_at(self, ts_ms: int) -> float:
        """Price per kWh (fee included) at UTC epoch ms ``ts_ms``; the first matching band wins."""
        local = dt.datetime.fromtimestamp(ts_ms / 1000, tz=ZoneInfo(self.timezone))
        for band in self.bands:
            if band.applies(local):
                return band.price_per_kwh + self.fee_per_kwh
        if self.default_price_per_kwh is not None:
            return self.default_price_per_kwh + self.fee_per_kwh
        raise ConfigurationError(f"tariff {self.tariff_id} has no band for {local.isoformat()}")


@dataclass(frozen=True, slots=True)
class DayAheadTariff:
    """Prices per kWh for given intervals (a day-ahead market's hours or quarter hours), plus a fee.

    ``starts_ms`` are the intervals' starts (UTC epoch ms, ascending, each on a quarter hour), each
    interval ``interval_min`` long; the series may have gaps. A time no interval covers has no price.
    """

    tariff_id: str
    currency: str
    timezone: str  # shown to people (the CSV's times carry their own UTC offset)
    source: str
    interval_min: int
    starts_ms: tuple[int, ...] = ()
    prices: tuple[float, ...] = ()
    fee_per_kwh: float = 0.0

    def price_at(self, ts_ms: int) -> float | None:
        """Price per kWh (fee included) at UTC epoch ms ``ts_ms``, or None outside the series."""
        i = bisect.bisect_right(self.starts_ms, ts_ms) - 1
        if i < 0 or ts_ms >= self.starts_ms[i] + self.interval_min * 60_000:
            return None
        return self.prices[i] + self.fee_per_kwh

    @property
    def span_ms(self) -> tuple[int, int] | None:
        """The first interval's start and the last one's end, UTC epoch ms (None: no prices yet)."""
        if not self.starts_ms:
            return None
        return self.starts_ms[0], self.starts_ms[-1] + self.interval_min * 60_000


Tariff = FlatTariff | PerKwhTariff | PerMinuteTariff | TimeOfUseTariff | DayAheadTariff


def charge_cost(
    tariff: Tariff, ts_ms: npt.NDArray[np.int64], grid_power_kw: npt.NDArray[np.float64]
) -> float | None:
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
    float or None
        Cost in the tariff's currency; energy between two samples is priced at the interval's start.
        None when a day-ahead series has no price for an interval in which energy was drawn: the
        charge is left uncosted rather than costed in part.

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
    found = [tariff.price_at(int(q) * 900_000) for q in uniq.tolist()]
    prices = np.array([math.nan if p is None else p for p in found])
    priced = prices[inv]
    unpriced = np.isnan(priced)
    if np.any(unpriced & (e_kwh > 0)):
        return None
    return float(np.sum(np.where(unpriced, 0.0, priced) * e_kwh))


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


# --- users' own tariffs: the JSON spec, its rules, and day-ahead series from CSV ---------------------------

# Limits on a user's tariff, Microfleet's choice against typing errors and oversized rows: a price per
# kWh, session or minute of at most 100,000 units of its currency (far above any retail price, even in
# currencies whose unit is small); at most 200 bands (a year of monthly weekday/weekend peak, flat and
# valley bands is 72); a day-ahead series of at most 40,000 intervals (416 days of quarter hours), read
# with every derivation of a car charging where it applies.
MAX_PRICE: Final = 100_000.0
MAX_BANDS: Final = 200
MAX_DAY_AHEAD_POINTS: Final = 40_000
MAX_SOURCE_CHARS: Final = 500
DAY_AHEAD_INTERVALS_MIN: Final = (15, 30, 60)
TARIFF_ID_PATTERN: Final = VEHICLE_ID_PATTERN
TARIFF_KINDS: Final = ("flat", "per_kwh", "per_minute", "time_of_use", "day_ahead")
DAY_AHEAD_CSV_HEADER: Final = "start,price_per_kwh"
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_HHMM = re.compile(r"^([01][0-9]|2[0-4]):([0-5][0-9])$")
_MONTHS: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DAYS: Final = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_QUARTER_MS: Final = 900_000

_FIELDS: Final = {
    "flat": {"price_per_session"},
    "per_kwh": {"price_per_kwh", "session_fee"},
    "per_minute": {"price_per_min"},
    "time_of_use": {"timezone", "bands", "fee_per_kwh", "default_price_per_kwh"},
    "day_ahead": {"timezone", "interval_min", "fee_per_kwh"},
}
_COMMON: Final = {"tariff_id", "kind", "currency", "source"}


def tariff_kind(tariff: Tariff) -> str:
    """The tariff's kind as the spec names it: flat, per_kwh, per_minute, time_of_use or day_ahead."""
    kinds: dict[type, str] = {
        FlatTariff: "flat",
        PerKwhTariff: "per_kwh",
        PerMinuteTariff: "per_minute",
        TimeOfUseTariff: "time_of_use",
        DayAheadTariff: "day_ahead",
    }
    return kinds[type(tariff)]


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _price(
    spec: Mapping[str, Any], name: str, *, required: bool = True, default: float = 0.0, label: str = ""
) -> float:
    value = spec.get(name)
    name = label or name
    if value is None:
        if required:
            raise InvalidInputError(f"{name} is missing")
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(f"{name} {value!r} is not a number")
    price = float(value)
    if not math.isfinite(price) or not 0 <= price <= MAX_PRICE:
        raise InvalidInputError(f"{name} {value!r} is not between 0 and {MAX_PRICE:,.0f}")
    return price


def _text(spec: Mapping[str, Any], name: str, default: str) -> str:
    value = spec.get(name, default)
    if not isinstance(value, str) or not value.isprintable() or len(value) > MAX_SOURCE_CHARS:
        raise InvalidInputError(f"{name} is printable text of at most {MAX_SOURCE_CHARS} characters")
    return value


def check_tariff_id(tariff_id: object) -> str:
    """Refuse a tariff id that does not look like a vehicle id (letters, digits, ``_.:-``, ≤ 64)."""
    if not isinstance(tariff_id, str) or not re.match(TARIFF_ID_PATTERN, tariff_id):
        raise InvalidInputError(
            f"tariff_id {tariff_id!r} is not 1-64 letters, digits, '_', '.', ':' or '-' starting with a "
            "letter or digit"
        )
    return tariff_id


def check_timezone(name: object) -> str:
    """Refuse a time zone that is not an IANA name known to this machine (e.g. Europe/Paris)."""
    if not isinstance(name, str) or name not in _zones():
        raise InvalidInputError(f"timezone {name!r} is not an IANA time zone name such as Europe/Paris")
    return name


def _minute(value: object, name: str) -> int:
    match = _HHMM.match(value) if isinstance(value, str) else None
    if match is None or (match[1] == "24" and match[2] != "00"):
        raise InvalidInputError(f"{name} {value!r} is not a time HH:MM between 00:00 and 24:00")
    minute = int(match[1]) * 60 + int(match[2])
    if minute % 15:
        raise InvalidInputError(f"{name} {value!r} is not on a quarter hour (costs are priced per 15 min)")
    return minute


def _int_set(value: object, name: str, lo: int, hi: int, default: range) -> frozenset[int]:
    if value is None:
        return frozenset(default)
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi for v in value)
    ):
        raise InvalidInputError(f"{name} is a non-empty list of integers {lo} to {hi}")
    return frozenset(value)


def _band(i: int, spec: object) -> TouBand:
    if not isinstance(spec, Mapping):
        raise InvalidInputError(f"band {i} is not an object")
    unknown = set(spec) - {"months", "weekdays", "start", "end", "price_per_kwh"}
    if unknown:
        raise InvalidInputError(f"band {i} has unknown fields: {', '.join(sorted(map(str, unknown)))}")
    start = _minute(spec.get("start"), f"band {i} start")
    end = _minute(spec.get("end"), f"band {i} end")
    if start == end or start == 1440:
        raise InvalidInputError(f"band {i} covers no time (start {spec['start']}, end {spec['end']})")
    return TouBand(
        months=_int_set(spec.get("months"), f"band {i} months", 1, 12, range(1, 13)),
        weekdays=_int_set(spec.get("weekdays"), f"band {i} weekdays (0 = Monday)", 0, 6, range(7)),
        start_min=start,
        end_min=end % 1440 if end < start else end,
        price_per_kwh=_price(spec, "price_per_kwh", label=f"band {i} price_per_kwh"),
    )


def _cover(band: TouBand) -> npt.NDArray[np.bool_]:
    """Which (month, weekday, quarter hour) of a year's week a band prices: a 12 × 7 × 96 mask."""
    q = np.zeros(96, dtype=bool)
    a, b = band.start_min // 15, band.end_min // 15
    if a < b:
        q[a:b] = True
    else:
        q[a:] = True
        q[:b] = True
    months = np.zeros(12, dtype=bool)
    months[[m - 1 for m in band.months]] = True
    days = np.zeros(7, dtype=bool)
    days[list(band.weekdays)] = True
    out: npt.NDArray[np.bool_] = months[:, None, None] & days[None, :, None] & q[None, None, :]
    return out


def check_bands(bands: Sequence[TouBand], has_default: bool) -> None:
    """Refuse bands that overlap, or (without a default price) leave some time of the year unpriced.

    A band's weekday and time are local: a band from 22:00 to 06:00 on Mondays prices Monday night
    until Tuesday 06:00.
    """
    if not bands and not has_default:
        raise InvalidInputError("a time-of-use tariff needs bands, a default_price_per_kwh, or both")
    covers = [_cover(b) for b in bands]
    count = np.sum(covers, axis=0) if covers else np.zeros((12, 7, 96), dtype=np.int64)
    if np.any(count > 1):
        m, d, q = (int(v) for v in np.argwhere(count > 1)[0])
        which = [str(i) for i, c in enumerate(covers) if c[m, d, q]]
        raise InvalidInputError(
            f"bands {' and '.join(which)} overlap: both price {_DAYS[d]}s in {_MONTHS[m]} at "
            f"{q // 4:02d}:{q % 4 * 15:02d}; each time may be in one band only"
        )
    if not has_default and np.any(count == 0):
        m, d, q = (int(v) for v in np.argwhere(count == 0)[0])
        raise InvalidInputError(
            f"no band prices {_DAYS[d]}s in {_MONTHS[m]} at {q // 4:02d}:{q % 4 * 15:02d}: cover the "
            "whole week of every month, or give a default_price_per_kwh for the times no band covers"
        )


def parse_tariff(spec: object) -> Tariff:
    """A user's tariff from its JSON spec (``docs/history.md``, Tariffs), every rule checked.

    Raises
    ------
    InvalidInputError
        With a sentence naming the field and the rule it breaks.

    """
    if not isinstance(spec, Mapping):
        raise InvalidInputError("a tariff is a JSON object")
    kind = spec.get("kind")
    if kind not in _FIELDS:
        raise InvalidInputError(f"kind {kind!r} is not one of {', '.join(TARIFF_KINDS)}")
    unknown = set(spec) - _COMMON - _FIELDS[kind]
    if unknown:
        raise InvalidInputError(
            f"a {kind} tariff has no field {', '.join(sorted(map(str, unknown)))}; it takes "
            f"{', '.join(sorted(_COMMON | _FIELDS[kind]))}"
        )
    tariff_id = check_tariff_id(spec.get("tariff_id"))
    currency = spec.get("currency")
    if not isinstance(currency, str) or not _CURRENCY.match(currency):
        raise InvalidInputError(f"currency {currency!r} is not a 3-letter code in capitals such as EUR")
    source = _text(spec, "source", "entered by a user")
    if kind == "flat":
        return FlatTariff(tariff_id, _price(spec, "price_per_session"), currency, source)
    if kind == "per_kwh":
        fee = _price(spec, "session_fee", required=False)
        return PerKwhTariff(tariff_id, _price(spec, "price_per_kwh"), currency, source, fee)
    if kind == "per_minute":
        return PerMinuteTariff(tariff_id, _price(spec, "price_per_min"), currency, source)
    timezone = check_timezone(spec.get("timezone"))
    fee = _price(spec, "fee_per_kwh", required=False)
    if kind == "day_ahead":
        interval = spec.get("interval_min", 60)
        if interval not in DAY_AHEAD_INTERVALS_MIN or isinstance(interval, bool):
            raise InvalidInputError(f"interval_min {interval!r} is not 15, 30 or 60")
        return DayAheadTariff(tariff_id, currency, timezone, source, int(interval), fee_per_kwh=fee)
    raw = spec.get("bands", [])
    if not isinstance(raw, list) or len(raw) > MAX_BANDS:
        raise InvalidInputError(f"bands is a list of at most {MAX_BANDS} bands")
    bands = tuple(_band(i, b) for i, b in enumerate(raw))
    default = _price(spec, "default_price_per_kwh") if spec.get("default_price_per_kwh") is not None else None
    check_bands(bands, default is not None)
    return TimeOfUseTariff(tariff_id, bands, timezone, currency, source, fee, default)


def _hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


def tariff_spec(tariff: Tariff) -> dict[str, Any]:
    """The JSON spec of a tariff (a day-ahead series left out: see :func:`tariff_to_json`)."""
    spec: dict[str, Any] = {
        "tariff_id": tariff.tariff_id,
        "kind": tariff_kind(tariff),
        "currency": tariff.currency,
        "source": tariff.source,
    }
    if isinstance(tariff, FlatTariff):
        spec["price_per_session"] = tariff.price_per_session
    elif isinstance(tariff, PerKwhTariff):
        spec |= {"price_per_kwh": tariff.price_per_kwh, "session_fee": tariff.session_fee}
    elif isinstance(tariff, PerMinuteTariff):
        spec["price_per_min"] = tariff.price_per_min
    elif isinstance(tariff, DayAheadTariff):
        spec |= {
            "timezone": tariff.timezone,
            "interval_min": tariff.interval_min,
            "fee_per_kwh": tariff.fee_per_kwh,
        }
    else:
        spec |= {
            "timezone": tariff.timezone,
            "fee_per_kwh": tariff.fee_per_kwh,
            "default_price_per_kwh": tariff.default_price_per_kwh,
            "bands": [
                {
                    "months": sorted(b.months),
                    "weekdays": sorted(b.weekdays),
                    "start": _hhmm(b.start_min),
                    "end": _hhmm(b.end_min),
                    "price_per_kwh": b.price_per_kwh,
                }
                for b in tariff.bands
            ],
        }
    return spec


def tariff_to_json(tariff: Tariff) -> str:
    """A user tariff as stored: its spec, and a day-ahead tariff's series as two parallel lists."""
    spec = tariff_spec(tariff)
    if isinstance(tariff, DayAheadTariff):
        spec["series"] = {"starts_ms": list(tariff.starts_ms), "prices": list(tariff.prices)}
    return json.dumps(spec, separators=(",", ":"))


def tariff_from_json(text: str) -> Tariff:
    """A stored user tariff (:func:`tariff_to_json`), checked again as it is read."""
    spec = json.loads(text)
    series = spec.pop("series", None)
    tariff = parse_tariff(spec)
    if isinstance(tariff, DayAheadTariff) and series:
        tariff = replace(
            tariff,
            starts_ms=tuple(int(v) for v in series["starts_ms"]),
            prices=tuple(float(v) for v in series["prices"]),
        )
    return tariff


def parse_day_ahead_csv(text: str, interval_min: int) -> list[tuple[int, float]]:
    """Day-ahead prices ``(start UTC epoch ms, price per kWh)`` from CSV, sorted, every row checked.

    The header is ``start,price_per_kwh``; ``start`` is an ISO 8601 date and time with its UTC offset
    (``2025-11-24T13:00+01:00`` or ``2025-11-24T12:00Z``: a local time without one is ambiguous in the
    hour that repeats when clocks go back), on a quarter hour; the price holds for ``interval_min``
    minutes from it. Intervals may leave gaps but not overlap.
    """
    lines = text.removeprefix("\ufeff").splitlines()
    if not lines or lines[0].strip().replace(" ", "") != DAY_AHEAD_CSV_HEADER:
        raise InvalidInputError(f"the first line of a day-ahead CSV is the header {DAY_AHEAD_CSV_HEADER!r}")
    points: list[tuple[int, float]] = []
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        if len(points) >= MAX_DAY_AHEAD_POINTS:
            raise InvalidInputError(f"a day-ahead series holds at most {MAX_DAY_AHEAD_POINTS} intervals")
        cells = [c.strip() for c in line.split(",")]
        if len(cells) != 2:
            raise InvalidInputError(
                f"line {n}: {len(cells)} fields, not 2 (start,price_per_kwh; a decimal point, not a comma)"
            )
        try:
            start = dt.datetime.fromisoformat(cells[0])
        except ValueError:
            raise InvalidInputError(
                f"line {n}: start {cells[0]!r} is not an ISO 8601 date and time "
                "such as 2025-11-24T13:00+01:00"
            ) from None
        if start.tzinfo is None:
            raise InvalidInputError(
                f"line {n}: start {cells[0]!r} has no UTC offset (write e.g. {cells[0]}+01:00 or {cells[0]}Z)"
            )
        ts = int(start.timestamp() * 1000)
        if ts % _QUARTER_MS:
            raise InvalidInputError(f"line {n}: start {cells[0]!r} is not on a quarter hour")
        try:
            price = float(cells[1])
        except ValueError:
            raise InvalidInputError(f"line {n}: price_per_kwh {cells[1]!r} is not a number") from None
        if not math.isfinite(price) or not 0 <= price <= MAX_PRICE:
            raise InvalidInputError(
                f"line {n}: price_per_kwh {cells[1]!r} is not between 0 and {MAX_PRICE:,.0f}"
            )
        points.append((ts, price))
    if not points:
        raise InvalidInputError("the day-ahead CSV has a header but no prices")
    points.sort()
    _check_no_overlap(points, interval_min)
    return points


def _check_no_overlap(points: Sequence[tuple[int, float]], interval_min: int) -> None:
    step = interval_min * 60_000
    for (a, _), (b, _) in itertools.pairwise(points):
        if b < a + step:
            when = dt.datetime.fromtimestamp(b / 1000, tz=dt.UTC).strftime("%Y-%m-%dT%H:%MZ")
            raise InvalidInputError(
                f"the interval starting {when} overlaps the one before it ({interval_min} min intervals)"
            )


def with_day_ahead(
    tariff: DayAheadTariff, points: Sequence[tuple[int, float]], *, replace_all: bool = False
) -> DayAheadTariff:
    """The tariff with these prices added (a price for a start already priced replaces it), or only these."""
    merged = (
        dict(points)
        if replace_all
        else dict(zip(tariff.starts_ms, tariff.prices, strict=True)) | dict(points)
    )
    if len(merged) > MAX_DAY_AHEAD_POINTS:
        raise InvalidInputError(
            f"the series would hold {len(merged)} intervals, more than {MAX_DAY_AHEAD_POINTS}: replace it "
            "instead of adding to it"
        )
    ordered = sorted(merged.items())
    _check_no_overlap(ordered, tariff.interval_min)
    return replace(tariff, starts_ms=tuple(t for t, _ in ordered), prices=tuple(p for _, p in ordered))


@dataclass(frozen=True, slots=True)
class StoredTariff:
    """A tariff and whom it is for: a built-in example, or a user's for one vehicle, one fleet or all."""

    tariff: Tariff
    vehicle_id: str | None = None
    fleet_id: str | None = None
    builtin: bool = False

    @property
    def scope(self) -> Literal["builtin", "vehicle", "fleet", "global"]:
        """``builtin``, ``vehicle``, ``fleet`` or ``global``."""
        if self.builtin:
            return "builtin"
        return "vehicle" if self.vehicle_id else "fleet" if self.fleet_id else "global"


def example_tariffs() -> list[StoredTariff]:
    """The cited example tariffs shipped with Microfleet, read-only."""
    return [StoredTariff(load_example_tariff(t), builtin=True) for t in example_tariff_ids()]
