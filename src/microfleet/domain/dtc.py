"""Diagnostic trouble codes: the common OBD-II codes a small EV sends, decoded for a mechanic.

The code structure (letter = system, second character 0 = generic SAE / 1 = manufacturer, then the
subsystem) is SAE J2012 / ISO 15031-6. Each entry names its source: SAE J2012-DA (the digital annex of
generic code titles) as reproduced by the public lists cited beside each group. A code not in the table
is decoded by its structure only and says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

_J2012: Final = "SAE J2012-DA (generic title), via obd-codes.com / OBD-Codes list"
_TWIN: Final = "Microfleet twin's own code (no generic code exists for pad wear)"


@dataclass(frozen=True, slots=True)
class TroubleCode:
    """One decoded code: its title, the system it belongs to, how urgent, what to do, and the source."""

    code: str
    title: str
    system: str
    severity: str  # info, warning or critical (the alert severities)
    action: str
    source: str


_SYSTEMS: Final = {"P": "powertrain", "C": "chassis", "B": "body", "U": "network"}

# (code, title, severity, suggested action); titles are SAE J2012's generic titles.
_CODES: Final[tuple[tuple[str, str, str, str, str], ...]] = (
    ("P0562", "System Voltage Low", "warning", "test and charge or replace the 12 V battery", _J2012),
    ("P0563", "System Voltage High", "warning", "check the DC-DC converter output", _J2012),
    ("P0A7F", "Hybrid/EV Battery Pack Deterioration", "critical",
     "book a traction-battery inspection (cell balance, capacity test)", _J2012),
    ("P0A80", "Replace Hybrid/EV Battery Pack", "critical", "traction-battery inspection before next use",
     _J2012),
    ("P0AFA", "Hybrid/EV Battery System Voltage Low", "warning", "charge, then check the pack voltage",
     _J2012),
    ("P0A2F", "Drive Motor \"A\" Temperature Too High", "warning",
     "check motor coolant level and pump, and the inverter's cooling", _J2012),
    ("P0A3F", "Drive Motor \"A\" Position Sensor Circuit", "critical", "inspect the motor resolver wiring",
     _J2012),
    ("P0A78", "Drive Motor \"A\" Inverter Performance", "critical", "inverter diagnosis at a workshop",
     _J2012),
    ("P0A93", "Inverter \"A\" Cooling System Performance", "warning", "check inverter coolant and pump",
     _J2012),
    ("P0AA6", "Hybrid/EV Battery Voltage System Isolation Fault", "critical",
     "do not drive: high-voltage isolation check", _J2012),
    ("P0C73", "Motor Electronics Coolant Pump \"A\" Control Circuit/Open", "warning",
     "check the electronics coolant pump", _J2012),
    ("P0D27", "Battery Charger Input Voltage Too Low", "info", "check the charging point's supply", _J2012),
    ("C0035", "Left Front Wheel Speed Sensor Circuit", "warning", "inspect the wheel speed sensor", _J2012),
    ("C0750", "Left Front Tire Pressure Sensor", "info", "check the TPMS sensor's battery", _J2012),
    ("C1B00", "Brake pad wear sensor tripped", "warning", "replace the brake pads", _TWIN),
    ("U0100", "Lost Communication With ECM/PCM \"A\"", "warning", "check the CAN bus wiring", _J2012),
    ("U0111", "Lost Communication With Battery Energy Control Module \"A\"", "critical",
     "check the BMS connection before driving", _J2012),
)  # fmt: skip

DTC_TABLE: Final[dict[str, TroubleCode]] = {
    code: TroubleCode(code, title, _SYSTEMS[code[0]], severity, action, source)
    for code, title, severity, action, source in _CODES
}


def decode(code: str) -> TroubleCode:
    """Decode a code from the table, or by its SAE J2012 structure when it is not in the table."""
    code = code.strip().upper()
    known = DTC_TABLE.get(code)
    if known is not None:
        return known
    system = _SYSTEMS.get(code[:1], "unknown system")
    maker = "manufacturer-specific" if code[1:2] in {"1", "3"} else "generic"
    return TroubleCode(
        code, f"{maker} {system} code (not in Microfleet's table)", system, "info",
        "read the manufacturer's service information for this code", "SAE J2012 code structure",
    )  # fmt: skip
