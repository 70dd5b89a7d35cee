"""``microfleet tariffs`` as an owner uses it: add a time-of-use tariff, charge under it, day-ahead prices."""

from __future__ import annotations

import json
from pathlib import Path

from tests.e2e.command import microfleet
from tests.integration.test_history_day import DAY0_MS, body
from tests.integration.test_places_api import WORK, days_of
from tests.integration.test_tariffs_api import hourly_csv

TOU = {
    "tariff_id": "office-tou",
    "currency": "EUR",
    "timezone": "Asia/Shanghai",
    "source": "the office's charging contract",
    "bands": [{"weekdays": [0, 1, 2, 3, 4], "start": "08:00", "end": "18:00", "price_per_kwh": 0.35}],
    "default_price_per_kwh": 0.2,
}


def test_add_a_tariff_charge_under_it_import_day_ahead_prices_and_delete(tmp_path: Path) -> None:
    db = tmp_path / "t.db"
    device_token = microfleet("admin", "add-vehicle", "mini-4", db=db).stdout.split()[-1]
    from fastapi.testclient import TestClient

    from microfleet.api import create_app
    from microfleet.bootstrap import build_services
    from microfleet.settings import Settings

    settings = Settings(database_url=f"sqlite:///{db}", history_derive_interval_s=0)
    services = build_services(settings)  # derives in-process, as `microfleet derive` would
    with TestClient(create_app(settings, services)) as client:
        posted = client.post(
            "/api/v1/telemetry",
            content=body(days_of("mini-4", 2)),
            headers={"Authorization": f"Bearer {device_token}", "Content-Type": "application/json"},
        )
        assert posted.json()["rejected"] == 0
    services.derivations.run_pending()

    tou = tmp_path / "tou.json"
    tou.write_text(json.dumps(TOU))
    added = microfleet("tariffs", "add-tou", str(tou), "--vehicle", "mini-4", db=db)
    assert added.returncode == 0, added.stdout
    assert "tariff office-tou added for vehicle mini-4" in added.stdout
    listed = microfleet("tariffs", "list", db=db).stdout
    assert "cn_sh_residential_tou" in listed and "builtin" in listed
    assert "office-tou" in listed and "time_of_use" in listed and "vehicle mini-4" in listed
    shown = microfleet("tariffs", "show", "office-tou", db=db).stdout
    assert "MTWTF--" in shown and "08:00" in shown and "0.35" in shown and "otherwise" in shown

    place = microfleet(
        "places", "add", "Office charger", "--lat", f"{WORK[0]}", "--lon", f"{WORK[1]}",
        "--kind", "charger", "--tariff", "office-tou", "--vehicle", "mini-4", db=db,
    )  # fmt: skip
    assert place.returncode == 0, place.stdout
    services.derivations.run_pending()
    assert "EUR" in microfleet("charges", "mini-4", db=db).stdout
    in_use = microfleet("tariffs", "delete", "office-tou", db=db)
    assert in_use.returncode == 2 and "in use by 1 place(s): Office charger" in in_use.stdout

    gappy = tmp_path / "gappy.json"
    gappy.write_text(json.dumps({**TOU, "tariff_id": "gappy", "default_price_per_kwh": None}))
    refused = microfleet("tariffs", "add-tou", str(gappy), db=db)
    assert refused.returncode == 2 and "no band prices Mondays in Jan at 00:00" in refused.stdout

    prices = tmp_path / "prices.csv"
    prices.write_text(hourly_csv(0.12, DAY0_MS, 48))
    imported = microfleet(
        "tariffs", "import-day-ahead", "spot", str(prices), "--currency", "EUR",
        "--timezone", "Europe/Berlin", db=db,
    )  # fmt: skip
    assert imported.returncode == 0, imported.stdout
    assert "day-ahead tariff spot created" in imported.stdout
    summary = (
        "48 price(s) added to spot; it now prices 48 interval(s) from 2025-11-24 00:00 to 2025-11-26 00:00"
    )
    assert summary in imported.stdout
    bad = tmp_path / "bad.csv"
    bad.write_text("start,price_per_kwh\n2025-11-24 13:00,0.1\n")
    refused = microfleet("tariffs", "import-day-ahead", "spot", str(bad), db=db)
    assert refused.returncode == 2 and "line 2: start '2025-11-24 13:00' has no UTC offset" in refused.stdout
    assert "48 × 60 min, 2025-11-24 00:00 to" in microfleet("tariffs", "show", "spot", db=db).stdout
    assert microfleet("tariffs", "delete", "spot", db=db).stdout.strip() == "tariff spot deleted"
    builtin = microfleet("tariffs", "delete", "cn_sh_residential_tou", db=db)
    assert builtin.returncode == 2 and "built-in example" in builtin.stdout
    services.close()
