// Maintenance and driving on the pages: a car's findings and due service (vehicle page), the fleet's service
// week and its drivers' scores (fleet page), a driver's own score (account page). Every figure is the API's
// (docs/maintenance.md, docs/driver-score.md); what a detector cannot judge yet is said, not hidden.

import { ApiError, get } from "./api.js";
import { el, num, when, whenShort } from "./format.js";

const VERDICT_ORDER = ["suspected", "learning", "no_signal", "ok"];

function card(id, title, ...children) {
  return el("section", { class: "card", "aria-labelledby": id }, el("h2", { id }, title), ...children);
}

function refused(err) {
  return err instanceof ApiError && err.status !== 401;
}

export function maintenanceSection(vehicleId) {
  const body = el("div", { id: "maintenance" }, el("p", { class: "muted" }, "Loading…"));
  const section = card("maintenance-h", "Maintenance", body);
  const load = async () => {
    let m;
    try {
      m = await get(`/api/v1/vehicles/${encodeURIComponent(vehicleId)}/maintenance`);
    } catch (err) {
      if (!refused(err)) throw err;
      body.replaceChildren(el("p", { class: "error" }, `Maintenance could not be read (${err.message}).`));
      return;
    }
    const findings = [...m.findings].sort((a, b) => VERDICT_ORDER.indexOf(a.verdict) - VERDICT_ORDER.indexOf(b.verdict));
    const suspected = findings.filter((f) => f.verdict === "suspected");
    const rows = findings.map((f) =>
      el(
        "li",
        { "data-verdict": f.verdict },
        f.verdict === "suspected" ? el("span", { class: `severity severity-${f.severity}` }, f.severity) : el("span", { class: "muted" }, f.verdict.replace("_", " ")),
        el("strong", {}, f.detector),
        el("span", {}, f.reason),
        f.verdict === "suspected" && f.action ? el("span", { class: "muted" }, `→ ${f.action}`) : null,
      ),
    );
    const due = m.due.map((d) =>
      el("li", {}, el("span", { class: `severity severity-${d.pressing ? "warning" : "info"}` }, d.pressing ? "due" : "later"),
        el("strong", {}, d.item), el("span", {}, d.reason)),
    );
    body.replaceChildren(
      el("p", {}, suspected.length ? `${suspected.length} suspected fault${suspected.length === 1 ? "" : "s"}.` : "No suspected fault."),
      el("ul", { class: "alerts" }, rows.length ? rows : el("li", { class: "muted" }, "No detector has run for this car yet.")),
      el("h3", {}, "Service due"),
      el("ul", { class: "alerts" }, due.length ? due : el("li", { class: "muted" }, "Nothing due.")),
    );
  };
  return { section, load };
}

export async function serviceWeekSection(fleetId, names) {
  let plan;
  try {
    plan = await get(`/api/v1/fleets/${encodeURIComponent(fleetId)}/service-plan`);
  } catch (err) {
    if (!refused(err)) throw err;
    return card(`service-h-${fleetId}`, `Service this week · ${fleetId}`, el("p", { class: "muted" }, err.message));
  }
  const visits = plan.visits.map((v) =>
    el("tr", {}, el("td", {}, el("a", { href: `#/vehicles/${encodeURIComponent(v.vehicle_id)}` }, names.get(v.vehicle_id) || v.vehicle_id)),
      el("td", {}, `${whenShort(v.start_ms)}–${when(v.end_ms).split(", ").pop()}`), el("td", {}, v.items.join(", ")),
      el("td", { class: "num" }, num(v.disrupted_booking_min, "min", 0))),
  );
  return card(
    `service-h-${fleetId}`,
    `Service this week · ${fleetId}`,
    visits.length
      ? el("div", { class: "table-wrap" }, el("table", { id: "service-visits" },
          el("thead", {}, el("tr", {}, ["Car", "When", "Items", "Bookings moved"].map((h) => el("th", { scope: "col" }, h)))),
          el("tbody", {}, visits)))
      : el("p", { class: "muted" }, "No car needs the workshop this week."),
    plan.unplaced.length ? el("p", { class: "error" }, `No slot found for: ${plan.unplaced.map((id) => names.get(id) || id).join(", ")}.`) : null,
  );
}

function scoreRow(d) {
  return el(
    "tr",
    {},
    el("td", {}, d.driver),
    el("td", { class: "num" }, d.safety_score == null ? "—" : num(d.safety_score, null, 0)),
    el("td", { class: "num" }, `${d.assessed_drives} / ${d.drives}`),
    el("td", { class: "num" }, num(d.hard_braking_pct, "%", 1)),
    el("td", { class: "num" }, num(d.aggressive_turning_pct, "%", 1)),
    el("td", { class: "num" }, d.speeding_share == null ? "—" : num(100 * d.speeding_share, "%", 1)),
    el("td", { class: "num" }, d.energy_factor == null ? "—" : `${num(100 * (d.energy_factor - 1), "%", 0)}`),
    el("td", { class: "muted" }, d.status === "scored" ? "" : d.message),
  );
}

function scoreTable(id, drivers) {
  return el("div", { class: "table-wrap" }, el("table", { id },
    el("thead", {}, el("tr", {}, ["Driver", "Safety score", "Assessed drives", "Hard braking", "Aggressive turning", "Speeding", "Energy vs peers", ""].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, drivers.map(scoreRow))));
}

export async function driverScoresSection(fleetId) {
  let scores;
  try {
    scores = await get(`/api/v1/fleets/${encodeURIComponent(fleetId)}/driver-scores`);
  } catch (err) {
    if (!refused(err)) throw err;
    return card(`drivers-h-${fleetId}`, `Drivers · ${fleetId}`, el("p", { class: "muted" }, err.message));
  }
  return card(
    `drivers-h-${fleetId}`,
    `Drivers · ${fleetId}`,
    scores.drivers.length ? scoreTable("driver-scores", scores.drivers) : el("p", { class: "muted" }, "No driver has driven a booked car yet."),
    el("p", { class: "muted" }, `Score: Tesla's published Safety Score formula (docs/driver-score.md); ${scores.unattributed_drives} drives outside any booking are not counted.`),
  );
}

export async function myScoreSection() {
  let me;
  try {
    me = await get("/api/v1/drivers/me/score");
  } catch (err) {
    if (!refused(err)) throw err;
    return null;
  }
  const tips = (me.coaching || []).map((t) => el("li", {}, t.advice, t.saves_kwh != null ? ` (saves about ${num(t.saves_kwh, "kWh", 1)})` : ""));
  return card("me-score-h", "Your driving", scoreTable("my-score", [me]), tips.length ? el("ul", { class: "advice" }, tips) : null);
}
