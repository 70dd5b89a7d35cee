// The fleet page for operators: the fleet now (how many cars drive, charge, stand, need attention), use by
// hour, the last two weeks per day (distance, energy, cost, CO2 avoided), places, and the charging plan per
// charger against each site's limit with the bookings it cannot serve. Every figure is the API's answer for
// this user (docs/web.md).

import { ApiError, get } from "./api.js";
import { css } from "./basemap.js";
import { driverScoresSection, serviceWeekSection } from "./care.js";
import { chargerPlanBox, placesSection, utilisationSection } from "./fleet_views.js";
import { OPEN_ALERTS, STATES, TIME_ZONE, alertsByVehicle, carState, clock, el, num, when, whenShort } from "./format.js";

const DAY_MS = 86_400_000;
const DAYS = 14;
const STATE_ORDER = ["alert", "driving", "charging", "parked", "offline", "nodata"];

function section(id, title, ...children) {
  return el("section", { class: "card", "aria-labelledby": id }, el("h2", { id }, title), ...children);
}

function nowBox(vehicles, latest, alerts) {
  const open = alertsByVehicle(alerts);
  const byId = new Map(latest.map((entry) => [entry.vehicle_id, entry.latest]));
  const now = Date.now();
  const counts = Object.fromEntries(STATE_ORDER.map((s) => [s, 0]));
  for (const v of vehicles) counts[carState(byId.get(v.vehicle_id), now, open.get(v.vehicle_id) || [])] += 1;
  const available = counts.parked + counts.charging;
  const tiles = STATE_ORDER.map((s) =>
    el("div", { class: "tile", "data-state": s }, el("span", { class: "tile-n" }, String(counts[s])),
      el("span", {}, el("i", { class: `dot state-${s}`, "aria-hidden": "true" }), " ", STATES[s])),
  );
  return [
    el("div", { class: "tiles", id: "fleet-now" }, tiles),
    el(
      "p",
      {},
      `${vehicles.length} car${vehicles.length === 1 ? "" : "s"}: ${counts.driving} in use (${num((100 * counts.driving) / Math.max(1, vehicles.length), "%", 0)}), `
        + `${available} available to book (parked or charging), updated ${clock(now)}.`,
    ),
  ];
}

function attentionBox(vehicles, alerts) {
  const names = new Map(vehicles.map((v) => [v.vehicle_id, v.name]));
  if (!alerts.length) return el("p", { class: "muted" }, "No car needs attention: no open alert.");
  return el(
    "ul",
    { class: "alerts", id: "fleet-attention" },
    alerts.map((a) =>
      el(
        "li",
        {},
        el("span", { class: `severity severity-${a.severity}` }, a.severity),
        el("a", { href: `#/vehicles/${encodeURIComponent(a.vehicle_id)}` }, names.get(a.vehicle_id) || a.vehicle_id),
        el("span", {}, a.title),
        el("span", { class: "muted" }, `since ${when(a.raised_at_ms)}`),
      ),
    ),
  );
}

