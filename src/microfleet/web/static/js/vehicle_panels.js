// Two panels of a car's page: its battery (GET /api/v1/vehicles/{id}/battery, docs/battery.md) and its
// efficiency over time (Wh/km of its drives, as a uPlot chart). Each says what is missing rather than guess.

import { ApiError, get } from "./api.js";
import { el, num, when } from "./format.js";

function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

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
