"""Numbers as the API shows them: rounded at the edge to the precision of the measurement behind them.

Inside Microfleet every figure keeps full float precision (sums of many small steps stay exact); a
client gets ``27.6`` km, not ``27.600000000000364``. The unit is in every field's name (DESIGN §4), so the
number of decimals follows from the name's suffix; the first matching suffix wins.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Final, TypeVar

from microfleet.domain.charges import ChargeSession
from microfleet.domain.drives import Drive

_DECIMALS_BY_SUFFIX: Final = (
    ("_kwh_per_soc_pct", 5),  # pack kWh per SoC %: 0.1-0.3 for these cars, kept to 0.01 Wh
    ("_wh_per_km", 1),  # efficiency: 0.1 Wh/km
    ("_deg", 6),  # WGS84 degrees: 6 places is 0.1 m, finer than a phone or telematics GPS (2-5 m)
    ("_kwh", 3),  # 1 Wh: the resolution of BMS energy counters (OVMS v.b.energy.*: 0.001 kWh)
    ("_kw", 2),  # 10 W
    ("_kmh", 1),  # 0.1 km/h, as CAN speed signals resolve
    ("_km", 3),  # 1 m
    ("_pct", 2),  # SoC: 0.01 %, the finest BMS resolution seen in small EVs' logs
    ("_kg", 2),
    ("_share", 4),
    ("_s", 1),
    ("_m", 1),  # altitude, ascent: 0.1 m
    ("_c", 1),  # temperature: 0.1 °C
    ("cost", 4),  # money: four places, so per-kWh sums still add up in any currency
)

T = TypeVar("T", Drive, ChargeSession)


def decimals_for(name: str) -> int | None:
    """Decimal places a field of this name is shown with (None: leave it as it is)."""
    for suffix, places in _DECIMALS_BY_SUFFIX:
        if name.endswith(suffix) or name == suffix.lstrip("_"):
            return places
    return None


def _round(name: str, value: Any) -> Any:
    if isinstance(value, float) and (places := decimals_for(name)) is not None:
        return round(value, places)
    return value


def rounded_row(row: dict[str, Any]) -> dict[str, Any]:
    """A row with every float field rounded by its name."""
    return {name: _round(name, value) for name, value in row.items()}


def rounded(obj: T) -> T:
    """A copy of a drive or charge with every float field rounded by its name, the route's points too."""
    changes: dict[str, Any] = {}
    for field in dataclasses.fields(obj):
        value = getattr(obj, field.name)
        if field.name == "route":
            places = decimals_for("_deg")
            changes["route"] = tuple((round(lat, places), round(lon, places)) for lat, lon in value)
        elif isinstance(value, float):
            changes[field.name] = _round(field.name, value)
    return dataclasses.replace(obj, **changes)
