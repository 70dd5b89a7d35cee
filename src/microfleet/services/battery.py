"""The battery use case: fit each car's SoH and range models off the request path, and serve a report.

:meth:`BatteryService.refit` reads a car's derived charges and drives and a window of its telemetry through
ports, fits the pure models (``intelligence/soh.py``, ``range_model.py``, ``soc.py``), runs the pack checks
and stores the fitted state with its model version and data window. :meth:`BatteryService.refit_due` refits
every car whose history moved since its last fit and then compares fade rates across the fleet; the
:class:`BatteryWorker` runs it beside the deriver. :meth:`BatteryService.report` reads only the stored
state, the car's latest state and its last four weeks of history: no model is fitted on a request.

Pack alerts go through the alert path as external alerts of source ``battery`` (docs/alerts.md).
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np

from microfleet.domain.alerts import Alert, Severity
from microfleet.domain.battery_care import (
    AdviceItem,
    ChargeBounds,
    advise,
    charge_bounds,
    drive_temperatures,
)
from microfleet.domain.charges import ChargeSession
from microfleet.domain.drives import Drive
from microfleet.domain.telemetry import TelemetryRecord
from microfleet.errors import InvalidInputError
from microfleet.intelligence import range_model as rm
from microfleet.intelligence import soh as sh
from microfleet.intelligence import soh_trend
from microfleet.services.periodic import PeriodicWorker

log = logging.getLogger(__name__)

SOURCE: Final = "battery"  # the alert source of pack alerts
MODEL_VERSION: Final = f"battery-1 ({rm.MODEL_VERSION}, soh-1, soc-ekf-1)"
ALL_ROWS: Final = 1_000_000
DAY_MS: Final = 86_400_000
TELEMETRY_WINDOW_MS: Final = 14 * DAY_MS  # pack checks and resistance look back two weeks
SOC_WINDOW_MS: Final = 6 * 3_600_000  # the SoC filter runs over the last six hours of records
ADVICE_WINDOW_MS: Final = 28 * DAY_MS
# Weak cell: the spread between the highest and lowest cell at rest growing by 20 mV within two weeks
# (a healthy balanced pack holds a few mV; Plett, "Battery Management Systems Vol. II", 2015, ch. 6 on
# imbalance; 20 mV is Microfleet's threshold, 4x the twin's ±3 mV sensor bias plus noise).
SPREAD_GROWTH_MV: Final = 20.0
REST_CURRENT_A: Final = 2.0
# Temperature rise while charging: an AC charge at under 0.5 C warms a healthy pack by a few kelvin; 15 K
# above ambient is abnormal (Microfleet's threshold; IEC 62660-2 abuse tests look for such rises).
CHARGE_RISE_K: Final = 15.0
REFERENCE_TEMP_C: Final = 20.0  # a car that never reported a temperature: a mild day (Microfleet's choice)
NOMINAL_CELL_V: Final = {"LFP": 3.2, "NMC": 3.7}  # nominal cell voltages (cell datasheets)


@dataclass(frozen=True, slots=True)
class ModelFacts:
    """What the catalogue and physics say of a car model: chemistry guess, new usable kWh, cells, prior."""

    chemistry: str | None
    usable_kwh: float | None
    cells_series: int | None
    prior: rm.PriorCurve


@dataclass(frozen=True, slots=True)
class StoredBattery:
    """A car's fitted battery state as stored: version, when, the data window, and the state itself."""

    vehicle_id: str
    model_version: str
    fitted_at_ms: int
    data_from_ms: int | None
    data_to_ms: int | None
    charges_seen: int
    drives_seen: int
    state: dict[str, Any]


class BatteryHistory(Protocol):
    """Derived history (``microfleet.store.history.HistoryStore``)."""

    def drives(self, vehicle_id: str, from_ms: int, to_ms: int, limit: int) -> list[Drive]:
        """Drives that started in ``[from_ms, to_ms)``, oldest first."""
        ...

    def charges(self, vehicle_id: str, from_ms: int, to_ms: int, limit: int) -> list[ChargeSession]:
        """Charge sessions that started in ``[from_ms, to_ms)``, oldest first."""
        ...


