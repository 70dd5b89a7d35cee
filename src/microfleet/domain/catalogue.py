"""The cited catalogue of small electric city cars: one :class:`VehicleSpec` per variant.

The rows come from ``shared/data/vehicles/catalogue.csv`` (35 variants, every figure with the
URL it was read from and a row confidence grade). That folder states no licence, so the file is read
from the settings' data folder (``MICROFLEET_DATA_DIR_PATH``) rather than copied into the package.

Every number keeps its provenance in a :class:`Sourced` wrapper: the source text, the row's confidence
and whether the value is a *prior* (filled by :mod:`microfleet.physics.priors` from a cited typical
value because no source gives it for this car). The catalogue itself never holds priors.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from microfleet.domain.reference_data import reference_data_dir
from microfleet.errors import NotFoundError, PhysicsInputError

CATALOGUE_RELATIVE_PATH = Path("vehicles") / "catalogue.csv"

# Which source column vouches for which value column (shared/data/vehicles/README.md, "Columns").
_SOURCE_OF_COLUMN: Mapping[str, str] = {
    "market_year": "source_main",
    "seats": "source_main",
    "vehicle_class": "source_class",
    "battery_nominal_kwh_stated": "source_battery",
    "battery_gross_kwh": "source_battery",
    "battery_usable_kwh": "source_battery",
    "chemistry": "source_battery",
    "pack_voltage_nominal_v": "source_battery",
    "motor_power_kw_stated": "source_powertrain",
    "motor_peak_kw": "source_powertrain",
    "motor_continuous_kw": "source_powertrain",
    "top_speed_kmh": "source_powertrain",
    "curb_mass_kg": "source_mass",
    "mass_in_running_order_kg": "source_mass",
    "gross_mass_kg": "source_mass",
    "length_mm": "source_dimensions",
    "width_mm": "source_dimensions",
    "height_mm": "source_dimensions",
    "wheelbase_mm": "source_dimensions",
    "wheel_rim_in": "source_dimensions",
    "tyre_size": "source_dimensions",
    "drag_coefficient": "source_aero",
    "frontal_area_m2": "source_aero",
    "range_km": "source_range",
    "range_cycle": "source_range",
    "consumption_wh_per_km": "source_range",
    "ac_charge_kw": "source_charge",
    "dc_charge_kw": "source_charge",
}

# Stable ids, declared once per (model, variant) so a reworded variant never renames a car.
_MODEL_IDS: Mapping[tuple[str, str], str] = {
    (
        "Hongguang Mini EV",
        "Gen 1, 9.2 kWh (2020 launch, two lower trims)",
    ): "wuling-hongguang-mini-ev-gen1-9kwh",
    ("Hongguang Mini EV", "Gen 1, 13.8 kWh (2020 launch, top trim)"): "wuling-hongguang-mini-ev-gen1-14kwh",
    ("Hongguang Mini EV", "Macaron (2021 trim; 9.3 or 13.8 kWh)"): "wuling-hongguang-mini-ev-macaron",
    ("Hongguang Mini EV", "GameBoy (2022)"): "wuling-hongguang-mini-ev-gameboy",
    ("Hongguang Mini EV", "Gen 1, 26.5 kWh long-range (2022)"): "wuling-hongguang-mini-ev-gen1-27kwh",
    ("Hongguang Mini EV Cabrio", "Cabrio (2022)"): "wuling-hongguang-mini-ev-cabrio",
    ("Hongguang Mini EV", "Gen 2, 4-door (2025)"): "wuling-hongguang-mini-ev-gen2",
    ("QQ Ice Cream", "9.6 kWh (Pudding trim, 2021 launch)"): "chery-qq-ice-cream-10kwh",
    ("QQ Ice Cream", "13.9 kWh (Sundae trim, 2021 launch)"): "chery-qq-ice-cream-14kwh",
    ("E100", "E100 (2017)"): "baojun-e100",
    ("E200", "E200 (2018)"): "baojun-e200",
    ("E300", "E300 (2020, 2-3 seats)"): "baojun-e300",
    ("E300 Plus / KiWi EV", "E300 Plus (2020, 4 seats)"): "baojun-e300-plus",
    ("Yep", "Yep (2023, 3-door, RWD)"): "baojun-yep",
    ("Ami", "Ami (2020)"): "citroen-ami",
    ("Rocks-e", "Rocks-e (2021)"): "opel-rocks-e",
    ("Topolino", "Topolino / Topolino Dolcevita (2023)"): "fiat-topolino",
    ("Twizy", "Twizy 45 (2012)"): "renault-twizy-45",
    ("Twizy", "Twizy 80 (2012)"): "renault-twizy-80",
    ("Spring", "Spring Electric 45 (2021)"): "dacia-spring-45-2021",
    ("Spring", "Spring Extreme Electric 65 (2023)"): "dacia-spring-65-2023",
    ("Spring", "Spring Electric 65 (2024 facelift, Extreme)"): "dacia-spring-65-2024",
    ("Spring", "Spring Electric 45 (2024 facelift, Essential)"): "dacia-spring-45-2024",
    ("Spring", "Spring Electric 70 (2025 update, Essential)"): "dacia-spring-70-2025",
    ("Spring", "Spring Electric 100 (2025 update, Extreme)"): "dacia-spring-100-2025",
    (
        "Twingo Electric (Twingo Z.E. / E-Tech électrique)",
        "Twingo Electric (2020-2024)",
    ): "renault-twingo-electric",
    ("Twingo E-Tech electric", "Twingo E-Tech (4th gen, 2026)"): "renault-twingo-e-tech-2026",
    ("500e (New 500)", "42 kWh, 87 kW (2020 'la Prima' launch)"): "fiat-500e-42kwh",
    ("500e (New 500)", "500 Action 23.8 kWh, 70 kW (2020)"): "fiat-500e-action-24kwh",
    ("500e (gen 1, US market)", "500e (2013, California launch)"): "fiat-500e-2013-us",
    ("D2", "D2 (China, 2015-2016)"): "zhidou-d2",
    ("Elaris Pio (Zhidou D2S)", "Elaris Pio (Germany, 2021)"): "elaris-pio",
    ("Birò", "Birò L6e (45 km/h, 2022 update)"): "estrima-biro-l6e",
    ("Birò", "Birò Bolt L7e (60 km/h)"): "estrima-biro-bolt-l7e",
    ("Canta", "Canta 2 Urban Premium Electro (electric)"): "waaijenberg-canta-electric",
}

# Rebadges and siblings share a platform (README: "The Opel Rocks-e and Fiat Topolino rebadges of the Ami").
PLATFORM_OF_MODEL: Mapping[str, str] = {
    "Ami": "citroen-ami",
    "Rocks-e": "citroen-ami",
    "Topolino": "citroen-ami",
    "Hongguang Mini EV": "wuling-hongguang-mini-ev",
    "Hongguang Mini EV Cabrio": "wuling-hongguang-mini-ev",
    "QQ Ice Cream": "chery-qq-ice-cream",
    "Spring": "dacia-spring",
    "500e (New 500)": "fiat-500e-2020",
    "Twizy": "renault-twizy",
    "Birò": "estrima-biro",
}


@dataclass(frozen=True, slots=True)
class Sourced:
    """A value with its provenance: where it was read, how trusted, and whether it is a prior."""

    value: float
    source: str
    confidence: str
    is_prior: bool = False


@dataclass(frozen=True, slots=True)
class SourcedText:
    """A text value (chemistry, cycle name, vehicle class) with its provenance."""

    value: str
    source: str
    confidence: str
    is_prior: bool = False


@dataclass(frozen=True, slots=True)
class VehicleSpec:
    """One catalogue variant; every number carries its source (``None`` where no source gives it)."""

    model_id: str
    platform_id: str
    make: str
    model: str
    variant: str
    confidence: str
    market_year: Sourced | None
    vehicle_class: SourcedText | None
    seats: Sourced | None
    chemistry: SourcedText | None
    battery_nominal_kwh: Sourced | None
    battery_gross_kwh: Sourced | None
    battery_usable_kwh: Sourced | None
    pack_voltage_nominal_v: Sourced | None
    motor_power_kw_stated: Sourced | None
    motor_peak_kw: Sourced | None
    motor_continuous_kw: Sourced | None
    top_speed_kmh: Sourced | None
    curb_mass_kg: Sourced | None
    mass_in_running_order_kg: Sourced | None
    gross_mass_kg: Sourced | None
    length_mm: Sourced | None
    width_mm: Sourced | None
    height_mm: Sourced | None
    wheelbase_mm: Sourced | None
    wheel_rim_in: Sourced | None
    tyre_size: SourcedText | None
    drag_coefficient: Sourced | None
    frontal_area_m2: Sourced | None
    range_km: Sourced | None
    range_cycle: SourcedText | None
    consumption_wh_per_km: Sourced | None
    ac_charge_kw: Sourced | None
    dc_charge_kw: Sourced | None
    notes: str

    @property
    def display_name(self) -> str:
        """Make, model and variant as one line for tables."""
        return f"{self.make.split(' (')[0]} {self.model} — {self.variant}"


class Catalogue:
    """The loaded catalogue: look a variant up by ``model_id`` or iterate over all of them."""

    def __init__(self, specs: list[VehicleSpec]) -> None:
        self._by_id = {spec.model_id: spec for spec in specs}
        if len(self._by_id) != len(specs):
            raise PhysicsInputError("catalogue has two rows with the same model_id")

    def get(self, model_id: str) -> VehicleSpec:
        """Return the variant with this id, or raise :class:`NotFoundError` naming the known ids."""
        try:
            return self._by_id[model_id]
        except KeyError:
            known = ", ".join(sorted(self._by_id))
            raise NotFoundError(f"unknown vehicle model_id {model_id!r}; known ids: {known}") from None

    def all(self) -> list[VehicleSpec]:
        """Every variant in catalogue order."""
        return list(self._by_id.values())

    def __iter__(self) -> Iterator[VehicleSpec]:
        """Iterate over the variants in catalogue order."""
        return iter(self._by_id.values())

    def __len__(self) -> int:
        """Number of variants."""
        return len(self._by_id)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def _number(row: Mapping[str, str], column: str, model_id: str, confidence: str) -> Sourced | None:
    raw = row.get(column, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise PhysicsInputError(f"{model_id}: column {column!r} holds {raw!r}, not a number") from None
    return Sourced(value, row.get(_SOURCE_OF_COLUMN[column], "").strip(), confidence)


def _text(row: Mapping[str, str], column: str, confidence: str) -> SourcedText | None:
    raw = row.get(column, "").strip()
    if not raw:
        return None
    return SourcedText(raw, row.get(_SOURCE_OF_COLUMN[column], "").strip(), confidence)


def spec_from_row(row: Mapping[str, str]) -> VehicleSpec:
    """Build a :class:`VehicleSpec` from one CSV row (a mapping of column name to cell text)."""
    model, variant = row["model"].strip(), row["variant"].strip()
    model_id = _MODEL_IDS.get((model, variant)) or _slug(f"{row['make'].split(' (')[0]} {model} {variant}")
    confidence = row.get("confidence", "").strip() or "low"

    def num(column: str) -> Sourced | None:
        return _number(row, column, model_id, confidence)

    def txt(column: str) -> SourcedText | None:
        return _text(row, column, confidence)

    return VehicleSpec(
        model_id=model_id,
        platform_id=PLATFORM_OF_MODEL.get(model, model_id),
        make=row["make"].strip(),
        model=model,
        variant=variant,
        confidence=confidence,
        market_year=num("market_year"),
        vehicle_class=txt("vehicle_class"),
        seats=num("seats"),
        chemistry=txt("chemistry"),
        battery_nominal_kwh=num("battery_nominal_kwh_stated"),
        battery_gross_kwh=num("battery_gross_kwh"),
        battery_usable_kwh=num("battery_usable_kwh"),
        pack_voltage_nominal_v=num("pack_voltage_nominal_v"),
        motor_power_kw_stated=num("motor_power_kw_stated"),
        motor_peak_kw=num("motor_peak_kw"),
        motor_continuous_kw=num("motor_continuous_kw"),
        top_speed_kmh=num("top_speed_kmh"),
        curb_mass_kg=num("curb_mass_kg"),
        mass_in_running_order_kg=num("mass_in_running_order_kg"),
        gross_mass_kg=num("gross_mass_kg"),
        length_mm=num("length_mm"),
        width_mm=num("width_mm"),
        height_mm=num("height_mm"),
        wheelbase_mm=num("wheelbase_mm"),
        wheel_rim_in=num("wheel_rim_in"),
        tyre_size=txt("tyre_size"),
        drag_coefficient=num("drag_coefficient"),
        frontal_area_m2=num("frontal_area_m2"),
        range_km=num("range_km"),
        range_cycle=txt("range_cycle"),
        consumption_wh_per_km=num("consumption_wh_per_km"),
        ac_charge_kw=num("ac_charge_kw"),
        dc_charge_kw=num("dc_charge_kw"),
        notes=row.get("notes", "").strip(),
    )


def parse_catalogue(csv_text: str) -> Catalogue:
    """Parse the catalogue CSV text (header row first) into a :class:`Catalogue`."""
    reader = csv.DictReader(io.StringIO(csv_text))
    missing = {"make", "model", "variant", "confidence"} - set(reader.fieldnames or [])
    if missing:
        raise PhysicsInputError(f"catalogue CSV lacks column(s): {', '.join(sorted(missing))}")
    return Catalogue([spec_from_row(row) for row in reader])


def default_catalogue_path(data_dir: Path | None = None) -> Path:
    """Where the catalogue CSV lives in the reference-data folder (see :mod:`reference_data`)."""
    return reference_data_dir(data_dir) / CATALOGUE_RELATIVE_PATH


def load_catalogue(path: Path | None = None) -> Catalogue:
    """Read and parse the catalogue CSV (default: :func:`default_catalogue_path`)."""
    csv_path = path or default_catalogue_path()
    try:
        text = csv_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFoundError(
            f"vehicle catalogue not found at {csv_path}; "
            "set MICROFLEET_DATA_DIR_PATH to the shared data folder"
        ) from None
    return parse_catalogue(text)
