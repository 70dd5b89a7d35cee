// The fleet page's views of derived data (docs/web.md): utilisation and availability by hour, the charging
// plan per charger against each site's power limit, and places with the cars there now and their visits.
// Every figure is the API's answer for this user; each chart has a table with the same figures beside it.

import { ApiError, get } from "./api.js";
import { css } from "./basemap.js";
import { TIME_ZONE, el, num, whenShort } from "./format.js";

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;
const RANGES = { day: { label: "Last 24 h", ms: DAY_MS }, week: { label: "Last 7 days", ms: 7 * DAY_MS } };
const SERIES = [
  ["in_use", "In use", "--driving"],
  ["charging", "Charging", "--charging"],
  ["available", "Available", "--parked"],
  ["offline", "Offline", "--offline"],
];
// Connector colours in the plan per charger, taken in turn (the app's own state colours, light and dark).
const CONNECTOR_COLOURS = ["--charging", "--driving", "--offline", "--parked", "--alert"];

function card(id, title, ...children) {
  return el("section", { class: "card", "aria-labelledby": id }, el("h2", { id }, title), ...children);
}

function refused(err) {
  return err instanceof ApiError && err.status !== 401;
}

const pct = (share) => num(100 * share, "%", 0);
const hourMinute = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit" });
const hourLabel = (h) => `${String(h).padStart(2, "0")}:00–${String((h + 1) % 24).padStart(2, "0")}:00`;

// --- utilisation and availability by hour ------------------------------------------------------------

const KEYS = ["in_use", "charging", "available", "offline", "unknown"];

function byHourOfDay(hours) {
  const sums = Array.from({ length: 24 }, () => ({ n: 0, ...Object.fromEntries(KEYS.map((k) => [k, 0])) }));
  for (const h of hours) {
    const s = sums[new Date(h.start_ms).getHours()];  // the browser's own zone
    s.n += 1;
    for (const key of KEYS) s[key] += h[key];
  }
  return sums.map((s, hour) => ({ hour, ...Object.fromEntries(KEYS.map((k) => [k, s.n ? s[k] / s.n : null])) }));
}

