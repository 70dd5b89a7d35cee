"""A car's energy per trip: the physics prior, calibrated on the car's own drives, plus a learned residual.

The prior is :mod:`microfleet.physics` (road load, drivetrain losses, regeneration, auxiliaries, HVAC)
run on a nominal city speed trace that has the trip's distance and duration. Its energy is split into
components — rolling, aerodynamic, the rest of the traction energy (inertia and drivetrain losses, i.e. the
effective mass), the 12 V auxiliaries per hour and the HVAC draw at the ambient temperature — and a car's
calibration is one multiplier per component (``theta``): effective rolling resistance x mass, drag area,
effective mass, auxiliary kW and HVAC load against temperature. It is fitted by ridge-regularised,
Huber-weighted least squares towards the prior, from sufficient statistics, so new drives refine it
incrementally. A car that sends only speed, GPS and SoC learns the same way: its drives' energy is
ΔSoC x usable capacity with that estimate's resolution as its weight.

A residual (scikit-learn ``HistGradientBoostingRegressor``, imported lazily) learns what the physics does
not see — traffic by hour, the driver, weather — as a log-ratio, and split-conformal quantiles on drives
held out from it give P10/P90 (by temperature band, so cold trips get their own spread).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray

from microfleet.domain.catalogue import Catalogue
from microfleet.errors import NotFoundError, PhysicsInputError, RouteInputError
from microfleet.physics.energy import power_breakdown
from microfleet.physics.hvac import hvac_power_kw
from microfleet.physics.params import VehicleParams

FloatArray = NDArray[np.float64]

MODEL_VERSION: Final = "trip-energy-1"
COMPONENTS: Final = ("rolling", "aero", "inertia_losses", "aux_h", "hvac")
# Nominal trace: a stop about every 350 m (assumed: signalised junctions every 250-500 m in dense city
# cores; the twin's Shanghai extract has 1,384 signals on ~970 km of road, about one per 350 m of main
# road), accelerating and braking at 1.0 m/s² (gentle urban driving, WLTP class-1 peaks 0.8-1.0 m/s²).
STOP_SPACING_M: Final = 350.0
NOMINAL_ACCEL_MPS2: Final = 1.0
MOVING_SHARE: Final = 0.85  # share of a city trip's time spent moving (assumed; the rest waiting)
CABIN_TARGET_C: Final = 22.0  # cabin set point of the HVAC prior (the twin's drivers: 19-24 °C)
# Prior spread of each multiplier (1 sigma, relative): the calibration's ridge. Wide enough that a
# car 40 % off its type-approval prior (issue 17, a real quadricycle's logs) is reached in weeks.
PRIOR_SIGMA: Final = np.array([2.0, 2.0, 1.0, 2.0, 1.0])
HUBER_K: Final = 2.0  # robust weights beyond 2 sigma (Huber 1964's k 1.345-2 band)
MIN_DRIVES: Final = 10  # fewer drives than this: the catalogue prior, labelled, with its wide band
MIN_TRIP_KM: Final = 0.2
# Without a car's own drives the prior's band: real driving uses 0.9-1.6x a type-approval-calibrated
# prior (docs/routes.md "Trip energy": published real-world figures; issue 17: -40 % on a quadricycle).
PRIOR_BAND: Final = (0.9, 1.6)
COLD_C: Final = 5.0  # conformal bands: below / above this ambient temperature
# The generic prior for a car the catalogue cannot resolve (the QQ Ice Cream has no published mass) or for a
# request without a car: the Wuling Mini EV 13.8 kWh, the catalogue's best-documented A00 city car.
GENERIC_MODEL_ID: Final = "wuling-hongguang-mini-ev-gen1-14kwh"


@dataclass(frozen=True, slots=True)
class TripQuery:
    """One trip to predict: distance (km), expected duration (s), ambient (°C), departure hour, weekend."""

    distance_km: float
    duration_s: float
    ambient_temp_c: float
    hour: float = 8.0
    weekend: bool = False


@dataclass(frozen=True, slots=True)
class DriveObservation:
    """A drive the car did: its trip figures, measured energy (kWh) and that measurement's resolution."""

    trip: TripQuery
    energy_kwh: float
    resolution_kwh: float = 0.0
    end_ts_ms: int = 0


@dataclass(frozen=True, slots=True)
class EnergyForecast:
    """P10/P50/P90 energy (kWh) of each trip, the model version and what it rests on."""

    p10_kwh: FloatArray
    p50_kwh: FloatArray
    p90_kwh: FloatArray
    version: str
    basis: str  # "car" (calibrated on its drives) or "catalogue prior (needs N more drives)"