class BatteryTelemetry(Protocol):
    """Raw telemetry (``microfleet.store.telemetry_store.TelemetryStore``)."""

    def records(self, vehicle_id: str, from_ms: int, to_ms: int) -> Iterator[TelemetryRecord]:
        """A car's records in ``[from_ms, to_ms)``, oldest first."""
        ...

    def latest_state(self, vehicle_id: str) -> dict[str, Any] | None:
        """The car's latest signals (``{"signals": {name: {"value", "ts_ms"}}}``), None if it never sent."""
        ...


class BatteryStates(Protocol):
    """The fitted states (``microfleet.store.battery_store.BatteryStore``)."""

    def get(self, vehicle_id: str) -> StoredBattery | None:
        """A car's stored state, None before its first fit."""
        ...

    def put(self, state: StoredBattery) -> None:
        """Store (replace) a car's state."""
        ...

    def all_states(self) -> list[StoredBattery]:
        """Every car's stored state (the fleet's fade distribution)."""
        ...

    def due(self, limit: int) -> list[str]:
        """Cars whose newest drive or charge is newer than their stored state's window (or never fitted)."""
        ...

    def model_of(self, vehicle_id: str) -> str | None:
        """The car's catalogue model id."""
        ...


class PackAlerts(Protocol):
    """Raising and resolving model alerts (``AlertService``)."""

    def raise_external(
        self, vehicle_id: str, source: str, condition: str, severity: Severity, title: str, detail: str = ""
    ) -> Alert:
        """Raise (or refresh) an open alert of this source and condition."""
        ...

    def resolve_external(self, vehicle_id: str, source: str, condition: str) -> Alert | None:
        """Resolve it if open."""
        ...


@dataclass(frozen=True, slots=True)
class BatteryReport:
    """What ``GET /vehicles/{id}/battery`` answers: every figure with its uncertainty or why it is missing."""

    vehicle_id: str
    model_version: str | None
    fitted_at_ms: int | None
    data_from_ms: int | None
    data_to_ms: int | None
    chemistry: str | None
    soc: dict[str, Any]
    soh: dict[str, Any]
    range: dict[str, Any]
    resistance: dict[str, Any]
    advice: list[AdviceItem]
    charge_bounds: ChargeBounds
    alerts: list[dict[str, Any]]
    fleet: dict[str, Any] | None


def model_facts(data_dir: Path | None) -> Callable[[str | None], ModelFacts]:
    """Each model's facts from the catalogue and physics, computed once per model (lazily)."""
    cache: dict[str | None, ModelFacts] = {}

    def facts(model_id: str | None) -> ModelFacts:
        if model_id in cache:
            return cache[model_id]
        from microfleet.domain.catalogue import default_catalogue_path, load_catalogue
        from microfleet.errors import MicrofleetError
        from microfleet.physics import VehicleParams, usable_kwh

        chemistry = usable = cells = None
        prior = rm.physics_prior(None)
        try:
            catalogue = load_catalogue(default_catalogue_path(data_dir))
            spec = catalogue.get(model_id or "")
        except MicrofleetError:
            cache[model_id] = ModelFacts(None, None, None, prior)
            return cache[model_id]
        stated = usable_kwh(spec, catalogue.all())
        usable = float(stated.value) if stated else None
        # the physics' prior when the catalogue names none: LFP, as most Chinese small EVs (physics/priors.py)
        chemistry = "NMC" if spec.chemistry is not None and spec.chemistry.value.upper() == "NMC" else "LFP"
        try:
            cells = int(VehicleParams.from_specs([spec], siblings=catalogue.all()).cells_in_series[0])
            prior = rm.physics_prior(model_id, catalogue)
        except MicrofleetError:
            pass  # a model the physics cannot resolve (no mass): no cell count, a flat prior
        cache[model_id] = ModelFacts(chemistry, usable, cells, prior)
        return cache[model_id]

    return facts


def _not_yet(what: str) -> dict[str, Any]:
    return {"available": False, "reason": what}


