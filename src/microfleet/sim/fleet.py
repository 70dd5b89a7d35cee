"""The twin's vehicles: who drives each (an owner or the sharing fleet), its model and its true battery."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from microfleet.sim.city import Places, RoadNetwork
from microfleet.sim.models import MODELS, TwinModel
from microfleet.sim.people import Person, make_person
from microfleet.sim.scenario import Scenario, registrations
from microfleet.sim.sharing import SharedCar

NOMINAL_TYRE_KPA: Final = 250.0  # typical cold placard pressure of small cars (assumed, 2.5 bar)
CURRENT_OFFSET_SD_A: Final = 0.3  # Hall-sensor zero offset spread (assumed, ±0.5% of a 60 A range)


@dataclass
class TwinVehicle:
    """One simulated car and the hidden truth about it."""

    index: int
    vehicle_id: str
    model: TwinModel
    fleet: str | None  # None = privately owned; else the sharing fleet's id
    person: Person | None
    true_soh_pct: float
    current_offset_a: float
    soc_pct: float
    odometer_km: float

    @property
    def capacity_kwh(self) -> float:
        """True usable capacity now."""
        return self.model.usable_kwh * self.true_soh_pct / 100.0


def make_fleet(
    scenario: Scenario,
    net: RoadNetwork,
    places: Places,
    rng: np.random.Generator,
    models: dict[str, TwinModel] | None = None,
) -> list[TwinVehicle]:
    """Build the scenario's vehicles: the first ``(1 - sharing_share)`` are owners' cars, the rest shared."""
    fleet: list[TwinVehicle] = []
    for i, reg in enumerate(registrations(scenario)):
        owned = reg.fleet_id is None
        fleet.append(
            TwinVehicle(
                index=i,
                vehicle_id=reg.vehicle_id,
                model=(models or MODELS)[reg.model_id],
                fleet=reg.fleet_id,
                person=make_person(net, places, rng) if owned else None,
                # Cars 0-4 years old lose ~2%/year (assumed, LFP calendar + cycle ageing in city use).
                true_soh_pct=float(100.0 - rng.uniform(0.0, 8.0)),
                current_offset_a=float(rng.normal(0.0, CURRENT_OFFSET_SD_A)),
                soc_pct=float(rng.uniform(50.0, 95.0)),
                odometer_km=float(rng.uniform(1_000.0, 40_000.0)),
            )
        )
    return fleet


def shared_cars(fleet: list[TwinVehicle], places: Places, rng: np.random.Generator) -> list[SharedCar]:
    """The dispatcher's view of the shared cars, parked at random places at the start."""
    return [
        SharedCar(
            vehicle=v.index,
            location=int(rng.choice(places.other)),
            usable_kwh=v.capacity_kwh,
            charge_kw=max(v.model.dc_charge_kw, v.model.ac_charge_kw),
            est_soc_pct=v.soc_pct,
        )
        for v in fleet
        if v.fleet is not None
    ]
