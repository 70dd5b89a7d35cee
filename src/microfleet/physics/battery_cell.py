"""Cell chemistry data: OCV curves of LFP and NMC, equivalent-circuit priors and thermal constants.

OCV tables were computed once from PyBaMM 26.10 parameter sets (a C/50 single-particle-model discharge
of the cell from 100 % SoC, reading "Bulk open-circuit voltage [V]" against discharged capacity)::

    pybamm.Simulation(pybamm.lithium_ion.SPM(), parameter_values=pybamm.ParameterValues("Prada2013"),
                      experiment=pybamm.Experiment(["Discharge at C/50 until 2.0 V"], period="60 seconds"))

LFP: ``Prada2013`` (A123 ANR26650 LFP/graphite; Prada et al., J. Electrochem. Soc. 160 (2013) A616).
NMC: ``Chen2020`` (LG M50 NMC811/graphite-SiOx; Chen et al., J. Electrochem. Soc. 167 (2020) 080534).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]

OCV_SOC_GRID = np.linspace(0.0, 1.0, 21)
OCV_LFP_V = np.array(
    [2.0962, 2.8051, 2.9857, 3.1139, 3.1698, 3.1865, 3.207, 3.2334, 3.2531, 3.2624, 3.2661,
     3.2678, 3.2688, 3.27, 3.2742, 3.293, 3.3098, 3.3132, 3.3142, 3.3164, 3.6]
)  # fmt: skip
OCV_NMC_V = np.array(
    [2.5175, 3.1129, 3.2981, 3.4348, 3.4856, 3.5291, 3.582, 3.6294, 3.6673, 3.7057, 3.7512,
     3.7986, 3.8408, 3.8899, 3.9481, 3.9945, 4.0422, 4.081, 4.0967, 4.1236, 4.2]
)  # fmt: skip

# Nominal cell voltages: LFP 3.2 V (catalogue README, "Battery"); NMC 3.65 V (Chen2020 table mean).
LFP_V_NOMINAL = 3.2
NMC_V_NOMINAL = 3.65
# Discharge cut-off and charge limit: LFP 2.5 V / 3.65 V (catalogue README: "charge to 3.65 V,
# cut-off about 2.0-2.5 V"); NMC 2.5 V / 4.2 V (Chen2020 parameter set limits).
LFP_V_MIN, LFP_V_MAX = 2.5, 3.65
NMC_V_MIN, NMC_V_MAX = 2.5, 4.2

# Ohmic and RC resistance normalised by capacity (Ω·Ah), 25 °C. A 2.3 Ah A123 LFP cell has about
# 10–15 mΩ DC resistance (Prada et al. 2013) → 0.03 Ω·Ah; large prismatic automotive cells are
# similar per Ah. Two RC pairs with τ of about 10 s and 300 s after Hu, Li & Peng, J. Power Sources
# 198 (2012) 359 (2-RC models fit LFP and NMC best among 12 ECMs).
R0_OHM_AH = {True: 0.035, False: 0.030}
R1_OHM_AH = {True: 0.012, False: 0.010}
R2_OHM_AH = {True: 0.015, False: 0.012}
TAU1_S, TAU2_S = 10.0, 300.0
# LFP hysteresis between charge and discharge OCV: about 10–20 mV per cell (Roscher & Sauer,
# J. Power Sources 196 (2011) 331); NMC's is negligible at this scale.
HYSTERESIS_MAX_V = {True: 0.015, False: 0.0}
# Rate at which hysteresis settles, per unit of SoC moved (Plett, Battery Management Systems vol. 1,
# 2015, §2.7 "ESC model": h' = -|i|γ/Q (h - M sgn i)); γ = 60 settles 95 % within 5 % SoC.
HYSTERESIS_GAMMA = 60.0
# Arrhenius activation energy for cell resistance, J/mol: about 20 kJ/mol triples R between 25 °C
# and −10 °C, the ratio reported for LFP cells (Jaguemont et al., Applied Energy 164 (2016) 99, review).
RESISTANCE_ACTIVATION_J_PER_MOL = 20_000.0
GAS_CONSTANT_J_PER_MOL_K = 8.314
# Cell-to-cell capacity spread (1σ): 0.5–1 % for new automotive cells (Rumpf, Naumann & Jossen,
# J. Energy Storage 14 (2017) 224; Dubarry et al. 2010). 0.8 % is used.
CAPACITY_SPREAD_FRAC = 0.008
# Thermal: cell specific heat about 1,000–1,100 J/(kg·K) (Forgez et al., J. Power Sources 195 (2010)
# 2961 for A123 LFP); pack UA per kg of pack for a passively cooled small pack (prior).
SPECIFIC_HEAT_J_PER_KG_K = 1_050.0
UA_W_PER_K_PER_KG = 0.08
# Pack-level specific energy (Wh/kg) used for pack mass: LFP 125, NMC 150 (IEA Global EV Outlook 2022).
PACK_WH_PER_KG = {True: 125.0, False: 150.0}
# Charge acceptance as C-rate at the pack: small EVs charge AC at ≤ 1 C; DC at up to about 1 C
# (Spring 30 kW DC on 26.8 kWh, catalogue); 1.2 C cap used for regen and charging.
MAX_CHARGE_C = 1.2


@dataclass(frozen=True)
class CellArrays:
    """Cell-chemistry constants broadcast to one entry per vehicle."""

    v_nominal_v: FloatArray
    r0_ohm_ah: FloatArray
    r1_ohm_ah: FloatArray
    r2_ohm_ah: FloatArray
    tau1_s: FloatArray
    tau2_s: FloatArray
    v_min_v: FloatArray
    v_max_v: FloatArray
    hysteresis_max_v: FloatArray
    capacity_spread_frac: float
    pack_wh_per_kg: FloatArray
    specific_heat_j_per_kg_k: float
    ua_w_per_k_per_kg: float
    max_charge_c: float


def cell_chemistry_arrays(lfp: BoolArray) -> CellArrays:
    """Chemistry constants per vehicle from an LFP flag array (``False`` = NMC)."""

    def pick(table: dict[bool, float]) -> FloatArray:
        return np.where(lfp, table[True], table[False]).astype(np.float64)

    n = lfp.shape[0]
    return CellArrays(
        v_nominal_v=np.where(lfp, LFP_V_NOMINAL, NMC_V_NOMINAL).astype(np.float64),
        r0_ohm_ah=pick(R0_OHM_AH),
        r1_ohm_ah=pick(R1_OHM_AH),
        r2_ohm_ah=pick(R2_OHM_AH),
        tau1_s=np.full(n, TAU1_S),
        tau2_s=np.full(n, TAU2_S),
        v_min_v=np.where(lfp, LFP_V_MIN, NMC_V_MIN).astype(np.float64),
        v_max_v=np.where(lfp, LFP_V_MAX, NMC_V_MAX).astype(np.float64),
        hysteresis_max_v=pick(HYSTERESIS_MAX_V),
        capacity_spread_frac=CAPACITY_SPREAD_FRAC,
        pack_wh_per_kg=pick(PACK_WH_PER_KG),
        specific_heat_j_per_kg_k=SPECIFIC_HEAT_J_PER_KG_K,
        ua_w_per_k_per_kg=UA_W_PER_K_PER_KG,
        max_charge_c=MAX_CHARGE_C,
    )


def ocv_v(soc_frac: FloatArray, lfp: BoolArray) -> FloatArray:
    """Open-circuit voltage of one cell (V) at state of charge ``soc_frac`` (0–1), per vehicle.

    Parameters
    ----------
    soc_frac
        State of charge as a fraction, shape ``(n,)`` matching ``lfp``.
    lfp
        ``True`` for LFP, ``False`` for NMC, shape ``(n,)``.

    Returns
    -------
    ndarray
        OCV in volts, same shape as ``soc_frac``. Outside 0–1 the end slopes are extended linearly.

    """
    s = np.asarray(soc_frac, dtype=np.float64)
    v_lfp = _interp_extrapolate(s, OCV_LFP_V)
    v_nmc = _interp_extrapolate(s, OCV_NMC_V)
    return np.where(lfp, v_lfp, v_nmc)


def _interp_extrapolate(soc: FloatArray, table: FloatArray) -> FloatArray:
    inside = np.interp(soc, OCV_SOC_GRID, table)
    step = OCV_SOC_GRID[1]
    low_slope = (table[1] - table[0]) / step
    high_slope = (table[-1] - table[-2]) / step
    below = table[0] + (soc - 0.0) * low_slope
    above = table[-1] + (soc - 1.0) * high_slope
    return np.where(soc < 0.0, below, np.where(soc > 1.0, above, inside))
