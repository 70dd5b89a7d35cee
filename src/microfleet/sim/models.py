"""The car models the twin can simulate and the source of each number (light: the CLI imports it).

Values marked ``catalogue`` come from ``shared/data/vehicles/catalogue.csv`` (its row cites the source);
values marked ``assumed`` are not published for that car and are typical of its class. At run time
:class:`microfleet.sim.vehicles.TwinPhysics` replaces capacity, mass and pack layout by the values the
physics resolves from the catalogue.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final


@dataclass(frozen=True, slots=True)
class TwinModel:
    """One car model as the twin drives it; every number carries its unit and (in MODELS) its source."""

    model_id: str
    name: str
    usable_kwh: float
    curb_mass_kg: float
    motor_peak_kw: float
    top_speed_kmh: float
    cda_m2: float
    crr: float
    chemistry: str
    cells_series: int
    ac_charge_kw: float
    dc_charge_kw: float
    soc_step_pct: float


MODELS: Final[dict[str, TwinModel]] = {
    m.model_id: m
    for m in (
        # catalogue: 13.8 kWh, 20 kW, 100 km/h, 665 kg (gen 1 row), 9 h on the slow charger → ≈1.5 kW AC.
        # assumed: usable = stated (no figure), CdA 0.78 m² (1.49 m × 1.62 m box, Cd ≈ 0.40), 30s LFP (96 V).
        TwinModel("wuling-hongguang-mini-ev-gen1-14kwh", "Wuling Hongguang Mini EV 13.8 kWh",
                  13.8, 665.0, 20.0, 100.0, 0.78, 0.011, "LFP", 30, 1.5, 0.0, 1.0),
        # catalogue: 9.2 kWh LFP, 20 kW, 100 km/h, 665 kg, 6.5 h on a 220 V outlet → ≈1.4 kW AC.
        TwinModel("wuling-hongguang-mini-ev-gen1-9kwh", "Wuling Hongguang Mini EV 9.2 kWh",
                  9.2, 665.0, 20.0, 100.0, 0.78, 0.011, "LFP", 30, 1.4, 0.0, 1.0),
        # catalogue: 13.9 kWh LFP, 100 km/h. assumed: 730 kg, 20 kW, 1.6 kW AC, CdA 0.80 m², 32s LFP.
        TwinModel("chery-qq-ice-cream-14kwh", "Chery QQ Ice Cream 13.9 kWh",
                  13.9, 730.0, 20.0, 100.0, 0.80, 0.011, "LFP", 32, 1.6, 0.0, 0.5),
        # catalogue: 26.8 kWh (25 usable), 48 kW, 125 km/h, 984 kg, 7 kW AC, 30 kW DC.
        # assumed: CdA 0.70 m², 72s NMC.
        TwinModel("dacia-spring-65-2024", "Dacia Spring Electric 65 (2024)",
                  25.0, 984.0, 48.0, 125.0, 0.70, 0.010, "NMC", 72, 7.0, 30.0, 0.5),
        # catalogue: 5.5 kWh, 48 V, 6 kW, 45 km/h, 485 kg, 1.8 kW AC. assumed: CdA 0.90, 15s LFP (48 V).
        TwinModel("citroen-ami", "Citroën Ami (2020)",
                  5.5, 485.0, 6.0, 45.0, 0.90, 0.012, "LFP", 15, 1.8, 0.0, 1.0),
    )
}  # fmt: skip
