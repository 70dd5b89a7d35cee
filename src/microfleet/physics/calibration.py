"""Shared-parameter calibration against published ranges, leave-one-out so every prediction stays honest.

Only parameters that every car shares are fitted: the usable fraction of an unlabelled stated pack
energy, the tyre rolling-resistance coefficient, a scale on the motor + inverter loss map and the 12 V
auxiliary load. A car's own values (mass, pack, motor, dimensions) are never touched, and a value the
catalogue gives (a labelled usable kWh, a published Cd) is never replaced. Each parameter is searched on
a grid inside a cited band; for every car the grid point that best fits the *other* cars (and not the
car itself, nor rows identical to it) is used to predict it.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from microfleet.domain.catalogue import Sourced
from microfleet.errors import PhysicsInputError
from microfleet.physics.params import VehicleParams
from microfleet.physics.priors import (
    AUX_BASE_KW,
    ROLLING_RESISTANCE,
    USABLE_FRACTION_OF_STATED,
    ResolvedSpec,
)

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

# Search bands, each with its source:
# usable / stated energy: the catalogue's three labelled pairs span 89–97 % (catalogue README,
# "LFP usable SoC window": Fiat 500e 37.3/42, Dacia Spring 25/26.8, Twingo 21.3/22).
USABLE_FRACTION_GRID = tuple(np.round(np.arange(0.89, 0.9701, 0.01), 2))
# Rolling resistance: EU tyre label classes A (≤ 0.0065) to E (≤ 0.0105) for C1 tyres
# (Reg. (EC) 1222/2009 Annex I part A); F/G tyres are not fitted to new cars for type approval.
ROLLING_RESISTANCE_GRID = tuple(np.round(np.arange(0.0065, 0.01051, 0.0005), 4))
# Loss-map scale: 0.5–1.5 moves the map's peak from about 97 % to about 91 % and its 5 %-load
# efficiency from about 90 % to about 75 %, the band of FASTSim 3.1's bundled small/large baseline
# motor curves and published small PMSM maps (drivetrain.py docstring).
MOTOR_LOSS_SCALE_GRID = (0.5, 0.75, 1.0, 1.25, 1.5)
# 12 V auxiliaries during a test: 0.1–0.4 kW around FASTSim's Zoe 0.25 kW (priors.AUX_SOURCE).
AUX_BASE_KW_GRID = (0.1, 0.175, 0.25, 0.325, 0.4)


@dataclass(frozen=True)
class SharedParams:
    """The shared parameters: usable fraction (–), rolling resistance (–), loss scale (–), aux (kW)."""

    usable_fraction: float = USABLE_FRACTION_OF_STATED
    rolling_resistance: float = ROLLING_RESISTANCE
    motor_loss_scale: float = 1.0
    aux_base_kw: float = AUX_BASE_KW

    def describe(self) -> str:
        """One line for tables and logs."""
        return (
            f"usable {self.usable_fraction:.2f} x stated, RRC {self.rolling_resistance:.4f}, "
            f"loss x{self.motor_loss_scale:.2f}, aux {self.aux_base_kw:.3f} kW"
        )


PRIORS = SharedParams()


def resolved_with_shared(resolved: ResolvedSpec, shared: SharedParams, how: str) -> ResolvedSpec:
    """A copy of ``resolved`` with the shared parameters applied where its value is a prior.

    ``how`` names the calibration (for example "leave-one-out fit on 14 other cars") and goes into the
    source of every value replaced, so provenance tables show it.
    """
    usable = resolved.usable_kwh
    if usable.is_prior:
        usable = Sourced(
            resolved.stated_kwh.value * shared.usable_fraction,
            f"calibrated: {shared.usable_fraction:.2f} x stated kWh ({how}); stated: "
            f"{resolved.stated_kwh.source}",
            "prior",
            is_prior=True,
        )
    rrc = resolved.rolling_resistance
    if rrc.is_prior:
        rrc = Sourced(shared.rolling_resistance, f"calibrated: RRC ({how}), band EU label A-E", "prior", True)
    return replace(resolved, usable_kwh=usable, rolling_resistance=rrc)


def params_with_shared(
    resolved: Sequence[ResolvedSpec],
    shared: SharedParams,
    *,
    payload_kg: float | Sequence[float] = 75.0,
    how: str = "shared parameters",
) -> VehicleParams:
    """Vehicle parameters with ``shared`` applied (loss scale and auxiliaries on every car)."""
    params = VehicleParams.from_resolved(
        [resolved_with_shared(r, shared, how) for r in resolved], payload_kg=payload_kg
    )
    n = params.n_vehicles
    return replace(
        params,
        motor_loss_scale=np.full(n, shared.motor_loss_scale),
        aux_base_kw=np.full(n, shared.aux_base_kw),
    )


def search_grid() -> list[SharedParams]:
    """Every grid point of the consumption-side parameters (usable fraction left at its prior)."""
    return [
        SharedParams(USABLE_FRACTION_OF_STATED, rr, scale, aux)
        for rr, scale, aux in itertools.product(
            ROLLING_RESISTANCE_GRID, MOTOR_LOSS_SCALE_GRID, AUX_BASE_KW_GRID
        )
    ]


@dataclass(frozen=True)
class LeaveOneOut:
    """Per car: the shared parameters fitted without it, and its predicted range (km) from them."""

    fitted: tuple[SharedParams, ...]
    predicted_range_km: FloatArray
    training_cars: tuple[int, ...]


def leave_one_out(
    consumption_wh_per_km: FloatArray,
    grid: Sequence[SharedParams],
    stated_kwh: FloatArray,
    usable_kwh: FloatArray,
    usable_is_prior: BoolArray,
    ecm_factor: FloatArray,
    published_km: FloatArray,
    trainable: BoolArray,
    groups: Sequence[int],
) -> LeaveOneOut:
    """Fit the shared parameters on all trainable cars but one (and its group), predict that one.

    Parameters
    ----------
    consumption_wh_per_km
        Pack-terminal consumption (Wh/km) of every car at every grid point, ``(n_grid, n_cars)``.
    grid
        The consumption-side grid points, in the row order of ``consumption_wh_per_km``.
    stated_kwh, usable_kwh, usable_is_prior
        Stated pack energy (kWh), usable energy (kWh) and whether the usable figure is a prior, ``(n,)``.
    ecm_factor
        Range to empty over usable / consumption for each car (–, about 0.95: ECM losses and cut-off).
    published_km
        Published range (km), ``(n,)``.
    trainable
        Cars whose published figure may be fitted (for example not those on a stand-in cycle), ``(n,)``.
    groups
        Group label per car; rows of one group (identical cars) are held out together.

    Returns
    -------
    LeaveOneOut
        Fitted parameters and the predicted range per car; the usable fraction is fitted on its grid.

    """
    n_grid, n_cars = consumption_wh_per_km.shape
    if n_grid != len(grid) or len(published_km) != n_cars:
        raise PhysicsInputError("consumption table, grid and cars do not line up")
    fractions = np.asarray(USABLE_FRACTION_GRID)
    usable = np.where(usable_is_prior[None, :], stated_kwh[None, :] * fractions[:, None], usable_kwh)
    # predicted range (km) for every (consumption grid point, usable fraction, car)
    pred = usable[None, :, :] * ecm_factor * 1000.0 / consumption_wh_per_km[:, None, :]
    sq_err = np.log(pred / published_km) ** 2
    group_arr = np.asarray(groups)
    fitted: list[SharedParams] = []
    out = np.empty(n_cars)
    used: set[int] = set()
    for i in range(n_cars):
        train = trainable & (group_arr != group_arr[i])
        if not train.any():
            raise PhysicsInputError("leave-one-out needs at least one other trainable car")
        used.update(np.flatnonzero(train).tolist())
        loss = sq_err[:, :, train].mean(axis=2)
        g, f = np.unravel_index(int(np.argmin(loss)), loss.shape)
        fitted.append(replace(grid[int(g)], usable_fraction=float(fractions[int(f)])))
        out[i] = pred[int(g), int(f), i]
    return LeaveOneOut(tuple(fitted), out, tuple(sorted(used)))


def fit_all(
    consumption_wh_per_km: FloatArray,
    grid: Sequence[SharedParams],
    stated_kwh: FloatArray,
    usable_kwh: FloatArray,
    usable_is_prior: BoolArray,
    ecm_factor: FloatArray,
    published_km: FloatArray,
    trainable: BoolArray,
) -> SharedParams:
    """The shared parameters fitted on every trainable car (for use beyond the validation set)."""
    n = len(published_km)
    fit = leave_one_out(
        np.concatenate([consumption_wh_per_km, consumption_wh_per_km[:, :1]], axis=1),
        grid,
        np.r_[stated_kwh, 1.0],
        np.r_[usable_kwh, 1.0],
        np.r_[usable_is_prior, False],
        np.r_[ecm_factor, 1.0],
        np.r_[published_km, 1.0],
        np.r_[trainable, False],
        [*range(n), n],
    )
    return fit.fitted[n]
