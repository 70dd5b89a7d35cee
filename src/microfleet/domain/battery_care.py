"""Battery care advice from cited sources, each with its reason and the car's own numbers.

Every rule below names where it comes from; the numbers come from the car's derived charges and drives.
:func:`charge_bounds` gives the charging planner the same advice as limits (target band, a full charge
due). Pure: ``now_ms`` is a fact, not a clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

from microfleet.domain.charges import ChargeSession
from microfleet.domain.drives import Drive

DAY_MS: Final = 86_400_000
# Tesla Model 3 owner's manual (LFP "Standard Range" packs, 2021+), "Charging Instructions": charge LFP to
# 100 % at least once a week so the BMS can recalibrate its SoC (LFP's flat voltage curve hides SoC).
LFP_FULL_EVERY_DAYS: Final = 7.0
FULL_PCT: Final = 98.0  # a session reaching this counts as a full charge (BMS SoC resolution, twin 0.5-1 %)
# Battery University BU-808 "How to Prolong Lithium-based Batteries": NMC ages fastest held at full charge
# and high temperature; keep daily charging to ~80 % and avoid dwelling at 100 %.
NMC_DAILY_TARGET_PCT: Final = 80.0
NMC_DWELL_HOURS_PER_WEEK: Final = 12.0  # Microfleet's threshold for "long dwell": half a day a week at full
# BU-808 again: deep discharges (below ~10-20 %) stress NMC cells; Microfleet flags a quarter of sessions.
DEEP_DISCHARGE_PCT: Final = 10.0
DEEP_DISCHARGE_SHARE: Final = 0.25
# Calendar fade doubles about every 10 K near room temperature (Naumann et al., J. Energy Storage 17,
# 2018; physics/ageing.py's activation energy); Microfleet flags a tenth of driving days above 35 °C.
HOT_C: Final = 35.0
HOT_DAY_SHARE: Final = 0.10
# Geotab, "What can 6,000 electric vehicles tell us about EV battery health?" (2020/2024 update): cars
# that fast-charge (DC) more than ~3 times a month fade measurably faster; Microfleet flags half the energy.
DC_HEAVY_SHARE: Final = 0.5
RESERVE_PCT: Final = 20.0  # lower bound of the planner's band: keep a reserve (BU-808: avoid deep discharge)
WINDOW_DAYS: Final = 28  # advice looks back four weeks


@dataclass(frozen=True, slots=True)
class AdviceItem:
    """One piece of advice: what to do, why, the source, and the numbers of this car behind it."""

    code: str
    title: str
    reason: str
    source: str
    numbers: dict[str, float | int | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChargeBounds:
    """Limits the charging planner should respect for this car's pack."""

    target_low_pct: float
    target_high_pct: float
    full_charge_due: bool  # LFP: plan one charge to 100 % (BMS recalibration)


def _recent(items: Sequence[ChargeSession], now_ms: int) -> list[ChargeSession]:
    return [c for c in items if now_ms - WINDOW_DAYS * DAY_MS <= c.start_ts_ms <= now_ms]


def days_since_full(charges: Sequence[ChargeSession], now_ms: int) -> float | None:
    """Days since the last session that reached a full charge (None: none seen)."""
    full = [c.end_ts_ms for c in charges if (c.soc_to_pct or 0.0) >= FULL_PCT and c.end_ts_ms <= now_ms]
    return (now_ms - max(full)) / DAY_MS if full else None


def drive_temperatures(drives: Sequence[Drive]) -> list[tuple[int, float | None]]:
    """Each drive's start and ambient temperature: all the advice needs of drives (small to store)."""
    return [(d.start_ts_ms, d.ambient_temp_c) for d in drives]