class BatteryService:
    """Fits and serves each car's battery models."""

    def __init__(
        self,
        history: BatteryHistory,
        telemetry: BatteryTelemetry,
        states: BatteryStates,
        alerts: PackAlerts | None,
        facts: Callable[[str | None], ModelFacts],
        clock: Callable[[], int],
    ) -> None:
        self._history = history
        self._telemetry = telemetry
        self._states = states
        self._alerts = alerts
        self._facts = facts
        self._clock = clock

    # --- fitting, off the request path -------------------------------------------------------------------

    def refit(self, vehicle_id: str) -> StoredBattery:
        """Fit one car's models on its whole derived history and recent telemetry, store and return them."""
        now = self._clock()
        model_id = self._states.model_of(vehicle_id)
        facts = self._facts(model_id)
        drives = self._history.drives(vehicle_id, 0, 2**62, ALL_ROWS)
        charges = self._history.charges(vehicle_id, 0, 2**62, ALL_ROWS)
        records = list(self._telemetry.records(vehicle_id, now - TELEMETRY_WINDOW_MS, now + 1))
        cell_max = np.array(
            [np.nan if r.cell_voltage_max_v is None else r.cell_voltage_max_v for r in records]
        )
        chemistry = sh.chemistry_from_cells(cell_max, facts.chemistry)
        temps = sh.session_temperatures(charges, drives)
        samples = sh.capacity_samples(charges, temps, chemistry=chemistry or "unknown")
        last_ms = max([c.start_ts_ms for c in charges] + [d.start_ts_ms for d in drives], default=None)
        soh = sh.estimate_soh(samples, facts.usable_kwh, last_ms or now) if facts.usable_kwh else None
        # the last fit's weekly SoH points: the weeks whose sessions are unchanged are kept, not refitted
        before = self._states.get(vehicle_id)
        previous_trend = (before.state.get("soh_history") or []) if before is not None else []
        days = rm.driving_days(drives)
        fitted = rm.fit_range_model(days, facts.prior)
        ts = np.array([r.ts_ms for r in records], dtype=np.int64)
        current = np.array([np.nan if r.pack_current_a is None else r.pack_current_a for r in records])
        voltage = np.array([np.nan if r.pack_voltage_v is None else r.pack_voltage_v for r in records])
        r_ohm, r_steps = sh.resistance_from_steps(ts, current, voltage)
        checks, findings = pack_checks(records)
        state: dict[str, Any] = {
            "model_id": model_id,
            "chemistry": chemistry,
            "new_usable_kwh": facts.usable_kwh,
            "soh": asdict(soh) if soh is not None else None,
            "capacity_sessions": len(samples),
            # the estimate as it stood each week, and each session's own measurement (the page's trend)
            "soh_history": [
                asdict(p) for p in soh_trend.soh_history(samples, facts.usable_kwh or 0.0, previous_trend)
            ],
            "capacity_points": [asdict(p) for p in soh_trend.measured_points(samples, facts.usable_kwh)],
            "range": asdict(fitted) if fitted is not None else None,
            "range_days": len(days),
            "prior": asdict(facts.prior),
            "resistance_ohm": r_ohm,
            "resistance_steps": r_steps,
            "soc": self._soc_now(records, chemistry, soh, facts),
            "dc_share": sh.dc_share(charges),
            # what the report needs of drives, so that a request reads no drive (their routes are heavy)
            "drive_temps": drive_temperatures([d for d in drives if d.start_ts_ms >= now - ADVICE_WINDOW_MS]),
            "checks": checks,
            "alerts": [{"condition": c, "title": t, "detail": d} for c, t, d in findings],
        }
        stored = StoredBattery(
            vehicle_id,
            MODEL_VERSION,
            now,
            min([c.start_ts_ms for c in charges] + [d.start_ts_ms for d in drives], default=None),
            last_ms,
            len(charges),
            len(drives),
            state,
        )
        self._states.put(stored)
        self._raise_pack_alerts(vehicle_id, findings)
        return stored

    def _soc_now(
        self,
        records: Sequence[TelemetryRecord],
        chemistry: str | None,
        soh: sh.SohEstimate | None,
        f: ModelFacts,
    ) -> dict[str, Any] | None:
        """The SoC filter over the last six hours of pack current and voltage (None: no pack current)."""
        if not records:
            return None
        end = records[-1].ts_ms
        recent = [r for r in records if r.ts_ms > end - SOC_WINDOW_MS and r.pack_current_a is not None]
        kwh = (soh.capacity_kwh if soh is not None else None) or f.usable_kwh
        if len(recent) < 2 or not kwh or not f.cells_series or chemistry not in NOMINAL_CELL_V:
            return None
        from microfleet.intelligence.soc import estimate_soc

        capacity_ah = kwh * 1000.0 / (f.cells_series * NOMINAL_CELL_V[chemistry])
        t_s = np.array([(r.ts_ms - recent[0].ts_ms) / 1000.0 for r in recent])
        keep = np.r_[True, np.diff(t_s) > 0]
        col = {
            name: np.array([np.nan if getattr(r, name) is None else float(getattr(r, name)) for r in recent])[
                keep
            ]
            for name in ("pack_current_a", "pack_voltage_v", "pack_temp_c", "soc_pct")
        }
        if keep.sum() < 2:
            return None
        try:
            track = estimate_soc(
                t_s[keep], col["pack_current_a"], col["pack_voltage_v"], col["pack_temp_c"],
                chemistry="LFP" if chemistry == "LFP" else "NMC", capacity_ah=capacity_ah,
                n_series=f.cells_series, bms_soc_pct=col["soc_pct"],
            )  # fmt: skip
        except InvalidInputError as exc:
            log.info("SoC filter skipped for %s: %s", recent[0].vehicle_id, exc.message)
            return None
        return {
            "soc_pct": float(track.soc_pct[-1]),
            "sigma_pct": float(track.sigma_pct[-1]),
            "rejected": int(track.rejected),
            "at_ms": int(recent[-1].ts_ms),
            "samples": int(keep.sum()),
        }

    def _raise_pack_alerts(self, vehicle_id: str, findings: Sequence[tuple[str, str, str]]) -> None:
        if self._alerts is None:
            return
        raised = {c for c, _, _ in findings}
        for condition, title, detail in findings:
            self._alerts.raise_external(vehicle_id, SOURCE, condition, Severity.WARNING, title, detail)
        for condition in ("weak_cell", "charge_temperature_rise"):
            if condition not in raised:
                self._alerts.resolve_external(vehicle_id, SOURCE, condition)

    def refit_due(self, limit: int = 500) -> int:
        """Refit every car whose history moved since its last fit, then compare fade across the fleet."""
        due = self._states.due(limit)
        for vid in due:
            try:
                self.refit(vid)
            except Exception:  # one car's failure must not stop the others' refits
                log.exception("battery refit of %s failed", vid)
        if due:
            self.compare_fleet()
        return len(due)

    def compare_fleet(self) -> list[sh.FleetFade]:
        """Each model's fade distribution; raise 'fast_fade' on cars fading faster than their model's."""
        cars = []
        for s in self._states.all_states():
            soh = s.state.get("soh") or {}
            if soh.get("fade_pct_per_year") is None:
                continue
            cars.append(
                sh.CarFade(
                    s.vehicle_id, str(s.state.get("model_id")), soh["fade_pct_per_year"],
                    soh["fade_sigma_pct_per_year"], s.state.get("dc_share"),
                )
            )  # fmt: skip
        fleets = sh.fleet_fade(cars)
        if self._alerts is not None:
            fast = {v: f for f in fleets for v in f.fast_faders}
            for car in cars:
                f = fast.get(car.vehicle_id)
                if f is None:
                    self._alerts.resolve_external(car.vehicle_id, SOURCE, "fast_fade")
                    continue
                self._alerts.raise_external(
                    car.vehicle_id, SOURCE, "fast_fade", Severity.WARNING,
                    "Capacity fading faster than the fleet's",
                    f"{car.fade_pct_per_year:.1f} points a year against the median "
                    f"{f.median_pct_per_year:.1f} of {f.cars} cars of this model "
                    f"(spread {f.spread_pct_per_year:.1f})",
                )  # fmt: skip
        return fleets

    # --- the report, on the request path ----------------------------------------------------------------

    def report(self, vehicle_id: str, trip_km: float | None = None) -> BatteryReport:
        """The car's battery now: SoC, SoH with its band, range P10/P50/P90, advice, pack alerts."""
        if trip_km is not None and not (math.isfinite(trip_km) and 0 < trip_km <= 10_000):
            raise InvalidInputError("trip_km must be a distance within 0-10,000 km")
        now = self._clock()
        stored = self._states.get(vehicle_id)
        latest = self._telemetry.latest_state(vehicle_id) or {}
        charges = self._history.charges(vehicle_id, now - ADVICE_WINDOW_MS, now + 1, ALL_ROWS)
        st = stored.state if stored is not None else {}
        chemistry = st.get("chemistry")
        bms_soc, soc_ms = _signal(latest, "soc_pct")
        soc: dict[str, Any] = {"bms_soc_pct": bms_soc, "at_ms": soc_ms}
        if st.get("soc"):
            soc |= {"available": True, "estimate": st["soc"]}
        elif bms_soc is not None:
            soc |= {
                "available": True,
                "estimate": None,
                "reason": "the car sends no pack current: BMS SoC only",
            }
        else:
            soc |= _not_yet("the car has sent no SoC yet")
        return BatteryReport(
            vehicle_id=vehicle_id,
            model_version=stored.model_version if stored else None,
            fitted_at_ms=stored.fitted_at_ms if stored else None,
            data_from_ms=stored.data_from_ms if stored else None,
            data_to_ms=stored.data_to_ms if stored else None,
            chemistry=chemistry,
            soc=soc,
            soh=_soh_view(st),
            range=_range_view(st, bms_soc, latest, trip_km),
            resistance={"ohm": st.get("resistance_ohm"), "steps": st.get("resistance_steps", 0)},
            advice=advise(chemistry, charges, [(int(t), c) for t, c in st.get("drive_temps", [])], now),
            charge_bounds=charge_bounds(chemistry, charges, now),
            alerts=list(st.get("alerts", [])),
            fleet=None,
        )


