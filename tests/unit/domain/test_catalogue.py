"""The cited catalogue: every value the model uses has a source; unknown ids and missing fields are named."""

from __future__ import annotations

import pytest

from microfleet.domain.catalogue import load_catalogue, parse_catalogue
from microfleet.errors import NotFoundError, PhysicsInputError
from microfleet.physics import resolve_spec


@pytest.fixture(scope="module")
def catalogue():
    return load_catalogue()


def test_catalogue_has_35_variants_with_unique_ids(catalogue):
    assert len(catalogue) == 35
    ids = [s.model_id for s in catalogue]
    assert len(set(ids)) == 35
    assert "wuling-hongguang-mini-ev-gen1-9kwh" in ids and "citroen-ami" in ids


def test_every_value_the_model_uses_has_a_source(catalogue):
    checked = 0
    for spec in catalogue:
        try:
            resolved = resolve_spec(spec, catalogue.all())
        except PhysicsInputError:
            continue
        for name, value in resolved.used_values().items():
            assert value.source.strip(), f"{spec.model_id}: {name} = {value.value} has no source"
            assert value.is_prior or value.confidence in {"high", "medium", "low"}, (spec.model_id, name)
            if value.is_prior:
                assert value.source.startswith("prior"), (spec.model_id, name, value.source)
            checked += 1
    assert checked >= 17 * 10


def test_catalogue_values_are_not_marked_as_priors(catalogue):
    ami = resolve_spec(catalogue.get("citroen-ami"), catalogue.all())
    assert ami.curb_mass_kg.value == 485 and not ami.curb_mass_kg.is_prior
    assert ami.frontal_area_m2.is_prior and ami.drag_coefficient.is_prior
    spring = resolve_spec(catalogue.get("dacia-spring-65-2023"), catalogue.all())
    assert spring.curb_mass_kg.is_prior and "dacia-spring-65-2024" in spring.curb_mass_kg.source
    assert spring.curb_mass_kg.value == pytest.approx(984.0)  # same 26.8 kWh pack: no mass shift


def test_unknown_id_is_refused_with_the_known_ids(catalogue):
    with pytest.raises(NotFoundError, match=r"unknown vehicle model_id 'tesla-model-s'.*citroen-ami"):
        catalogue.get("tesla-model-s")


def test_missing_field_names_the_car_and_the_field(catalogue):
    with pytest.raises(PhysicsInputError, match=r"chery-qq-ice-cream-10kwh .*curb_mass_kg"):
        resolve_spec(catalogue.get("chery-qq-ice-cream-10kwh"), catalogue.all())


def test_malformed_rows_are_refused():
    header = "make,model,variant,confidence,curb_mass_kg,source_mass\n"
    with pytest.raises(PhysicsInputError, match=r"curb_mass_kg.*'heavy'"):
        parse_catalogue(header + "X,Y,Z,low,heavy,http://x\n")
    with pytest.raises(PhysicsInputError, match="lacks column"):
        parse_catalogue("make,model\nX,Y\n")
