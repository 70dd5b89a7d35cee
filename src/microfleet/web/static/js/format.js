// Numbers with their unit symbols, times in the browser's own time zone, and a car's state at a glance.

export const TIME_ZONE = Intl.DateTimeFormat().resolvedOptions().timeZone;
const dateTime = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });
const timeOnly = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });
const short = new Intl.DateTimeFormat(undefined, { dateStyle: "short", timeStyle: "short" });

export function when(ms) {
  return ms == null ? "—" : dateTime.format(new Date(ms));
}

export function whenShort(ms) {
  return ms == null ? "—" : short.format(new Date(ms));
}

export function clock(ms) {
  return timeOnly.format(new Date(ms));
}

export function ago(ms, nowMs = Date.now()) {
  if (ms == null) return "never";
  const s = Math.max(0, Math.round((nowMs - ms) / 1000));
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function num(value, unit, digits = 1) {
  if (value == null || Number.isNaN(value)) return "—";
  const text = Number(value).toLocaleString(undefined, {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
  return unit ? `${text}\u00a0${unit}` : text;
}

export function duration(seconds) {
  if (seconds == null) return "—";
  const m = Math.round(seconds / 60);
  return m < 60 ? `${m}\u00a0min` : `${Math.floor(m / 60)}\u00a0h ${m % 60}\u00a0min`;
}

export function yesNo(value, yes = "yes", no = "no") {
  return value == null ? "—" : value ? yes : no;
}

// A car is offline when it has sent nothing for this long (the history's own offline rule is server-side).
export const OFFLINE_AFTER_MS = 15 * 60 * 1000;
export const STATES = {
  alert: "Needs attention",
  driving: "Driving",
  charging: "Charging",
  parked: "Parked",
  offline: "Offline",
  nodata: "No data yet",
};

export function signal(latest, name) {
  const s = latest && latest.signals && latest.signals[name];
  return s ? s.value : null;
}

// Open alerts (raised or acknowledged, docs/alerts.md) of the cars the user sees, by vehicle id.
export const OPEN_ALERTS = "/api/v1/alerts?status=raised&status=acknowledged&limit=1000";

export function alertsByVehicle(alerts) {
  const out = new Map();
  for (const alert of alerts) {
    if (!out.has(alert.vehicle_id)) out.set(alert.vehicle_id, []);
    out.get(alert.vehicle_id).push(alert);
  }
  return out;
}

export function carState(latest, nowMs = Date.now(), openAlerts = []) {
  if (openAlerts.length) return "alert";
  if (!latest) return "nodata";
  if (nowMs - latest.last_ts_ms > OFFLINE_AFTER_MS) return "offline";
  if ((signal(latest, "charger_power_kw") || 0) > 0.05) return "charging";
  if ((signal(latest, "speed_kmh") || 0) > 0.5) return "driving";
  return "parked";
}

export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child == null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}