function utilisationBody(hours, range) {
  const known = hours.filter((h) => h.unknown < 0.999);
  if (!hours.length || !hours[0].vehicle_count) {
    return { nodes: [el("p", { class: "muted", id: "utilisation-empty" }, "No cars to count yet — an admin adds cars to the fleet, or run the demo (microfleet demo).")] };
  }
  if (!known.length) {
    return { nodes: [el("p", { class: "muted", id: "utilisation-empty" }, `No derived history in the ${RANGES[range].label.toLowerCase()} yet — connect a car or run the demo (microfleet demo).`)] };
  }
  const mean = (key) => known.reduce((a, h) => a + h[key], 0) / known.length;
  const table = byHourOfDay(known);
  const busiest = table.filter((r) => r.in_use != null).sort((a, b) => b.in_use - a.in_use)[0];
  const summary = el(
    "p",
    { id: "utilisation-summary" },
    `${hours[0].vehicle_count} car${hours[0].vehicle_count === 1 ? "" : "s"}, ${RANGES[range].label.toLowerCase()}: `
      + `${pct(mean("in_use"))} of the time in use, ${pct(mean("available"))} available (parked, asleep or charging), `
      + `${pct(mean("charging"))} charging, ${pct(mean("offline"))} offline`
      + (mean("unknown") >= 0.005 ? `, no data for ${pct(mean("unknown"))}` : "")
      + (busiest && busiest.in_use > 0 ? `; busiest hour ${hourLabel(busiest.hour)} (${pct(busiest.in_use)} in use).` : "."),
  );
  const plot = el("div", { class: "plot", id: "utilisation-plot", role: "img",
    "aria-label": `Share of the cars' time in use, charging, available and offline per hour, ${RANGES[range].label.toLowerCase()}; the table below has the averages per hour of the day` });
  const rows = table.filter((r) => r.in_use != null).map((r) =>
    el("tr", {}, el("td", {}, hourLabel(r.hour)), el("td", { class: "num" }, pct(r.in_use)), el("td", { class: "num" }, pct(r.charging)),
      el("td", { class: "num" }, pct(r.available)), el("td", { class: "num" }, pct(r.offline)), el("td", { class: "num" }, pct(r.unknown))),
  );
  const tableBox = el(
    "div",
    { class: "table-wrap" },
    el("table", { id: "utilisation-hours" },
      el("caption", { class: "muted" }, `Mean share of car-time per hour of the day, in ${TIME_ZONE}`),
      el("thead", {}, el("tr", {}, ["Hour", "In use", "Charging", "Available", "Offline", "No data"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, rows)),
  );
  return { nodes: [summary, plot, tableBox], draw: () => drawUtilisation(plot, hours) };
}

function drawUtilisation(box, hours) {
  const uPlot = window.uPlot;
  if (!uPlot || hours.length < 2) {
    box.remove();
    return null;
  }
  const xs = hours.map((h) => (h.start_ms + HOUR_MS / 2) / 1000);
  return new uPlot(
    {
      width: Math.max(280, box.clientWidth || 600),
      height: 220,
      scales: { "%": { range: [0, 100] } },
      series: [{}, ...SERIES.map(([, label, colour]) => ({ label: `${label} (%)`, stroke: css(colour), width: 2, scale: "%" }))],
      axes: [
        { stroke: css("--fg"), grid: { stroke: css("--line") } },
        { scale: "%", label: "% of car-time", stroke: css("--fg"), grid: { stroke: css("--line") } },
      ],
    },
    // an hour no derived state covers is a gap, not a zero
    [xs, ...SERIES.map(([key]) => hours.map((h) => (h.unknown >= 0.999 ? null : Math.round(1000 * h[key]) / 10)))],
    box,
  );
}

export function utilisationSection(session) {
  const body = el("div", { id: "utilisation" }, el("p", { class: "muted" }, "Loading…"));
  let plot = null;
  let range = "week";
  const buttons = Object.entries(RANGES).map(([key, r]) =>
    el("button", { type: "button", class: "secondary", "aria-pressed": String(key === range), "data-range": key, onclick: () => show(key) }, r.label),
  );
  const section = card("utilisation-h", "Use by hour", el("div", { class: "toolbar", role: "group", "aria-label": "Period" }, buttons), body);
  async function show(key) {
    range = key;
    for (const b of buttons) b.setAttribute("aria-pressed", String(b.dataset.range === key));
    const now = Date.now();
    const from = Math.floor((now - RANGES[key].ms) / HOUR_MS) * HOUR_MS;
    const params = new URLSearchParams({ from_ms: String(from), to_ms: String(now), bucket_s: "3600" });
    if (session.fleet_id) params.set("fleet_id", session.fleet_id);
    let hours;
    try {
      hours = await get(`/api/v1/fleet/utilisation?${params}`);
    } catch (err) {
      if (!refused(err)) throw err;
      body.replaceChildren(el("p", { class: "error" }, `Use by hour could not be read (${err.message}).`));
      return;
    }
    if (plot) plot.destroy();
    const view = utilisationBody(hours, key);
    body.replaceChildren(...view.nodes);
    plot = view.draw ? view.draw() : null;
  }
  return { section, load: () => show(range), destroy: () => plot && plot.destroy() };
}

// --- the charging plan per charger -------------------------------------------------------------------

function drawSite(canvas, site, plan) {
  const slots = site.total_kw.length;
  const width = Math.max(320, canvas.parentElement.clientWidth - 32);
  const height = 200;
  const left = 48;
  const bottom = 20;
  const ratio = window.devicePixelRatio || 1;
  canvas.width = width * ratio;
  canvas.height = height * ratio;
  canvas.style.width = `${width}px`;
  canvas.style.height = `${height}px`;
  const ctx = canvas.getContext("2d");
  ctx.scale(ratio, ratio);
  const top = Math.max(site.power_limit_kw, site.planned_peak_kw, ...site.total_kw) * 1.1 || 1;
  const y = (kw) => (height - bottom) * (1 - kw / top);
  const slotW = (width - left) / slots;
  ctx.font = "11px system-ui, sans-serif";
  const stack = new Array(slots).fill(0);
  site.connectors.forEach((c, k) => {
    ctx.fillStyle = css(CONNECTOR_COLOURS[k % CONNECTOR_COLOURS.length]);
    c.power_kw.forEach((kw, i) => {
      if (kw <= 0) return;
      ctx.fillRect(left + i * slotW, y(stack[i] + kw), Math.max(1, slotW - 0.5), y(stack[i]) - y(stack[i] + kw));
      stack[i] += kw;
    });
  });
  // the site's limit: a dashed line across, labelled
  ctx.strokeStyle = css("--alert");
  ctx.lineWidth = 2;
  ctx.setLineDash([6, 4]);
  ctx.beginPath();
  ctx.moveTo(left, y(site.power_limit_kw));
  ctx.lineTo(width, y(site.power_limit_kw));
  ctx.stroke();
  ctx.setLineDash([]);
  ctx.fillStyle = css("--fg");
  ctx.fillText(`limit ${num(site.power_limit_kw, "kW", 0)}`, left + 4, y(site.power_limit_kw) - 4);
  ctx.fillText("0 kW", 2, y(0));
  ctx.fillText(num(site.power_limit_kw, "kW", 0), 2, y(site.power_limit_kw) + 4);
  ctx.fillStyle = css("--muted");
  for (let i = 0; i < slots; i += Math.max(1, Math.round(HOUR_MS / 1000 / plan.slot_s) * 3)) {
    ctx.fillText(hourMinute.format(new Date(plan.start_ms + i * plan.slot_s * 1000)), left + i * slotW, height - 4);
  }
}

function siteBox(site, plan, names, index) {
  const kwh = (kws) => kws.reduce((a, b) => a + b, 0) * (plan.slot_s / 3600);
  const planned = site.connectors.filter((c) => kwh(c.power_kw) > 0.01);
  const peak = Math.max(0, ...site.total_kw);
  const head = el(
    "p",
    { class: "site-peak", id: `site-peak-${index}`, "data-site": site.site_id },
    `${site.name}: peak ${num(site.planned_peak_kw, "kW", 1)} of its ${num(site.power_limit_kw, "kW", 0)} limit `
      + `(${num((100 * site.planned_peak_kw) / site.power_limit_kw, "%", 0)}); `
      + `${site.connectors.length} connector${site.connectors.length === 1 ? "" : "s"}, ${planned.length} charging in the plan.`,
  );
  const rows = site.connectors.map((c, k) =>
    el(
      "tr",
      {},
      el("td", {}, el("i", { class: "swatch", "aria-hidden": "true", style: `background: var(${CONNECTOR_COLOURS[k % CONNECTOR_COLOURS.length]})` }), ` ${c.charge_point_id} / ${c.connector_id}`),
      el("td", {}, c.vehicle_id ? el("a", { href: `#/vehicles/${encodeURIComponent(c.vehicle_id)}` }, names.get(c.vehicle_id) || c.vehicle_id) : el("span", { class: "muted" }, "free")),
      el("td", { class: "num" }, num(kwh(c.power_kw), "kWh", 1)),
      el("td", { class: "num" }, num(Math.max(0, ...c.power_kw), "kW", 1)),
      el("td", { class: "num" }, num(c.max_kw, "kW", 1)),
    ),
  );
  const table = el("div", { class: "table-wrap" }, el("table", { class: "charger-plan", id: `charger-plan-${index}`, "aria-describedby": `site-peak-${index}` },
    el("caption", { class: "muted" }, "Planned energy per connector"),
    el("thead", {}, el("tr", {}, ["Connector", "Car", "Planned", "Highest", "Connector max"].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, rows.length ? rows : el("tr", {}, el("td", { colspan: 5, class: "muted" }, "No charger registered at this site.")))));
  if (!planned.length) {
    return { nodes: [head, el("p", { class: "muted" }, "No car plugged in here needs charging in this plan — the plan charges only cars plugged into a charger."), table], draw: null };
  }
  const canvas = el("canvas", {
    class: "plan-timeline",
    id: `site-timeline-${index}`,
    role: "img",
    "aria-label": `${site.name}: planned kW per charger, stacked, over the plan's ${site.total_kw.length} slots of ${plan.slot_s / 60} min, against the ${num(site.power_limit_kw, "kW", 0)} limit; highest ${num(peak, "kW", 1)}. The table below lists each connector.`,
  });
  return { nodes: [head, canvas, table], draw: () => drawSite(canvas, site, plan) };
}

export async function chargerPlanBox(fleetId, names) {
  let plan;
  try {
    plan = await get(`/api/v1/fleets/${encodeURIComponent(fleetId)}/charging-plan/chargers`);
  } catch (err) {
    if (!refused(err)) throw err;
    return { nodes: [el("p", { class: "muted" }, `The plan per charger could not be read (${err.message}).`)], draws: [] };
  }
  const nodes = [el("h3", {}, "Per charger")];
  const draws = [];
  plan.sites.forEach((site, i) => {
    const box = siteBox(site, plan, names, i);
    nodes.push(...box.nodes);
    if (box.draw) draws.push(box.draw);
  });
  const unplaced = Object.keys(plan.unplaced);
  if (unplaced.length) {
    nodes.push(el("p", { class: "error" }, `Planned on no known charger: ${unplaced.map((v) => names.get(v) || v).join(", ")}.`));
  }
  nodes.push(el("p", { class: "muted" }, `Slots of ${plan.slot_s / 60} min from ${whenShort(plan.start_ms)}, in ${TIME_ZONE}; the dashed line is the site's grid limit.`));
  return { nodes, draws };
}

// --- places and zones --------------------------------------------------------------------------------

export async function placesSection(session, names) {
  const now = Date.now();
  const params = new URLSearchParams({ from_ms: String(now - 7 * DAY_MS), to_ms: String(now) });
  if (session.fleet_id) params.set("fleet_id", session.fleet_id);
  let rows;
  try {
    rows = await get(`/api/v1/fleet/places?${params}`);
  } catch (err) {
    if (!refused(err)) throw err;
    return card("places-h", "Places", el("p", { class: "error" }, `Places could not be read (${err.message}).`));
  }
  const places = rows.filter((r) => r.place_id);
  const carList = (ids) =>
    ids.length
      ? ids.slice(0, 8).flatMap((id, i) => [i ? ", " : "", el("a", { href: `#/vehicles/${encodeURIComponent(id)}` }, names.get(id) || id)]).concat(ids.length > 8 ? [` and ${ids.length - 8} more`] : [])
      : [el("span", { class: "muted" }, "none")];
  const tableRows = rows.map((r) =>
    el(
      "tr",
      { "data-place": r.place_id || "outside" },
      el("th", { scope: "row" }, r.name, r.kind ? el("span", { class: "muted" }, ` (${r.kind})`) : null),
      el("td", { class: "num" }, String(r.cars_now.length)),
      el("td", {}, carList(r.cars_now)),
      el("td", { class: "num" }, String(r.arrivals)),
      el("td", { class: "num" }, String(r.departures)),
      el("td", { class: "num" }, String(r.charges)),
      el("td", { class: "num" }, num(r.charged_kwh, "kWh", 1)),
    ),
  );
  return card(
    "places-h",
    "Places",
    places.length
      ? el("p", {}, `${places.length} place${places.length === 1 ? "" : "s"}; cars by their last position, visits over the last 7 days.`)
      : el("p", { class: "muted", id: "places-empty" }, "No places yet — name a depot, a charger or a home as a place (POST /api/v1/places, or microfleet places; docs/history.md), and the cars' visits are counted there."),
    el("div", { class: "table-wrap" }, el("table", { id: "fleet-places" },
      el("thead", {}, el("tr", {}, ["Place", "Cars now", "Which", "Arrivals", "Departures", "Charges", "Charged"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, tableRows))),
  );
}
