"""A small world of accounts for API tests: two owners' cars, a driver, a fleet operator, an admin."""

from __future__ import annotations

from dataclasses import dataclass

from microfleet.bootstrap import Services
from microfleet.domain.access import Role


@dataclass
class World:
    tokens: dict[str, str]  # caller name -> bearer token


def build_world(services: Services) -> World:
    admin = services.admin
    admin.add_fleet("city-share", "City car-sharing pilot")
    tokens: dict[str, str] = {}
    tokens["device_a"] = admin.add_vehicle(
        "car-a", name="Mini EV of Ann", model_id=None, fleet_id="city-share"
    )
    tokens["device_b"] = admin.add_vehicle("car-b", name="Ami of Bob")
    for name, role, fleet in [
        ("ann", Role.OWNER, None),
        ("bob", Role.OWNER, None),
        ("dan", Role.DRIVER, None),
        ("olga", Role.OPERATOR, "city-share"),
        ("root", Role.ADMIN, None),
    ]:
        admin.add_user(name, role, fleet)
        tokens[name] = admin.issue_token(name, "tests")
    admin.grant("car-a", user_name="ann")
    admin.grant("car-b", user_name="bob")
    admin.grant("car-a", user_name="dan")
    return World(tokens)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
