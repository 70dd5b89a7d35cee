// Three panels of a car's page for the longer view (docs/web.md): battery health over time
// (GET .../battery/history), parked drain (GET .../parked-drain) and charging costs (GET .../charging-costs).
// Each is a uPlot chart with a table of the same figures, and says what is missing rather than guess.

import { ApiError, get, vehiclePath } from "./api.js";
import { css } from "./basemap.js";
import { TIME_ZONE, duration, el, num, when, whenShort } from "./format.js";

const DRAIN_DAYS = 30;
const TABLE_ROWS = 12;
const localDate = new Intl.DateTimeFormat(undefined, { dateStyle: "medium" });
const monthName = new Intl.DateTimeFormat(undefined, { month: "long", year: "numeric" });

function section(id, title, body) {
  return el("section", { class: "card", "aria-labelledby": `${id}-h` }, el("h2", { id: `${id}-h` }, title), body);
}

async function read(path, body, what) {
  try {
    return await get(path);
  } catch (err) {
    if (err instanceof ApiError && err.status !== 401) {
      body.replaceChildren(el("p", { class: "error" }, `${what} could not be read (${err.message}).`));
      return null;
    }
    throw err;  // a 401 returns to the login page
  }
}

function plotBox(id, label) {
  return el("div", { class: "plot", id, role: "img", "aria-label": label });
}

function axes(yLabel) {
  return [
    { stroke: css("--fg"), grid: { stroke: css("--line") } },
    { label: yLabel, stroke: css("--fg"), grid: { stroke: css("--line") } },
  ];
}

function draw(box, opts, data) {
  if (!window.uPlot) return null;
  return new window.uPlot({ width: Math.max(280, box.clientWidth || 600), height: 220, ...opts }, data, box);
}

function details(summary, table) {
  return el("details", {}, el("summary", {}, summary), el("div", { class: "table-wrap" }, table));
}

function tableOf(id, caption, headers, rows) {
  return el(
    "table",
    { id },
    el("caption", { class: "muted" }, caption),
    el("thead", {}, el("tr", {}, headers.map(([h, cls]) => el("th", { scope: "col", class: cls }, h)))),
    el("tbody", {}, rows),
  );
}

// --- battery health over time ------------------------------------------------------------------------

