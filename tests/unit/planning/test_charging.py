"""The charging planner on cases small enough to solve by hand (1-hour slots, 10 kW chargers).

With ``efficiency_points=((10.0, 1.0),)`` a car loses nothing, so grid kWh = battery kWh and the optimum is
read off the price list: the expected values below are worked out in the comments, not by the code.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microfleet.errors import ChargingInputError
from microfleet.planning.charging import (
    DEFAULT_AC_EFFICIENCY,
    Booking,
    Car,
    CareBounds,
    Charger,
    FleetSnapshot,
    PlugWindow,
    Site,
    Tariff,
    plan,
)
from microfleet.planning.charging_baselines import (
    cheapest_slots,
    earliest_deadline_first,
    least_laxity_first,
    uncontrolled,
)
from microfleet.planning.charging_model import envelope

LOSSLESS = ((10.0, 1.0),)
PRICES = (0.3, 0.1, 0.2, 0.4, 0.5)  # slot 1 cheapest, then 2, then 0, then 3


def car(car_id: str, soc: float = 0.0, until: int = 4, charger: str | None = None, **kw: object) -> Car:
    """A lossless 20 kWh car on its own 10 kW charger until slot ``until``."""
    args: dict[str, object] = {
        "soc_kwh": soc,
        "capacity_kwh": 20.0,
        "max_ac_kw": 10.0,
        "efficiency_points": LOSSLESS,
        "plugged_charger": charger or f"ch-{car_id}",
        "plugged_until_slot": until,
    }
    args.update(kw)
    return Car(car_id, **args)  # type: ignore[arg-type]


def snapshot(
    cars: list[Car],
    bookings: list[Booking],
    *,
    limit_kw: float = 100.0,
    prices: tuple[float, ...] = PRICES,
    care: CareBounds | None = None,
    chargers: list[Charger] | None = None,
) -> FleetSnapshot:
    """One site, one 10 kW charger per car, 1-hour slots, nothing required at the horizon's end."""
    chs = chargers or [Charger(f"ch-{c.car_id}", "depot", 10.0) for c in cars]
    return FleetSnapshot(
        start_ms=0,
        n_slots=len(prices),
        cars=tuple(cars),
        chargers=tuple(chs),
        sites=(Site("depot", limit_kw),),
        bookings=tuple(bookings),
        tariff=Tariff(price_per_kwh=prices, waste_price_per_kwh=0.0),
        care=care or CareBounds(end_min_frac=0.0),
        slot_s=3600,
    )


