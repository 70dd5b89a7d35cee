"""One capacity rule for a catalogue model, shared by the physics, derivation's context and the bench."""

from __future__ import annotations

import pytest

from microfleet.bootstrap import _usable_kwh_lookup
from microfleet.domain.catalogue import load_catalogue
from microfleet.physics import resolve_spec, usable_kwh
from microfleet.settings import Settings

CAT = load_catalogue()


def test_stated_usable_wins() -> None:
    spec = CAT.get("dacia-spring-65-2024")
    assert spec.battery_usable_kwh is not None
    got = usable_kwh(spec, CAT.all())
    assert got is not None
    assert got.value == spec.battery_usable_kwh.value
    assert not got.is_prior


@pytest.mark.parametrize("model_id", ["wuling-hongguang-mini-ev-gen1-9kwh", "chery-qq-ice-cream-14kwh"])
def test_headline_figure_only_gets_the_cited_fraction(model_id: str) -> None:
    spec = CAT.get(model_id)
    assert spec.battery_usable_kwh is None
    stated = spec.battery_nominal_kwh or spec.battery_gross_kwh
    assert stated is not None
    got = usable_kwh(spec, CAT.all())
    assert got is not None and got.is_prior
    assert got.value == pytest.approx(0.93 * stated.value)  # USABLE_FRACTION_OF_STATED, priors.py
    assert "0.93" in got.source


def test_no_pack_figure_anywhere_is_none() -> None:
    assert usable_kwh(CAT.get("baojun-e100"), CAT.all()) is None


def test_resolve_spec_uses_the_same_rule() -> None:
    spec = CAT.get("wuling-hongguang-mini-ev-gen1-14kwh")
    got = usable_kwh(spec, CAT.all())
    assert got is not None
    assert resolve_spec(spec, CAT.all()).usable_kwh == got


def test_product_context_takes_the_physics_capacity() -> None:
    # the lookup derivation's store gets in bootstrap: before it, SoC-only Wulings had no capacity
    lookup = _usable_kwh_lookup(Settings())
    spec = CAT.get("wuling-hongguang-mini-ev-gen1-9kwh")
    expected = usable_kwh(spec, CAT.all())
    assert expected is not None
    assert lookup(spec.model_id) == expected.value
    assert lookup("no-such-model") is None
    assert lookup("baojun-e100") is None
