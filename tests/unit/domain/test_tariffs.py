"""Tariffs: cited examples load, time-of-use bands price the right hours, sessions cost what they should."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from microfleet.domain.tariffs import (
    MAX_DAY_AHEAD_POINTS,
    DayAheadTariff,
    FlatTariff,
    PerKwhTariff,
    PerMinuteTariff,
    TimeOfUseTariff,
    charge_cost,
    example_tariff_ids,
    load_example_tariff,
    parse_day_ahead_csv,
    parse_tariff,
    tariff_from_json,
    tariff_spec,
    tariff_to_json,
    with_day_ahead,
)
from microfleet.errors import InvalidInputError

SH = ZoneInfo("Asia/Shanghai")


def ms(y: int, mo: int, d: int, h: int, mi: int = 0, tz: ZoneInfo = SH) -> int:
    return int(dt.datetime(y, mo, d, h, mi, tzinfo=tz).timestamp() * 1000)


@pytest.mark.parametrize("tariff_id", example_tariff_ids())
def test_every_example_loads_with_a_source(tariff_id: str) -> None:
    tariff = load_example_tariff(tariff_id)
    assert tariff.source
    assert tariff.bands
    for hour in range(24):  # every hour of a summer and a winter day has a price
        assert tariff.price_at(ms(2025, 7, 2, hour)) > 0
        assert tariff.price_at(ms(2025, 1, 8, hour)) > 0


@pytest.mark.parametrize(
    ("hour", "price"), [(5, 0.307), (6, 0.617), (21, 0.617), (22, 0.307), (23, 0.307), (0, 0.307)]
)
def test_shanghai_residential_bands(hour: int, price: float) -> None:
    assert load_example_tariff("cn_sh_residential_tou").price_at(ms(2025, 3, 3, hour)) == price


def test_beijing_public_charging_adds_the_service_fee() -> None:
    tariff = load_example_tariff("cn_bj_public_ev_charging_2016")
    assert tariff.price_at(ms(2025, 3, 3, 12)) == pytest.approx(1.0044 + 0.8)


def test_time_of_use_cost_splits_energy_across_bands() -> None:
    tariff = load_example_tariff("cn_sh_residential_tou")
    ts = np.arange(ms(2025, 3, 3, 21), ms(2025, 3, 3, 23) + 1, 60_000, dtype=np.int64)
    power = np.full(ts.size, 3.0)  # 3 kW for 2 h: 3 kWh at 0.617 then 3 kWh at 0.307
    assert charge_cost(tariff, ts, power) == pytest.approx(3 * 0.617 + 3 * 0.307, rel=1e-6)


def test_flat_per_kwh_and_per_minute() -> None:
    ts = np.array([0, 3_600_000], dtype=np.int64)
    power = np.array([2.0, 2.0])
    assert charge_cost(FlatTariff("f", 5.0, "EUR", "test"), ts, power) == 5.0
    assert charge_cost(PerKwhTariff("k", 0.68, "EUR", "test", session_fee=0.5), ts, power) == pytest.approx(
        1.86
    )
    assert charge_cost(PerMinuteTariff("m", 0.05, "EUR", "test"), ts, power) == pytest.approx(3.0)


# --- users' own tariffs -------------------------------------------------------------------------------

NIGHT_AND_DAY = {
    "tariff_id": "home_tou",
    "kind": "time_of_use",
    "currency": "EUR",
    "timezone": "Europe/Paris",
    "bands": [
        {"start": "22:00", "end": "06:00", "price_per_kwh": 0.18},
        {"start": "06:00", "end": "22:00", "price_per_kwh": 0.25},
    ],
}
PARIS = ZoneInfo("Europe/Paris")


def test_a_user_time_of_use_tariff_prices_local_hours_and_round_trips() -> None:
    tariff = parse_tariff(NIGHT_AND_DAY)
    assert isinstance(tariff, TimeOfUseTariff)
    assert tariff.price_at(ms(2025, 3, 3, 23, tz=PARIS)) == 0.18
    assert tariff.price_at(ms(2025, 7, 6, 5, 45, tz=PARIS)) == 0.18
    assert tariff.price_at(ms(2025, 7, 6, 6, tz=PARIS)) == 0.25
    assert tariff_from_json(tariff_to_json(tariff)) == tariff
    assert parse_tariff(tariff_spec(tariff)) == tariff


def test_a_default_price_fills_the_times_no_band_covers() -> None:
    weekend = {"weekdays": [5, 6], "start": "00:00", "end": "24:00", "price_per_kwh": 0.1}
    tariff = parse_tariff(
        NIGHT_AND_DAY | {"bands": [weekend], "default_price_per_kwh": 0.3, "fee_per_kwh": 0.02}
    )
    assert isinstance(tariff, TimeOfUseTariff)
    assert tariff.price_at(ms(2025, 11, 22, 12, tz=PARIS)) == pytest.approx(0.12)  # a Saturday
    assert tariff.price_at(ms(2025, 11, 24, 12, tz=PARIS)) == pytest.approx(0.32)  # a Monday
    assert tariff_from_json(tariff_to_json(tariff)) == tariff


def band(**kw: object) -> dict[str, object]:
    return {"start": "00:00", "end": "24:00", "price_per_kwh": 0.2, **kw}


@pytest.mark.parametrize(
    ("change", "complaint"),
    [
        ({"bands": [band(end="23:00")]}, "no band prices Mondays in Jan at 23:00"),
        ({"bands": [band(), band(weekdays=[2], start="08:00", end="09:00")]}, "bands 0 and 1 overlap"),
        ({"bands": [band(months=[1, 2, 3])]}, "no band prices Mondays in Apr at 00:00"),
        ({"bands": [band(start="07:10")]}, "not on a quarter hour"),
        ({"bands": [band(start="25:00")]}, "not a time HH:MM"),
        ({"bands": [band(start="06:00", end="06:00")]}, "covers no time"),
        ({"bands": [band(weekdays=[7])]}, "integers 0 to 6"),
        ({"bands": [band(price_per_kwh=-0.1)]}, "band 0 price_per_kwh -0.1 is not between 0 and 100,000"),
        ({"bands": [band(price_per_kwh=float("nan"))]}, "not between 0"),
        ({"bands": [band(price_per_kwh=1e9)]}, "not between 0"),
        ({"bands": [band(price_per_kwh="cheap")]}, "is not a number"),
        ({"bands": [band(colour="red")]}, "unknown fields: colour"),
        ({"bands": []}, "needs bands, a default_price_per_kwh"),
        ({"bands": [band()] * 201}, "at most 200 bands"),
        ({"currency": "euro"}, "3-letter code"),
        ({"currency": "eur"}, "3-letter code"),
        ({"timezone": "Mars/Olympus"}, "not an IANA time zone"),
        ({"timezone": "../../etc/passwd"}, "not an IANA time zone"),
        ({"tariff_id": "-bad"}, "tariff_id '-bad'"),
        ({"tariff_id": "x" * 65}, "1-64 letters"),
        ({"kind": "spot"}, "kind 'spot' is not one of flat, per_kwh"),
        ({"price_per_kwh": 0.2}, "a time_of_use tariff has no field price_per_kwh"),
        ({"source": "x" * 501}, "at most 500 characters"),
    ],
)
def test_a_bad_user_tariff_is_refused_with_its_reason(change: dict[str, object], complaint: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(complaint)):
        parse_tariff(NIGHT_AND_DAY | change)


def test_the_simple_kinds_parse() -> None:
    common = {"tariff_id": "t", "currency": "GBP"}
    assert parse_tariff(common | {"kind": "flat", "price_per_session": 5}) == FlatTariff(
        "t", 5.0, "GBP", "entered by a user"
    )
    per_kwh = parse_tariff(common | {"kind": "per_kwh", "price_per_kwh": 0.79, "session_fee": 1})
    assert per_kwh == PerKwhTariff("t", 0.79, "GBP", "entered by a user", 1.0)
    with pytest.raises(InvalidInputError, match="price_per_min is missing"):
        parse_tariff(common | {"kind": "per_minute"})


DAY_AHEAD = {"tariff_id": "spot", "kind": "day_ahead", "currency": "EUR", "timezone": "Europe/Berlin"}


def test_day_ahead_prices_from_csv_cost_a_charge_and_leave_one_outside_uncosted() -> None:
    tariff = parse_tariff(DAY_AHEAD | {"fee_per_kwh": 0.1})
    assert isinstance(tariff, DayAheadTariff) and tariff.interval_min == 60
    csv_text = "\n".join(
        [
            "start,price_per_kwh",
            "2025-11-24T00:00+01:00,0.05",
            "2025-11-24T00:00Z,0.07",
            "",
            "2025-11-24T02:00+01:00,0.30",
        ]
    )
    points = parse_day_ahead_csv(csv_text, 60)
    assert [p for _, p in points] == [0.05, 0.07, 0.30]
    tariff = with_day_ahead(tariff, points)
    berlin = ZoneInfo("Europe/Berlin")
    assert tariff.price_at(ms(2025, 11, 24, 0, 30, tz=berlin)) == pytest.approx(0.15)
    assert tariff.price_at(ms(2025, 11, 24, 1, 59, tz=berlin)) == pytest.approx(0.17)
    assert tariff.price_at(ms(2025, 11, 24, 3, 0, tz=berlin)) is None  # after the series
    assert tariff.price_at(ms(2025, 11, 23, 23, 59, tz=berlin)) is None  # before it
    assert tariff.span_ms == (ms(2025, 11, 24, 0, tz=berlin), ms(2025, 11, 24, 3, tz=berlin))

    ts = np.arange(ms(2025, 11, 24, 0, tz=berlin), ms(2025, 11, 24, 2, tz=berlin) + 1, 60_000, dtype=np.int64)
    power = np.full(ts.size, 2.0)  # 2 kW for 2 h: 2 kWh at 0.15, then 2 kWh at 0.17
    assert charge_cost(tariff, ts, power) == pytest.approx(2 * 0.15 + 2 * 0.17, rel=1e-6)
    later = ts + 3_600_000 * 2  # 02:00-04:00: the last hour has no price, the charge is left uncosted
    assert charge_cost(tariff, later, power) is None
    idle = np.where(later < ms(2025, 11, 24, 3, tz=berlin), 2.0, 0.0)  # plugged in but drawing nothing
    assert charge_cost(tariff, later, idle) == pytest.approx(2 * 0.40, rel=1e-2)
    assert tariff_from_json(tariff_to_json(tariff)) == tariff


def test_day_ahead_uploads_merge_or_replace_and_stay_bounded() -> None:
    tariff = parse_tariff(DAY_AHEAD | {"interval_min": 15})
    assert isinstance(tariff, DayAheadTariff)
    first = with_day_ahead(tariff, parse_day_ahead_csv("start,price_per_kwh\n2025-01-01T00:00Z,1\n", 15))
    both = with_day_ahead(
        first, [(ms(2025, 1, 1, 0, tz=dt.UTC), 2.0), (ms(2025, 1, 1, 0, 15, tz=dt.UTC), 3.0)]
    )
    assert both.prices == (2.0, 3.0)
    assert with_day_ahead(both, [(0, 1.0)], replace_all=True).prices == (1.0,)
    too_many = [(k * 900_000, 0.1) for k in range(MAX_DAY_AHEAD_POINTS)]
    full = with_day_ahead(tariff, too_many)
    with pytest.raises(InvalidInputError, match="more than 40000"):
        with_day_ahead(full, [(-900_000, 0.1)])


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("when,price\n", "header 'start,price_per_kwh'"),
        ("start,price_per_kwh\n", "no prices"),
        ("start,price_per_kwh\n2025-11-24T13:00,0.2\n", "line 2: start '2025-11-24T13:00' has no UTC offset"),
        (
            "start,price_per_kwh\n24/11/2025 13:00+01:00,0.2\n",
            "line 2: start '24/11/2025 13:00+01:00' is not an ISO",
        ),
        ("start,price_per_kwh\n2025-11-24T13:05Z,0.2\n", "not on a quarter hour"),
        ("start,price_per_kwh\n2025-11-24T13:00Z,0,21\n", "line 2: 3 fields"),
        ("start,price_per_kwh\n2025-11-24T13:00Z,abc\n", "price_per_kwh 'abc' is not a number"),
        ("start,price_per_kwh\n2025-11-24T13:00Z,-5\n", "not between 0"),
        ("start,price_per_kwh\n2025-11-24T13:00Z,inf\n", "not between 0"),
        ("start,price_per_kwh\n2025-11-24T13:00Z,1\n2025-11-24T13:30Z,1\n", "2025-11-24T13:30Z overlaps"),
        ("start,price_per_kwh\n2025-11-24T13:00Z,1\n2025-11-24T14:00+01:00,1\n", "overlaps"),
    ],
)
def test_a_bad_day_ahead_csv_is_refused_with_its_line(text: str, complaint: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(complaint)):
        parse_day_ahead_csv(text, 60)


def test_a_day_ahead_csv_is_bounded() -> None:
    rows = "".join(
        f"{dt.datetime.fromtimestamp(k * 900, tz=dt.UTC).isoformat()},0.1\n"
        for k in range(MAX_DAY_AHEAD_POINTS + 1)
    )
    with pytest.raises(InvalidInputError, match="at most 40000 intervals"):
        parse_day_ahead_csv("start,price_per_kwh\n" + rows, 15)
