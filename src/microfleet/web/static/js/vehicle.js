// One vehicle: its live state, alerts with their lifecycle, its drives (a drive's route on the map), its charges,
// battery health over time, parked drain, charging costs (vehicle_insights.js), and exports.

import { api, get, vehiclePath } from "./api.js";
import { boundsOf, createMap, stateColor } from "./basemap.js";
import { OPEN_ALERTS, STATES, ago, carState, duration, el, num, signal, when, whenShort, yesNo } from "./format.js";
import { commandPanel } from "./commands.js";
import { POLL_MS } from "./livemap.js";
import { applyEvent, liveFeed } from "./live.js";
import { batterySection, efficiencySection, tripsSection } from "./vehicle_panels.js";
import { costsSection, healthTrendSection, parkedDrainSection } from "./vehicle_insights.js";
import { maintenanceSection } from "./care.js";

const WINDOW_DAYS = 30;
const SHOWN_ROWS = 50;

function facts(latest) {
  const row = (label, value) => [el("dt", {}, label), el("dd", {}, value)];
  const power = signal(latest, "charger_power_kw");
  const connected = signal(latest, "charger_connected");
  const charging = power != null && power > 0.05 ? `yes, ${num(power, "kW", 1)}` : connected ? "plugged in, not charging" : yesNo(connected, "yes", "no");
  const hvac = signal(latest, "hvac_on");
  const cabin = signal(latest, "cabin_temp_c");
  return el(
    "dl",
    { class: "facts", id: "live-state" },
    row("State of charge", num(signal(latest, "soc_pct"), "%", 0)),
    row("Speed", num(signal(latest, "speed_kmh"), "km/h", 0)),
    row("Locked", yesNo(signal(latest, "locked"))),
    row("Charging", charging),
    row("Climate", hvac == null ? "—" : `${hvac ? "on" : "off"}${cabin == null ? "" : `, cabin ${num(cabin, "°C", 1)}`}`),
    row("Odometer", num(signal(latest, "odometer_km"), "km", 1)),
    row("12 V battery", num(signal(latest, "aux_battery_v"), "V", 1)),
    row("Last seen", latest ? `${when(latest.last_ts_ms)} (${ago(latest.last_ts_ms)})` : "never"),
  );
}

function table(caption, headers, rows, empty) {
  if (rows.length === 0) return el("p", { class: "muted empty" }, empty);
  return el(
    "div",
    { class: "table-wrap" },
    el(
      "table",
      {},
      el("caption", { class: "muted" }, caption),
      el("thead", {}, el("tr", {}, headers.map(([h, cls]) => el("th", { class: cls, scope: "col" }, h)))),
      el("tbody", {}, rows),
    ),
  );
}

// An alert's lifecycle from the car's page (docs/alerts.md): raised → acknowledged → resolved, or a
// maintenance alert marked a false alarm (which also raises that detector's thresholds for the car).
// Each action asks first; a refusal shows the server's own sentence.
const LIFECYCLE = {
  acknowledge: { label: "Acknowledge", ask: "Acknowledge", done: "acknowledged" },
  resolve: { label: "Resolve", ask: "Resolve", done: "resolved" },
  falseAlarm: { label: "False alarm", ask: "Mark as a false alarm", done: "marked a false alarm" },
};

