"""The battery benchmark's evaluation: twin runs with ageing, the splits, and the only reader of truth.

``simulate`` runs twin scenarios (mixed LFP/NMC models, realistic sensors, cold, mild and hot cities) and
ages each car's pack day by day; it hands Microfleet only telemetry, which is derived into drives and charge
sessions by the product's own ``HistoryDeriver`` (week by week, as ingest would). The truth it keeps (each
car's true capacity per day, its true trips and state of charge) is read here and nowhere else: the models
see derived history only.

Splits: constants were chosen on the development seed (1); the scored seeds are others. Per car, range
models are fitted on the first ``FIT_SHARE`` of days and scored on the rest; SoH is scored at the end of the
run against the truth then; the fleet's fast-fader threshold is built from the other cars of the model.

Ageing (the twin's packs do not age by themselves): each day a car loses
``base x Arrhenius(T_day) + DC_EXTRA x DC share`` points a year, ``base`` drawn per car from 1.2-3.0 %/yr
(Geotab's fleet study: 1.8-2.3 %/yr on average), the Arrhenius factor with ``physics/ageing.py``'s
calendar activation energy, and DC-fast-charged energy adding up to 1.5 %/yr (Geotab: DC-heavy cars
fade faster).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute

from history_accuracy import MemoryHistory, to_columns  # bench/ is on sys.path when run as a script
from microfleet.domain.catalogue import load_catalogue
from microfleet.domain.charges import ChargeSession
from microfleet.domain.derivation import CALIBRATION_SESSIONS, DerivedHistory, VehicleContext
from microfleet.domain.drives import Drive
from microfleet.physics import usable_kwh
from microfleet.physics.ageing import CALENDAR_ACTIVATION_J_PER_MOL, GAS_CONSTANT_J_PER_MOL_K
from microfleet.services.derivation import HistoryDeriver
from microfleet.sim.engine import Twin
from microfleet.sim.run import run_days
from microfleet.sim.scenario import Scenario

DAY_MS = 86_400_000
FIT_SHARE = 2 / 3
MODELS = (
    "chery-qq-ice-cream-14kwh",  # LFP, sends pack electrics and counters
    "dacia-spring-65-2024",  # NMC, sends pack electrics, charges on DC at times
    "wuling-hongguang-mini-ev-gen1-14kwh",  # LFP, SoC only (0.01 %)
    "citroen-ami",  # LFP, SoC only (1 %)
)
# cities: offsets on Shanghai's climate so that the fleet spans -10..40 °C over January-June
CITIES = (("cold", -10.0), ("mild", 0.0), ("hot", 6.0))
BASE_FADE_PCT_PER_YEAR = (1.2, 3.0)
DC_EXTRA_PCT_PER_YEAR = 1.5
DERIVE_EVERY_DAYS = 7
DC_KW = 22.0  # above AC's 22 kW ceiling a charge is DC (IEC 62196-2)


@dataclass
class CarRecord:
    """One twin car: what Microfleet derived, and the truth kept for scoring."""

    vehicle_id: str
    model_id: str
    chemistry: str
    new_kwh: float  # the catalogue's usable capacity (Microfleet's reference for SoH)
    drives: list[Drive] = field(default_factory=list)
    charges: list[ChargeSession] = field(default_factory=list)
    # truth
    capacity_kwh: list[float] = field(default_factory=list)  # true capacity at the end of each day
    days: list[dict[str, float]] = field(default_factory=list)  # per day: first departure and the day's trips
    dc_kwh: float = 0.0
    ac_kwh: float = 0.0
    origin_ms: int = 0  # the twin's first midnight
    cell_max_v: float = float("nan")  # the highest cell voltage the car sent (telemetry, not truth)


class TrimmedHistory(MemoryHistory):
    """``MemoryHistory`` over the records after the newest resume point only (memory for months)."""

    def vehicle_context(self, vehicle_id: str, before_ms: int | None) -> VehicleContext:
        """The context with the calibrations of every charge seen so far (harvested ones included)."""
        if before_ms is None:
            return self.ctx
        seen = [
            c.kwh_per_soc_pct
            for c in self.harvested + self.history.charges
            if c.start_ts_ms < before_ms and c.kwh_per_soc_pct
        ]
        return replace(self.ctx, kwh_per_soc_pct_samples=tuple(seen[-CALIBRATION_SESSIONS:]))

    harvested: list[ChargeSession] = []  # noqa: RUF012 (set per instance in simulate)


def _newest_resume_ms(h: DerivedHistory) -> int | None:
    starts = [s.resume.from_ms for s in h.spans if s.resume is not None]
    return max(starts) if starts else None


def _sorted_unique(table: pa.Table) -> pa.Table:
    ts = table.column("ts_ms").to_numpy()
    order = np.argsort(ts, kind="stable")
    _, first = np.unique(ts[order], return_index=True)
    return table.take(pa.array(order[first]))


def _arrhenius(temp_c: float) -> float:
    t_k = temp_c + 273.15
    return float(np.exp(-CALENDAR_ACTIVATION_J_PER_MOL / GAS_CONSTANT_J_PER_MOL_K * (1 / t_k - 1 / 298.15)))


def simulate(
    vehicles: int, days: int, seed: int, log: Any = print, only: str | None = None
) -> tuple[list[CarRecord], dict[str, Any]]:
    """Run the cities' twins (or ``only`` one), age the packs, derive history week by week, per car.

    ``vehicles`` is the whole fleet's size, shared out over the cities.
    """
    catalogue = load_catalogue()
    records: list[CarRecord] = []
    stats: dict[str, Any] = {"twin_s": 0.0, "derive_s": 0.0, "records": 0}
    per_city = [
        vehicles // len(CITIES) + (1 if i < vehicles % len(CITIES) else 0) for i in range(len(CITIES))
    ]
    for (city, offset), n in zip(CITIES, per_city, strict=True):
        if n == 0 or (only is not None and city != only):
            continue
        scenario = Scenario(
            vehicles=n,
            days=days,
            seed=seed,
            models=MODELS,
            temp_offset_c=offset,
            vehicle_id_prefix=f"{city}",
            sensor_model="realistic",
        )
        twin = Twin(scenario)
        rng = np.random.default_rng([seed, 99])
        base = rng.uniform(*BASE_FADE_PCT_PER_YEAR, len(twin.fleet))
        cars: dict[str, CarRecord] = {}
        mems: dict[str, TrimmedHistory] = {}
        derivers: dict[str, HistoryDeriver] = {}
        pending: dict[str, list[pa.Table]] = {}
        raw: dict[str, pa.Table] = {}
        origin_ms = int(twin.start.timestamp() * 1000)
        for v in twin.fleet:
            spec = catalogue.get(v.model.model_id)
            new = usable_kwh(spec, catalogue.all())
            cars[v.vehicle_id] = CarRecord(
                v.vehicle_id,
                v.model.model_id,
                v.model.chemistry,
                new.value if new else v.model.usable_kwh,
                origin_ms=origin_ms,
            )
        t0 = time.perf_counter()
        for day in run_days(twin):
            stats["records"] += day.telemetry.num_rows
            hourly = twin.world.weather.hourly_c
            day_temp = float(np.mean(hourly[day.day * 24 : day.day * 24 + 24]))
            samples = day.truth["samples"]
            vid_s = np.array(samples.column("vehicle_id").to_pylist())
            state = np.array(samples.column("state").to_pylist())
            power = samples.column("true_power_kw").to_numpy()
            ts_s = samples.column("ts_ms").to_numpy()
            soc_s = samples.column("true_soc_pct").to_numpy()
            cap_s = samples.column("true_capacity_kwh").to_numpy()
            trips = day.truth["trips"].to_pylist()
            for i, v in enumerate(twin.fleet):
                rec = cars[v.vehicle_id]
                rows = vid_s == v.vehicle_id
                ch = rows & (state == "charge")
                dt_h = 10.0 / 3600.0  # energy share only: the sample step cancels
                dc = float(-power[ch & (power < -DC_KW)].sum() * dt_h)
                ac = float(-power[ch & (power >= -DC_KW)].sum() * dt_h)
                rec.dc_kwh += dc
                rec.ac_kwh += ac
                share = dc / (dc + ac) if dc + ac > 0 else 0.0
                rate = base[i] * _arrhenius(day_temp) + DC_EXTRA_PCT_PER_YEAR * share
                v.true_soh_pct -= rate / 365.25
                rec.capacity_kwh.append(v.capacity_kwh)
                mine = [t for t in trips if t["vehicle_id"] == v.vehicle_id]
                if mine:
                    first = min(mine, key=lambda t: t["depart_ts_ms"])
                    k = np.flatnonzero(rows & (ts_s <= first["depart_ts_ms"]))
                    j = k[-1] if k.size else np.flatnonzero(rows)[0]
                    rec.days.append(
                        {
                            "day": day.day,
                            "depart_ts_ms": first["depart_ts_ms"],
                            "true_soc_pct": float(soc_s[j]),
                            "true_capacity_kwh": float(cap_s[j]),
                            "km": float(sum(t["distance_km"] for t in mine)),
                            "kwh": float(sum(t["energy_kwh"] for t in mine)),
                            "temp_c": day_temp,
                        }
                    )
            tel = day.telemetry
            vids = np.array(tel.column("vehicle_id").to_pylist())
            if "cell_voltage_max_v" in tel.column_names:
                cmax = tel.column("cell_voltage_max_v").to_numpy(zero_copy_only=False).astype(np.float64)
                for vid in np.unique(vids):
                    got = cmax[vids == vid]
                    if np.any(~np.isnan(got)):
                        rec = cars[str(vid)]
                        rec.cell_max_v = float(np.nanmax([rec.cell_max_v, np.nanmax(got)]))
            for vid in np.unique(vids):
                pending.setdefault(str(vid), []).append(tel.take(pa.array(np.flatnonzero(vids == vid))))
            stats["twin_s"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            if (day.day + 1) % DERIVE_EVERY_DAYS == 0 or day.day + 1 == days:
                for vid, tables in pending.items():
                    new = _sorted_unique(pa.concat_tables(tables))
                    raw[vid] = _sorted_unique(pa.concat_tables([raw[vid], new])) if vid in raw else new
                    if vid not in mems:
                        mems[vid] = TrimmedHistory(
                            to_columns(vid, [raw[vid]]), VehicleContext(usable_kwh=cars[vid].new_kwh)
                        )
                        mems[vid].harvested = []
                        derivers[vid] = HistoryDeriver(mems[vid])
                        derivers[vid].rederive(vid)
                    else:
                        mem = mems[vid]
                        mem.cols = to_columns(vid, [raw[vid]])
                        mem.arrived = np.ones(len(mem.cols), dtype=bool)
                        derivers[vid].records_landed(vid, new.column("ts_ms").to_numpy().tolist())
                    fixed = _harvest(cars[vid], mems[vid])
                    if fixed is not None:
                        keep = pa.compute.greater_equal(
                            raw[vid].column("ts_ms"), pa.scalar(fixed, pa.int64())
                        )
                        raw[vid] = raw[vid].filter(keep)
                pending.clear()
            stats["derive_s"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            if day.day % 30 == 29:
                log(
                    f"  {city}: day {day.day + 1}/{days}, twin {stats['twin_s']:.0f} s, "
                    f"derive {stats['derive_s']:.0f} s"
                )
        for vid, mem in mems.items():  # what is still open at the end of the run
            cars[vid].drives += mem.history.drives
            cars[vid].charges += mem.history.charges
        records += list(cars.values())
    return records, stats


def _harvest(rec: CarRecord, mem: TrimmedHistory) -> int | None:
    """Move drives and charges before the newest resume point (they can no longer change) to the record."""
    h = mem.history
    fixed = _newest_resume_ms(h)
    if fixed is None:
        return None
    done = [c for c in h.charges if c.start_ts_ms < fixed]
    rec.drives += [d for d in h.drives if d.start_ts_ms < fixed]
    rec.charges += done
    mem.harvested += done
    mem.history = DerivedHistory(
        [s for s in h.spans if s.start_ts_ms >= fixed],
        [d for d in h.drives if d.start_ts_ms >= fixed],
        [c for c in h.charges if c.start_ts_ms >= fixed],
        [d for d in h.drains if d.start_ts_ms >= fixed],
        [],
        [],
    )
    return fixed


# --- scoring: the only reader of the truth kept above ----------------------------------------------------

COLD_C = 0.0  # a "cold" day for the range's cold row: daily mean at or below 0 °C
DEPART_MATCH_MS = 180_000  # a derived drive is the day's first when it starts within 3 min of the truth's


def _soh_at(rec: CarRecord, before_ms: int, chemistry: str) -> tuple[Any, list[Any]]:
    from microfleet.intelligence import soh as sh

    charges = [c for c in rec.charges if c.start_ts_ms < before_ms]
    drives = [d for d in rec.drives if d.start_ts_ms < before_ms]
    samples = sh.capacity_samples(charges, sh.session_temperatures(charges, drives), chemistry=chemistry)
    return sh.estimate_soh(samples, rec.new_kwh, before_ms), samples


def score(records: list[CarRecord], days: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Score SoH, fade rate and range against the truth; rows and details."""
    from microfleet.intelligence import range_model as rm
    from microfleet.intelligence import soh as sh

    priors: dict[str, rm.PriorCurve] = {}
    soh_err: list[float] = []
    soh_err_single: list[float] = []
    soh_err_10: list[float] = []
    by_chem: dict[str, list[float]] = {}
    basis_count: dict[str, int] = {}
    fade_est: list[float] = []
    fade_true: list[float] = []
    fade_rows: list[dict[str, Any]] = []
    cover: list[bool] = []
    err: list[float] = []
    err_cold: list[float] = []
    err_prior: list[float] = []
    err_prior_cold: list[float] = []
    cold_temps: list[float] = []
    no_soh = 0
    for rec in records:
        chem = sh.chemistry_from_cells(np.array([rec.cell_max_v]), None) or "LFP"
        end_ms = rec.origin_ms + days * DAY_MS
        est, samples = _soh_at(rec, end_ms, chem)
        true_end = rec.capacity_kwh[-1]
        if est.capacity_kwh is not None:
            e = abs(est.capacity_kwh - true_end) / true_end * 100
            soh_err.append(e)
            by_chem.setdefault(chem, []).append(e)
            basis_count[est.basis] = basis_count.get(est.basis, 0) + 1
            last = max(samples, key=lambda s: s.ts_ms)
            soh_err_single.append(abs(last.capacity_kwh - true_end) / true_end * 100)
        else:
            no_soh += 1
        if len(samples) >= 10:  # the "after 10 partial sessions": the estimate right after the 10th
            tenth = sorted(samples, key=lambda s: s.ts_ms)[9].ts_ms + 1
            est10, _ = _soh_at(rec, tenth, chem)
            day10 = min(int((tenth - rec.origin_ms) // DAY_MS), len(rec.capacity_kwh) - 1)
            if est10.capacity_kwh is not None:
                soh_err_10.append(
                    abs(est10.capacity_kwh - rec.capacity_kwh[day10]) / rec.capacity_kwh[day10] * 100
                )
        if est.fade_pct_per_year is not None:
            years = (len(rec.capacity_kwh) - 1) / 365.25
            truth = (rec.capacity_kwh[-1] - rec.capacity_kwh[0]) / rec.new_kwh * 100 / years
            fade_est.append(est.fade_pct_per_year)
            fade_true.append(truth)
            share = rec.dc_kwh / (rec.dc_kwh + rec.ac_kwh) if rec.dc_kwh + rec.ac_kwh > 0 else 0.0
            fade_rows.append(
                {
                    "est": est.fade_pct_per_year,
                    "true": truth,
                    "dc_true": share,
                    "dc_est": sh.dc_share(rec.charges) or 0.0,
                    "chem": chem,
                }
            )
        # range: fit on the first FIT_SHARE of the run, score every later day
        cut_ms = rec.origin_ms + int(days * FIT_SHARE) * DAY_MS
        if rec.model_id not in priors:
            priors[rec.model_id] = rm.physics_prior(rec.model_id)
        prior = priors[rec.model_id]
        fitted = rm.fit_range_model(rm.driving_days([d for d in rec.drives if d.start_ts_ms < cut_ms]), prior)
        if fitted is None:
            continue
        est_cut, _ = _soh_at(rec, cut_ms, chem)
        usable = est_cut.capacity_kwh or rec.new_kwh
        cap_sigma = (
            None
            if est_cut.band_high_pct is None or est_cut.band_low_pct is None or not est_cut.soh_pct
            else (est_cut.band_high_pct - est_cut.band_low_pct) / 2 / 1.6449 / est_cut.soh_pct
        )
        starts = np.array([d.start_ts_ms for d in rec.drives], dtype=np.int64)
        for day in rec.days:
            if day["depart_ts_ms"] < cut_ms or day["km"] < rm.MIN_DAY_KM or day["kwh"] <= 0:
                continue
            j = int(np.searchsorted(starts, day["depart_ts_ms"] - DEPART_MATCH_MS))
            if j >= starts.size or abs(int(starts[j]) - day["depart_ts_ms"]) > DEPART_MATCH_MS:
                continue
            d0 = rec.drives[j]
            if d0.soc_start_pct is None or d0.ambient_temp_c is None:
                continue
            pred = rm.predict_range(
                fitted,
                prior,
                soc_pct=d0.soc_start_pct,
                usable_kwh=usable,
                temp_c=d0.ambient_temp_c,
                energy_sigma_frac=rm.energy_sigma(d0.soc_start_pct, None, cap_sigma),
            )
            true_km = day["true_soc_pct"] / 100 * day["true_capacity_kwh"] / (day["kwh"] / day["km"])
            if true_km <= 0:
                continue
            cover.append(pred.p10_km <= true_km <= pred.p90_km)
            e = abs(pred.p50_km - true_km) / true_km * 100
            err.append(e)
            naive_km = (
                d0.soc_start_pct
                / 100
                * rec.new_kwh
                * 1000
                / float(prior.at(np.array([d0.ambient_temp_c]))[0])
            )
            ep = abs(naive_km - true_km) / true_km * 100
            err_prior.append(ep)
            if day["temp_c"] <= COLD_C:
                err_cold.append(e)
                err_prior_cold.append(ep)
                cold_temps.append(day["temp_c"])
    rows = []

    def row(metric: str, system: str, value: float | None, unit: str) -> None:
        rows.append(
            {
                "metric": metric,
                "system": system,
                "value": None if value is None else round(value, 4),
                "unit": unit,
            }
        )

    def mean(x: list[float]) -> float | None:
        return float(np.mean(x)) if x else None

    row("soh mape %", "microfleet", mean(soh_err), "%")
    row("soh mape %", "single session", mean(soh_err_single), "%")
    fleet_err = abs(float(np.mean(fade_est)) - float(np.mean(fade_true))) if fade_est else None
    row("fade rate error pts/yr", "microfleet", fleet_err, "pts/yr")
    row("range p10-p90 coverage", "microfleet", float(np.mean(cover)) if cover else None, "share")
    row("range p50 abs error % cold", "microfleet", mean(err_cold), "%")
    row("range p50 abs error % cold", "physics prior", mean(err_prior_cold), "%")
    row("range p50 abs error %", "microfleet", mean(err), "%")
    row("range p50 abs error %", "physics prior", mean(err_prior), "%")
    dc_heavy = [r for r in fade_rows if r["dc_est"] >= sh.DC_HEAVY_SHARE]
    ac = [r for r in fade_rows if r["dc_est"] < sh.DC_HEAVY_SHARE]
    details = {
        "cars": len(records),
        "cars with soh": len(soh_err),
        "cars without soh (too few gated sessions)": no_soh,
        "soh mape % by chemistry": {k: round(float(np.mean(v)), 3) for k, v in by_chem.items()},
        "soh basis (cars)": basis_count,
        "soh mape % right after the 10th gated session": None
        if not soh_err_10
        else round(float(np.mean(soh_err_10)), 3),
        "cars with 10 gated sessions": len(soh_err_10),
        "fleet fade pts/yr estimated / true": None
        if not fade_est
        else [round(float(np.mean(fade_est)), 3), round(float(np.mean(fade_true)), 3)],
        "cars with a fade trend": len(fade_est),
        "fade pts/yr dc-heavy est / true (cars)": None
        if not dc_heavy
        else [
            round(float(np.mean([r["est"] for r in dc_heavy])), 3),
            round(float(np.mean([r["true"] for r in dc_heavy])), 3),
            len(dc_heavy),
        ],
        "fade pts/yr ac-mostly est / true (cars)": None
        if not ac
        else [
            round(float(np.mean([r["est"] for r in ac])), 3),
            round(float(np.mean([r["true"] for r in ac])), 3),
            len(ac),
        ],
        "range days scored": len(err),
        "range cold days scored (mean temp c)": [
            len(err_cold),
            None if not cold_temps else round(float(np.mean(cold_temps)), 1),
        ],
    }
    return rows, details