def _signal(latest: dict[str, Any], name: str) -> tuple[Any, int | None]:
    """A signal's newest value and its time from a latest state (None, None if never sent)."""
    found = (latest.get("signals") or {}).get(name)
    return (None, None) if found is None else (found.get("value"), found.get("ts_ms"))


def _soh_view(st: dict[str, Any]) -> dict[str, Any]:
    soh = st.get("soh")
    if not st:
        return _not_yet(
            f"not enough data yet: {sh.MIN_SESSIONS} more charge sessions needed (not fitted yet)"
        )
    if soh is None:
        return _not_yet("the car's model has no known capacity when new: no SoH without a reference")
    if soh["soh_pct"] is None:
        need = soh["sessions_needed"]
        return _not_yet(
            f"not enough data yet: {need} more charge sessions needed "
            f"(each with {sh.MIN_DELTA_SOC_PCT:.0f}+ points of SoC and pack-measured energy)"
        )
    return {"available": True, **soh}


def _range_view(
    st: dict[str, Any], soc_pct: float | None, latest: dict[str, Any], trip_km: float | None
) -> dict[str, Any]:
    model = st.get("range")
    if not model:
        need = max(rm.MIN_DAYS - int(st.get("range_days", 0)), 1)
        return _not_yet(f"not enough data yet: {need} more days of driving needed")
    if soc_pct is None:
        return _not_yet("the car has sent no SoC yet")
    soh = st.get("soh") or {}
    usable = soh.get("capacity_kwh") or st.get("new_usable_kwh")
    if not usable:
        return _not_yet("no capacity known for this car")
    temp, _ = _signal(latest, "ambient_temp_c")
    if temp is None:
        temps = [t for _, t in st.get("drive_temps", []) if t is not None]
        temp = temps[-1] if temps else REFERENCE_TEMP_C
    prior = rm.PriorCurve(tuple(st["prior"]["temps_c"]), tuple(st["prior"]["wh_per_km"]))
    fitted = rm.RangeModel(**{**model, "coef": tuple(model["coef"])})
    cap_sigma = None
    if soh.get("soh_pct") and soh.get("band_high_pct") is not None and soh.get("band_low_pct") is not None:
        cap_sigma = (soh["band_high_pct"] - soh["band_low_pct"]) / 2 / sh.Z_90 / soh["soh_pct"]
    sigma = rm.energy_sigma(float(soc_pct), (st.get("soc") or {}).get("sigma_pct"), cap_sigma)
    pred = rm.predict_range(
        fitted,
        prior,
        soc_pct=float(soc_pct),
        usable_kwh=float(usable),
        temp_c=float(temp),
        energy_sigma_frac=sigma,
    )
    out: dict[str, Any] = {"available": True, **asdict(pred), "temp_c": temp, "soc_pct": soc_pct}
    out |= {"usable_kwh": usable, "model_version": fitted.version}
    out |= {"window_from_ms": fitted.window_from_ms, "window_to_ms": fitted.window_to_ms}
    if trip_km is not None:
        out["trip_km"] = trip_km
        out["trip_verdict"] = rm.trip_verdict(pred, trip_km)
    return out


