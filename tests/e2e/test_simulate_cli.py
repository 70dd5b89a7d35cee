"""`simulate` as a person runs it: files out, same seed same files, clear refusals of bad options."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from tests.e2e.command import Ran, microfleet


def simulate(*args: str) -> Ran:
    return microfleet("simulate", *args)


def test_simulate_writes_telemetry_and_truth_and_the_same_seed_repeats(tmp_path: Path) -> None:
    runs = []
    for name in ("a", "b"):
        out = tmp_path / name
        done = simulate("--vehicles", "4", "--days", "1", "--seed", "3", "--out", str(out))
        assert done.returncode == 0, done.stderr
        assert "vehicle-seconds per second" in done.stdout
        assert (out / "telemetry.parquet").exists()
        assert {p.name for p in (out / "truth").iterdir()} >= {
            "trips.parquet",
            "samples.parquet",
            "faults.parquet",
        }
        runs.append(out)
    for rel in ("telemetry.parquet", "truth/trips.parquet", "truth/samples.parquet"):
        assert pq.read_table(runs[0] / rel).equals(pq.read_table(runs[1] / rel))


def test_bad_options_are_refused_with_clear_messages(tmp_path: Path) -> None:
    tokens = tmp_path / "tokens.json"
    tokens.write_text("{}")
    for args, message in [
        (["--vehicles", "-2", "--out", str(tmp_path)], "vehicles must be at least 1"),
        (["--days", "0", "--out", str(tmp_path)], "days must be at least 1"),
        (["--climate-city", "Atlantis", "--out", str(tmp_path)], "unknown climate city"),
        ([], "give exactly one of --out DIR"),
        (["--live", "http://127.0.0.1:9"], "--live needs --tokens FILE"),
        (
            ["--protocol", "coap", "--out", str(tmp_path)],
            "unknown protocol 'coap'; known: http, mqtt, osmand, ovms",
        ),
        (["--protocol", "mqtt", "--live", "http://h:9", "--tokens", str(tokens)], "mqtt://HOST:PORT"),
        (["--protocol", "osmand", "--live", "mqtt://h:9", "--tokens", str(tokens)], "http(s):// URL"),
    ]:
        done = simulate(*args)
        assert done.returncode == 2, (args, done.stdout, done.stderr)
        assert message in done.stderr, (args, done.stderr)