export function healthTrendSection(vehicleId) {
  const body = el("div", { id: "health-trend" }, el("p", { class: "muted" }, "Loading the battery's health over time…"));
  let plot = null;
  const load = async () => {
    const h = await read(`${vehiclePath(vehicleId)}/battery/history`, body, "The battery's health over time");
    if (!h) return;
    const measured = h.measurements.filter((m) => m.soh_pct != null);
    if (!h.available) {
      body.dataset.available = "false";
      const seen = h.measurements.length ? ` ${h.measurements.length} charge sessions have measured a capacity so far.` : "";
      body.replaceChildren(el("p", { class: "muted" }, `No health trend yet — ${h.reason}.${seen}`));
      return;
    }
    body.dataset.available = "true";
    const last = h.estimates[h.estimates.length - 1];
    const below = last.soh_pct <= h.end_of_life_pct;
    const eol = !below && h.eol_ts_ms && h.eol_ts_ms > last.ts_ms ? h.eol_ts_ms : null;
    // one x axis for all series (uPlot's aligned data): the estimates' times, the measurements', the forecast's end
    const xs = [...new Set([...h.estimates.map((e) => e.ts_ms), ...measured.map((m) => m.ts_ms), ...(eol ? [eol] : [])])].sort((a, b) => a - b);
    const at = (list, key) => {
      const byTs = new Map(list.map((p) => [p.ts_ms, p[key]]));
      return xs.map((t) => (byTs.has(t) ? byTs.get(t) : null));
    };
    const forecast = xs.map((t) => (t === last.ts_ms ? last.soh_pct : eol && t === eol ? h.end_of_life_pct : null));
    const box = plotBox("health-plot", `State of health of ${h.estimates.length} weekly estimates with their 90 % band; the table below has each figure`);
    const fade = h.fade_pct_per_year == null
      ? "No fade trend yet (it needs 45 days of sessions)."
      : `Fading ${num(-h.fade_pct_per_year, "points a year", 1)} (± ${num(h.fade_sigma_pct_per_year, null, 1)}).`;
    const forecastText = below
      ? el("p", { id: "eol-forecast" }, `Already below ${num(h.end_of_life_pct, "%", 0)} of its capacity when new: the usual end of a car battery's first life.`)
      : eol
      ? el("p", { id: "eol-forecast" }, `At this trend the battery reaches ${num(h.end_of_life_pct, "%", 0)} of its capacity when new around ${localDate.format(new Date(eol))} (dashed line).`)
      : el("p", { class: "muted", id: "eol-forecast" }, `No forecast of when it reaches ${num(h.end_of_life_pct, "%", 0)}: the trend is not fading or is too short yet.`);
    const rows = [...h.estimates].reverse().slice(0, TABLE_ROWS).map((e) =>
      el("tr", {}, el("td", {}, whenShort(e.ts_ms)), el("td", { class: "num" }, num(e.soh_pct, "%", 1)),
        el("td", { class: "num" }, `${num(e.band_low_pct, "%", 1)}–${num(e.band_high_pct, "%", 1)}`),
        el("td", { class: "num" }, num(e.capacity_kwh, "kWh", 1)), el("td", { class: "num" }, String(e.sessions_used))),
    );
    body.replaceChildren(
      el("p", {}, `Health now ${num(last.soh_pct, "%", 1)} (90 % band ${num(last.band_low_pct, "%", 1)}–${num(last.band_high_pct, "%", 1)}), ${num(last.capacity_kwh, "kWh", 1)} of ${num(h.new_usable_kwh, "kWh", 1)} when new. ${fade}`),
      forecastText,
      box,
      el("p", { class: "muted" }, `Each week's point is the estimate as it stood then, from that week's and earlier charges; dots are single sessions' measurements (noisy). Model ${h.model_version}, fitted ${when(h.fitted_at_ms)}.`),
      details(`Weekly estimates (${h.estimates.length})`, tableOf("health-table", "Newest first", [["Week's last session"], ["Health", "num"], ["90 % band", "num"], ["Capacity", "num"], ["Sessions", "num"]], rows)),
    );
    const band = css("--driving");
    plot = draw(
      box,
      {
        series: [
          {},
          { label: "Health %", stroke: band, width: 2, spanGaps: true },
          { label: "90 % band high", stroke: band, width: 0.5, dash: [2, 3], spanGaps: true },
          { label: "90 % band low", stroke: band, width: 0.5, dash: [2, 3], spanGaps: true },
          { label: "Session", stroke: css("--muted"), width: 0, points: { show: true, size: 4, fill: css("--muted") } },
          { label: "Forecast", stroke: css("--alert"), width: 1.5, dash: [6, 4], spanGaps: true },
        ],
        bands: [{ series: [2, 3], fill: "rgba(96, 165, 250, 0.2)" }],
        axes: axes("% of new"),
      },
      [xs.map((t) => t / 1000), at(h.estimates, "soh_pct"), at(h.estimates, "band_high_pct"), at(h.estimates, "band_low_pct"), at(measured, "soh_pct"), forecast],
    );
  };
  return { section: section("health-trend", "Battery health over time", body), load, destroy: () => plot && plot.destroy() };
}

// --- parked drain -----------------------------------------------------------------------------------