def advise(
    chemistry: str | None,
    charges: Sequence[ChargeSession],
    drives: Sequence[tuple[int, float | None]],
    now_ms: int,
) -> list[AdviceItem]:
    """The advice that applies to this car now, from its last four weeks of charges and drives.

    ``drives`` are (start UTC ms, ambient °C) pairs (:func:`drive_temperatures`).
    """
    out: list[AdviceItem] = []
    recent = _recent(charges, now_ms)
    since_full = days_since_full(charges, now_ms)
    # a car with no charge in four weeks says nothing of its habits: no advice from no data
    if chemistry == "LFP" and recent and (since_full is None or since_full > LFP_FULL_EVERY_DAYS):
        out.append(
            AdviceItem(
                "lfp_full_charge",
                "Charge to 100 % once this week",
                "LFP's voltage is nearly flat between 20 and 90 %, so the BMS's SoC drifts until a full "
                "charge lets it recalibrate; a drifted SoC makes the range figure wrong.",
                "Tesla Model 3 owner's manual (LFP packs): charge to 100 % at least once a week",
                {
                    "days_since_full_charge": None if since_full is None else round(since_full, 1),
                    "recommended_every_days": LFP_FULL_EVERY_DAYS,
                },
            )
        )
    if chemistry == "NMC":
        dwell_h = sum(c.idle_after_full_s for c in recent if (c.soc_to_pct or 0.0) >= FULL_PCT) / 3600.0
        per_week = dwell_h / (WINDOW_DAYS / 7)
        if per_week > NMC_DWELL_HOURS_PER_WEEK:
            out.append(
                AdviceItem(
                    "nmc_dwell_at_full",
                    "Do not leave the car sitting at 100 %",
                    "NMC cells age fastest when held at full charge; charge to about 80 % for daily use "
                    "and to 100 % only just before a long trip.",
                    "Battery University BU-808, How to Prolong Lithium-based Batteries",
                    {
                        "hours_at_full_per_week": round(per_week, 1),
                        "threshold_hours_per_week": NMC_DWELL_HOURS_PER_WEEK,
                    },
                )
            )
        starts = [c.soc_from_pct for c in recent if c.soc_from_pct is not None]
        deep = sum(1 for s in starts if s <= DEEP_DISCHARGE_PCT)
        if starts and deep / len(starts) >= DEEP_DISCHARGE_SHARE:
            out.append(
                AdviceItem(
                    "nmc_deep_discharge",
                    "Plug in before the pack is nearly empty",
                    f"{deep} of {len(starts)} recent charges started at or below "
                    f"{DEEP_DISCHARGE_PCT:.0f} %; deep discharges stress NMC cells.",
                    "Battery University BU-808, How to Prolong Lithium-based Batteries",
                    {"deep_sessions": deep, "sessions": len(starts), "below_pct": DEEP_DISCHARGE_PCT},
                )
            )
    recent_drives = [(ts, t) for ts, t in drives if now_ms - WINDOW_DAYS * DAY_MS <= ts <= now_ms]
    days = {ts // DAY_MS for ts, _ in recent_drives}
    hot = {ts // DAY_MS for ts, t in recent_drives if (t or 0.0) >= HOT_C}
    if days and len(hot) / len(days) >= HOT_DAY_SHARE:
        out.append(
            AdviceItem(
                "heat_exposure",
                "Park in the shade and charge in the cool hours",
                f"On {len(hot)} of {len(days)} driving days it was {HOT_C:.0f} °C or hotter; calendar "
                "ageing roughly doubles for every 10 K.",
                "Naumann et al., J. Energy Storage 17 (2018) 153; Battery University BU-808",
                {"hot_days": len(hot), "driving_days": len(days), "hot_above_c": HOT_C},
            )
        )
    energy = [(c.energy_added_kwh or 0.0, c.current_kind == "DC") for c in recent]
    total = sum(e for e, _ in energy)
    dc = sum(e for e, is_dc in energy if is_dc)
    if total > 0 and dc / total >= DC_HEAVY_SHARE:
        out.append(
            AdviceItem(
                "dc_fast_charging",
                "Charge on AC when there is time",
                f"{dc / total:.0%} of the energy charged in the last four weeks came from DC fast "
                "chargers; packs charged mostly on DC lose capacity faster.",
                "Geotab, What can 6,000 electric vehicles tell us about EV battery health? (2020)",
                {"dc_energy_share": round(dc / total, 3), "threshold_share": DC_HEAVY_SHARE},
            )
        )
    return out


def charge_bounds(chemistry: str | None, charges: Sequence[ChargeSession], now_ms: int) -> ChargeBounds:
    """The band the planner should charge within, and whether a full charge is due (LFP)."""
    if chemistry == "LFP":
        since = days_since_full(charges, now_ms)
        due = since is None or since > LFP_FULL_EVERY_DAYS
        return ChargeBounds(RESERVE_PCT, 100.0, due)
    if chemistry == "NMC":
        return ChargeBounds(RESERVE_PCT, NMC_DAILY_TARGET_PCT, False)
    return ChargeBounds(RESERVE_PCT, 100.0, False)