def test_two_cars_charge_in_the_cheapest_slots_before_their_bookings() -> None:
    # a needs 10 kWh by slot 4: one hour at 10 kW in slot 1 (0.1) -> 1.0
    # b needs 15 kWh: slot 1 (10 kWh, 1.0) and 5 kWh in slot 2 (0.2 -> 1.0) -> 2.0
    snap = snapshot([car("a"), car("b")], [Booking("ka", "a", 4, 10.0), Booking("kb", "b", 4, 15.0)])
    p = plan(snap)
    assert p.status == "optimal"
    assert p.gap == 0.0
    np.testing.assert_allclose(p.car_power_kw("a"), [0, 10, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(p.car_power_kw("b"), [0, 10, 5, 0, 0], atol=1e-6)
    assert p.cost == pytest.approx(3.0)
    assert p.losses_kwh == pytest.approx(0.0, abs=1e-9)
    assert all(b.served for b in p.bookings)
    assert {b.booking_id: b.expected_kwh for b in p.bookings} == pytest.approx({"ka": 10.0, "kb": 15.0})


def test_site_limit_binds_and_pushes_charging_into_dearer_slots() -> None:
    # 25 kWh through a 10 kW site in slots 0-3: slot 1 (10 @ 0.1), slot 2 (10 @ 0.2), 5 in slot 0 (@ 0.3)
    snap = snapshot(
        [car("a"), car("b")], [Booking("ka", "a", 4, 10.0), Booking("kb", "b", 4, 15.0)], limit_kw=10.0
    )
    p = plan(snap)
    np.testing.assert_allclose(p.power_kw.sum(axis=0), [5, 10, 10, 0, 0], atol=1e-6)
    assert p.cost == pytest.approx(1.0 + 2.0 + 1.5)
    assert p.peak_kw_by_site["depot"] == pytest.approx(10.0)
    assert "site limit binds" in p.explanations["a"] + p.explanations["b"]


def test_a_demand_charge_spreads_what_the_cheapest_slot_would_stack() -> None:
    # 20 kWh by slot 4. On energy prices alone both cars take slot 1 (0.1): a 20 kW peak, cost 2.0. With 0.5
    # per kW of peak, a peak P fills slots 1, 2 (and 0) up to P: P in [20/3, 10] costs 0.1P + 0.2P +
    # 0.3(20 - 2P) + 0.5P = 6 + 0.2P, P in [5, 20/3] costs 0.6P + 0.4(20 - 3P) + 0.5P = 8 - 0.1P, P >= 10
    # costs 0.1P + 0.2(20 - P) + 0.5P = 4 + 0.4P: the optimum is P = 20/3 at 7.333 (4.0 energy + 3.333 peak)
    bookings = [Booking("ka", "a", 4, 10.0), Booking("kb", "b", 4, 10.0)]
    energy_only = plan(snapshot([car("a"), car("b")], bookings))
    np.testing.assert_allclose(energy_only.power_kw.sum(axis=0), [0, 20, 0, 0, 0], atol=1e-6)
    snap = snapshot([car("a"), car("b")], bookings)
    charged = replace(snap, tariff=replace(snap.tariff, peak_charge_per_kw=0.5))
    p = plan(charged)
    np.testing.assert_allclose(p.power_kw.sum(axis=0), [20 / 3, 20 / 3, 20 / 3, 0, 0], atol=1e-6)
    assert p.peak_kw_by_site["depot"] == pytest.approx(20 / 3)
    assert p.cost == pytest.approx(4.0 + 0.5 * 20 / 3)
    # power up to the billing period's peak so far is paid for already: stacking in slot 1 is free again
    paid = replace(charged, sites=(Site("depot", 100.0, peak_so_far_kw=20.0),))
    np.testing.assert_allclose(plan(paid).power_kw.sum(axis=0), [0, 20, 0, 0, 0], atol=1e-6)


def test_of_equal_prices_the_load_is_spread_over_the_flattening_tiers() -> None:
    # 20 kWh at one price through a 100 kW site: a slot's load up to 1/32 of the limit (3.125 kW) costs no
    # tie-break, up to 2/32 (6.25 kW) one step, more two: 20 kWh fit in 4 slots at <= 6.25 kW each, so no
    # slot goes above 6.25 kW (on energy alone, and with the earlier-is-better tie-break, all 20 kW would
    # go into slot 0); the tie-breaks cost nothing in the plan's cost
    snap = snapshot(
        [car("a"), car("b")],
        [Booking("ka", "a", 4, 10.0), Booking("kb", "b", 4, 10.0)],
        prices=(0.2, 0.2, 0.2, 0.2, 0.2),
    )
    p = plan(snap)
    site = p.power_kw.sum(axis=0)
    assert site.sum() == pytest.approx(20.0)
    assert site.max() <= 6.25 + 1e-6
    assert site[0] == pytest.approx(6.25)
    assert p.cost == pytest.approx(4.0)


def test_a_booking_that_cannot_be_served_reports_its_exact_shortfall() -> None:
    # 2 plugged hours at 10 kW give 20 kWh; the booking needs 30 -> 10 kWh short, the other car unaffected
    snap = snapshot(
        [car("a", until=2, capacity_kwh=40.0), car("b")],
        [Booking("far", "a", 2, 30.0), Booking("near", "b", 4, 5.0)],
        prices=(0.3, 0.1, 0.2, 0.4),
    )
    p = plan(snap)
    (short,) = p.unserved
    assert short.booking_id == "far"
    assert short.shortfall_kwh == pytest.approx(10.0)
    assert short.expected_kwh == pytest.approx(20.0)
    np.testing.assert_allclose(p.car_power_kw("a"), [10, 10, 0, 0], atol=1e-6)
    assert "short by 10.0 kWh" in p.explanations["a"]


def test_negative_prices_are_prices_the_car_fills_up_to_its_care_cap() -> None:
    # paid 0.1/kWh in slot 0: charge 10 kWh there (-1.0); the 5 kWh booking is then covered
    snap = snapshot([car("a")], [Booking("k", "a", 4, 5.0)], prices=(-0.1, 0.2, 0.3, 0.4, 0.5))
    p = plan(snap)
    np.testing.assert_allclose(p.car_power_kw("a"), [10, 0, 0, 0, 0], atol=1e-6)
    assert p.cost == pytest.approx(-1.0)
    assert "negative prices" in p.explanations["a"]


def test_losses_follow_the_efficiency_curve() -> None:
    # at 80 % efficiency 8 kWh into the battery take 10 kWh from the grid: 2 kWh lost, 1.0 at 0.1
    snap = snapshot([car("a", efficiency_points=((10.0, 0.8),))], [Booking("k", "a", 4, 8.0)])
    p = plan(snap)
    np.testing.assert_allclose(p.car_power_kw("a"), [0, 10, 0, 0, 0], atol=1e-6)
    assert p.losses_kwh == pytest.approx(2.0)
    assert p.cost == pytest.approx(1.0)


def test_the_envelope_of_a_charger_curve_is_convex_and_starts_at_zero() -> None:
    # points (grid kW, eff) -> battery kW: 1.12, 2.937, 4.525, 5.907; the hull from 0 passes (4.525, 5.0)
    # (slope 5/4.525) and ends at (5.907, 6.6) (slope 1.6/1.382); 1.4 and 3.3 kW lie above it
    segs = envelope(((1.4, 0.80), (3.3, 0.89), (5.0, 0.905), (6.6, 0.895)), 6.6)
    assert [s for s, _ in segs] == pytest.approx([5.0 / 4.525, 1.6 / 1.382], rel=1e-4)
    assert [w for _, w in segs] == pytest.approx([4.525, 1.382], rel=1e-4)
    # a 3.7 kW charger caps the curve at 3.7 kW (efficiency 0.8935 by interpolation): one chord from 0
    (seg,) = envelope(((1.4, 0.80), (3.3, 0.89), (5.0, 0.905), (6.6, 0.895)), 3.7)
    assert seg[1] == pytest.approx(3.7 * (0.89 + 0.4 / 1.7 * 0.015), rel=1e-6)


def test_nmc_goes_above_its_care_cap_only_just_before_the_booking_that_needs_it() -> None:
    # 19 kWh needed, care cap 18: energy at slot 2 must stay <= 18, so 10 + 8 in slots 0-1 and 1 in slot 2
    # (2.9) instead of 10 + 9 in the two cheapest (2.8)
    snap = snapshot([car("a")], [Booking("k", "a", 4, 19.0)], prices=(0.1, 0.2, 0.3, 0.4, 0.5))
    p = plan(snap)
    np.testing.assert_allclose(p.car_power_kw("a"), [10, 8, 1, 0, 0], atol=1e-6)
    assert p.cost == pytest.approx(2.9)


def test_an_lfp_car_due_for_a_full_charge_gets_one() -> None:
    # 10 of 20 kWh, no booking: 10 kWh in the cheapest slot (1) -> full, 1.0
    snap = snapshot([car("a", soc=10.0, chemistry="lfp", full_charge_due=True)], [])
    p = plan(snap)
    np.testing.assert_allclose(p.car_power_kw("a"), [0, 10, 0, 0, 0], atol=1e-6)
    assert p.energy_kwh[0, -1] == pytest.approx(20.0)


def test_the_horizon_end_keeps_the_care_band() -> None:
    # end_min_frac 0.5: a car at 8 kWh must end with 10; after a 5 kWh trip that takes 15 at slot 4, so it
    # charges 7 in the cheapest slot (1)
    snap = snapshot([car("a", soc=8.0)], [Booking("k", "a", 4, 5.0)], care=CareBounds(end_min_frac=0.5))
    p = plan(snap)
    np.testing.assert_allclose(p.car_power_kw("a"), [0, 7, 0, 0, 0], atol=1e-6)


def test_a_car_returning_from_a_trip_charges_in_its_next_window() -> None:
    # away in slots 0-1 (trip of 4 kWh starts at slot 0), back on the charger in slots 2-4 before a
    # 10 kWh booking at slot 5: 6 kWh left, needs 4 more: cheapest of slots 2-4 is slot 3
    a = car("a", soc=10.0, charger="ch-a", until=0, later_plugs=(PlugWindow("ch-a", 2, 5),))
    snap = snapshot(
        [a],
        [Booking("out", "a", 0, 4.0), Booking("back", "a", 5, 10.0)],
        prices=(0.1, 0.1, 0.3, 0.2, 0.4, 0.5),
    )
    p = plan(snap)
    np.testing.assert_allclose(p.car_power_kw("a"), [0, 0, 0, 4, 0, 0], atol=1e-6)
    assert all(b.served for b in p.bookings)


def test_the_same_snapshot_gives_the_same_plan() -> None:
    snap = snapshot(
        [car("a"), car("b")], [Booking("ka", "a", 4, 10.0), Booking("kb", "b", 4, 15.0)], limit_kw=12.0
    )
    first, again = plan(snap), plan(snap)
    np.testing.assert_array_equal(first.power_kw, again.power_kw)
    assert first.explanations == again.explanations


def test_independent_sites_are_planned_as_if_alone() -> None:
    cars = [car("a"), car("b")]
    chargers = [Charger("ch-a", "depot", 10.0), Charger("ch-b", "street", 10.0)]
    both = FleetSnapshot(
        0, 5, tuple(cars), tuple(chargers), (Site("depot", 10.0), Site("street", 10.0)),
        (Booking("ka", "a", 4, 10.0), Booking("kb", "b", 4, 15.0)), Tariff(PRICES, waste_price_per_kwh=0.0),
        CareBounds(end_min_frac=0.0), slot_s=3600,
    )  # fmt: skip
    p = plan(both)
    np.testing.assert_allclose(p.car_power_kw("a"), [0, 10, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(p.car_power_kw("b"), [0, 10, 5, 0, 0], atol=1e-6)
    assert p.peak_kw_by_site == pytest.approx({"depot": 10.0, "street": 10.0})


def test_out_of_time_still_returns_a_feasible_plan() -> None:
    snap = snapshot(
        [car("a"), car("b")], [Booking("ka", "a", 4, 10.0), Booking("kb", "b", 4, 15.0)], limit_kw=10.0
    )
    p = plan(snap, time_limit_s=0.0)
    assert p.status in {"optimal", "time_limit", "time_limit_fallback"}
    assert p.power_kw.sum(axis=0).max() <= 10.0 + 1e-9
    assert all(b.served for b in p.bookings)
    if p.status == "time_limit_fallback":
        assert p.gap == float("inf")


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"bookings": [Booking("old", "a", -1, 5.0)]}, ["'old'", "in the past"]),
        ({"chargers": [Charger("ch-a", "depot", 0.0)]}, ["'ch-a'", "0 kW"]),
        (
            {"chargers": [Charger("ch-a", "depot", 11.0, min_kw=4.1)], "limit_kw": 4.0},
            ["'depot'", "'ch-a'", "4.1"],
        ),
        ({"bookings": [Booking("big", "a", 4, 25.0)]}, ["'big'", "25 kWh", "'a'", "20 kWh"]),
        ({"bookings": [Booking("early", "a", 2, 5.0)]}, ["'early'", "still plugged in"]),
        ({"bookings": [Booking("ghost", "zz", 4, 5.0)]}, ["'ghost'", "'zz'"]),
        ({"prices": (0.1, float("nan"), 0.1, 0.1, 0.1)}, ["price"]),
    ],
)
def test_bad_input_is_refused_naming_it(change: dict[str, object], words: list[str]) -> None:
    args: dict[str, object] = {"bookings": [Booking("k", "a", 4, 5.0)], **change}
    bookings = args.pop("bookings")
    with pytest.raises(ChargingInputError) as err:
        plan(snapshot([car("a")], bookings, **args))  # type: ignore[arg-type]
    for word in words:
        assert word in err.value.message