def pack_checks(records: Sequence[TelemetryRecord]) -> tuple[dict[str, Any], list[tuple[str, str, str]]]:
    """Weak cell (cell spread growing at rest) and abnormal temperature rise while charging."""
    checks: dict[str, Any] = {}
    findings: list[tuple[str, str, str]] = []
    rest = [
        (r.ts_ms, (r.cell_voltage_max_v - r.cell_voltage_min_v) * 1000.0)
        for r in records
        if r.cell_voltage_max_v is not None and r.cell_voltage_min_v is not None
        and (r.pack_current_a is None or abs(r.pack_current_a) <= REST_CURRENT_A)
    ]  # fmt: skip
    if len(rest) >= 20:
        spread = np.array([s for _, s in rest])
        k = max(len(rest) // 5, 5)
        first, last = float(np.median(spread[:k])), float(np.median(spread[-k:]))
        checks["cell_spread_mv"] = {"first": first, "last": last}
        if last - first >= SPREAD_GROWTH_MV:
            findings.append((
                "weak_cell", "A cell is drifting away from the others",
                f"cell voltage spread at rest grew from {first:.0f} to {last:.0f} mV in two weeks "
                f"(threshold {SPREAD_GROWTH_MV:.0f} mV): a weak cell; have the pack checked",
            ))  # fmt: skip
    rises = [
        r.pack_temp_c - r.ambient_temp_c
        for r in records
        if r.pack_temp_c is not None and r.ambient_temp_c is not None
        and (r.charger_power_kw or 0.0) > 0.0 and (r.pack_current_a or 0.0) < 0.0
    ]  # fmt: skip
    if rises:
        top = float(np.percentile(rises, 95))
        checks["charge_temp_rise_k"] = top
        if top >= CHARGE_RISE_K:
            findings.append((
                "charge_temperature_rise", "The pack heats up abnormally while charging",
                f"pack temperature rose {top:.0f} K above ambient while charging (threshold "
                f"{CHARGE_RISE_K:.0f} K)",
            ))  # fmt: skip
    return checks, findings


def report_json(report: BatteryReport) -> dict[str, Any]:
    """The report as plain JSON (the API's body)."""
    return asdict(report)


def dumps(state: dict[str, Any]) -> str:
    """A state as JSON text (NaN refused: a state holds numbers or null)."""
    return json.dumps(state, allow_nan=False, separators=(",", ":"))


class BatteryWorker(PeriodicWorker):
    """Refits cars whose history moved, every ``interval_s``, in a background thread (beside the deriver)."""

    def __init__(self, service: BatteryService, *, interval_s: float) -> None:
        super().__init__("battery-refit", service.refit_due, interval_s=interval_s)
