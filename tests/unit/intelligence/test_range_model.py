"""Range: the physics prior calibrated per car, the residual, and calibrated quantiles."""

from __future__ import annotations

import numpy as np

from microfleet.intelligence.range_model import (
    MIN_DAYS,
    PriorCurve,
    driving_days,
    energy_sigma,
    fit_range_model,
    physics_prior,
    predict_range,
    trip_verdict,
)
from tests.unit.intelligence.battery_history import drive

PRIOR = PriorCurve((-20.0, 0.0, 20.0, 40.0), (160.0, 120.0, 90.0, 100.0))


def _days(n: int, rng: np.random.Generator, bias: float = 1.3, cold_extra: float = 0.01) -> list:
    out = []
    for k in range(n):
        t = float(rng.uniform(-10, 35))
        true = PRIOR.at(np.array([t]))[0] * bias * (1 + cold_extra * max(15 - t, 0)) * rng.lognormal(0, 0.06)
        km = float(rng.uniform(10, 40))
        out.append(drive(k, km, km * true / 1000, t))
    return out


def test_too_few_days_give_no_model() -> None:
    rng = np.random.default_rng(1)
    assert fit_range_model(driving_days(_days(MIN_DAYS - 1, rng)), PRIOR) is None


def test_the_car_calibration_removes_the_prior_bias_and_quantiles_cover_about_80_percent() -> None:
    rng = np.random.default_rng(2)
    model = fit_range_model(driving_days(_days(120, rng)), PRIOR)
    assert model is not None
    test = driving_days(_days(400, np.random.default_rng(9)))
    inside = 0
    errors = []
    for d in test:
        pred = predict_range(model, PRIOR, soc_pct=100, usable_kwh=20, temp_c=d.temp_c)
        true_km = 20_000 / (d.energy_kwh * 1000 / d.distance_km)
        inside += pred.p10_km <= true_km <= pred.p90_km
        errors.append(abs(pred.p50_km - true_km) / true_km)
    assert 0.70 <= inside / len(test) <= 0.90
    assert float(np.median(errors)) < 0.06


def test_range_falls_in_the_cold_and_the_trip_verdict_follows_the_quantiles() -> None:
    rng = np.random.default_rng(4)
    model = fit_range_model(driving_days(_days(60, rng)), PRIOR)
    assert model is not None
    warm = predict_range(model, PRIOR, soc_pct=80, usable_kwh=20, temp_c=20)
    cold = predict_range(model, PRIOR, soc_pct=80, usable_kwh=20, temp_c=-10)
    assert cold.p50_km < warm.p50_km
    assert warm.p10_km < warm.p50_km < warm.p90_km
    assert trip_verdict(warm, warm.p10_km * 0.9) == "yes"
    assert trip_verdict(warm, (warm.p10_km + warm.p50_km) / 2) == "likely"
    assert trip_verdict(warm, (warm.p50_km + warm.p90_km) / 2) == "risky"
    assert trip_verdict(warm, warm.p90_km * 1.1) == "no"


def test_physics_prior_rises_in_the_cold_and_is_flat_for_an_unknown_model() -> None:
    prior = physics_prior("dacia-spring-65-2024")
    assert prior.at(np.array([-10.0]))[0] > prior.at(np.array([20.0]))[0] > 50
    assert len(set(physics_prior("no-such-model").wh_per_km)) == 1


def test_uncertain_energy_on_board_widens_the_band_but_not_the_median() -> None:
    model = fit_range_model(driving_days(_days(60, np.random.default_rng(6))), PRIOR)
    assert model is not None
    sure = predict_range(model, PRIOR, soc_pct=60, usable_kwh=20, temp_c=10)
    unsure = predict_range(
        model, PRIOR, soc_pct=60, usable_kwh=20, temp_c=10, energy_sigma_frac=energy_sigma(60, 2.5, 0.04)
    )
    assert unsure.p50_km == sure.p50_km
    assert unsure.p10_km < sure.p10_km and unsure.p90_km > sure.p90_km