def test_two_cars_on_one_charger_at_once_are_refused() -> None:
    snap = snapshot(
        [car("a", charger="ch"), car("b", charger="ch")], [], chargers=[Charger("ch", "depot", 10.0)]
    )
    with pytest.raises(ChargingInputError, match="'ch'"):
        plan(snap)


# --- baselines ------------------------------------------------------------------------------------------


def test_uncontrolled_charges_at_full_power_to_the_care_cap_ignoring_the_site() -> None:
    # care cap 18 kWh: 10 then 8; both cars at once although the site allows 10
    snap = snapshot(
        [car("a"), car("b")], [Booking("ka", "a", 4, 5.0), Booking("kb", "b", 4, 5.0)], limit_kw=10.0
    )
    p = uncontrolled(snap)
    np.testing.assert_allclose(p.car_power_kw("a"), [10, 8, 0, 0, 0], atol=1e-9)
    assert p.peak_kw_by_site["depot"] == pytest.approx(20.0)
    assert p.cost == pytest.approx(2 * (3.0 + 0.8))


def test_earliest_deadline_first_serves_the_sooner_booking_first() -> None:
    # site 10 kW; b leaves at slot 2, a at slot 4: b gets 10 kW in slots 0-1 (to 18 kWh cap), a waits
    snap = snapshot(
        [car("a"), car("b", until=2)],
        [Booking("ka", "a", 4, 10.0), Booking("kb", "b", 2, 15.0)],
        limit_kw=10.0,
    )
    p = earliest_deadline_first(snap)
    np.testing.assert_allclose(p.car_power_kw("b"), [10, 8, 0, 0, 0], atol=1e-9)
    np.testing.assert_allclose(p.car_power_kw("a"), [0, 2, 10, 6, 0], atol=1e-9)
    assert all(b.served for b in p.bookings)


