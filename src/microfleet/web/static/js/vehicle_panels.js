// Two panels of a car's page: its battery (GET /api/v1/vehicles/{id}/battery, docs/battery.md) and its
// efficiency over time (Wh/km of its drives, as a uPlot chart). Each says what is missing rather than guess.

import { ApiError, get } from "./api.js";
import { css } from "./basemap.js";
import { el, num, when } from "./format.js";

function fact(label, value) {
  return [el("dt", {}, label), el("dd", {}, value)];
}

function missing(part) {
  return el("span", { class: "muted" }, part && part.reason ? part.reason : "not available");
}

function socText(soc) {
  if (!soc || !soc.available) return missing(soc);
  const est = soc.estimate;
  if (est && est.soc_pct != null) {
    return `${num(est.soc_pct, "%", 1)} ± ${num(est.sigma_pct, "points", 1)} (estimated; the car says ${num(soc.bms_soc_pct, "%", 0)})`;
  }
  return `${num(soc.bms_soc_pct, "%", 0)} (the car's own figure${soc.reason ? `; ${soc.reason}` : ""})`;
}

function sohText(soh) {
  if (!soh || !soh.available) return missing(soh);
  const band = soh.band_low_pct != null ? ` (90 % band ${num(soh.band_low_pct, "%", 1)}–${num(soh.band_high_pct, "%", 1)})` : "";
  const cap = soh.capacity_kwh != null ? `, ${num(soh.capacity_kwh, "kWh", 1)} usable` : "";
  return `${num(soh.soh_pct, "%", 1)}${band}${cap}`;
}

function rangeText(range) {
  if (!range || !range.available) return missing(range);
  const temp = range.temp_c != null ? ` at ${num(range.temp_c, "°C", 0)}` : "";
  return `${num(range.p50_km, "km", 0)} likely, ${num(range.p10_km, "km", 0)}–${num(range.p90_km, "km", 0)} (P10–P90)${temp}`;
}

export async function batterySection(vehicleId) {
  const body = el("div", { id: "battery" }, el("p", { class: "muted" }, "Loading the battery…"));
  const section = el("section", { class: "card", "aria-labelledby": "battery-h" }, el("h2", { id: "battery-h" }, "Battery"), body);
  const load = async () => {
    let report;
    try {
      report = await get(`/api/v1/vehicles/${encodeURIComponent(vehicleId)}/battery`);
    } catch (err) {
      if (err instanceof ApiError && err.status !== 401) {
        body.replaceChildren(el("p", { class: "error" }, `The battery report could not be read (${err.message}).`));
        return;
      }
      throw err;
    }
    const advice = (report.advice || []).map((a) => el("li", {}, el("strong", {}, a.title), " — ", a.reason));
    const care = advice.length ? [el("h3", {}, "Care"), el("ul", { class: "advice" }, advice)] : [];
    body.replaceChildren(
      el(
        "dl",
        { class: "facts" },
        fact("Charge", socText(report.soc)),
        fact("Health", sohText(report.soh)),
        fact("Range", rangeText(report.range)),
        fact("Model", report.model_version ? `${report.model_version}, fitted ${when(report.fitted_at_ms)}` : "not fitted yet"),
      ),
      ...care,
    );
  };
  return { section, load };
}

export function efficiencySection(drives) {
  // Oldest first for the chart; drives without a distance or an energy have no efficiency and are left out.
  const points = drives
    .filter((d) => d.efficiency_wh_per_km != null)
    .map((d) => [d.start_ts_ms / 1000, d.efficiency_wh_per_km])
    .sort((a, b) => a[0] - b[0]);
  const box = el("div", {
    class: "plot",
    id: "efficiency-plot",
    role: "img",
    "aria-label": `Energy per kilometre of ${points.length} drives over time; the drives table has each figure`,
  });
  const section = el(
    "section",
    { class: "card", "aria-labelledby": "efficiency-h" },
    el("h2", { id: "efficiency-h" }, "Efficiency"),
    points.length < 2 ? el("p", { class: "muted" }, "Efficiency over time appears after two drives with a measured energy.") : box,
  );
  const draw = () => {
    if (points.length < 2 || !window.uPlot) return null;
    return new window.uPlot(
      {
        width: Math.max(280, box.clientWidth || 600),
        height: 200,
        series: [{}, { label: "Wh/km", stroke: css("--driving"), width: 0, points: { show: true, size: 6, fill: css("--driving") } }],
        axes: [
          { stroke: css("--fg"), grid: { stroke: css("--line") } },
          { label: "Wh/km", stroke: css("--fg"), grid: { stroke: css("--line") } },
        ],
      },
      [points.map((p) => p[0]), points.map((p) => p[1])],
      box,
    );
  };
  return { section, draw };
}