export function parkedDrainSection(vehicleId) {
  const body = el("div", { id: "parked-drain" }, el("p", { class: "muted" }, "Loading the parked drain…"));
  let plot = null;
  const load = async () => {
    const now = Date.now();
    const d = await read(`${vehiclePath(vehicleId)}/parked-drain?from_ms=${now - DRAIN_DAYS * 86400000}&to_ms=${now + 1}`, body, "Parked drain");
    if (!d) return;
    if (!d.spells.length) {
      body.replaceChildren(el("p", { class: "muted" }, `No parked spell of 15 min or more in the last ${DRAIN_DAYS} days — drain appears once the car has stood parked and sent its charge.`));
      return;
    }
    const perDay = d.soc_pct_per_day != null;
    const basis = d.usable_basis === "fitted" ? "its measured capacity" : "its capacity when new";
    const pack = d.usable_kwh != null ? ` of a ${num(d.usable_kwh, "kWh", 1)} pack (${basis})` : "";
    const medians = [d.median_asleep_w != null && `asleep ${num(d.median_asleep_w, "W", 0)}`, d.median_awake_w != null && `awake ${num(d.median_awake_w, "W", 0)}`].filter(Boolean).join(", ");
    const spells = [...d.spells].reverse();
    const rows = spells.slice(0, TABLE_ROWS).map((s) =>
      el("tr", { "data-flagged": String(s.flagged) }, el("td", {}, whenShort(s.start_ts_ms)), el("td", { class: "num" }, duration((s.end_ts_ms - s.start_ts_ms) / 1000)),
        el("td", {}, s.asleep ? "asleep" : "awake"), el("td", { class: "num" }, num(s.energy_kwh, "kWh", 2)),
        el("td", { class: "num" }, num(s.kwh_per_day, "kWh/day", 2)), el("td", { class: "num" }, num(s.soc_pct_per_day, "%/day", 1)),
        el("td", {}, s.flagged ? el("strong", { class: "error" }, "unusual") : "")),
    );
    const box = plotBox("drain-plot", `Energy lost per day in each of ${d.spells.length} parked spells; the table below has each figure`);
    body.replaceChildren(
      el("p", { id: "drain-summary" },
        `Parked ${num(d.parked_h, "h", 0)} in the last ${DRAIN_DAYS} days and lost ${num(d.energy_kwh, "kWh", 2)}: `,
        el("strong", {}, perDay ? `${num(d.soc_pct_per_day, "%", 1)} of charge a day` : `${num(d.kwh_per_day, "kWh", 2)} a day`),
        perDay ? ` (${num(d.kwh_per_day, "kWh", 2)} a day${pack}).` : " (the pack's capacity is unknown, so no share of charge)."),
      el("p", { class: "muted" }, `Typical draw: ${medians || "—"}. ${d.flagged ? `${d.flagged} spell${d.flagged > 1 ? "s" : ""} drew over 3× the car's usual for its sleep state (red).` : "No spell drew unusually much."}`),
      box,
      details(`Parked spells (${d.spells.length})`, tableOf("drain-table", "Newest first", [["Parked at"], ["For", "num"], ["State"], ["Lost", "num"], ["Per day", "num"], ["Charge per day", "num"], ["Note"]], rows)),
    );
    const xs = d.spells.map((s) => s.start_ts_ms / 1000);
    const y = (s) => (perDay ? s.soc_pct_per_day : s.kwh_per_day);
    plot = draw(
      box,
      {
        series: [
          {},
          { label: perDay ? "%/day" : "kWh/day", stroke: css("--parked"), width: 0, points: { show: true, size: 7, fill: css("--parked") } },
          { label: "unusual", stroke: css("--alert"), width: 0, points: { show: true, size: 9, fill: css("--alert") } },
        ],
        axes: axes(perDay ? "% of charge per day" : "kWh per day"),
      },
      [xs, d.spells.map((s) => (s.flagged ? null : y(s))), d.spells.map((s) => (s.flagged ? y(s) : null))],
    );
  };
  return { section: section("drain", "Parked drain", body), load, destroy: () => plot && plot.destroy() };
}

// --- charging costs --------------------------------------------------------------------------------

function periodLabel(iso, period) {
  const [y, m, d] = iso.split("-").map(Number);
  const date = new Date(y, m - 1, d);  // a local calendar date: no time zone shift
  return period === "month" ? monthName.format(date) : `week of ${localDate.format(date)}`;
}

const shortDay = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric" });
const shortMonth = new Intl.DateTimeFormat(undefined, { month: "short", year: "numeric" });

function shortPeriod(iso, period) {
  const [y, m, d] = iso.split("-").map(Number);
  return (period === "month" ? shortMonth : shortDay).format(new Date(y, m - 1, d));
}

function money(amount, currency) {
  return `${num(amount, null, 2)}\u00a0${currency}`;
}

export function costsSection(vehicleId) {
  const body = el("div", { id: "costs" }, el("p", { class: "muted" }, "Loading charging costs…"));
  const switcher = el("div", { class: "toolbar", role: "group", "aria-label": "Costs per" });
  let period = "week";
  let plot = null;
  const buttons = [["week", "Per week"], ["month", "Per month"]].map(([key, label]) =>
    el("button", { type: "button", class: "secondary", "aria-pressed": String(key === period), "data-period": key, onclick: () => choose(key) }, label),
  );
  switcher.append(...buttons);
  function choose(key) {
    period = key;
    for (const b of buttons) b.setAttribute("aria-pressed", String(b.dataset.period === key));
    load().catch(() => {});
  }
  const load = async () => {
    const c = await read(`${vehiclePath(vehicleId)}/charging-costs?period=${period}&tz=${encodeURIComponent(TIME_ZONE)}`, body, "Charging costs");
    if (!c) return;
    if (plot) plot.destroy();
    plot = null;
    body.dataset.period = period;
    if (!c.charges) {
      body.replaceChildren(el("p", { class: "muted" }, "No charges in the last year — costs appear once the car has charged."));
      return;
    }
    const currencies = Object.keys(c.total_cost);
    const main = currencies.sort((a, b) => c.total_cost[b] - c.total_cost[a])[0];
    const uncosted = c.charges - c.costed_charges;
    const totals = currencies.length
      ? currencies.map((cur) => money(c.total_cost[cur], cur)).join(" + ")
      : "no cost known";
    const perKwh = main && currencies.length === 1 && c.costed_energy_kwh > 0 ? `, ${money(c.total_cost[main] / c.costed_energy_kwh, `${main}/kWh`)} on average` : "";
    const rows = [...c.periods].reverse().slice(0, TABLE_ROWS).map((p) =>
      el("tr", {}, el("td", {}, periodLabel(p.period_start, c.period)), el("td", { class: "num" }, String(p.charges)),
        el("td", { class: "num" }, num(p.energy_kwh, "kWh", 1)),
        el("td", { class: "num" }, Object.keys(p.cost).length ? Object.entries(p.cost).map(([cur, v]) => money(v, cur)).join(" + ") : "—"),
        el("td", { class: "num" }, p.charges - p.costed_charges ? String(p.charges - p.costed_charges) : "")),
    );
    const box = plotBox("costs-plot", `Charging cost per ${c.period} in ${main || "no currency"}; the table below has each figure`);
    const nodes = [
      el("p", { id: "costs-total" }, "Last 12 months: ", el("strong", {}, totals), ` for ${num(c.costed_energy_kwh, "kWh", 1)} over ${c.costed_charges} charge${c.costed_charges === 1 ? "" : "s"}${perKwh}.`),
      uncosted
        ? el("p", { class: "muted", id: "costs-uncosted" }, `${uncosted} charge${uncosted === 1 ? "" : "s"} (${num(c.total_energy_kwh - c.costed_energy_kwh, "kWh", 1)}) ${uncosted === 1 ? "has" : "have"} no cost: ${uncosted === 1 ? "it was" : "they were"} at a place without a tariff. Give the place a tariff (docs/history.md, Tariffs) and the car's history is costed again.`)
        : null,
      c.tariff_ids.length ? el("p", { class: "muted" }, `Tariffs: ${c.tariff_ids.join(", ")}. Periods in ${c.timezone}.`) : null,
      main ? box : null,
      details(`Per ${c.period} (${c.periods.length})`, tableOf("costs-table", "Newest first", [[c.period === "month" ? "Month" : "Week"], ["Charges", "num"], ["Energy", "num"], ["Cost", "num"], ["Without cost", "num"]], rows)),
    ];
    body.replaceChildren(...nodes.filter(Boolean));
    if (!main) return;
    const bars = window.uPlot && window.uPlot.paths && window.uPlot.paths.bars ? window.uPlot.paths.bars({ size: [0.6, 60] }) : undefined;
    // one bar per period, labelled by the period (an ordinal axis: months and weeks are not equal lengths)
    const idx = c.periods.map((_, i) => i);
    const [xAxis, yAxis] = axes(main);
    plot = draw(
      box,
      {
        scales: { x: { time: false, range: [-0.5, Math.max(idx.length - 0.5, 0.5)] } },
        series: [{ label: c.period === "month" ? "Month" : "Week", value: (u, i) => (i == null ? "--" : shortPeriod(c.periods[i].period_start, c.period)) },
          { label: main, stroke: css("--charging"), fill: css("--charging"), width: 1, paths: bars, points: { show: !bars } }],
        axes: [{ ...xAxis, splits: () => idx, values: (u, splits) => splits.map((i) => (c.periods[i] ? shortPeriod(c.periods[i].period_start, c.period) : "")) }, yAxis],
      },
      [idx, c.periods.map((p) => (p.costed_charges ? p.cost[main] ?? 0 : null))],
    );
  };
  return { section: section("costs", "Charging costs", el("div", {}, switcher, body)), load, destroy: () => plot && plot.destroy() };
}
