"""The web app's live map in headless Chromium: first render with 1,000 and 10,000 cars, frames per second
while 1,000 cars update at 1 Hz over the live feed (issue 16).

The server is the real one (uvicorn, the API, the live feed, SQLite) in this process; the browser is the
system's Chromium (/usr/bin/chromium) driven by Playwright, logged in through the login form as an operator
who sees the whole bench fleet.

* **first render** — from the start of the navigation to ``#/map`` (``performance.now()`` counts from it)
  until every car is drawn on the map and the status line says so, measured by a check on each animation
  frame in the page. The cars go on the map as soon as its style is parsed; the time the streets' GeoJSON is
  drawn too is kept beside it in the details (``streets_drawn_ms``). A fresh navigation per round; the
  median and the worst round are kept.
* **fps** — animation frames the page paints per second over ``--fps-seconds`` while every car sends one
  record a second (group-committed as the JetStream worker does, so the feed sees 1,000 cars' events a
  second), counted by ``requestAnimationFrame``; the number of cars the page moved is checked too, so a page
  that drew nothing would not score. Frames depend on what else the machine runs, so the 1-minute load
  average when counting starts is kept beside them, with two figures that depend on it less: the page's
  main thread's busy milliseconds per second (Chrome's ``TaskDuration`` metric, over the DevTools
  protocol) and the browser's processes' CPU milliseconds per second by kind (renderer, GPU process: the
  SwiftShader rasteriser) over the same window, from ``/proc``.

    python bench/dashboard.py --seed 1            # full: 1,000 and 10,000 cars, 5 rounds, 20 s of fps
    python bench/dashboard.py --seed 1 --quick    # 200 and 1,000 cars, 2 rounds, 5 s
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import msgspec
import numpy as np
import uvicorn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from microfleet.api import create_app  # noqa: E402
from microfleet.bootstrap import Services, build_services  # noqa: E402
from microfleet.domain.access import Role  # noqa: E402
from microfleet.services.ingest import BatchInput  # noqa: E402
from microfleet.settings import Settings  # noqa: E402

CHROMIUM = os.environ.get("MICROFLEET_CHROMIUM", "/usr/bin/chromium")
# WebGL in headless Chromium on a machine without a GPU: SwiftShader, as such a machine's browser renders.
CHROMIUM_ARGS = os.environ.get(
    "MICROFLEET_BENCH_CHROMIUM_ARGS", "--enable-unsafe-swiftshader --use-angle=swiftshader"
).split()
PASSWORD = "bench-operator-1"
# The streets the demo's map draws (the data folder's OSM extract): cars are scattered over its area.
CENTRE = (31.2304, 121.4737)
SPREAD_DEG = 0.02
TARGETS = {  # issue 16's targets
    "first render 1000 cars ms": 1000.0,
    "first render 10000 cars ms": 2500.0,
    "fps 1000 cars 1 hz": 30.0,
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Fleet:
    """A server with ``n`` cars in one fleet, each with a latest state, and an operator who sees them."""

    services: Services
    server: uvicorn.Server
    thread: threading.Thread
    base_url: str
    ids: list[str]
    lat: np.ndarray
    lon: np.ndarray

    def send_second(self, ts_ms: int, rng: np.random.Generator) -> None:
        """Every car moves a few metres and sends one record; one store commit for the whole second."""
        self.lat += rng.normal(0, 2e-5, self.lat.size)
        self.lon += rng.normal(0, 2e-5, self.lon.size)
        batches = [
            BatchInput(
                body=msgspec.json.encode([_record(vid, ts_ms, float(la), float(lo))]),
                content_type="application/json",
                credential_vehicle_id=vid,
                source="bench",
                now_ms=ts_ms,
            )
            for vid, la, lo in zip(self.ids, self.lat, self.lon, strict=True)
        ]
        self.services.ingest.ingest_batches(batches)

    def close(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)
        self.services.close()


def _record(vid: str, ts_ms: int, lat: float, lon: float) -> dict[str, object]:
    return {"vehicle_id": vid, "ts_ms": ts_ms, "lat_deg": round(lat, 7), "lon_deg": round(lon, 7),
            "speed_kmh": 25.0, "soc_pct": 60.0}  # fmt: skip


def start_fleet(n: int, folder: Path, seed: int) -> Fleet:
    settings = Settings(
        database_url=f"sqlite:///{folder / f'dashboard-{n}.db'}",
        history_derive_interval_s=3600.0,  # the map reads the latest state; derivation is not measured here
        alerts_interval_s=3600.0,
    )
    services = build_services(settings)
    admin = services.admin
    admin.add_fleet("bench", "Dashboard bench fleet")
    ids = [f"car-{i:05d}" for i in range(n)]
    for vid in ids:
        admin.add_vehicle(vid, name=f"Car {vid[4:]}", fleet_id="bench")
    admin.add_user("olga", Role.OPERATOR, "bench")
    (olga,) = [u for u in admin.list_users() if u.name == "olga"]
    services.web_sessions.set_password(olga, PASSWORD)
    rng = np.random.default_rng(seed)
    lat = CENTRE[0] + rng.uniform(-SPREAD_DEG, SPREAD_DEG, n)
    lon = CENTRE[1] + rng.uniform(-SPREAD_DEG, SPREAD_DEG, n)
    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(settings, services), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    fleet = Fleet(services, server, thread, f"http://127.0.0.1:{port}", ids, lat, lon)
    fleet.send_second(time.time_ns() // 1_000_000 - 30_000, rng)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise SystemExit("the server did not start")
        time.sleep(0.05)
    return fleet


FIRST_RENDER_JS = """(n) => {
    const box = document.querySelector('#live-map');
    const status = document.querySelector('.status');
    if (!box || box.dataset.ready !== 'true' || !status) return false;
    return status.textContent.startsWith(`${n} cars, ${n} on the map`) ? performance.now() : false;
}"""

STREETS_JS = "() => document.querySelector('#live-map').dataset.streets === 'true' && performance.now()"
LIST_LATS_JS = "() => [...document.querySelectorAll('.cars li')].map(li => li.dataset.lat)"
RESOURCES_JS = """() => performance.getEntriesByType('resource')
    .filter((r) => r.name.includes('/map/streets') || r.name.includes('/fleet/latest'))
    .map((r) => ({ name: r.name.split('?')[0].split('/').pop(), start: r.startTime, end: r.responseEnd }))"""


def _browser_cpu_s() -> dict[str, float]:
    """CPU seconds used so far by this process's Chromium descendants, by process kind (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[str, str] = {}
    stats: dict[str, list[str]] = {}
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                stats[pid] = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parents[pid] = stats[pid][1]
    me, out = str(os.getpid()), dict[str, float]()
    for pid, fields in stats.items():
        up = parents.get(pid)
        while up not in (None, "0", "1", me):
            up = parents.get(up)
        if up != me:
            continue
        try:
            raw = Path(f"/proc/{pid}/cmdline").read_bytes()
            args = raw.replace(b"\0", b" ").decode(errors="ignore").split()
        except OSError:
            continue
        if not args or "chrom" not in args[0]:
            continue
        kind = next((a.split("=", 1)[1] for a in args if a.startswith("--type=")), "browser")
        out[kind] = out.get(kind, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


FPS_JS = """(seconds) => new Promise((resolve) => {
    let frames = 0;
    const start = performance.now();
    function tick(now) {
        frames += 1;
        if (now - start < seconds * 1000) requestAnimationFrame(tick);
        else resolve({ frames, ms: now - start });
    }
    requestAnimationFrame(tick);
})"""


def measure(n: int, rounds: int, fps_seconds: float, seed: int, folder: Path) -> dict[str, object]:
    from playwright.sync_api import sync_playwright

    fleet = start_fleet(n, folder, seed)
    out: dict[str, object] = {"cars": n}
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(
                executable_path=CHROMIUM,
                headless=True,
                args=CHROMIUM_ARGS,
            )
            context = browser.new_context(viewport={"width": 1600, "height": 900})
            page = context.new_page()
            page.goto(fleet.base_url + "/#/login")
            page.get_by_label("User name").fill("olga")
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            page.wait_for_selector("#live-map[data-ready=true]", timeout=120_000)
            times: list[float] = []
            resources: list[object] = []
            streets_ms: list[float] = []
            for _ in range(rounds):
                page.goto("about:blank")
                page.goto(fleet.base_url + "/#/map")
                handle = page.wait_for_function(FIRST_RENDER_JS, arg=n, polling="raf", timeout=120_000)
                times.append(float(handle.json_value()))
                streets = page.wait_for_function(STREETS_JS, polling="raf", timeout=120_000)
                streets_ms.append(float(streets.json_value()))
                resources.append(page.evaluate(RESOURCES_JS))
            out["first_render_ms"] = times
            out["resource_timings_ms"] = resources
            out["streets_drawn_ms"] = streets_ms
            if fps_seconds > 0:
                page.wait_for_selector("#live-map[data-live=live]", timeout=60_000)
                stop = threading.Event()
                rng = np.random.default_rng(seed + 1)
                sent: list[float] = []

                def feed() -> None:
                    while not stop.is_set():
                        t0 = time.monotonic()
                        fleet.send_second(time.time_ns() // 1_000_000, rng)
                        sent.append(time.monotonic() - t0)
                        stop.wait(max(0.0, 1.0 - (time.monotonic() - t0)))

                # the same page with no update arriving: what this browser paints on this machine at all
                idle = page.evaluate(FPS_JS, max(2.0, fps_seconds / 2))
                out["fps_idle"] = idle["frames"] / (idle["ms"] / 1000.0)
                feeder = threading.Thread(target=feed, daemon=True)
                before = page.evaluate(LIST_LATS_JS)
                feeder.start()
                time.sleep(2.0)  # the first updates reach the page before counting starts
                cdp = context.new_cdp_session(page)
                cdp.send("Performance.enable")

                def busy_s() -> float:
                    metrics = cdp.send("Performance.getMetrics")["metrics"]
                    return float(next(m["value"] for m in metrics if m["name"] == "TaskDuration"))

                out["fps_load_average_1min"] = os.getloadavg()[0]
                busy0, cpu0, wall0 = busy_s(), _browser_cpu_s(), time.monotonic()
                result = page.evaluate(FPS_JS, fps_seconds)
                busy1, cpu1, wall = busy_s(), _browser_cpu_s(), time.monotonic() - wall0
                out["main_thread_busy_ms_per_s"] = round((busy1 - busy0) * 1000 / wall, 1)
                out["browser_cpu_ms_per_s"] = {
                    kind: round((cpu1[kind] - cpu0.get(kind, 0.0)) * 1000 / wall, 1) for kind in sorted(cpu1)
                }
                # The same updates with the map hidden: tells the map's drawing from the rest (the page's
                # script, and the server and this feeder sharing the machine's cores with the browser).
                page.evaluate("() => { document.querySelector('#live-map').style.visibility = 'hidden'; }")
                hidden = page.evaluate(FPS_JS, max(2.0, fps_seconds / 2))
                page.evaluate("() => { document.querySelector('#live-map').style.visibility = 'visible'; }")
                out["fps_map_hidden"] = hidden["frames"] / (hidden["ms"] / 1000.0)
                stop.set()
                feeder.join(30)
                after = page.evaluate(LIST_LATS_JS)
                moved = sum(1 for a, b in zip(before, after, strict=False) if a != b)
                out["fps"] = result["frames"] / (result["ms"] / 1000.0)
                out["fps_window_s"] = result["ms"] / 1000.0
                out["listed_cars_moved"] = moved
                out["listed_cars"] = len(after)
                out["feeder_seconds_sent"] = len(sent)
                out["feeder_commit_s_median"] = statistics.median(sent) if sent else None
            browser.close()
    finally:
        fleet.close()
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="200 and 1,000 cars, 2 rounds, 5 s of fps")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "dashboard.json")
    args = parser.parse_args()
    small, large = (200, 1000) if args.quick else (1000, 10000)
    rounds, fps_seconds = (2, 5.0) if args.quick else (5, 20.0)
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        first = measure(small, rounds, fps_seconds, args.seed, Path(tmp))
        second = measure(large, rounds, 0.0, args.seed, Path(tmp))
    rows = []
    for res in (first, second):
        times = res["first_render_ms"]
        assert isinstance(times, list)
        metric = f"first render {res['cars']} cars ms"
        rows.append({"metric": metric, "system": "microfleet", "value": round(statistics.median(times)),
                     "unit": "ms"})  # fmt: skip
        rows.append({"metric": metric, "system": "microfleet worst round", "value": round(max(times)),
                     "unit": "ms"})  # fmt: skip
    fps_metric = f"fps {first['cars']} cars 1 hz"
    rows.append({"metric": fps_metric, "system": "microfleet", "value": round(float(first["fps"]), 1),  # type: ignore[arg-type]
                 "unit": "frames/s"})  # fmt: skip
    for metric, target in TARGETS.items():
        if any(r["metric"] == metric for r in rows):
            rows.append({"metric": metric, "system": "target", "value": target,
                         "unit": "frames/s" if metric.startswith("fps") else "ms"})  # fmt: skip
    result = {
        "benchmark": "dashboard",
        "command": "python bench/dashboard.py --seed 1" + (" --quick" if args.quick else ""),
        "rows": rows,
        "details": {
            "runs": [first, second],
            "load_average_1min_before": load_before,
            "load_average_1min_after": os.getloadavg()[0],
            "cpu_count": os.cpu_count(),
            "browser": "headless Chromium (system package), WebGL by SwiftShader (no GPU)",
            "viewport": "1600x900",
        },
    }
    print(f"{'metric':32} {'system':24} {'value':>10}  unit")
    for r in rows:
        print(f"{r['metric']:32} {r['system']:24} {r['value']:>10}  {r['unit']}")
    moved, listed = first.get("listed_cars_moved"), first.get("listed_cars")
    print(f"cars moved in the list during fps: {moved} of {listed}; fps, no update: {first.get('fps_idle')}")
    print(
        f"during fps: load average {first.get('fps_load_average_1min')}, the page's main thread busy "
        f"{first.get('main_thread_busy_ms_per_s')} ms/s, browser CPU ms/s {first.get('browser_cpu_ms_per_s')}"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