def test_least_laxity_first_serves_the_car_with_less_slack() -> None:
    # both leave at slot 4; a needs 18 kWh (laxity 4 h - 1.8 h), b needs 5 (4 h - 0.5 h): a first
    snap = snapshot(
        [car("a"), car("b")], [Booking("ka", "a", 4, 18.0), Booking("kb", "b", 4, 5.0)], limit_kw=10.0
    )
    p = least_laxity_first(snap)
    np.testing.assert_allclose(p.car_power_kw("a")[:2], [10, 8], atol=1e-9)
    assert p.car_power_kw("b")[0] == pytest.approx(0.0)


def test_cheapest_slots_books_each_car_s_cheapest_hours() -> None:
    # one car, 18 kWh to its care cap: 2 slots at 10 kW, the cheapest two before slot 4 are 1 and 2
    snap = snapshot([car("a")], [Booking("k", "a", 4, 10.0)])
    p = cheapest_slots(snap)
    np.testing.assert_allclose(p.car_power_kw("a"), [0, 10, 8, 0, 0], atol=1e-9)


# --- properties on random small fleets ------------------------------------------------------------------


@st.composite
def fleets(draw: st.DrawFn) -> FleetSnapshot:
    """2-5 cars on one or two sites, each plugged from now until a booking (or the end), random prices."""
    n_slots = draw(st.integers(4, 12))
    n_cars = draw(st.integers(2, 5))
    prices = tuple(draw(st.lists(st.floats(-0.2, 1.0), min_size=n_slots, max_size=n_slots)))
    cars, chargers, bookings = [], [], []
    for i in range(n_cars):
        cap = draw(st.floats(5.0, 40.0))
        until = draw(st.integers(1, n_slots))
        cars.append(
            car(
                f"c{i}",
                soc=draw(st.floats(0.0, 1.0)) * cap,
                capacity_kwh=cap,
                until=until,
                efficiency_points=DEFAULT_AC_EFFICIENCY,
                max_ac_kw=draw(st.sampled_from([3.3, 6.6, 11.0])),
            )
        )
        chargers.append(Charger(f"ch-c{i}", f"s{i % 2}", draw(st.sampled_from([3.7, 7.4, 11.0]))))
        if until < n_slots:
            bookings.append(Booking(f"b{i}", f"c{i}", until, draw(st.floats(0.0, 1.0)) * cap))
    sites = (Site("s0", draw(st.floats(4.0, 30.0))), Site("s1", draw(st.floats(4.0, 30.0))))
    return FleetSnapshot(
        0, n_slots, tuple(cars), tuple(chargers), sites, tuple(bookings),
        Tariff(prices), CareBounds(end_min_frac=draw(st.floats(0.0, 0.9))), slot_s=900,
    )  # fmt: skip