function alertsSection(vehicleId) {
  const list = el("ul", { class: "alerts" });
  const confirmBox = el("div", { class: "confirm", id: "alert-confirm", hidden: true });
  const problem = el("p", { class: "error", id: "alert-problem", role: "alert", hidden: true });
  const status = el("p", { class: "muted", id: "alert-status", role: "status", "aria-live": "polite" });
  let open = [];
  async function load() {
    open = await get(`${OPEN_ALERTS}&vehicle_id=${encodeURIComponent(vehicleId)}`);
    if (!open.length) {
      list.replaceChildren(el("li", { class: "muted" }, "No open alerts — the alert rules you or your fleet set, and the maintenance detectors, raise them here (docs/alerts.md)."));
      return open;
    }
    list.replaceChildren(
      ...open.map((a) => {
        const actions = [
          a.status === "raised" ? "acknowledge" : null,
          "resolve",
          a.source === "maintenance" ? "falseAlarm" : null,
        ].filter(Boolean);
        return el(
          "li",
          { "data-alert-id": a.alert_id, "data-status": a.status },
          el("span", { class: `severity severity-${a.severity}` }, a.severity),
          el("strong", {}, a.title),
          el("span", { class: "muted" }, `since ${when(a.raised_at_ms)}${a.status === "acknowledged" ? ", acknowledged" : ""}`),
          a.detail ? el("span", { class: "muted" }, a.detail) : null,
          ...actions.map((act) =>
            el("button", { type: "button", class: "secondary", "data-act": act, onclick: () => ask(a, act) }, LIFECYCLE[act].label),
          ),
        );
      }),
    );
    return open;
  }
  function close() {
    confirmBox.hidden = true;
    confirmBox.replaceChildren();
  }
  function ask(alert, act) {
    problem.hidden = true;
    const { ask: verb, label } = LIFECYCLE[act];
    const yes = el("button", { type: "button", onclick: () => run(alert, act) }, `Yes, ${label.toLowerCase()}`);
    const no = el("button", { type: "button", class: "secondary", onclick: close }, "Cancel");
    const why = act === "falseAlarm" ? " The alert is resolved and this detector's thresholds rise for this car." : act === "resolve" ? " It is raised again if its condition still holds." : "";
    confirmBox.replaceChildren(el("p", {}, `${verb} “${alert.title}”?${why}`), yes, " ", no);
    confirmBox.hidden = false;
    yes.focus();
  }
  async function run(alert, act) {
    close();
    try {
      if (act === "falseAlarm") {
        await api("POST", `${vehiclePath(vehicleId)}/maintenance/false-alarms`, { condition: alert.condition });
      } else {
        await api("POST", `/api/v1/alerts/${alert.alert_id}/${act}`);
      }
      status.textContent = `“${alert.title}” ${LIFECYCLE[act].done}.`;
      await load();
    } catch (err) {
      problem.textContent = err.message;
      problem.hidden = false;
    }
  }
  const section = el("section", { class: "card", "aria-labelledby": "alerts-h" }, el("h2", { id: "alerts-h" }, "Alerts"), list, confirmBox, problem, status);
  return { section, load, open: () => open };
}