function dailyBox(summary) {
  if (!summary.some((d) => d.drive_count || d.charge_count)) {
    return [el("p", { class: "muted" }, "No drives or charges in the last two weeks yet — connect a car or run the demo (microfleet demo).")];
  }
  const currency = summary.find((d) => d.currency)?.currency || "";
  const rows = summary.map((d) =>
    el(
      "tr",
      {},
      el("td", {}, d.period_start),
      el("td", {}, num(d.distance_km, "km", 0)),
      el("td", {}, num(d.drive_energy_kwh, "kWh", 1)),
      el("td", {}, num(d.charge_energy_kwh, "kWh", 1)),
      el("td", {}, currency ? `${d.cost.toFixed(2)} ${currency}` : "—"),
      el("td", {}, num(d.co2_avoided_kg, "kg", 1)),
      el("td", {}, num(100 * d.utilisation_share, "%", 0)),
    ),
  );
  const plot = el("div", { class: "plot", id: "fleet-daily-plot", role: "img",
    "aria-label": "Distance and energy per day over the last two weeks; the table below has the figures" });
  const table = el(
    "div",
    { class: "table-wrap" },
    el(
      "table",
      { id: "fleet-daily" },
      el("caption", { class: "muted" }, `Per day, in ${TIME_ZONE}`),
      el("thead", {}, el("tr", {}, ["Day", "Distance", "Driven", "Charged", "Cost", "CO₂ avoided", "In use"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows),
    ),
  );
  return [plot, table];
}

function drawDaily(box, summary) {
  const uPlot = window.uPlot;
  if (!box) return null;
  if (!uPlot || summary.length < 2) {
    box.remove();  // one day is a row of the table, not a line
    return null;
  }
  const xs = summary.map((d) => Date.parse(`${d.period_start}T12:00:00`) / 1000);
  const width = Math.max(280, box.clientWidth || 600);
  return new uPlot(
    {
      width,
      height: 220,
      series: [
        {},
        { label: "Distance (km)", stroke: css("--driving"), width: 2, scale: "km" },
        { label: "Driven (kWh)", stroke: css("--alert"), width: 2, scale: "kWh" },
        { label: "Charged (kWh)", stroke: css("--charging"), width: 2, scale: "kWh" },
      ],
      axes: [
        { stroke: css("--fg"), grid: { stroke: css("--line") } },
        { scale: "km", label: "km", stroke: css("--fg"), grid: { stroke: css("--line") } },
        { scale: "kWh", label: "kWh", side: 1, stroke: css("--fg"), grid: { show: false } },
      ],
    },
    [xs, summary.map((d) => d.distance_km), summary.map((d) => d.drive_energy_kwh), summary.map((d) => d.charge_energy_kwh)],
    box,
  );
}

// The plan's figures, its bookings at risk and each car's reason; the peak of each site against its limit is
// in the plan per charger (fleet_views.js).
function planBox(plan, names) {
  const slots = plan.cars.length ? plan.cars[0].power_kw.length : 0;
  const atRisk = plan.bookings.filter((b) => b.shortfall_kwh > 0.05);
  const head = el(
    "p",
    {},
    `Plan of ${when(plan.created_at_ms)} (${plan.trigger}, ${plan.status}): ${plan.cars.length} car${plan.cars.length === 1 ? "" : "s"}, `
      + `${slots ? `${slots} slots` : "slots"} of ${plan.slot_s / 60} min from ${whenShort(plan.start_ms)}; `
      + `cost ${plan.cost.toFixed(2)} ${plan.currency}, peak ${num(plan.peak_kw, "kW", 1)}`
      + (plan.carbon_kg != null ? `, ${num(plan.carbon_kg, "kg", 1)} CO₂` : "")
      + ".",
  );
  const risk = atRisk.length
    ? el(
        "ul",
        { class: "alerts", id: "bookings-at-risk" },
        atRisk.map((b) =>
          el("li", {}, el("span", { class: "severity severity-warning" }, "at risk"),
            el("span", {}, `${names.get(b.vehicle_id) || b.vehicle_id}: booking at ${whenShort(b.start_ms)} short of ${num(b.shortfall_kwh, "kWh", 1)}`)),
        ),
      )
    : el("p", { class: "ok", id: "bookings-at-risk" }, `Every booked trip in the plan starts with its energy (${plan.bookings.length} bookings).`);
  const charging = plan.cars
    .map((c) => ({ ...c, kwh: c.power_kw.reduce((a, b) => a + b, 0) * (plan.slot_s / 3600) }))
    .filter((c) => c.kwh > 0.01)
    .sort((a, b) => b.kwh - a.kwh);
  const rows = charging.map((c) =>
    el("tr", {}, el("td", {}, names.get(c.vehicle_id) || c.vehicle_id), el("td", {}, num(c.kwh, "kWh", 1)), el("td", {}, c.explanation)),
  );
  const table = el(
    "div",
    { class: "table-wrap" },
    el(
      "table",
      { id: "plan-cars" },
      el("thead", {}, el("tr", {}, ["Car", "Planned", "Why"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: 3, class: "muted" }, "No car needs to charge in this plan."))),
    ),
  );
  return [head, risk, el("h3", {}, "Per car"), table];
}

export async function fleetPage(root, session) {
  const heading = el("h1", {}, session.fleet_id ? `Fleet ${session.fleet_id}` : "Fleet");
  root.replaceChildren(heading, el("p", { class: "muted" }, "Loading the fleet…"));
  const now = Date.now();
  const fromMs = Math.floor((now - (DAYS - 1) * DAY_MS) / DAY_MS) * DAY_MS;
  const params = new URLSearchParams({ period: "day", from_ms: String(fromMs), to_ms: String(now + DAY_MS), tz: TIME_ZONE });
  if (session.fleet_id) params.set("fleet_id", session.fleet_id);
  const [vehicles, latest, alerts, summary] = await Promise.all([
    get("/api/v1/vehicles"),
    get("/api/v1/fleet/latest?signals=speed_kmh,charger_power_kw"),
    get(OPEN_ALERTS),
    get(`/api/v1/fleet/summary?${params}`),
  ]);
  if (!vehicles.length) {
    root.replaceChildren(heading, el("p", { class: "muted" }, "No cars in your fleet yet — an admin adds cars to it, or run the demo (microfleet demo)."));
    return;
  }
  const names = new Map(vehicles.map((v) => [v.vehicle_id, v.name]));
  const fleets = session.fleet_id ? [session.fleet_id] : [...new Set(vehicles.map((v) => v.fleet_id).filter(Boolean))];
  const absent = (fallback) => (err) =>
    err instanceof ApiError && (err.status === 404 || err.status === 403) ? fallback : Promise.reject(err);
  const plans = await Promise.all(
    fleets.map((f) => get(`/api/v1/fleets/${encodeURIComponent(f)}/charging-plan`).catch(absent(null))),
  );
  const daily = dailyBox(summary);
  const [care, places, perCharger] = await Promise.all([
    Promise.all(fleets.flatMap((f) => [serviceWeekSection(f, names), driverScoresSection(f)])),
    placesSection(session, names),
    Promise.all(fleets.map((f, i) => (plans[i] ? chargerPlanBox(f, names) : null))),
  ]);
  const planSections = [];
  const drawers = [];
  fleets.forEach((f, i) => {
    const id = `plan-h-${i}`;
    if (!plans[i]) {
      planSections.push(section(id, `Charging plan · ${f}`, el("p", { class: "muted", id: "no-plan" },
        "No charging plan yet — register the fleet's charging sites and chargers (docs/charging.md).")));
      return;
    }
    const [head, risk, ...perCar] = planBox(plans[i], names);
    planSections.push(section(id, `Charging plan · ${f}`, head, risk, ...perCharger[i].nodes, ...perCar));
    drawers.push(...perCharger[i].draws);
  });
  const use = utilisationSection(session);
  root.replaceChildren(
    heading,
    section("now-h", "Now", ...nowBox(vehicles, latest, alerts)),
    section("attention-h", "Cars needing attention", attentionBox(vehicles, alerts)),
    use.section,
    section("days-h", "The last two weeks", ...daily),
    places,
    ...planSections,
    ...care,
  );
  const plot = drawDaily(document.getElementById("fleet-daily-plot"), summary);
  for (const draw of drawers) draw();
  await use.load();
  return () => {
    if (plot) plot.destroy();
    use.destroy();
  };
}
