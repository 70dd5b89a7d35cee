"""A car's longer view for its page: battery health over time, parked drain, and charging costs.

Every figure comes from what Microfleet itself stored: the battery's fitted state (``soh_history``,
written by :meth:`microfleet.services.battery.BatteryService.refit`), the derived history's parked-drain
spells and charge sessions (costed at derivation by the tariff of the place the car charged at). Each
method takes a vehicle the entry point resolved for its caller (``AccountService.vehicle_for``).
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from microfleet.domain.charges import ChargeSession
from microfleet.domain.summaries import Period, period_start
from microfleet.errors import InvalidInputError
from microfleet.intelligence.soh import END_OF_LIFE_FRACTION, MIN_SESSIONS
from microfleet.services.battery import ModelFacts, StoredBattery

ALL_ROWS: Final = 1_000_000
HOURS_PER_DAY: Final = 24.0
MAX_WINDOW_MS: Final = 2 * 366 * 86_400_000  # two years: a page's chart, not an archive


class InsightHistory(Protocol):
    """Derived history (``microfleet.store.history.HistoryStore``)."""

    def charges(self, vehicle_id: str, from_ms: int, to_ms: int, limit: int) -> list[ChargeSession]:
        """Charge sessions that started in ``[from_ms, to_ms)``, oldest first."""
        ...

    def drains(self, vehicle_id: str, from_ms: int, to_ms: int, limit: int) -> list[dict[str, Any]]:
        """Parked-drain spells that started in ``[from_ms, to_ms)``, oldest first."""
        ...


class FittedBatteries(Protocol):
    """The fitted battery states (``microfleet.store.battery_store.BatteryStore``)."""

    def get(self, vehicle_id: str) -> StoredBattery | None:
        """A car's stored state, None before its first fit."""
        ...

    def model_of(self, vehicle_id: str) -> str | None:
        """The car's catalogue model id."""
        ...


@dataclass(frozen=True, slots=True)
class BatteryHistory:
    """The SoH estimate week by week with its band, each session's measurement, and the 80 % forecast."""

    vehicle_id: str
    available: bool
    reason: str | None
    model_version: str | None
    fitted_at_ms: int | None
    new_usable_kwh: float | None
    estimates: list[dict[str, Any]]
    measurements: list[dict[str, Any]]
    soh_pct: float | None
    fade_pct_per_year: float | None
    fade_sigma_pct_per_year: float | None
    end_of_life_pct: float
    eol_ts_ms: int | None


@dataclass(frozen=True, slots=True)
class DrainSpell:
    """One parked spell: energy lost, mean power, and the same as kWh and SoC points lost per day."""

    start_ts_ms: int
    end_ts_ms: int
    asleep: bool
    energy_kwh: float
    drain_w: float
    kwh_per_day: float
    soc_pct_per_day: float | None
    flagged: bool


@dataclass(frozen=True, slots=True)
class ParkedDrain:
    """A car's parked spells in a window and what they add up to (per day over all parked time)."""

    vehicle_id: str
    from_ms: int
    to_ms: int
    usable_kwh: float | None
    usable_basis: str | None  # "fitted" (the SoH estimate's capacity), "catalogue", or None
    spells: list[DrainSpell]
    parked_h: float
    energy_kwh: float
    kwh_per_day: float | None
    soc_pct_per_day: float | None
    median_asleep_w: float | None
    median_awake_w: float | None
    flagged: int


@dataclass(frozen=True, slots=True)
class CostPeriod:
    """Charging in one period: sessions, energy, and cost in each currency (uncosted sessions counted)."""

    period_start: dt.date
    charges: int
    costed_charges: int
    energy_kwh: float
    costed_energy_kwh: float
    cost: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ChargingCosts:
    """A car's charging cost per week or month, totals per currency, and the tariffs that set them."""

    vehicle_id: str
    period: Period
    timezone: str
    periods: list[CostPeriod]
    total_cost: dict[str, float]
    total_energy_kwh: float
    costed_energy_kwh: float
    charges: int
    costed_charges: int
    tariff_ids: list[str]


