"""What announcing to the live feed costs PostgreSQL's telemetry commits (issue 13 item 5).

On PostgreSQL each live event append takes one advisory lock held to the commit, so event ids follow
commit order (docs/live.md); appending transactions therefore commit one after another. This bench counts
single-record telemetry commits per second from 4 writer threads (each its own car) through
``TelemetryStore.commit_batch``, with the live event written in the transaction and without (the store
built without its live log), alternating, two rounds each, on a scratch database.

    .venv/bin/python bench/live_append_postgres.py [--seconds 8]

Prints the figures; nothing is written (docs/live.md quotes a run).
"""

from __future__ import annotations

import argparse
import os
import threading
import time
import uuid

POSTGRES_ADMIN_URL = os.environ.get(
    "MICROFLEET_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def main() -> None:
    import psycopg

    from microfleet.bootstrap import build_services
    from microfleet.domain.telemetry import TelemetryRecord
    from microfleet.services.ingest import PendingRecord, record_digest
    from microfleet.settings import Settings

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--threads", type=int, default=4)
    args = parser.parse_args()
    name = f"microfleet_live_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base_url, _, _ = POSTGRES_ADMIN_URL.rpartition("/")
    try:
        services = build_services(
            Settings(database_url=f"{base_url.replace('postgresql://', 'postgresql+psycopg://')}/{name}")
        )
        for k in range(args.threads):
            services.admin.add_vehicle(f"car-{k}")
        store = services.telemetry
        start_ms = int(time.time() * 1000)

        def commits_per_s(live: bool, round_: int) -> float:
            store._live = services.live_log if live else None  # the store as built with or without its log
            counts = [0] * args.threads
            stop = time.time() + args.seconds
            offset_ms = round_ * 10_000_000

            def write(k: int) -> None:
                i = 0
                while time.time() < stop:
                    record = TelemetryRecord(
                        vehicle_id=f"car-{k}",
                        ts_ms=start_ms + offset_ms + i,
                        lat_deg=31.2 + i / 1e5,
                        lon_deg=121.4,
                        soc_pct=50 - (i % 100) / 10,
                    )
                    pending = [PendingRecord(0, record, record_digest(record))]
                    store.commit_batch(
                        pending, [], source="bench", credential_vehicle_id=None, received_at_ms=start_ms
                    )
                    i += 1
                    counts[k] += 1

            threads = [threading.Thread(target=write, args=(k,)) for k in range(args.threads)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return sum(counts) / args.seconds

        for round_, live in enumerate((False, True, False, True)):
            label = "with live events" if live else "without"
            print(f"{label:<18} {commits_per_s(live, round_):8.0f} commits/s ({args.threads} writer threads)")
        services.close()
    finally:
        with psycopg.connect(POSTGRES_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