@settings(max_examples=20, deadline=None)
@given(fleets())
def test_any_plan_keeps_every_limit_and_reports_shortfalls_exactly(snap: FleetSnapshot) -> None:
    p = plan(snap)
    assert p.status == "optimal"
    cap = {c.charger_id: c.max_kw for c in snap.chargers}
    for i, c in enumerate(snap.cars):
        kw = min(cap[c.plugged_charger or ""], c.max_ac_kw)
        assert (p.power_kw[i] <= kw + 1e-6).all()
        assert (p.power_kw[i, (c.plugged_until_slot or snap.n_slots) :] == 0).all()
        assert (p.energy_kwh[i] <= c.capacity_kwh + 1e-6).all()
    for site in snap.sites:
        assert p.peak_kw_by_site[site.site_id] <= site.limit_kw + 1e-6
    for b in p.bookings:  # a shortfall is the need less what the car holds, never more
        assert b.shortfall_kwh == pytest.approx(max(0.0, b.need_kwh - b.expected_kwh), abs=1e-9)
    baseline = earliest_deadline_first(snap)  # the optimum serves at least as much as EDF, where EDF can
    assert sum(b.shortfall_kwh for b in p.bookings) <= sum(b.shortfall_kwh for b in baseline.bookings) + 1e-4