def _window(from_ms: int, to_ms: int) -> None:
    if to_ms <= from_ms:
        raise InvalidInputError(f"to_ms ({to_ms}) must be after from_ms ({from_ms})")
    if to_ms - from_ms > MAX_WINDOW_MS:
        raise InvalidInputError("a window is at most two years long")


class VehicleInsightsService:
    """Battery trend, parked drain and charging costs of one car."""

    def __init__(
        self,
        history: InsightHistory,
        batteries: FittedBatteries,
        facts: Callable[[str | None], ModelFacts],
    ) -> None:
        self._history = history
        self._batteries = batteries
        self._facts = facts

    def battery_history(self, vehicle_id: str) -> BatteryHistory:
        """The stored weekly SoH estimates, measurements and forecast (or why there are none yet)."""
        stored = self._batteries.get(vehicle_id)
        st = stored.state if stored is not None else {}
        soh = st.get("soh") or {}
        estimates = list(st.get("soh_history") or [])
        reason = None
        if stored is None:
            reason = f"not fitted yet: the trend needs {MIN_SESSIONS} charge sessions that measure capacity"
        elif not st.get("new_usable_kwh"):
            reason = "the car's model has no known capacity when new: no SoH without a reference"
        elif "soh_history" not in st:
            reason = "fitted before the trend was kept: it appears after the car's next refit"
        elif not estimates:
            need = soh.get("sessions_needed") or MIN_SESSIONS
            reason = (
                f"not enough data yet: {need} more charge sessions needed "
                "(each with 20+ points of SoC and pack-measured energy)"
            )
        return BatteryHistory(
            vehicle_id=vehicle_id,
            available=bool(estimates),
            reason=reason,
            model_version=stored.model_version if stored else None,
            fitted_at_ms=stored.fitted_at_ms if stored else None,
            new_usable_kwh=st.get("new_usable_kwh"),
            estimates=estimates,
            measurements=list(st.get("capacity_points") or []),
            soh_pct=soh.get("soh_pct"),
            fade_pct_per_year=soh.get("fade_pct_per_year"),
            fade_sigma_pct_per_year=soh.get("fade_sigma_pct_per_year"),
            end_of_life_pct=END_OF_LIFE_FRACTION * 100.0,
            eol_ts_ms=soh.get("eol_ts_ms"),
        )

    def _usable(self, vehicle_id: str) -> tuple[float | None, str | None]:
        """The pack's usable kWh: the fitted capacity when there is one, else the catalogue's when new."""
        stored = self._batteries.get(vehicle_id)
        fitted = ((stored.state.get("soh") or {}) if stored else {}).get("capacity_kwh")
        if fitted:
            return float(fitted), "fitted"
        new = self._facts(self._batteries.model_of(vehicle_id)).usable_kwh
        return (new, "catalogue") if new else (None, None)

    def parked_drain(self, vehicle_id: str, from_ms: int, to_ms: int) -> ParkedDrain:
        """Each parked spell of 15 min or more that started in the window, and the energy lost per day."""
        _window(from_ms, to_ms)
        usable, basis = self._usable(vehicle_id)
        spells = []
        for row in self._history.drains(vehicle_id, from_ms, to_ms, ALL_ROWS):
            per_day = float(row["drain_w"]) * HOURS_PER_DAY / 1000.0
            spells.append(
                DrainSpell(
                    start_ts_ms=int(row["start_ts_ms"]),
                    end_ts_ms=int(row["end_ts_ms"]),
                    asleep=bool(row["asleep"]),
                    energy_kwh=float(row["energy_kwh"]),
                    drain_w=float(row["drain_w"]),
                    kwh_per_day=per_day,
                    soc_pct_per_day=per_day / usable * 100.0 if usable else None,
                    flagged=bool(row["flagged"]),
                )
            )
        return summarise_drain(vehicle_id, from_ms, to_ms, spells, usable, basis)

    def charging_costs(
        self, vehicle_id: str, period: Period, from_ms: int, to_ms: int, tz: dt.tzinfo
    ) -> ChargingCosts:
        """The car's charges that started in the window, per period in ``tz``: energy and cost."""
        _window(from_ms, to_ms)
        if period is Period.DAY:
            raise InvalidInputError("charging costs are by week or month")
        charges = self._history.charges(vehicle_id, from_ms, to_ms, ALL_ROWS)
        return summarise_costs(vehicle_id, charges, period, tz)


