"""A fleet's drivers from their assessed drives: Tesla-formula scores, events per 100 km, energy, coaching."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from microfleet.intelligence.driver_energy import MIN_DRIVES, DriverEnergy, attribute
from microfleet.intelligence.driving import KINDS, NO_FACTORS, SafetyFactors, safety_score
from microfleet.intelligence.speeding import NO_SPEEDING, SpeedingReport

if TYPE_CHECKING:
    from microfleet.services.driving import DriveAssessment

UTC_OFFSET_H = 8  # Tesla's daily scores: days of China Standard Time (the shipped city's)


@dataclass(frozen=True, slots=True)
class CoachingTip:
    """One thing to change, and the energy it would have saved over the period (kWh, None if unknown)."""

    advice: str
    saves_kwh: float | None


@dataclass(frozen=True, slots=True)
class DriverScore:
    """One driver's period: score (or why not yet), events per 100 km, speeding, energy, coaching."""

    driver: str
    status: str  # "scored" or "learning"
    message: str
    drives: int
    assessed_drives: int
    distance_km: float
    safety_score: float | None
    hard_braking_pct: float
    aggressive_turning_pct: float
    events_per_100km: dict[str, float]
    speeding_share: float | None
    energy_factor: float | None
    excess_kwh: float
    coaching: list[CoachingTip]


def learning(driver: str, drives: list[DriveAssessment], message: str) -> DriverScore:
    """A driver not scored yet, with the message saying what is missing."""
    km = sum(d.distance_km for d in drives)
    return DriverScore(
        driver,
        "learning",
        message,
        len(drives),
        sum(d.assessed for d in drives),
        km,
        None,
        0.0,
        0.0,
        {k: 0.0 for k in KINDS},
        None,
        None,
        0.0,
        [],
    )


def scores(assessed: list[DriveAssessment]) -> list[DriverScore]:
    """Each attributed driver's score, energy factor and coaching, by name."""
    by_driver: dict[str, list[DriveAssessment]] = {}
    for a in assessed:
        if a.driver is not None:
            by_driver.setdefault(a.driver, []).append(a)
    energy = {e.driver: e for e in attribute([a.energy for a in assessed if a.energy is not None])}
    rates: dict[str, dict[str, float]] = {}
    for name, drives in by_driver.items():
        km = sum(d.distance_km for d in drives if d.assessed)
        rates[name] = {
            k: 100.0 * sum(1 for d in drives for e in d.events if e.kind == k) / km if km > 0 else 0.0
            for k in KINDS
        }
    out: list[DriverScore] = []
    for name in sorted(by_driver):
        drives = by_driver[name]
        scored = [d for d in drives if d.assessed]
        if len(scored) < MIN_DRIVES:
            more = MIN_DRIVES - len(scored)
            out.append(learning(name, drives, f"learning: {more} more drives with 1 Hz data needed"))
            continue
        pooled = sum((d.factors for d in scored), NO_FACTORS)
        days: dict[int, SafetyFactors] = {}
        for d in scored:  # Tesla: daily scores, then their mileage-weighted mean
            day = (d.start_ts_ms // 3_600_000 + UTC_OFFSET_H) // 24
            days[day] = days.get(day, NO_FACTORS) + d.factors
        km_day = np.array([f.distance_km for f in days.values()])
        score_day = np.array([safety_score(f) for f in days.values()])
        score = float((score_day * km_day).sum() / km_day.sum()) if km_day.sum() > 0 else safety_score(pooled)
        speed = sum((d.speeding_report for d in drives), NO_SPEEDING)
        mine: DriverEnergy | None = energy.get(name)
        out.append(
            DriverScore(
                driver=name,
                status="scored",
                message="",
                drives=len(drives),
                assessed_drives=len(scored),
                distance_km=sum(d.distance_km for d in drives),
                safety_score=score,
                hard_braking_pct=pooled.hard_braking_pct,
                aggressive_turning_pct=pooled.aggressive_turning_pct,
                events_per_100km=rates[name],
                speeding_share=speed.speeding_share,
                energy_factor=mine.energy_factor if mine else None,
                excess_kwh=mine.excess_kwh if mine else 0.0,
                coaching=_coaching(name, rates, speed, mine),
            )
        )
    return out


def _coaching(
    name: str, rates: dict[str, dict[str, float]], speed: SpeedingReport, energy: DriverEnergy | None
) -> list[CoachingTip]:
    """Advice where the driver stands out from the fleet's median, with the kWh it would save."""
    tips: list[CoachingTip] = []
    median = {k: float(np.median([r[k] for r in rates.values()])) for k in KINDS}
    mine = rates[name]
    excess = energy.excess_kwh if energy and energy.energy_factor else 0.0
    harsh = [k for k in (KINDS[0], KINDS[1]) if mine[k] > max(2.0 * median[k], 0.5)]
    if excess > 0 and energy is not None and energy.energy_factor is not None:
        tips.append(
            CoachingTip(
                f"You use {100 * (energy.energy_factor - 1):.0f} % more energy per km than the fleet's "
                f"median driver on the same roads, car and weather; driving like them would have saved "
                f"{excess:.1f} kWh.",
                excess,
            )
        )
    for kind in harsh:
        verb = "Accelerate more gently" if kind == KINDS[0] else "Anticipate stops and brake earlier"
        tips.append(
            CoachingTip(
                f"{verb}: {mine[kind]:.1f} harsh {kind} events per 100 km "
                f"against the fleet's {median[kind]:.1f}.",
                None,
            )
        )
    share = speed.speeding_share
    if share is not None and share > 0.05:
        tips.append(
            CoachingTip(
                f"Keep to the limit: {100 * share:.0f} % of the time on signed roads was over it.", None
            )
        )
    return tips
