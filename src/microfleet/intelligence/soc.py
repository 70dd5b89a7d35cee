"""State of charge of a traction pack: an extended Kalman filter over an equivalent circuit, and a baseline.

Public interface (pure NumPy; the battery service and ``bench/battery_soc_eval.py`` call it)::

    track = estimate_soc(t_s, current_a, voltage_v, temp_c, chemistry="LFP", capacity_ah=130.0,
                         n_series=32, bms_soc_pct=None, initial_soc_pct=None)
    track.soc_pct, track.sigma_pct      # (n,) estimate after each sample and its 1-sigma, both in %
    track.rejected                      # samples the gate refused (current spikes, voltage dropouts)
    track.offset_a, track.gain_frac     # the current sensor's zero offset (A) and gain error it learnt
    coulomb_count(t_s, current_a, capacity_ah=130.0, initial_soc_pct=80.0)   # the baseline, (n,) in %

Inputs are one car's samples in time order: ``t_s`` seconds (strictly increasing), ``current_a`` the *pack*
current as the car reports it, **positive = discharge** (telemetry v1 ``pack_current_a``), ``voltage_v`` the
pack terminal voltage, ``temp_c`` the pack temperature; ``capacity_ah`` the pack's capacity (the SoH part
supplies it; the nameplate is fine), ``n_series`` cells in series. ``voltage_v`` and ``temp_c`` may hold NaN
(that sample gives no voltage update; the last finite temperature, or 25 °C, is used); ``t_s`` and
``current_a`` may not. Fewer than two samples, NaN times or currents, non-increasing times or a non-positive
capacity raise :class:`~microfleet.errors.InvalidInputError`. A gap longer than ``MAX_GAP_S`` is taken as
the car asleep (contactors open): no charge is counted across it and the RC voltage relaxes.

Model (per cell, the pack current flows through every series cell): ``v = OCV(z) + h + dv − v1 − r0·i``,
``i = (i_measured − b) / (1 + g)``. States: SoC ``z``, the slow RC voltage ``v1``, LFP hysteresis ``h``
(Plett's ESC model), a voltage-sensor bias ``dv``, the current sensor's offset ``b`` and gain error ``g``,
and the ohmic resistance ``r0`` (per-pack, learnt). The fast RC pair of :mod:`microfleet.physics.
battery_cell` is lumped into ``r0`` (samples come every 5-10 s, past its 10 s time constant). The OCV curve
is the estimator's prior (``ocv``; default the chemistry's curve in ``physics/battery_cell.py``).

Calibration: at rest (current under ``REST_C_RATE`` for ``REST_S``) the voltage is trusted more (OCV after
relaxation); at full charge (charging current tapered below ``FULL_TAPER_C_RATE`` while the cell voltage is
within ``FULL_MARGIN_V`` of the curve's top) SoC is pulled to 100 %. The BMS SoC, if given, is a weak
measurement (``BMS_SIGMA_PCT``, at most once per ``BMS_EVERY_S``), gated like the others. The innovation gate
refuses a voltage whose normalised innovation exceeds ``GATE_SIGMA``; if the same voltage passes with the
previous current, the *current* was the spike and is replaced by the previous one. Every refusal is counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
from numpy.typing import NDArray

from microfleet.errors import InvalidInputError
from microfleet.physics import battery_cell

FloatArray = NDArray[np.float64]

# Sample handling. Telemetry arrives every 5 s driving, 10 s charging, 60 s parked awake, 600 s asleep
# (the twin's cadences, sim/samples.py); a gap past 5 minutes is a sleeping car whose BMS counts nothing.
MAX_GAP_S: Final = 300.0
# Rest: below C/50 for 30 min the slow RC pair (τ 300 s, battery_cell.TAU2_S) has relaxed to < 0.3 %.
REST_C_RATE: Final = 0.02
REST_S: Final = 1800.0
# Full charge: a CC-CV charger ends when the current tapers to C/20 at the top voltage (IEC 62660-1 uses
# C/20 as the end-of-charge current for capacity tests); within 30 mV of the curve's top counts as there.
FULL_TAPER_C_RATE: Final = 0.05
FULL_MARGIN_V: Final = 0.03
FULL_SIGMA_PCT: Final = 1.0
# Weak BMS measurement: LFP BMSs err by up to ±15 % on the plateau (ACCURE, accure.net 2024, "SOC
# estimation errors for LFP batteries can exceed 15 %") and the error is slow, so 10 points 1σ at most once
# an hour. Where the OCV is steep (4 mV per % or more: an LFP cell below about 20 % or above 95 %) a BMS
# corrects its count from voltage (the recalibration ACCURE describes; the twin models the same,
# sim/sensor_errors.py), and its SoC counts 3 points 1σ. Chosen on the twin's seed 1 (the bench scores 7).
BMS_SIGMA_PCT: Final = 10.0
BMS_EVERY_S: Final = 3600.0
BMS_STEEP_MV_PER_PCT: Final = 4.0
BMS_STEEP_SIGMA_PCT: Final = 3.0
# Innovation gate: 4σ (a χ² test with one degree of freedom at about 6e-5 false refusals). A gate that
# refuses this many voltages in a row is re-opened (the state, not the sensor, is wrong) and P widened.
GATE_SIGMA: Final = 4.0
GATE_REOPEN_AFTER: Final = 6
# Current spikes: a jump of 1 C or more between samples whose ohmic voltage step (r0·Δi) is over 10σ of the
# voltage sensor, yet the voltage moved less than a quarter of it (or the other way), is a spike in the
# current reading, not in the current: r0 is not 4 times smaller than the learnt value.
SPIKE_MIN_C_RATE: Final = 1.0
SPIKE_MIN_STEP_SIGMA: Final = 10.0
SPIKE_FOLLOW_FRAC: Final = 0.25
# Physical bounds: a pack current beyond 10 C or a cell voltage outside 1.5-5 V is garbage outright.
MAX_C_RATE: Final = 10.0
CELL_V_BOUNDS: Final = (1.5, 5.0)
# Measurement noise per cell: pack voltage quantised to 0.1 V with 50 mV noise (the twin's telemetry,
# sim/sensors.py) is about 3 mV a cell on 32 cells. Model error of the OCV prior: a real pack's curve
# differs from the prior by 20-80 mV on the LFP plateau (the twin's assumed curve in sim/vehicles.py against
# PyBaMM's Prada2013 in battery_cell.py), so voltage counts little under load (100 mV) and more at rest (30).
SIGMA_V_SENSOR: Final = 0.003
SIGMA_V_MODEL_LOAD: Final = 0.100
SIGMA_V_MODEL_REST: Final = 0.030
# Priors (1σ). Offset: the twin's Hall sensors have a zero offset of about 0.1-0.3 A plus a drift of
# 2-20 mA/K (sim/sensor_profiles.py, LEM DHAB S/24 datasheet); gain error 0.5-2 % (issue 14): 1.2 % 1σ.
SIGMA_OFFSET_A: Final = 0.3
SIGMA_GAIN: Final = 0.012
MAX_GAIN: Final = 0.05  # 2.5 x the 2 % band's edge
MAX_OFFSET_C_RATE: Final = 0.02  # 2.7 A on a 136 Ah pack, 10 x a Hall sensor's 0.3 A offset
SIGMA_DV: Final = 0.050  # divider ±0.5 % (sim/sensor_profiles.py) ≈ 16 mV a cell, plus the prior's offset
SIGMA_RC_V: Final = 0.005
# Random walks per hour: offset drift 10 mA/K over a few kelvin an hour; resistance with temperature error.
WALK_OFFSET_A_PER_H: Final = 0.03
WALK_DV_V_PER_H: Final = 0.001
WALK_R0_FRAC_PER_H: Final = 0.05
# Unmodelled charge per step, 2 % of the charge moved (1σ): the capacity given is a nameplate or an SoH
# estimate (a few % off), coulombic efficiency 99.5-99.9 % (Gyenes et al., J. Electrochem. Soc. 162 (2015)
# A278), a 5 s sample of a current that changes every second, 0.1 A quantisation.
SIGMA_CHARGE_FRAC: Final = 0.02
T_REF_K: Final = 298.15

_Z, _V1, _H, _DV, _B, _G, _R0 = range(7)


@dataclass(frozen=True)
class SocTrack:
    """State of charge after each sample, its 1σ uncertainty, and what the filter learnt and refused."""

    soc_pct: FloatArray
    sigma_pct: FloatArray
    rejected: int
    offset_a: float
    gain_frac: float
    r0_ohm: float
    rejected_current: int = 0
    rejected_voltage: int = 0


def _check(t_s: FloatArray, current_a: FloatArray, capacity_ah: float) -> None:
    if t_s.ndim != 1 or t_s.size < 2:
        raise InvalidInputError(f"state of charge needs at least 2 samples, got {t_s.size}")
    if current_a.shape != t_s.shape:
        raise InvalidInputError(f"current_a has {current_a.size} samples, t_s {t_s.size}")
    if not (np.all(np.isfinite(t_s)) and np.all(np.isfinite(current_a))):
        raise InvalidInputError("t_s and current_a must be finite (NaN or infinite values found)")
    if np.any(np.diff(t_s) <= 0.0):
        raise InvalidInputError("t_s must be strictly increasing")
    if not (np.isfinite(capacity_ah) and capacity_ah > 0.0):
        raise InvalidInputError(f"capacity_ah must be positive, got {capacity_ah}")


def coulomb_count(
    t_s: FloatArray, current_a: FloatArray, *, capacity_ah: float, initial_soc_pct: float
) -> FloatArray:
    """Plain coulomb counting (%): the initial SoC minus the reported current integrated over time.

    Each interval is counted at the current reported at its start; intervals longer than ``MAX_GAP_S``
    (a sleeping car) count nothing, like the car's BMS. No clipping, no correction: the baseline.
    """
    t = np.asarray(t_s, dtype=np.float64)
    i = np.asarray(current_a, dtype=np.float64)
    _check(t, i, capacity_ah)
    dt = np.diff(t)
    ah = np.where(dt <= MAX_GAP_S, i[:-1] * dt, 0.0) / 3600.0
    return np.asarray(initial_soc_pct - np.concatenate([[0.0], np.cumsum(ah)]) / capacity_ah * 100.0)


@dataclass(frozen=True)
class _Pack:
    lfp: bool
    q_ah: float
    n: int
    soc_grid: FloatArray
    ocv_v: FloatArray
    r1_ohm: float
    tau_s: float
    h_max_v: float
    r0_prior_ohm: float

    def ocv(self, z: float) -> tuple[float, float]:
        """OCV (V) and its slope dOCV/dz (V per unit SoC) at ``z``, linear outside the table."""
        g, v = self.soc_grid, self.ocv_v
        k = int(np.clip(np.searchsorted(g, z) - 1, 0, g.size - 2))
        slope = float((v[k + 1] - v[k]) / (g[k + 1] - g[k]))
        return float(v[k] + slope * (z - g[k])), slope


def _arrhenius(temp_c: float) -> float:
    ea = battery_cell.RESISTANCE_ACTIVATION_J_PER_MOL / battery_cell.GAS_CONSTANT_J_PER_MOL_K
    return float(np.exp(ea * (1.0 / (temp_c + 273.15) - 1.0 / T_REF_K)))


def estimate_soc(
    t_s: FloatArray,
    current_a: FloatArray,
    voltage_v: FloatArray,
    temp_c: FloatArray,
    *,
    chemistry: Literal["LFP", "NMC"],
    capacity_ah: float,
    n_series: int,
    bms_soc_pct: FloatArray | None = None,
    initial_soc_pct: float | None = None,
    ocv: tuple[FloatArray, FloatArray] | None = None,
) -> SocTrack:
    """Track state of charge with an extended Kalman filter (see the module docstring for the model).

    Parameters
    ----------
    t_s, current_a, voltage_v, temp_c
        One car's samples: time (s), pack current (A, positive = discharge), pack voltage (V), pack
        temperature (°C); shape ``(n,)``.
    chemistry
        ``"LFP"`` or ``"NMC"``: picks the OCV prior, resistances and hysteresis of ``physics/battery_cell``.
    capacity_ah
        Pack capacity (Ah).
    n_series
        Cells in series in the pack.
    bms_soc_pct
        The car's own SoC (%), used as a weak, gated measurement; NaN entries are skipped.
    initial_soc_pct
        Starting SoC (%); default the first finite BMS SoC, else the OCV inversion of the first voltage.
        Its prior 1σ is 20 points when guessed from the voltage, 10 from the BMS, 5 when given.
    ocv
        ``(soc_frac_grid, cell_ocv_v)``: the cell's OCV curve if known (a datasheet); default the prior.

    Returns
    -------
    SocTrack
        SoC (%) and 1σ (%) after each sample, counts of refused samples, the learnt sensor errors.

    """
    t = np.asarray(t_s, dtype=np.float64)
    i_meas = np.asarray(current_a, dtype=np.float64).copy()
    _check(t, i_meas, capacity_ah)
    v_meas = np.asarray(voltage_v, dtype=np.float64)
    temp = np.asarray(temp_c, dtype=np.float64)
    if v_meas.shape != t.shape or temp.shape != t.shape:
        raise InvalidInputError("voltage_v and temp_c must have one entry per sample")
    if n_series < 1:
        raise InvalidInputError(f"n_series must be at least 1, got {n_series}")
    if chemistry not in ("LFP", "NMC"):
        raise InvalidInputError(f"chemistry must be 'LFP' or 'NMC', got {chemistry!r}")
    bms = None if bms_soc_pct is None else np.asarray(bms_soc_pct, dtype=np.float64)
    if bms is not None and bms.shape != t.shape:
        raise InvalidInputError("bms_soc_pct must have one entry per sample")
    pack = _pack(chemistry == "LFP", capacity_ah, n_series, ocv)
    return _Filter(pack).run(t, i_meas, v_meas / n_series, temp, bms, initial_soc_pct)


def _pack(lfp: bool, q_ah: float, n: int, ocv: tuple[FloatArray, FloatArray] | None) -> _Pack:
    grid, curve = (
        (battery_cell.OCV_SOC_GRID, battery_cell.OCV_LFP_V if lfp else battery_cell.OCV_NMC_V)
        if ocv is None
        else (np.asarray(ocv[0], dtype=np.float64), np.asarray(ocv[1], dtype=np.float64))
    )
    if grid.ndim != 1 or grid.shape != curve.shape or grid.size < 2 or np.any(np.diff(grid) <= 0):
        raise InvalidInputError("ocv must be two equal-length arrays with an increasing SoC grid")
    r0 = battery_cell.R0_OHM_AH[lfp] + battery_cell.R1_OHM_AH[lfp]  # fast RC lumped into r0
    return _Pack(
        lfp=lfp, q_ah=q_ah, n=n, soc_grid=grid, ocv_v=curve,
        r1_ohm=battery_cell.R2_OHM_AH[lfp] / q_ah, tau_s=battery_cell.TAU2_S,
        h_max_v=battery_cell.HYSTERESIS_MAX_V[lfp], r0_prior_ohm=r0 / q_ah,
    )  # fmt: skip


class _Filter:
    """One pass of the EKF over one car's samples."""

    def __init__(self, pack: _Pack) -> None:
        self.p = pack
        self.x = np.zeros(7)
        self.P = np.zeros((7, 7))
        self.rej_i = 0
        self.rej_v = 0
        self.refused_in_row = 0

    def _start(self, v0: float, bms0: float, initial: float | None) -> None:
        p = self.p
        if initial is not None and np.isfinite(initial):
            z0, sz = initial / 100.0, 0.05
        elif np.isfinite(bms0):
            z0, sz = bms0 / 100.0, 0.10
        else:
            z0, sz = self._invert(v0) if np.isfinite(v0) else 0.5, 0.20
        self.x[:] = [z0, 0.0, -p.h_max_v, 0.0, 0.0, 0.0, p.r0_prior_ohm]
        sd = [sz, SIGMA_RC_V, max(p.h_max_v, 1e-4), SIGMA_DV, SIGMA_OFFSET_A, SIGMA_GAIN, p.r0_prior_ohm]
        self.P = np.diag(np.square(sd))

    def _invert(self, v_cell: float) -> float:
        return float(np.clip(np.interp(v_cell, self.p.ocv_v, self.p.soc_grid), 0.0, 1.0))

    def run(
        self,
        t: FloatArray,
        i_meas: FloatArray,
        v_cell: FloatArray,
        temp: FloatArray,
        bms: FloatArray | None,
        initial: float | None,
    ) -> SocTrack:
        p = self.p
        n = t.size
        bms_arr = np.full(n, np.nan) if bms is None else bms
        first_v = v_cell[np.isfinite(v_cell)]
        first_b = bms_arr[np.isfinite(bms_arr)]
        self._start(
            float(first_v[0]) if first_v.size else np.nan,
            float(first_b[0]) if first_b.size else np.nan,
            initial,
        )
        i_max = MAX_C_RATE * p.q_ah
        soc = np.empty(n)
        sig = np.empty(n)
        temp_now, rest_since, last_bms = 25.0, t[0], -np.inf
        i_prev, v_prev = 0.0, np.nan
        for k in range(n):
            if np.isfinite(temp[k]):
                temp_now = float(temp[k])
            if abs(i_meas[k]) > i_max:  # outside physics: a spike, whatever the voltage says
                self.rej_i += 1
                i_meas[k] = i_prev
            if k > 0:
                self._predict(float(t[k] - t[k - 1]), i_prev)
            if abs(i_meas[k]) >= REST_C_RATE * p.q_ah:
                rest_since = t[k]
            at_rest = t[k] - rest_since >= REST_S
            vk = float(v_cell[k])
            if (
                np.isfinite(vk)
                and np.isfinite(v_prev)
                and self._current_spike(vk - v_prev, i_meas[k] - i_prev, temp_now)
            ):
                self.rej_i += 1
                i_meas[k] = i_prev
            if np.isfinite(vk):
                i_meas[k] = self._voltage_update(vk, float(i_meas[k]), i_prev, temp_now, at_rest, k > 0)
            if np.isfinite(bms_arr[k]) and t[k] - last_bms >= BMS_EVERY_S:
                steep = p.ocv(float(bms_arr[k]) / 100.0)[1] * 10.0 >= BMS_STEEP_MV_PER_PCT  # V/unit → mV/%
                sd = BMS_STEEP_SIGMA_PCT if steep else BMS_SIGMA_PCT
                self._scalar_update(float(bms_arr[k]) / 100.0, _Z, (sd / 100.0) ** 2)
                last_bms = t[k]
            if (
                np.isfinite(vk)
                and -FULL_TAPER_C_RATE * p.q_ah < i_meas[k] < -0.2 * REST_C_RATE * p.q_ah
                and vk >= p.ocv_v[-1] - FULL_MARGIN_V
            ):
                self._scalar_update(1.0, _Z, (FULL_SIGMA_PCT / 100.0) ** 2)
            i_prev = float(i_meas[k])
            if np.isfinite(vk) and CELL_V_BOUNDS[0] <= vk <= CELL_V_BOUNDS[1]:
                v_prev = vk
            soc[k] = self.x[_Z] * 100.0
            sig[k] = np.sqrt(max(self.P[_Z, _Z], 0.0)) * 100.0
        return SocTrack(
            soc_pct=soc, sigma_pct=sig, rejected=self.rej_i + self.rej_v,
            offset_a=float(self.x[_B]), gain_frac=float(self.x[_G]), r0_ohm=float(self.x[_R0]),
            rejected_current=self.rej_i, rejected_voltage=self.rej_v,
        )  # fmt: skip

    def _current_spike(self, dv: float, di: float, temp_c: float) -> bool:
        """Whether a current step is a spike in the reading: the voltage did not follow it.

        Its ohmic step ``r0·Δi`` is clear of noise, yet the voltage moved less than ``SPIKE_FOLLOW_FRAC``
        of it; a real step moves it at least that much.
        """
        if abs(di) < SPIKE_MIN_C_RATE * self.p.q_ah:
            return False
        expected = -self.x[_R0] * _arrhenius(temp_c) * di
        return bool(
            abs(expected) > SPIKE_MIN_STEP_SIGMA * SIGMA_V_SENSOR
            and dv * expected < SPIKE_FOLLOW_FRAC * expected**2
        )

    def _predict(self, dt: float, i_m: float) -> None:
        p, x = self.p, self.x
        asleep = dt > MAX_GAP_S
        q_s = 3600.0 * p.q_ah
        one_g = 1.0 + x[_G]
        i = 0.0 if asleep else (i_m - x[_B]) / one_g
        di_db = 0.0 if asleep else -1.0 / one_g
        di_dg = 0.0 if asleep else -(i_m - x[_B]) / one_g**2
        a = float(np.exp(-dt / p.tau_s))
        decay = float(np.exp(-abs(i) * dt * battery_cell.HYSTERESIS_GAMMA / q_s))
        target_h = -p.h_max_v * np.sign(i) if i != 0.0 else x[_H]
        F = np.eye(7)
        F[_Z, _B] = -dt / q_s * di_db
        F[_Z, _G] = -dt / q_s * di_dg
        F[_V1, _V1] = a
        F[_V1, _B] = (1.0 - a) * p.r1_ohm * di_db
        F[_V1, _G] = (1.0 - a) * p.r1_ohm * di_dg
        F[_H, _H] = decay
        x[_Z] -= i * dt / q_s
        x[_V1] = a * x[_V1] + (1.0 - a) * p.r1_ohm * i
        x[_H] = decay * x[_H] + (1.0 - decay) * target_h
        h = dt / 3600.0
        q = np.zeros(7)
        q[_Z] = (SIGMA_CHARGE_FRAC * abs(i) * dt / q_s) ** 2 + 1e-10 * dt
        q[_V1] = ((1.0 - a) * 0.2 * p.r1_ohm * abs(i)) ** 2
        q[_H] = ((1.0 - decay) * p.h_max_v) ** 2
        q[_DV] = WALK_DV_V_PER_H**2 * h
        q[_B] = WALK_OFFSET_A_PER_H**2 * h
        q[_G] = 1e-8 * h
        q[_R0] = (WALK_R0_FRAC_PER_H * p.r0_prior_ohm) ** 2 * h
        self.P = F @ self.P @ F.T + np.diag(q)

    def _innovation(self, v: float, i_m: float, arr: float) -> tuple[float, FloatArray]:
        p, x = self.p, self.x
        one_g = 1.0 + x[_G]
        i = (i_m - x[_B]) / one_g
        ocv, slope = p.ocv(float(x[_Z]))
        r0 = x[_R0] * arr
        pred = ocv + x[_H] + x[_DV] - x[_V1] - r0 * i
        H = np.zeros(7)
        H[_Z] = slope
        H[_V1] = -1.0
        H[_H] = 1.0
        H[_DV] = 1.0
        H[_B] = r0 / one_g
        H[_G] = r0 * i / one_g
        H[_R0] = -arr * i
        return v - pred, H

    def _voltage_update(
        self, v: float, i_m: float, i_prev: float, temp_c: float, at_rest: bool, has_prev: bool
    ) -> float:
        """Update on one cell voltage; return the current to count from this sample on."""
        lo, hi = CELL_V_BOUNDS
        if not lo <= v <= hi:
            self.rej_v += 1
            return i_m
        arr = _arrhenius(temp_c)
        model = SIGMA_V_MODEL_REST if at_rest else SIGMA_V_MODEL_LOAD
        r_var = SIGMA_V_SENSOR**2 + model**2
        nu, H = self._innovation(v, i_m, arr)
        s = float(H @ self.P @ H) + r_var
        if self.refused_in_row >= GATE_REOPEN_AFTER:  # persistently off: the state is wrong, widen and accept
            self.rej_v -= self.refused_in_row
            self.refused_in_row = 0
            self.P[_Z, _Z] += min((nu / max(abs(H[_Z]), 1e-3)) ** 2, 0.04)
            self.P[_DV, _DV] += SIGMA_DV**2
            s = float(H @ self.P @ H) + r_var
        elif nu * nu > GATE_SIGMA**2 * s:
            nu2, H2 = self._innovation(v, i_prev, arr)
            s2 = float(H2 @ self.P @ H2) + r_var
            if (
                has_prev
                and nu2 * nu2 <= GATE_SIGMA**2 * s2
                and abs(i_m - i_prev) > 0.5 * REST_C_RATE * self.p.q_ah
            ):
                self.rej_i += 1
                self._apply(nu2, H2, s2)
                return i_prev
            self.rej_v += 1
            self.refused_in_row += 1
            return i_m
        self.refused_in_row = 0
        self._apply(nu, H, s)
        return i_m

    def _apply(self, nu: float, H: FloatArray, s: float) -> None:
        K = self.P @ H / s
        self.x += K * nu
        x = self.x
        x[_R0] = max(x[_R0], 0.05 * self.p.r0_prior_ohm)
        # sensor errors stay within physical bands (a filter that explains SoC error as a 10 % gain is wrong)
        x[_G] = float(np.clip(x[_G], -MAX_GAIN, MAX_GAIN))
        x[_B] = float(np.clip(x[_B], -MAX_OFFSET_C_RATE * self.p.q_ah, MAX_OFFSET_C_RATE * self.p.q_ah))
        ikh = np.eye(7) - np.outer(K, H)
        self.P = ikh @ self.P  # Joseph form is not needed at this size; symmetrise instead
        self.P = 0.5 * (self.P + self.P.T)

    def _scalar_update(self, value: float, index: int, r_var: float) -> None:
        H = np.zeros(7)
        H[index] = 1.0
        nu = value - self.x[index]
        s = float(self.P[index, index]) + r_var
        if nu * nu > GATE_SIGMA**2 * s:
            self.rej_v += 1
            return
        self._apply(nu, H, s)
