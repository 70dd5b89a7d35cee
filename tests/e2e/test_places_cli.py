"""``microfleet places`` as an owner uses it: see suggested places, keep one with a tariff, list them."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.command import microfleet
from tests.integration.test_history_day import HOME, body
from tests.integration.test_places_api import WORK, days_of


def test_suggest_add_with_a_tariff_list_and_delete(tmp_path: Path) -> None:
    db = tmp_path / "p.db"
    device_token = microfleet("admin", "add-vehicle", "mini-3", db=db).stdout.split()[-1]
    from fastapi.testclient import TestClient

    from microfleet.api import create_app
    from microfleet.bootstrap import build_services
    from microfleet.settings import Settings

    settings = Settings(database_url=f"sqlite:///{db}", history_derive_interval_s=0)
    services = build_services(settings)  # derives in-process, as `microfleet derive` would
    with TestClient(create_app(settings, services)) as client:
        posted = client.post(
            "/api/v1/telemetry",
            content=body(days_of("mini-3", 3)),
            headers={"Authorization": f"Bearer {device_token}", "Content-Type": "application/json"},
        )
        assert posted.json()["rejected"] == 0
    assert len(services.derivations.run_pending()) == 1

    suggested = microfleet("places", "suggest", "mini-3", db=db)
    assert "Places suggested for mini-3" in suggested.stdout
    assert suggested.stdout.count("microfleet places add NAME") == 2
    assert f"--lat {WORK[0]:.5f}" in suggested.stdout and f"--lat {HOME[0]:.5f}" in suggested.stdout

    added = microfleet(
        "places", "add", "Office charger", "--lat", f"{WORK[0]}", "--lon", f"{WORK[1]}", "--radius-m", "150",
        "--kind", "charger", "--tariff", "cn_sh_residential_tou", "--vehicle", "mini-3", db=db,
    )  # fmt: skip
    assert added.returncode == 0, added.stdout
    assert "added for vehicle mini-3; 1 car(s) to re-derive" in added.stdout
    place_id = added.stdout.split()[1]
    assert len(services.derivations.run_pending()) == 1
    charges = microfleet("charges", "mini-3", db=db).stdout
    assert "Office charger" in charges and "CNY" in charges  # the place by its name (issue 20)

    listed = microfleet("places", "list", db=db).stdout
    assert "Office charger" in listed and "vehicle mini-3" in listed and "cn_sh_residential_tou" in listed
    assert microfleet("places", "suggest", "mini-3", db=db).stdout.count("microfleet places add NAME") == 1

    too_small = microfleet("places", "add", "X", "--lat", "31.2", "--lon", "121.4", "--radius-m", "5", db=db)
    assert too_small.returncode == 2 and "radius_m 5.0 is not between 10 and 5000 m" in too_small.stdout
    assert "1 car(s) to re-derive" in microfleet("places", "delete", place_id, db=db).stdout
    services.close()
