"""The SoH week by week: each point is what the estimate said then, from the sessions up to then only."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from microfleet.intelligence import soh_trend
from microfleet.intelligence.soh import MIN_SESSIONS, CapacitySample, estimate_soh
from microfleet.intelligence.soh_trend import WEEK_MS, measured_points, soh_history

NEW_KWH = 25.0
T0_MS = 1_700_000_000_000 // WEEK_MS * WEEK_MS  # a week's start, so sessions fall in known weeks


def _samples(weeks: int, per_week: int, fade_pct_per_year: float, seed: int = 3) -> list[CapacitySample]:
    rng = np.random.default_rng(seed)
    out = []
    for w in range(weeks):
        for k in range(per_week):
            ts = T0_MS + w * WEEK_MS + (k + 1) * 86_400_000
            soh = 0.96 + fade_pct_per_year / 100 * (ts - T0_MS) / (365.25 * 86_400_000)
            d = float(rng.uniform(25, 70))
            cap = NEW_KWH * soh * (1 + float(rng.normal(0, 0.01)))
            out.append(CapacitySample(ts, cap, d, None, True, False))
    return out


def test_one_point_per_week_once_enough_sessions_and_none_before() -> None:
    samples = _samples(weeks=12, per_week=2, fade_pct_per_year=-6.0)
    history = soh_history(samples, NEW_KWH)
    # 2 sessions a week: the 5th session is in week 3 (index 2); every later week adds one point
    assert [(p.ts_ms - T0_MS) // WEEK_MS for p in history] == list(range(2, 12))
    assert [p.sessions_used for p in history] == list(range(6, 25, 2))
    for p in history:
        assert p.band_low_pct < p.soh_pct < p.band_high_pct
        assert p.capacity_kwh == pytest.approx(p.soh_pct / 100 * NEW_KWH)
    # the last point is the estimate a refit on every session makes at the last session
    last = estimate_soh(samples, NEW_KWH, samples[-1].ts_ms)
    assert history[-1].soh_pct == pytest.approx(last.soh_pct)
    assert history[-1].band_low_pct == pytest.approx(last.band_low_pct)


def test_a_point_never_uses_later_sessions() -> None:
    samples = _samples(weeks=10, per_week=2, fade_pct_per_year=-6.0)
    before = soh_history(samples, NEW_KWH)
    spoiled = samples[:-2] + [dataclasses.replace(s, capacity_kwh=s.capacity_kwh * 0.5) for s in samples[-2:]]
    after = soh_history(spoiled, NEW_KWH)
    assert after[:-1] == before[:-1]  # only the last week saw the spoiled sessions
    # the robust fit barely moves for two outliers, but its band widens
    width = [p.band_high_pct - p.band_low_pct for p in (before[-1], after[-1])]
    assert width[1] > 2 * width[0]


def test_weeks_without_sessions_add_no_point_and_too_few_sessions_give_none() -> None:
    samples = _samples(weeks=8, per_week=1, fade_pct_per_year=0.0)
    gap = [s for s in samples if not 5 <= (s.ts_ms - T0_MS) // WEEK_MS <= 6]
    weeks = [(p.ts_ms - T0_MS) // WEEK_MS for p in soh_history(gap, NEW_KWH)]
    assert weeks == [4, 7]  # one session a week: the 5th in week 4; weeks 5 and 6 have none
    assert soh_history(samples[: MIN_SESSIONS - 1], NEW_KWH) == []
    assert soh_history(samples, 0.0) == []


def test_a_fading_pack_is_tracked_within_its_band() -> None:
    samples = _samples(weeks=40, per_week=2, fade_pct_per_year=-8.0)
    history = soh_history(samples, NEW_KWH)
    truth = [96 - 8 * (p.ts_ms - T0_MS) / (365.25 * 86_400_000) for p in history]
    inside = sum(p.band_low_pct <= t <= p.band_high_pct for p, t in zip(history, truth, strict=True))
    assert inside / len(history) >= 0.8
    assert history[-1].soh_pct < history[0].soh_pct


def test_measured_points_are_each_sessions_capacity_as_a_share_of_new() -> None:
    samples = _samples(weeks=3, per_week=2, fade_pct_per_year=0.0)
    points = measured_points(list(reversed(samples)), NEW_KWH)
    assert [p.ts_ms for p in points] == [s.ts_ms for s in samples]
    assert [p.soh_pct for p in points] == pytest.approx([s.capacity_kwh / NEW_KWH * 100 for s in samples])
    assert [p.capacity_kwh for p in points] == [s.capacity_kwh for s in samples]
    unknown = measured_points(samples, None)  # a model without a known capacity when new: kWh only
    assert [(p.capacity_kwh, p.soh_pct) for p in unknown] == [(s.capacity_kwh, None) for s in samples]


def test_a_refit_keeps_the_weeks_whose_sessions_are_unchanged_and_fits_only_the_rest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    samples = _samples(weeks=12, per_week=2, fade_pct_per_year=-6.0)
    stored = [dataclasses.asdict(p) for p in soh_history(samples[:-2], NEW_KWH)]  # the last refit, a week ago
    fits: list[int] = []
    real = soh_trend.estimate_soh

    def counting(use: list[CapacitySample], new: float, now: int) -> object:
        fits.append(len(use))
        return real(use, new, now)

    monkeypatch.setattr(soh_trend, "estimate_soh", counting)
    again = soh_history(samples, NEW_KWH, stored)
    assert fits == [len(samples)]  # only the new week is fitted
    assert again == soh_history(samples, NEW_KWH)  # and the answer is the full replay's
    # a rederived early session (its capacity changed) invalidates its week and every later one
    fits.clear()
    changed = [dataclasses.replace(samples[5], capacity_kwh=samples[5].capacity_kwh * 0.99), *samples[6:]]
    redone = soh_history(samples[:5] + changed, NEW_KWH, stored)
    assert fits == [n for n in range(6, len(samples) + 1, 2)]
    assert redone == soh_history(samples[:5] + changed, NEW_KWH)
    # another capacity when new (a catalogue fix) is fitted afresh
    fits.clear()
    soh_history(samples, NEW_KWH * 1.1, stored)
    assert len(fits) == len(stored) + 1