export async function vehiclePage(root, vehicleId) {
  const base = vehiclePath(vehicleId);
  const vehicle = await get(base);
  const now = Date.now();
  const range = `from_ms=${now - WINDOW_DAYS * 86400000}&to_ms=${now + 86400000}`;
  const alerts = alertsSection(vehicleId);
  const [drives, charges] = await Promise.all([get(`${base}/drives?${range}`), get(`${base}/charges?${range}`), alerts.load()]);
  drives.reverse();
  charges.reverse();

  const badge = el("span", { class: "badge", id: "state-badge" });
  const stateBox = el("div");
  const updateNote = el("p", { class: "muted status" });
  const mapBox = el("div", { class: "map vehicle-map", role: "region", "aria-label": `Map of ${vehicle.name}` });
  const routeNote = el("p", { class: "muted", id: "route-note", "aria-live": "polite" }, "Choose a drive to see its route.");

  function showState(detail) {
    const state = carState(detail.latest, Date.now(), alerts.open());
    badge.dataset.state = state;
    badge.replaceChildren(el("i", { class: `dot state-${state}`, "aria-hidden": "true" }), STATES[state]);
    stateBox.replaceChildren(facts(detail.latest));
    return state;
  }

  const driveRows = drives.slice(0, SHOWN_ROWS).map((d, i) =>
    el(
      "tr",
      { "data-start-ms": d.start_ts_ms },
      el("td", {}, el("button", { type: "button", class: "secondary", onclick: () => showDrive(i), "aria-label": `${whenShort(d.start_ts_ms)}: show this drive's route` }, whenShort(d.start_ts_ms))),
      el("td", { class: "num" }, duration(d.duration_s)),
      el("td", { class: "num" }, num(d.distance_odometer_km ?? d.distance_gps_km, "km", 1)),
      el("td", { class: "num hide-narrow" }, num(d.energy_used_kwh ?? d.energy_soc_kwh, "kWh", 2)),
      el("td", { class: "num hide-narrow" }, num(d.efficiency_wh_per_km, "Wh/km", 0)),
      el("td", { class: "num hide-narrow" }, d.soc_start_pct == null ? "—" : `${num(d.soc_start_pct, "%", 0)} → ${num(d.soc_end_pct, "%", 0)}`),
    ),
  );
  const chargeRows = charges.slice(0, SHOWN_ROWS).map((c) =>
    el(
      "tr",
      {},
      el("td", {}, whenShort(c.start_ts_ms)),
      el("td", { class: "num hide-narrow" }, duration((c.end_ts_ms - c.start_ts_ms) / 1000)),
      el("td", { class: "num" }, num(c.energy_added_kwh, "kWh", 2)),
      el("td", { class: "num" }, c.soc_from_pct == null ? "—" : `${num(c.soc_from_pct, "%", 0)} → ${num(c.soc_to_pct, "%", 0)}`),
      el("td", { class: "num hide-narrow" }, num(c.peak_power_kw, "kW", 1)),
      el("td", { class: "hide-narrow" }, c.current_kind || "—"),
      el("td", { class: "num hide-narrow" }, c.cost == null ? "—" : `${num(c.cost, null, 2)} ${c.currency || ""}`),
    ),
  );

  const exportsBox = el(
    "div",
    { class: "exports" },
    el("a", { class: "button secondary", href: `${base}/drives.geojson?${range}`, download: `${vehicleId}-drives.geojson` }, "Drives as GeoJSON"),
    el("a", { class: "button secondary", href: `${base}/drives.csv?${range}`, download: `${vehicleId}-drives.csv` }, "Drives as CSV"),
    el("a", { class: "button secondary", href: `${base}/drives.gpx?${range}`, download: `${vehicleId}-drives.gpx` }, "Drives as GPX"),
  );
  const battery = await batterySection(vehicleId);
  const efficiency = efficiencySection(drives);
  const maintenance = maintenanceSection(vehicleId);
  const trips = tripsSection(vehicleId);
  const health = healthTrendSection(vehicleId);
  const drain = parkedDrainSection(vehicleId);
  const costs = costsSection(vehicleId);

  root.replaceChildren(
    el("p", {}, el("a", { href: "#/map" }, "← Live map")),
    el(
      "div",
      { class: "vehicle-head" },
      el("h1", {}, vehicle.name),
      badge,
      el("span", { class: "muted" }, [vehicle.model_id, vehicle.fleet_id && `fleet ${vehicle.fleet_id}`].filter(Boolean).join(" · ")),
    ),
    el(
      "div",
      { class: "vehicle-grid" },
      el("section", { class: "card", "aria-labelledby": "now-h" }, el("h2", { id: "now-h" }, "Now"), stateBox, updateNote),
      el("section", { class: "card", "aria-label": "Map" }, mapBox, routeNote),
    ),
    alerts.section,
    commandPanel(vehicle, () => stopped),
    battery.section,
    health.section,
    drain.section,
    costs.section,
    maintenance.section,
    trips.section,
    efficiency.section,
    el(
      "section",
      { class: "card", "aria-labelledby": "drives-h" },
      el("h2", { id: "drives-h" }, "Drives"),
      table(
        `Last ${WINDOW_DAYS} days, newest first${drives.length > SHOWN_ROWS ? ` (${SHOWN_ROWS} of ${drives.length})` : ""}`,
        [["Started"], ["Duration", "num"], ["Distance", "num"], ["Energy", "num hide-narrow"], ["Efficiency", "num hide-narrow"], ["Charge", "num hide-narrow"]],
        driveRows,
        "No drives yet — connect a car or run the demo; drives appear once the car has driven and stopped.",
      ),
    ),
    el(
      "section",
      { class: "card", "aria-labelledby": "charges-h" },
      el("h2", { id: "charges-h" }, "Charges"),
      table(
        `Last ${WINDOW_DAYS} days, newest first`,
        [["Started"], ["Duration", "num hide-narrow"], ["Energy added", "num"], ["Charge", "num"], ["Peak power", "num hide-narrow"], ["AC/DC", "hide-narrow"], ["Cost", "num hide-narrow"]],
        chargeRows,
        "No charges yet — they appear once the car has charged.",
      ),
    ),
    el("section", { class: "card", "aria-labelledby": "exports-h" }, el("h2", { id: "exports-h" }, "Export"), exportsBox),
  );
  let state = showState(vehicle);
  const plot = efficiency.draw();
  battery.load().catch(() => {});
  maintenance.load().catch(() => {});
  trips.load().catch(() => {});  // a 401 is handled by the next request's return to login
  for (const panel of [health, drain, costs]) panel.load().catch(() => {});

  let map = null;
  try {
    map = createMap(mapBox, { zoom: 14 });
  } catch (err) {
    mapBox.replaceChildren(el("p", { class: "error" }, `The map cannot be drawn here (${err.message}).`));
  }
  let latestDetail = vehicle;
  const here = () => {
    const lat = signal(latestDetail.latest, "lat_deg");
    const lon = signal(latestDetail.latest, "lon_deg");
    return lat == null || lon == null ? null : [lon, lat];
  };
  const carFeature = () => {
    const where = here();
    return {
      type: "FeatureCollection",
      features: where ? [{ type: "Feature", properties: { color: stateColor(state) }, geometry: { type: "Point", coordinates: where } }] : [],
    };
  };
  if (map) {
    map.whenLoaded.then(() => {
      map.addSource("route", { type: "geojson", data: { type: "FeatureCollection", features: [] } });
      map.addLayer({ id: "route", type: "line", source: "route", paint: { "line-color": stateColor("driving"), "line-width": 5 }, layout: { "line-cap": "round", "line-join": "round" } });
      map.addSource("car", { type: "geojson", data: carFeature() });
      map.addLayer({ id: "car", type: "circle", source: "car", paint: { "circle-radius": 9, "circle-color": ["get", "color"], "circle-stroke-color": "#ffffff", "circle-stroke-width": 2 } });
      const where = here();
      if (where) map.jumpTo({ center: where });
      mapBox.dataset.ready = "true";
    });
  }

  async function showDrive(index) {
    const drive = drives[index];
    for (const [i, row] of driveRows.entries()) row.setAttribute("aria-selected", i === index ? "true" : "false");
    const coordinates = drive.route.map(([lat, lon]) => [lon, lat]);
    routeNote.textContent = `Route of the drive of ${when(drive.start_ts_ms)}: ${num(drive.distance_odometer_km ?? drive.distance_gps_km, "km", 1)}, ${coordinates.length} points.`;
    routeNote.dataset.points = String(coordinates.length);
    if (!map) return;
    await map.whenLoaded;
    map.getSource("route").setData({ type: "Feature", properties: {}, geometry: { type: "LineString", coordinates } });
    if (coordinates.length) map.fitBounds(boundsOf(coordinates), { padding: 40, maxZoom: 16, duration: 0 });
    map.once("idle", () => (mapBox.dataset.route = String(drive.start_ts_ms)));
  }

  let stopped = false;
  let timer = null;
  let polling = false;
  const shown = () => {
    state = showState(latestDetail);
    if (map && map.getSource("car")) map.getSource("car").setData(carFeature());
  };
  async function reload() {
    [latestDetail] = await Promise.all([get(base), alerts.load()]);
    shown();
  }
  async function loop() {
    try {
      await reload();
      updateNote.textContent = `Updated every ${POLL_MS / 1000} s.`;
    } catch (err) {
      if (err.status === 401) return;
      updateNote.textContent = `Could not update (${err.message}); trying again in ${POLL_MS / 1000} s.`;
    }
    if (!stopped) timer = setTimeout(loop, POLL_MS);
  }
  function startPolling() {  // only if the live feed's WebSocket cannot open
    if (stopped || polling) return;
    polling = true;
    updateNote.classList.remove("error");
    loop();
  }
  // The page's state was fetched just before; a change between that and the feed's start is caught by the
  // refetch on `ready` below (the first one only).
  let first = true;
  const feed = liveFeed({
    onEvents: (events) => {
      let alertsChanged = false;
      for (const event of events) {
        if (event.vehicle_id !== vehicleId) continue;
        if (event.kind === "position" || event.kind === "state") {
          latestDetail = { ...latestDetail, latest: applyEvent(latestDetail.latest, event) };
        } else if (event.kind === "alert") alertsChanged = true;
      }
      shown();
      if (alertsChanged) alerts.load().then(shown).catch(() => {});
    },
    onGap: () => reload().catch(() => {}),
    onStatus: (what) => {
      updateNote.classList.toggle("error", what !== "live");
      updateNote.textContent = what === "live" ? "Live." : "Live updates lost — reconnecting…";
      updateNote.dataset.live = what;
      if (what === "live" && first) {
        first = false;
        reload().catch(() => {});
      }
    },
    onUnavailable: startPolling,
    onRefused: startPolling,  // a session that ended: the next request returns to the login page
  });
  return () => {
    stopped = true;
    if (plot) plot.destroy();
    for (const panel of [health, drain, costs]) panel.destroy();
    feed.stop();
    clearTimeout(timer);
    if (map) map.remove();
  };
}