def nominal_segment(
    distance_m: FloatArray, duration_s: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Cruise speed (m/s), segments per trip and the padded 1 Hz speed of one stop-to-stop segment.

    The trip is split into segments of about :data:`STOP_SPACING_M`; each accelerates to a cruise speed,
    cruises and brakes, so that the moving time is :data:`MOVING_SHARE` of the trip's duration.
    """
    n_seg = np.maximum(np.round(distance_m / STOP_SPACING_M), 1.0)
    seg_m = distance_m / n_seg
    tau = np.maximum(duration_s * MOVING_SHARE / n_seg, 1.0)
    a = NOMINAL_ACCEL_MPS2
    disc = a * a * tau * tau - 4.0 * a * seg_m
    v_trap = (a * tau - np.sqrt(np.maximum(disc, 0.0))) / 2.0
    v_c = np.where(disc >= 0.0, v_trap, np.sqrt(a * seg_m))
    ramp_s = v_c / a
    cruise_s = np.maximum(seg_m - v_c * ramp_s, 0.0) / np.maximum(v_c, 1e-6)
    length = int(np.ceil(np.max(2 * ramp_s + cruise_s))) + 2
    t = np.arange(length, dtype=np.float64)[None, :]
    up = np.minimum(t * a, v_c[:, None])
    down = np.maximum((2 * ramp_s + cruise_s)[:, None] - t, 0.0) * a
    speed = np.minimum(up, np.minimum(down, v_c[:, None]))
    # scale so each segment covers exactly its length (the 1 Hz grid rounds the ramps)
    covered = np.maximum(speed.sum(axis=1), 1e-6)
    speed *= (seg_m / covered)[:, None]
    return v_c, n_seg, speed


class PhysicsPrior:
    """The physics of one car, as components of a trip's energy (kWh) per :data:`COMPONENTS`."""

    def __init__(self, params: VehicleParams) -> None:
        """Keep one car's parameters (the first of ``params``)."""
        self.params = params.take([0])

    def components(self, trips: Sequence[TripQuery]) -> FloatArray:
        """Energy components (kWh) of each trip, shape ``(n, 5)``; their plain sum is the prior."""
        if not trips:
            return np.zeros((0, len(COMPONENTS)))
        d_m = np.array([max(t.distance_km, 0.0) * 1000.0 for t in trips])
        dur = np.array([max(t.duration_s, 1.0) for t in trips])
        temp = np.array([t.ambient_temp_c for t in trips])
        _, n_seg, speed = nominal_segment(d_m, dur)
        rolling, aero, rest = self.traction_components(speed, temp)
        rolling, aero, rest = rolling * n_seg, aero * n_seg, rest * n_seg
        p = self.params
        hours = dur / 3600.0
        hvac = hvac_power_kw(
            temp[:, None],
            CABIN_TARGET_C,
            p.cabin_ua_w_per_k,
            p.hvac_heat_max_kw,
            p.hvac_cool_max_kw,
            p.has_heat_pump,
        )[:, 0]
        return np.column_stack([rolling, aero, rest, hours, hvac * hours])

    def traction_components(
        self, speed_mps: FloatArray, ambient_temp_c: FloatArray
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Rolling, aerodynamic and remaining traction energy (kWh) of each 1 Hz speed trace row.

        Each is the physics' battery energy (auxiliaries and HVAC off) less the same with that force
        switched off, so they sum to the traction energy: ``rest`` holds inertia and drivetrain losses.
        """
        n = speed_mps.shape[0]
        p = self.params.take(np.zeros(n, dtype=np.intp))
        zero = np.zeros(n)

        def traction(pp: VehicleParams) -> FloatArray:
            flows = power_breakdown(
                replace(pp, aux_base_kw=zero), speed_mps, 1.0, ambient_temp_c=ambient_temp_c, hvac_on=False
            )
            return np.asarray(flows.battery_kw.sum(axis=1) / 3600.0)

        base = traction(p)
        rolling = base - traction(replace(p, rolling_resistance=zero))
        aero = base - traction(replace(p, drag_area_m2=zero))
        return rolling, aero, base - rolling - aero

    def theta0(self) -> FloatArray:
        """The prior's multipliers: 1 for each energy component, the catalogue's auxiliary kW per hour."""
        return np.array([1.0, 1.0, 1.0, float(self.params.aux_base_kw[0]), 1.0])


@dataclass(frozen=True)
class CarCalibration:
    """A car's fitted multipliers and the sufficient statistics that let new drives refine them."""

    theta: FloatArray
    gram: FloatArray  # sum of w x xᵀ over the drives (weighted normal equations)
    moment: FloatArray  # sum of w x y
    n_drives: int
    window_from_ms: int
    window_to_ms: int
    refits: int

    @property
    def version(self) -> str:
        """Model version, refit count and data window: changes with every refit."""
        window = f"{self.window_from_ms}-{self.window_to_ms}"
        return f"{MODEL_VERSION}.{self.refits} ({self.n_drives} drives, window_ms {window})"


def _solve(prior: PhysicsPrior, gram: FloatArray, moment: FloatArray) -> FloatArray:
    """Weighted least squares with the prior as a ridge (a Gaussian prior of sd ``PRIOR_SIGMA x theta0``)."""
    theta0 = prior.theta0()
    lam = np.diag(1.0 / (PRIOR_SIGMA * np.maximum(theta0, 0.05)) ** 2)
    theta = np.linalg.solve(gram + lam, moment + lam @ theta0)
    return np.asarray(np.maximum(theta, 0.0))


def calibrate(
    prior: PhysicsPrior, drives: Sequence[DriveObservation], previous: CarCalibration | None = None
) -> CarCalibration:
    """Fit (or refine, given ``previous``) a car's multipliers from its drives.

    Each drive weighs by its measurement resolution and a relative model noise; a drive beyond
    :data:`HUBER_K` sigma of the current fit is down-weighted (Huber), so a bad SoC reading or a towing
    does not pull the fit. Drives shorter than :data:`MIN_TRIP_KM` are left out.
    """
    use = [d for d in drives if d.trip.distance_km >= MIN_TRIP_KM and np.isfinite(d.energy_kwh)]
    k = len(COMPONENTS)
    gram = np.zeros((k, k)) if previous is None else previous.gram.copy()
    moment = np.zeros(k) if previous is None else previous.moment.copy()
    theta = prior.theta0() if previous is None else previous.theta
    if use:
        x = prior.components([d.trip for d in use])
        y = np.array([d.energy_kwh for d in use])
        res = np.array([d.resolution_kwh for d in use])
        sigma = np.sqrt((0.08 * np.maximum(x @ theta, 0.05)) ** 2 + res**2 + 0.01**2)
        for _ in range(3):  # IRLS for the Huber weights of this batch
            z = np.abs(y - x @ theta) / sigma
            w = np.where(z <= HUBER_K, 1.0, HUBER_K / np.maximum(z, 1e-9)) / sigma**2
            g = gram + (x * w[:, None]).T @ x
            m = moment + (x * w[:, None]).T @ y
            theta = _solve(prior, g, m)
        gram, moment = g, m
    ts = [d.end_ts_ms for d in use]
    return CarCalibration(
        theta=theta,
        gram=gram,
        moment=moment,
        n_drives=(previous.n_drives if previous else 0) + len(use),
        window_from_ms=min([*ts, *([previous.window_from_ms] if previous else [])], default=0),
        window_to_ms=max([*ts, *([previous.window_to_ms] if previous else [])], default=0),
        refits=(previous.refits + 1) if previous else 0,
    )


def residual_features(trips: Sequence[TripQuery], components: FloatArray) -> FloatArray:
    """What the residual sees: distance, pace, temperature, hour, weekend, the HVAC share of the prior."""
    total = np.maximum(components.sum(axis=1), 1e-6)
    return np.column_stack([
        [t.distance_km for t in trips],
        [t.duration_s / max(t.distance_km, 0.05) for t in trips],
        [t.ambient_temp_c for t in trips],
        [t.hour for t in trips],
        [float(t.weekend) for t in trips],
        components[:, 4] / total,
    ])  # fmt: skip


@dataclass
class ResidualModel:
    """The learned log-ratio correction (median) and its conformal P10/P90 offsets by temperature band."""

    booster: Any = None
    q_cold: tuple[float, float] = (-0.1, 0.1)
    q_mild: tuple[float, float] = (-0.1, 0.1)
    n_fit: int = 0
    n_conformal: int = 0

    def fit(
        self, x_fit: FloatArray, r_fit: FloatArray, x_cal: FloatArray, r_cal: FloatArray, seed: int = 0
    ) -> ResidualModel:
        """Fit the median residual on one set of drives, its P10/P90 on another (split conformal)."""
        # heavy: imported when a model is fitted
        from sklearn.ensemble import HistGradientBoostingRegressor  # type: ignore[import-untyped]
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

        if len(r_fit) >= 30:
            # one thread: OpenMP's team oversubscribes a shared machine's cores and runs 100x slower
            with threadpool_limits(1):
                self.booster = HistGradientBoostingRegressor(
                    loss="absolute_error", max_iter=200, learning_rate=0.05, max_leaf_nodes=15,
                    min_samples_leaf=40, l2_regularization=1.0, random_state=seed,
                ).fit(x_fit, r_fit)  # fmt: skip
        self.n_fit = len(r_fit)
        err = r_cal - self.predict(x_cal)
        self.n_conformal = len(err)
        cold = x_cal[:, 2] < COLD_C if len(err) else np.zeros(0, dtype=bool)
        every = _quantiles(err, (-0.1, 0.1))
        self.q_cold = _quantiles(err[cold], every) if cold.sum() >= 30 else every
        self.q_mild = _quantiles(err[~cold], every) if (~cold).sum() >= 30 else every
        return self

    def predict(self, x: FloatArray) -> FloatArray:
        """Median log-ratio correction for each row (0 without a fitted booster)."""
        if self.booster is None or len(x) == 0:
            return np.zeros(len(x))
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            return np.asarray(self.booster.predict(x), dtype=np.float64)


def _quantiles(err: FloatArray, fallback: tuple[float, float]) -> tuple[float, float]:
    if err.size < 10:
        return fallback
    n = err.size
    # split-conformal rank for the 10th/90th percentile (Lei et al., JASA 113 (2018) 1094, eq. (3))
    lo = np.quantile(err, max(0.0, np.floor(0.1 * (n + 1)) / n))
    hi = np.quantile(err, min(1.0, np.ceil(0.9 * (n + 1)) / n))
    return float(lo), float(hi)


@dataclass
class TripEnergyModel:
    """One car's model: prior, calibration and (fleet-wide) residual; predicts P10/P50/P90 kWh."""

    prior: PhysicsPrior
    calibration: CarCalibration | None = None
    residual: ResidualModel | None = None

    def update(self, drives: Sequence[DriveObservation]) -> TripEnergyModel:
        """Refine the calibration with new drives (incremental: earlier drives live in its statistics)."""
        self.calibration = calibrate(self.prior, drives, self.calibration)
        return self

    def calibrated_kwh(self, trips: Sequence[TripQuery]) -> tuple[FloatArray, FloatArray]:
        """The calibrated physics energy (kWh) of each trip and its components."""
        comp = self.prior.components(trips)
        theta = self.calibration.theta if self.calibration is not None else self.prior.theta0()
        return np.maximum(comp @ theta, 1e-4), comp

    def predict(self, trips: Sequence[TripQuery]) -> EnergyForecast:
        """P10/P50/P90 energy (kWh) of each trip; the catalogue prior's wide band if too few drives."""
        for t in trips:
            if not (np.isfinite(t.distance_km) and t.distance_km > 0 and np.isfinite(t.duration_s)):
                raise RouteInputError(f"a trip needs a positive distance and a duration, got {t}")
            if not np.isfinite(t.ambient_temp_c):
                raise RouteInputError("a trip needs an ambient temperature")
        e, comp = self.calibrated_kwh(trips)
        n = self.calibration.n_drives if self.calibration is not None else 0
        if n < MIN_DRIVES:
            basis = f"catalogue prior (needs {MIN_DRIVES - n} more drives)"
            return EnergyForecast(e * PRIOR_BAND[0], e, e * PRIOR_BAND[1], f"{MODEL_VERSION}.prior", basis)
        assert self.calibration is not None
        res = self.residual or ResidualModel()
        x = residual_features(trips, comp)
        mid = e * np.exp(res.predict(x))
        cold = x[:, 2] < COLD_C
        lo = np.where(cold, res.q_cold[0], res.q_mild[0])
        hi = np.where(cold, res.q_cold[1], res.q_mild[1])
        return EnergyForecast(mid * np.exp(lo), mid, mid * np.exp(hi), self.calibration.version, "car")


def log_ratio(model: TripEnergyModel, drives: Sequence[DriveObservation]) -> tuple[FloatArray, FloatArray]:
    """Residual features and log(measured / calibrated physics) of drives, for fitting the residual."""
    trips = [d.trip for d in drives]
    e, comp = model.calibrated_kwh(trips)
    y = np.array([max(d.energy_kwh, 1e-3) for d in drives])
    return residual_features(trips, comp), np.log(y / e)


def prior_for_model(catalogue: Catalogue, model_id: str | None) -> tuple[PhysicsPrior, str]:
    """A catalogue model's physics prior and its label; the generic prior, labelled, if it cannot be built."""
    siblings = catalogue.all()
    if model_id is not None:
        try:
            params = VehicleParams.from_specs([catalogue.get(model_id)], siblings=siblings)
            return PhysicsPrior(params), f"catalogue prior of {model_id}"
        except (PhysicsInputError, NotFoundError):
            pass
    params = VehicleParams.from_specs([catalogue.get(GENERIC_MODEL_ID)], siblings=siblings)
    why = "no catalogue model given" if model_id is None else f"{model_id} lacks values the physics needs"
    return PhysicsPrior(params), f"generic catalogue prior ({GENERIC_MODEL_ID}; {why})"
