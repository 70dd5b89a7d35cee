"""Shared-parameter calibration: leave-one-out never sees the held-out car; catalogue values stay."""

from __future__ import annotations

import numpy as np
import pytest

from microfleet.domain.catalogue import load_catalogue
from microfleet.physics import VehicleParams, resolve_spec
from microfleet.physics.calibration import (
    PRIORS,
    SharedParams,
    leave_one_out,
    params_with_shared,
    resolved_with_shared,
    search_grid,
)
from microfleet.physics.cycles import load_cycle
from microfleet.physics.range_sim import cycle_consumption_wh_per_km


def _table(n_cars: int = 5) -> tuple[np.ndarray, list[SharedParams]]:
    grid = search_grid()[:6]
    rng = np.random.default_rng(3)
    return rng.uniform(60.0, 140.0, size=(len(grid), n_cars)), grid


def _loo(published: np.ndarray, trainable: np.ndarray | None = None) -> object:
    table, grid = _table(len(published))
    n = len(published)
    return leave_one_out(
        table, grid, np.full(n, 20.0), np.full(n, 18.0), np.ones(n, dtype=bool), np.full(n, 0.95),
        published, np.ones(n, dtype=bool) if trainable is None else trainable, list(range(n)),
    )  # fmt: skip


def test_held_out_prediction_ignores_its_own_published_range():
    published = np.array([200.0, 180.0, 150.0, 220.0, 170.0])
    base = _loo(published)
    moved = published.copy()
    moved[2] = 10_000.0  # an absurd figure for car 2 must not change car 2's prediction
    again = _loo(moved)
    assert again.predicted_range_km[2] == base.predicted_range_km[2]  # type: ignore[attr-defined]
    assert again.fitted[2] == base.fitted[2]  # type: ignore[attr-defined]
    # ...but it does move the others, which train on it
    assert not np.array_equal(again.predicted_range_km[[0, 1, 3, 4]], base.predicted_range_km[[0, 1, 3, 4]])  # type: ignore[attr-defined]


def test_a_held_out_platform_is_not_trained_on_through_its_siblings():
    # cars 0 and 1 share a platform (group 0): car 1's figure must not move car 0's prediction
    table, grid = _table(5)
    published = np.array([200.0, 180.0, 150.0, 220.0, 170.0])

    def fit(pub: np.ndarray) -> object:
        return leave_one_out(
            table, grid, np.full(5, 20.0), np.full(5, 18.0), np.ones(5, dtype=bool), np.full(5, 0.95),
            pub, np.ones(5, dtype=bool), [0, 0, 2, 3, 4],
        )  # fmt: skip

    moved = published.copy()
    moved[1] = 10_000.0
    assert fit(moved).predicted_range_km[0] == fit(published).predicted_range_km[0]  # type: ignore[attr-defined]
    assert fit(moved).predicted_range_km[2] != fit(published).predicted_range_km[2]  # type: ignore[attr-defined]


def test_untrainable_cars_are_never_trained_on():
    published = np.array([200.0, 180.0, 150.0, 220.0, 170.0])
    fit = _loo(published, np.array([True, True, False, True, True]))
    assert 2 not in fit.training_cars  # type: ignore[attr-defined]


def test_catalogue_values_are_kept_and_priors_are_replaced():
    cat = load_catalogue()
    spring = resolve_spec(cat.get("dacia-spring-65-2024"), cat.all())  # usable 25 kWh from evkx
    mini = resolve_spec(cat.get("wuling-hongguang-mini-ev-gen1-9kwh"), cat.all())  # usable is a prior
    shared = SharedParams(usable_fraction=0.95, rolling_resistance=0.007)
    assert resolved_with_shared(spring, shared, "test").usable_kwh.value == 25.0
    out = resolved_with_shared(mini, shared, "test")
    assert out.usable_kwh.value == pytest.approx(0.95 * 9.2)
    assert out.usable_kwh.is_prior and "calibrated" in out.usable_kwh.source
    assert out.rolling_resistance.value == 0.007


def test_loss_scale_and_aux_raise_consumption():
    cat = load_catalogue()
    resolved = [resolve_spec(cat.get("dacia-spring-65-2024"), cat.all())]
    cycle = load_cycle("wltc_class3b")
    base = cycle_consumption_wh_per_km(params_with_shared(resolved, PRIORS), cycle)
    lossy = cycle_consumption_wh_per_km(
        params_with_shared(resolved, SharedParams(motor_loss_scale=1.5)), cycle
    )
    aux = cycle_consumption_wh_per_km(params_with_shared(resolved, SharedParams(aux_base_kw=0.4)), cycle)
    plain = cycle_consumption_wh_per_km(VehicleParams.from_resolved(resolved), cycle)
    assert base[0] == pytest.approx(plain[0])  # priors reproduce the uncalibrated model
    assert lossy[0] > base[0] and aux[0] > base[0]


def test_sibling_mass_follows_the_pack_of_a_sized_sibling():
    cat = load_catalogue()
    long_range = resolve_spec(cat.get("wuling-hongguang-mini-ev-gen1-27kwh"), cat.all())
    # 665 kg (9.2 kWh launch car) + 17.3 kWh at 125 Wh/kg, not the 700 kg Macaron with an unstated pack
    assert long_range.curb_mass_kg.value == pytest.approx(665.0 + 17.3 * 8.0)
    assert "wuling-hongguang-mini-ev-gen1-9kwh" in long_range.curb_mass_kg.source


def test_concatenate_keeps_order_and_values():
    cat = load_catalogue()
    specs = [cat.get("citroen-ami"), cat.get("dacia-spring-65-2024")]
    both = VehicleParams.from_specs(specs, siblings=cat.all())
    parts = VehicleParams.concatenate([both.take([0]), both.take([1])])
    assert parts.model_ids == both.model_ids
    np.testing.assert_array_equal(parts.mass_kg, both.mass_kg)


def test_a_rebadge_borrows_its_siblings_pack_voltage_as_a_prior():
    cat = load_catalogue()
    rocks = resolve_spec(cat.get("opel-rocks-e"), cat.all())  # the Ami's 48 V pack under an Opel badge
    assert rocks.pack_voltage_nominal_v.value == 48.0
    assert rocks.pack_voltage_nominal_v.is_prior
    assert "citroen-ami" in rocks.pack_voltage_nominal_v.source
