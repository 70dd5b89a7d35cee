"""Digital-twin realism: the twin's people and fleet beside the cited figures they were calibrated to.

Runs the twin offline (owners' cars and a car-sharing fleet in central Shanghai) and reads its truth
(trips, bookings). Cited figures and their sources are in shared/data/mobility/README.md; the derived
ones show their arithmetic below.

    .venv/bin/python bench/twin_realism.py [--seed 1] [--quick]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from rich.console import Console
from rich.table import Table

from microfleet.sim.engine import Twin
from microfleet.sim.reference import (
    CITED_KM_PER_CAR_DAY,
    CITED_NOVEL_PLACE_SHARE,
    CITED_SHARING_BOOKINGS_PER_CAR_DAY,
    CITED_SHARING_RENTAL_MIN,
    CITED_TRIP_KM,
    data_dir,
    load_mobility,
)
from microfleet.sim.run import simulate_to_dir
from microfleet.sim.scenario import Scenario

RESULTS = Path(__file__).parent / "results" / "twin_realism.json"


def cited_figures(days: int, start: dt.date) -> dict[str, float]:
    mob = load_mobility(data_dir())
    weekend_days = sum((start + dt.timedelta(days=d)).weekday() >= 5 for d in range(days))
    trips = mob.trips_per_day @ np.arange(6)  # mean trips/day, weekday and weekend (emobpy/MiD table)
    upper = mob.trip_distance_km
    return {
        "trips per car per day": float((trips[0] * (days - weekend_days) + trips[1] * weekend_days) / days),
        "departures 07-09 share (weekdays)": float(mob.departure_hour_share[0, 7:9].sum()),
        "departures 16-19 share (weekdays)": float(mob.departure_hour_share[0, 16:19].sum()),
        "trips up to 5 km share": float(mob.trip_distance_p[upper <= 5].sum()),
    }


def rental_minutes(rentals: pa.Table) -> float:
    per_booking = rentals.group_by("booking_id").aggregate([("depart_ts_ms", "min"), ("arrive_ts_ms", "max")])
    span_ms = per_booking["arrive_ts_ms_max"].to_numpy() - per_booking["depart_ts_ms_min"].to_numpy()
    return float(np.mean(span_ms) / 60_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="60 cars × 3 days instead of 300 × 14")
    args = parser.parse_args()
    vehicles, days = (60, 3) if args.quick else (300, 14)
    scenario = Scenario(vehicles=vehicles, days=days, seed=args.seed, sharing_share=0.2)
    with tempfile.TemporaryDirectory() as tmp:
        twin = Twin(scenario)
        simulate_to_dir(twin, Path(tmp))
        trips = pq.read_table(Path(tmp) / "truth" / "trips.parquet")
        bookings = pq.read_table(Path(tmp) / "truth" / "bookings.parquet")
    n_owned = sum(v.fleet is None for v in twin.fleet)
    n_shared = vehicles - n_owned
    owned = trips.filter(pc.starts_with(trips["vehicle_id"], "twin-own"))
    rentals = trips.filter(pc.equal(trips["purpose"], "rental"))
    depart_ms = owned["depart_ts_ms"].to_numpy()
    local = (depart_ms // 1000 + 8 * 3600) % 86400 // 3600  # Shanghai local hour (UTC+8)
    weekday = np.array(
        [dt.datetime.fromtimestamp(t / 1000 + 8 * 3600, dt.UTC).weekday() < 5 for t in depart_ms.tolist()]
    )
    km = owned["distance_km"].to_numpy()
    cited = cited_figures(days, scenario.start_date)
    served = int(pc.sum(bookings["served"]).as_py())
    twin_values = {
        "trips per car per day": owned.num_rows / (n_owned * days),
        "novel place share": float(np.mean(owned["novel_place"].to_numpy(zero_copy_only=False))),
        "mean trip length km": float(km.mean()),
        "trips up to 5 km share": float(np.mean(km <= 5)),
        "departures 07-09 share (weekdays)": float(np.mean((local[weekday] >= 7) & (local[weekday] < 9))),
        "departures 16-19 share (weekdays)": float(np.mean((local[weekday] >= 16) & (local[weekday] < 19))),
        "car-sharing bookings per car per day": served / (n_shared * days),
        "car-sharing rental minutes": rental_minutes(rentals),
        "yearly km per car": float(km.sum() / n_owned / days * 365),
    }
    cited_values = {
        **cited,
        "novel place share": sum(CITED_NOVEL_PLACE_SHARE) / 2,
        "mean trip length km": CITED_TRIP_KM,
        "car-sharing bookings per car per day": CITED_SHARING_BOOKINGS_PER_CAR_DAY,
        "car-sharing rental minutes": CITED_SHARING_RENTAL_MIN,
        "yearly km per car": CITED_KM_PER_CAR_DAY * 365,
    }
    sources = {
        "trips per car per day": "emobpy 0.6.2 TripsPerDay (MiD, Germany): mean of P(n), run's weekday mix",
        "novel place share": "Cuttone, Lehmann & González, EPJ Data Sci. 7:2 (2018): 20-25% of transitions",
        "mean trip length km": "Shanghai 5th transport survey 2014: 6.9 km average trip (all modes)",
        "trips up to 5 km share": "emobpy DistanceDurationTrip (MiD), bins 1, 2, 5 km",
        "departures 07-09 share (weekdays)": "NHTS 2001 Wednesday vehicle trips by hour (FHWA NT-3)",
        "departures 16-19 share (weekdays)": "NHTS 2001 Wednesday vehicle trips by hour (FHWA NT-3)",
        "car-sharing bookings per car per day": "EVCARD Shanghai 2017: each car used 7 times a day",
        "car-sharing rental minutes": "free-floating car sharing: rental about 30 min (ERTICO/TRIMS); "
        "twin: first departure to last arrival of a booking (the walk to the car not counted)",
        "yearly km per car": "Shanghai 2017: 26.6 km per passenger car per day (derived ×365)",
    }
    units = {
        "yearly km per car": "km",
        "mean trip length km": "km",
        "car-sharing rental minutes": "min",
    }
    rows = []
    for metric, value in twin_values.items():
        unit = units.get(metric, "share" if "share" in metric else "per car per day")
        rows.append({"metric": metric, "system": "microfleet", "value": round(value, 4), "unit": unit})
        cited_row = {
            "metric": metric,
            "system": "cited",
            "value": round(cited_values[metric], 4),
            "unit": unit,
        }
        rows.append({**cited_row, "source": sources[metric]})
    command = f"python bench/twin_realism.py --seed {args.seed}" + (" --quick" if args.quick else "")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "benchmark": "twin_realism",
                "command": command,
                "rows": rows,
                "details": {
                    "vehicles": vehicles,
                    "owned": n_owned,
                    "shared": n_shared,
                    "days": days,
                    "owner_trips": owned.num_rows,
                    "bookings": bookings.num_rows,
                    "served": served,
                },
            },
            indent=2,
        )
        + "\n"
    )
    table = Table(title=f"Digital twin realism ({vehicles} cars × {days} days)")
    for column in ("metric", "microfleet", "cited", "source"):
        table.add_column(column, overflow="fold")
    for metric, value in twin_values.items():
        table.add_row(metric, f"{value:,.3f}", f"{cited_values[metric]:,.3f}", sources[metric])
    Console().print(table)


if __name__ == "__main__":
    main()
