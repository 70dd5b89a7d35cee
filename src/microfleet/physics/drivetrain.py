"""Motor + inverter + reduction gear: losses over speed and torque, power caps and regenerative braking.

Losses follow the loss model of Larminie & Lowry (Electric Vehicle Technology Explained, 2nd ed.,
2012, §6.4): ``P_loss = k_c T² + k_i ω + k_w ω³ + C`` (copper, iron, windage, constant inverter and
control losses). Here it is written per unit of the motor's peak power, with torque per unit of the
base torque and speed per unit of base speed, so one set of coefficients scales to 4–90 kW machines.
The coefficients are priors chosen so the map peaks at about 94 % and falls to about 80–85 % at 5 %
load, the shape of FASTSim's baseline motor curves (FASTSim ``small/large_baseline_eff``: 0.92–0.94
peak) and of published small PMSM maps.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

COPPER_LOSS_PU = 0.050  # at base torque: 95 % at base point with the terms below
IRON_LOSS_PU = 0.005  # at base speed; PMSM no-load iron loss is about 0.5-1 % of rating at base speed
WINDAGE_LOSS_PU = 0.001  # at base speed (cubic: 2.7 % at 3x base)
CONSTANT_LOSS_PU = 0.003  # inverter switching/controls while the drive is active
# Field-weakening range: a PMSM holds peak power from base speed to about 3× base (constant-power
# speed ratio 3–4, Zhu & Howe, Proc. IEEE 95(4) 2007); base speed is top speed / 3 here.
CONSTANT_POWER_SPEED_RATIO = 3.0
# Single-stage reduction gear: 97 % (Guzzella & Sciarretta 2013, §3: 0.95–0.98 for one fixed ratio).
GEAR_EFFICIENCY = 0.97
# Regenerative braking limit as a fraction of peak motor power. The Twizy controller regenerates
# about 3.5 kW against 13–16 kW drive (Twizy-Virtual-BMS README, catalogue README): 0.3 is used.
REGEN_POWER_FRACTION = 0.3
# Whether a platform regenerates, where its maker says so (platform id -> source). Every car in the
# model regenerates (above); this records the statements that confirm it, so a "no regeneration"
# reading of a range miss can be checked against them. Opel's Rocks-e FAQ, "Bietet der Rocks-e einen
# Rekuperationsmodus ...?": "Ja, der Rocks-e verfügt über ein Energierückgewinnungssystem, das beim
# Bremsen oder beim Loslassen des Gaspedals arbeitet ... nicht einstellbar" (one fixed level). The
# Rocks-e is the Citroën Ami rebadged (catalogue platform ``citroen-ami``), so it holds for the Ami too.
# No source found states the level, and none states that any catalogue car does not regenerate.
REGENERATION_STATED: dict[str, str] = {
    "citroen-ami": (
        "regenerates on braking and on lifting off, one fixed level (Opel Rocks-e FAQ, "
        "https://www.opel.de/fahrzeuge/rocks-e/faq/batterie-laden.html)"
    ),
}
# Regeneration fades out at low speed where friction brakes take over (FASTSim's regen curve is zero
# at standstill; 5→15 km/h linear fade used here).
REGEN_FADE_LOW_MPS = 5.0 / 3.6
REGEN_FADE_HIGH_MPS = 15.0 / 3.6
# The battery may deliver this multiple of motor peak (inverter and auxiliaries on top of the motor).
BATTERY_POWER_HEADROOM = 1.25


def motor_loss_kw(
    motor_power_kw: FloatArray,
    mean_speed_mps: FloatArray,
    motor_peak_kw: FloatArray,
    base_speed_mps: FloatArray,
) -> FloatArray:
    """Motor + inverter loss (kW) at a mechanical shaft power and vehicle speed.

    Parameters
    ----------
    motor_power_kw
        Shaft power (kW), ``(n, t)``; positive motoring, negative generating.
    mean_speed_mps
        Vehicle speed (m/s), ``(n, t)``; motor speed is proportional (fixed ratio).
    motor_peak_kw, base_speed_mps
        Per-vehicle peak power (kW) and base speed (m/s), ``(n,)``.

    Returns
    -------
    ndarray
        Loss (kW, ≥ 0), ``(n, t)``; zero at standstill with no torque.

    """
    peak = motor_peak_kw[:, None]
    w = mean_speed_mps / base_speed_mps[:, None]
    p = np.abs(motor_power_kw) / peak
    torque_pu = p / np.maximum(w, 0.05)
    active = (np.abs(motor_power_kw) > 0.0) | (mean_speed_mps > 0.0)
    loss_pu = COPPER_LOSS_PU * torque_pu**2 + IRON_LOSS_PU * w + WINDAGE_LOSS_PU * w**3 + CONSTANT_LOSS_PU
    return np.asarray(np.where(active, loss_pu * peak, 0.0))


def max_motor_power_kw(
    mean_speed_mps: FloatArray, motor_peak_kw: FloatArray, base_speed_mps: FloatArray
) -> FloatArray:
    """Shaft power available (kW): peak torque below base speed, peak power above, ``(n, t)``."""
    w = mean_speed_mps / base_speed_mps[:, None]
    return np.asarray(motor_peak_kw[:, None] * np.minimum(np.maximum(w, 0.0), 1.0) + 1e-9)


def regen_fraction(mean_speed_mps: FloatArray) -> FloatArray:
    """Share of braking power offered to the motor (0–1) as regeneration fades at low speed."""
    span = REGEN_FADE_HIGH_MPS - REGEN_FADE_LOW_MPS
    return np.asarray(np.clip((mean_speed_mps - REGEN_FADE_LOW_MPS) / span, 0.0, 1.0))
