from __future__ import annotations

import pytest

from microfleet.errors import ConfigurationError
from microfleet.sim.models import MODELS
from microfleet.sim.scenario import LinkFaults, Scenario

KNOWN = frozenset(MODELS)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"vehicles": -3}, "vehicles must be at least 1"),
        ({"vehicles": 0}, "vehicles must be at least 1"),
        ({"days": 0}, "days must be at least 1"),
        ({"city": "atlantis"}, "unknown city 'atlantis'"),
        ({"climate_city": "Oslo"}, "unknown climate city"),
        ({"models": ("tesla-model-s",)}, "unknown vehicle model(s) tesla-model-s"),
        ({"sharing_share": 1.5}, "sharing_share"),
        ({"link": LinkFaults(drop_p=2.0)}, "link.drop_p"),
        ({"protocol": "coap"}, "unknown protocol 'coap'; known: http, mqtt, osmand, ovms"),
    ],
)
def test_bad_scenarios_are_refused_with_a_clear_message(changes: dict, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Scenario().with_overrides(**changes).validate(KNOWN)


def test_default_scenario_is_valid() -> None:
    assert Scenario().validate(KNOWN).vehicles == 10
