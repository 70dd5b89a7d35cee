"""Utilisation by hour from state spans: shares of car-time, open spans, unknown time, partial hours."""

from __future__ import annotations

import random
from typing import Any

import pytest

from microfleet.domain.utilisation import OFFLINE_GAP_MS, utilisation_by_bucket
from microfleet.errors import InvalidInputError

H = 3_600_000
M = 60_000


def span(status: str, start: int, end: int, *, is_open: bool = False) -> dict[str, Any]:
    return {"status": status, "start_ts_ms": start, "end_ts_ms": end, "is_open": is_open}


def test_closed_spans_split_across_hours_by_their_time() -> None:
    spans = {"a": [span("parked", 0, 30 * M), span("driving", 30 * M, 90 * M), span("parked", 90 * M, 2 * H)]}
    first, second = utilisation_by_bucket(spans, 0, 2 * H, H, now_ms=10 * H)
    assert first.shares["parked"] == pytest.approx(0.5) and first.in_use_share == pytest.approx(0.5)
    assert second.in_use_share == pytest.approx(0.5) and second.available_share == pytest.approx(0.5)
    assert first.vehicle_count == 1


def test_two_cars_share_the_hour() -> None:
    spans = {"a": [span("driving", 0, H)], "b": [span("charging", 0, H)]}
    (hour,) = utilisation_by_bucket(spans, 0, H, H, now_ms=H)
    assert (hour.vehicle_count, hour.in_use_share, hour.shares["charging"]) == (2, 0.5, 0.5)
    assert hour.available_share == 0.5  # charging is standing, available to book


def test_an_open_span_lasts_the_offline_gap_past_its_last_record_then_the_car_is_offline() -> None:
    assert OFFLINE_GAP_MS == H  # the derivation's offline gap (Traccar minimalNoDataDuration)
    spans = {"a": [span("asleep", 0, 30 * M, is_open=True)]}
    hours = utilisation_by_bucket(spans, 0, 3 * H, H, now_ms=3 * H)
    assert [h.shares["asleep"] for h in hours] == pytest.approx([1.0, 0.5, 0.0])
    assert [h.shares["offline"] for h in hours] == pytest.approx([0.0, 0.5, 1.0])


def test_time_before_the_first_span_is_unknown_and_a_car_without_spans_is_all_unknown() -> None:
    spans = {"a": [span("parked", 45 * M, H)], "b": []}
    (hour,) = utilisation_by_bucket(spans, 0, H, H, now_ms=H)
    assert hour.shares["unknown"] == pytest.approx((0.75 + 1.0) / 2)
    assert hour.shares["parked"] == pytest.approx(0.25 / 2)


def test_a_span_under_way_at_the_start_counts_from_the_window_start() -> None:
    spans = {"a": [span("driving", -H, 15 * M), span("parked", 15 * M, 2 * H)]}
    (hour,) = utilisation_by_bucket(spans, 0, H, H, now_ms=5 * H)
    assert hour.in_use_share == pytest.approx(0.25) and hour.shares["unknown"] == 0


def test_hours_to_come_are_left_out_and_the_current_hour_counts_only_its_past() -> None:
    spans = {"a": [span("driving", 0, 90 * M, is_open=True)]}
    hours = utilisation_by_bucket(spans, 0, 5 * H, H, now_ms=90 * M)
    assert len(hours) == 2
    assert hours[1].in_use_share == pytest.approx(1.0)  # 30 minutes of it past, all driving


def test_no_window_no_buckets() -> None:
    with pytest.raises(InvalidInputError, match="non-empty window"):
        utilisation_by_bucket({}, H, H, H, now_ms=2 * H)


def test_random_cars_match_a_minute_by_minute_count() -> None:
    """Many cars of closed, open and overlapping-the-edges spans against the plain count of each minute."""
    rng = random.Random(7)
    spans: dict[str, list[dict[str, Any]]] = {}
    for car in range(30):
        t, rows = -90 * M + rng.randrange(0, 120) * M, []
        while t < 7 * H:
            length = rng.randrange(1, 150) * M
            rows.append(span(rng.choice(["driving", "charging", "parked", "asleep"]), t, t + length))
            t += length + rng.choice([0, 0, 0, rng.randrange(1, 60) * M])  # now and then a hole
        if car % 3 == 0:  # the car went quiet: its last span is open
            rows[-1] = span(rows[-1]["status"], rows[-1]["start_ts_ms"], rows[-1]["end_ts_ms"], is_open=True)
        spans[f"c{car}"] = [r for r in rows if r["end_ts_ms"] > 0 or r["is_open"]]
    now = 5 * H + 20 * M
    hours = utilisation_by_bucket(spans, 0, 6 * H, H, now_ms=now)

    def at(rows: list[dict[str, Any]], t: int) -> str:
        for r in rows:
            if r["start_ts_ms"] <= t < r["end_ts_ms"]:
                return str(r["status"])
            if r["is_open"] and r["start_ts_ms"] <= t:
                return str(r["status"]) if t < r["end_ts_ms"] + OFFLINE_GAP_MS else "offline"
        return "unknown"

    assert len(hours) == 6
    for i, hour in enumerate(hours):
        minutes = [i * H + k * M for k in range(60) if i * H + k * M < now]
        counted = {s: 0 for s in hour.shares}
        for rows in spans.values():
            for t in minutes:
                counted[at(rows, t)] += 1
        total = len(minutes) * len(spans)
        assert hour.shares == pytest.approx({s: c / total for s, c in counted.items()}, abs=1e-9)