def summarise_drain(
    vehicle_id: str,
    from_ms: int,
    to_ms: int,
    spells: Sequence[DrainSpell],
    usable: float | None,
    basis: str | None,
) -> ParkedDrain:
    """Totals of parked spells: energy over parked time (per day), medians by sleep state, flags."""
    parked_s = sum((s.end_ts_ms - s.start_ts_ms) / 1000.0 for s in spells)
    energy = sum(s.energy_kwh for s in spells)
    per_day = energy / (parked_s / 86_400.0) if parked_s > 0 else None
    asleep = [s.drain_w for s in spells if s.asleep]
    awake = [s.drain_w for s in spells if not s.asleep]
    return ParkedDrain(
        vehicle_id=vehicle_id,
        from_ms=from_ms,
        to_ms=to_ms,
        usable_kwh=usable,
        usable_basis=basis,
        spells=list(spells),
        parked_h=parked_s / 3600.0,
        energy_kwh=energy,
        kwh_per_day=per_day,
        soc_pct_per_day=per_day / usable * 100.0 if per_day is not None and usable else None,
        median_asleep_w=statistics.median(asleep) if asleep else None,
        median_awake_w=statistics.median(awake) if awake else None,
        flagged=sum(s.flagged for s in spells),
    )


def _energy(c: ChargeSession) -> float:
    """Energy a session drew: from the grid where the charger says, else what went into the pack."""
    if c.energy_grid_kwh is not None:
        return c.energy_grid_kwh
    return c.energy_added_kwh or 0.0


def summarise_costs(
    vehicle_id: str, charges: Sequence[ChargeSession], period: Period, tz: dt.tzinfo
) -> ChargingCosts:
    """Charges by the period they started in (local ``tz``); a session without a cost is counted apart."""
    buckets: dict[dt.date, dict[str, Any]] = {}
    for c in charges:
        key = period_start(c.start_ts_ms, period, tz)
        b = buckets.setdefault(key, {"n": 0, "nc": 0, "kwh": 0.0, "ckwh": 0.0, "cost": {}})
        b["n"] += 1
        b["kwh"] += _energy(c)
        if c.cost is not None and c.currency:
            b["nc"] += 1
            b["ckwh"] += _energy(c)
            b["cost"][c.currency] = b["cost"].get(c.currency, 0.0) + c.cost
    periods = [
        CostPeriod(start, b["n"], b["nc"], b["kwh"], b["ckwh"], dict(sorted(b["cost"].items())))
        for start, b in sorted(buckets.items())
    ]
    total: dict[str, float] = {}
    for p in periods:
        for cur, amount in p.cost.items():
            total[cur] = total.get(cur, 0.0) + amount
    return ChargingCosts(
        vehicle_id=vehicle_id,
        period=period,
        timezone=str(tz),
        periods=periods,
        total_cost=dict(sorted(total.items())),
        total_energy_kwh=sum(p.energy_kwh for p in periods),
        costed_energy_kwh=sum(p.costed_energy_kwh for p in periods),
        charges=sum(p.charges for p in periods),
        costed_charges=sum(p.costed_charges for p in periods),
        tariff_ids=sorted({c.tariff_id for c in charges if c.tariff_id and c.cost is not None}),
    )