// The car's learned trips and the next ones it is likely to make (GET .../routes and .../forecast,
// docs/routes.md): the SoC the next trips need, their energy as P10-P90, and insights in a sentence.
export function tripsSection(vehicleId) {
  const body = el("div", { id: "trips" }, el("p", { class: "muted" }, "Loading trips…"));
  const section = el("section", { class: "card", "aria-labelledby": "trips-h" }, el("h2", { id: "trips-h" }, "Trips"), body);
  const tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
  const base = `/api/v1/vehicles/${encodeURIComponent(vehicleId)}`;
  const load = async () => {
    let routes;
    let forecast;
    try {
      [routes, forecast] = await Promise.all([get(`${base}/routes?tz=${encodeURIComponent(tz)}`), get(`${base}/forecast?tz=${encodeURIComponent(tz)}`)]);
    } catch (err) {
      if (err instanceof ApiError && err.status !== 401) {
        body.replaceChildren(el("p", { class: "error" }, `Trips could not be read (${err.message}).`));
        return;
      }
      throw err;
    }
    if (routes.status !== "ok" && !routes.trips.length) {
      body.replaceChildren(el("p", { class: "muted" }, `Learning this car's trips: ${routes.drives_needed} more drives needed (${routes.drives} so far).`));
      return;
    }
    const names = new Map(routes.places.map((p) => [p.place_id, p.name || `a place of ${p.visits} visits`]));
    const place = (id) => (id === "unknown" ? "somewhere new" : names.get(id) || id);
    const energy = (e) => (e ? `${num(e.p50_kwh, "kWh", 2)} (${num(e.p10_kwh, null, 2)}–${num(e.p90_kwh, "kWh", 2)})` : "—");
    const next = forecast.trips.slice(0, 3).map((t) =>
      el("li", {}, el("strong", {}, `${when(t.depart_ts_ms)}`), ` to ${place(t.destination_place_id)} (${num(100 * t.probability_share, "%", 0)} likely), ${energy(t.energy)}`),
    );
    const frequent = routes.trips.slice(0, 8).map((t) =>
      el("tr", {}, el("td", {}, `${place(t.origin_place_id)} → ${place(t.destination_place_id)}`), el("td", { class: "num" }, String(t.count)),
        el("td", { class: "num" }, t.usual_departure_local), el("td", { class: "num" }, num(t.distance_median_km, "km", 1)), el("td", { class: "num" }, energy(t.energy))),
    );
    const nodes = [
      forecast.soc_needed_pct != null
        ? el("p", { id: "soc-needed" }, `The next trips need about ${num(forecast.soc_needed_pct, "%", 0)} of the battery (with a ${num(forecast.reserve_pct, "%", 0)} reserve).`)
        : null,
      next.length ? el("ul", { class: "advice" }, next) : el("p", { class: "muted" }, "No next trip predicted."),
      frequent.length
        ? el("div", { class: "table-wrap" }, el("table", { id: "frequent-trips" },
            el("thead", {}, el("tr", {}, ["Trip", "Times", "Usually leaves", "Distance", "Energy (P10–P90)"].map((h) => el("th", { scope: "col" }, h)))),
            el("tbody", {}, frequent)))
        : null,
      ...routes.insights.slice(0, 3).map((i) => el("p", { class: "muted" }, i.text)),
    ];
    body.replaceChildren(...nodes.filter(Boolean));  // replaceChildren(null) would write "null"
  };
  return { section, load };
}
