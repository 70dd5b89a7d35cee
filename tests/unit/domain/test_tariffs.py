"""Tariffs: cited examples load, time-of-use bands price the right hours, sessions cost what they should."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from microfleet.domain.tariffs import (
    FlatTariff,
    PerKwhTariff,
    PerMinuteTariff,
    charge_cost,
    example_tariff_ids,
    load_example_tariff,
)

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
