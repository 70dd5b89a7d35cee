// The live map: every car the user may see, coloured by state, on the city's streets; click one for its card.
// Updates live over the feed's WebSocket (live.js); polls the API every POLL_MS only if the socket cannot open.

import { get } from "./api.js";
import { applyEvent, liveFeed } from "./live.js";
import { boundsOf, createMap, createOverlay, stateColor } from "./basemap.js";
import { OPEN_ALERTS, STATES, ago, alertsByVehicle, carState, clock, el, num, signal, yesNo } from "./format.js";

export const POLL_MS = 3000;
const STATE_ORDER = ["alert", "driving", "charging", "parked", "offline", "nodata"];
// What the map, the list and a car's card read: one request for the whole fleet asks only for these.
const MAP_SIGNALS = "lat_deg,lon_deg,soc_pct,speed_kmh,charger_power_kw,locked";
// A wall screen of 10,000 cars cannot list them all as buttons; the search box finds any car by name.
const LIST_MAX = 200;
const LIVE_RENDER_MS = 250;

function position(latest) {
  const lat = signal(latest, "lat_deg");
  const lon = signal(latest, "lon_deg");
  return lat == null || lon == null ? null : [lon, lat];
}

function summary(car) {
  const parts = [car.state === "alert" ? car.alerts[0].title : STATES[car.state]];
  const soc = signal(car.latest, "soc_pct");
  if (soc != null) parts.push(num(soc, "%", 0));
  if (car.state === "driving") parts.push(num(signal(car.latest, "speed_kmh"), "km/h", 0));
  if (car.state === "charging") parts.push(num(signal(car.latest, "charger_power_kw"), "kW", 1));
  return parts.join(" · ");
}

export function carCard(car) {
  const latest = car.latest;
  return el(
    "div",
    { class: "carcard" },
    el("h3", {}, car.vehicle.name),
    el(
      "dl",
      {},
      el("dt", {}, "State"), el("dd", {}, STATES[car.state]),
      car.alerts.length ? [el("dt", {}, "Alert"), el("dd", {}, car.alerts.map((a) => a.title).join("; "))] : null,
      el("dt", {}, "Charge"), el("dd", {}, num(signal(latest, "soc_pct"), "%", 0)),
      el("dt", {}, "Speed"), el("dd", {}, num(signal(latest, "speed_kmh"), "km/h", 0)),
      el("dt", {}, "Locked"), el("dd", {}, yesNo(signal(latest, "locked"))),
      el("dt", {}, "Last seen"), el("dd", {}, latest ? ago(latest.last_ts_ms) : "never"),
    ),
    el("a", { href: `#/vehicles/${encodeURIComponent(car.vehicle.vehicle_id)}` }, `Open ${car.vehicle.name}`),
  );
}

export async function mapPage(root) {
  const status = el("p", { class: "status muted" }, "Loading cars…");  // not live: it changes on every update
  const connection = el("p", { class: "connection error", role: "status", hidden: true });
  const list = el("ul", { class: "cars", "aria-label": "Cars" });
  const more = el("p", { class: "muted", hidden: true });
  const search = el("input", {
    type: "search",
    class: "car-search",
    placeholder: "Find a car",
    "aria-label": "Find a car by name",
    oninput: () => renderList(),
  });
  const legend = el(
    "div",
    { class: "legend", "aria-label": "Colours" },
    STATE_ORDER.map((s) => el("span", {}, el("i", { class: `dot state-${s}` }), STATES[s])),
  );
  const mapBox = el("div", { class: "map", id: "live-map", role: "region", "aria-label": "Map of the cars" });
  root.replaceChildren(
    el("h1", { class: "hide-narrow" }, "Live map"),
    el(
      "div",
      { class: "map-layout" },
      mapBox,
      el("aside", { class: "side card", "aria-label": "Cars on the map" }, legend, connection, status, search, list, more),
    ),
  );

  const cars = new Map();
  let selected = null;
  let map = null;
  let overlay = null;  // the cars, over the streets' map (basemap.js: redrawn without the streets)
  let popup = null;
  let shownCard = null;  // what the open card shows: redrawn only when its car changes
  try {
    map = createMap(mapBox);
    overlay = createOverlay(map);
  } catch (err) {
    mapBox.replaceChildren(el("p", { class: "error" }, `The map cannot be drawn here (${err.message}); the list works.`));
  }

  const vehicles = await get("/api/v1/vehicles");
  if (vehicles.length === 0) {
    status.textContent = "";
    list.replaceChildren(
      el("li", { class: "muted" }, "No cars to show yet — an admin grants you cars, or run the demo (microfleet demo)."),
    );
    return () => map && map.remove();
  }
  // By name once (names do not change while the page is open); the list groups them by state at each draw.
  const byName = [...vehicles].sort((a, b) => a.name.localeCompare(b.name));
  for (const vehicle of byName) cars.set(vehicle.vehicle_id, { vehicle, latest: null, state: "nodata", alerts: [] });

  function openCard(id, { focus = false } = {}) {
    const car = cars.get(id);
    selected = id;
    renderList();
    const where = car && position(car.latest);
    if (!map || !where) return;
    if (popup) popup.remove();
    shownCard = { latest: car.latest, state: car.state, alerts: car.alerts };
    popup = new window.maplibregl.Popup({ closeOnClick: true, maxWidth: "18rem" })
      .setLngLat(where)
      .setDOMContent(carCard(car))
      .addTo(map);
    popup.on("close", () => {
      if (selected === id) selected = null;
    });
    if (focus) popup.getElement().querySelector(".carcard a").focus(); // from the list: the keyboard goes on
    map.easeTo({ center: where });
  }

  // The list's entries are kept, one per car, and only what changed in them is written: rebuilding 200
  // entries four times a second made the browser paint the whole list each time (and lost the focus).
  const entries = new Map();
  function entry(car) {
    let item = entries.get(car.vehicle.vehicle_id);
    if (!item) {
      const id = car.vehicle.vehicle_id;
      const dot = el("i", { class: "dot", "aria-hidden": "true" });
      const text = el("span", { class: "muted" });
      const button = el(
        "button",
        { class: "car-button", type: "button", onclick: (event) => openCard(id, { focus: event.detail === 0 }) },
        dot,
        el("span", {}, el("strong", {}, car.vehicle.name), el("br"), text),
      );
      item = { li: el("li", { "data-vehicle-id": id }, button), button, dot, text, shown: {} };
      entries.set(id, item);
    }
    const where = position(car.latest);
    const now = {
      state: car.state,
      lon: where ? String(where[0]) : null,
      lat: where ? String(where[1]) : null,
      current: selected === car.vehicle.vehicle_id ? "true" : null,
    };
    const was = item.shown;
    if (was.state !== now.state) {
      item.li.dataset.state = now.state;
      item.dot.className = `dot state-${now.state}`;
    }
    for (const [key, value] of [["lon", now.lon], ["lat", now.lat]]) {
      if (was[key] !== value) {
        if (value == null) delete item.li.dataset[key];
        else item.li.dataset[key] = value;
      }
    }
    if (was.current !== now.current) {
      if (now.current) item.button.setAttribute("aria-current", now.current);
      else item.button.removeAttribute("aria-current");
    }
    // The summary's numbers are formatted only when the car's state or latest record changed.
    if (was.latest !== car.latest || was.state !== car.state || was.alerts !== car.alerts) {
      const words = summary(car);
      if (item.text.textContent !== words) item.text.textContent = words;
    }
    item.shown = { ...now, latest: car.latest, alerts: car.alerts };
    return item.li;
  }

  function renderList() {
    const wanted = search.value.trim().toLowerCase();
    const groups = new Map(STATE_ORDER.map((s) => [s, []]));
    for (const car of cars.values()) {
      if (wanted && !car.vehicle.name.toLowerCase().includes(wanted)) continue;
      (groups.get(car.state) || groups.get("nodata")).push(car);
    }
    const sorted = [...groups.values()].flat();  // by state, then by name (the cars' order)
    more.hidden = sorted.length <= LIST_MAX;
    more.textContent = `and ${sorted.length - LIST_MAX} more — type a name to find a car`;
    // Entries move only where the order changed; those no longer listed are taken out.
    let next = list.firstChild;
    for (const car of sorted.slice(0, LIST_MAX)) {
      const li = entry(car);
      if (next === li) next = next.nextSibling;
      else list.insertBefore(li, next);
    }
    while (next) {
      const after = next.nextSibling;
      next.remove();
      next = after;
    }
  }

  function features() {
    const colors = new Map(STATE_ORDER.map((s) => [s, stateColor(s)]));  // read from the CSS once a draw
    const out = [];
    for (const car of cars.values()) {
      const where = position(car.latest);
      if (!where) continue;
      out.push({
        type: "Feature",
        id: out.length,
        properties: { vehicle_id: car.vehicle.vehicle_id, state: car.state, color: colors.get(car.state) || stateColor(car.state) },
        geometry: { type: "Point", coordinates: where },
      });
    }
    return { type: "FeatureCollection", features: out };
  }

  let fitted = false;
  let mapReady = false;
  let mode = "live";  // or "polling" when the WebSocket cannot open
  // The page asks for a refresh from several places at start (the feed's opening, the map's style); one
  // request in flight serves them all.
  let inFlight = null;
  function refresh() {
    if (!inFlight) inFlight = fetchState().finally(() => (inFlight = null));
    return inFlight;
  }
  async function fetchState() {
    // One request for every car's state (GET /api/v1/fleet/latest), not one per car.
    const [details, alerts] = await Promise.all([
      get(`/api/v1/fleet/latest?signals=${MAP_SIGNALS}`),
      get(OPEN_ALERTS),
    ]);
    const open = alertsByVehicle(alerts);
    const now = Date.now();
    for (const detail of details) {
      const car = cars.get(detail.vehicle_id);
      if (!car) continue;  // granted since the page loaded: shown after the next reload
      car.latest = detail.latest;
      car.alerts = open.get(detail.vehicle_id) || [];
      car.state = carState(detail.latest, now, car.alerts);
    }
    render(now);
  }

  // Live events arrive in bursts (1,000 cars at 1 Hz send a thousand a second): draw at most every
  // LIVE_RENDER_MS, on an animation frame. Cars report once a second, so four draws a second lose nothing
  // a person sees, and the map's worker re-indexes the cars' GeoJSON four times a second, not sixty.
  let frame = null;
  let pending = null;
  let lastRender = 0;
  function scheduleRender() {
    if (frame !== null || pending !== null) return;
    const wait = Math.max(0, lastRender + LIVE_RENDER_MS - performance.now());
    pending = setTimeout(() => {
      pending = null;
      frame = requestAnimationFrame(() => {
        frame = null;
        lastRender = performance.now();
        render();
      });
    }, wait);
  }

  function render(now = Date.now()) {
    for (const car of cars.values()) car.state = carState(car.latest, now, car.alerts);  // offline by time
    renderList();
    const placed = [...cars.values()].filter((c) => position(c.latest));
    const how = mode === "live" ? "live" : `every ${POLL_MS / 1000} s`;
    const line = `${cars.size} car${cars.size === 1 ? "" : "s"}, ${placed.length} on the map · updated ${clock(now)} (${how})`;
    if (status.textContent !== line) status.textContent = line;
    if (map && mapReady) {
      overlay.getSource("cars").setData(features());
      if (!fitted && placed.length) {
        fitted = true;
        map.fitBounds(boundsOf(placed.map((c) => position(c.latest))), { padding: 60, maxZoom: 15, duration: 0 });
      }
      const car = popup && selected && cars.get(selected);
      const where = car && position(car.latest);
      if (where && (shownCard.latest !== car.latest || shownCard.state !== car.state || shownCard.alerts !== car.alerts)) {
        shownCard = { latest: car.latest, state: car.state, alerts: car.alerts };
        popup.setLngLat(where).setDOMContent(carCard(car));
      }
    }
  }

  if (map) {
    overlay.whenStyled.then(() => {
      overlay.addSource("cars", { type: "geojson", data: features() });
      overlay.addLayer({
        id: "cars",
        type: "circle",
        source: "cars",
        paint: {
          "circle-radius": ["interpolate", ["linear"], ["zoom"], 10, 5, 16, 10],
          "circle-color": ["get", "color"],
          "circle-stroke-color": "#ffffff",
          "circle-stroke-width": 2,
        },
      });
      // The cars are drawn on the overlay; the pointer acts on the map under it (the same pixels).
      const carAt = (point) => overlay.queryRenderedFeatures(point, { layers: ["cars"] })[0];
      map.on("click", (e) => {
        const hit = carAt(e.point);
        if (hit) openCard(hit.properties.vehicle_id);
      });
      map.on("mousemove", (e) => (map.getCanvas().style.cursor = carAt(e.point) ? "pointer" : ""));
      mapReady = true;
      mapBox.dataset.ready = "true";
      refresh();
    });
  }

  let stopped = false;
  let timer = null;
  async function loop() {
    try {
      await refresh();
    } catch (err) {
      if (err.status === 401) return;
      status.textContent = `Could not update (${err.message}); trying again in ${POLL_MS / 1000} s`;
    }
    if (!stopped && mode === "polling") timer = setTimeout(loop, POLL_MS);
  }
  function startPolling() {
    if (stopped || mode === "polling") return;
    mode = "polling";
    connection.hidden = true;
    loop();
  }
  function onEvents(events) {
    let alertsChanged = false;
    for (const event of events) {
      const car = cars.get(event.vehicle_id);
      if (!car) continue;
      if (event.kind === "position" || event.kind === "state") car.latest = applyEvent(car.latest, event);
      else if (event.kind === "alert") alertsChanged = true;
    }
    if (alertsChanged) {
      refresh().catch(() => {});  // an alert's title and colour come from the alerts list
      return;
    }
    // Only the cars these events touched change state here; the rest (a car going offline) are
    // recomputed at the next draw. Recomputing every car per message cost 1,000 x 1,000 calls a second.
    const now = Date.now();
    for (const event of events) {
      const car = cars.get(event.vehicle_id);
      if (car) car.state = carState(car.latest, now, car.alerts);
    }
    scheduleRender();
  }
  // Connect first, then fetch the state, so no change falls between the two (docs/live.md).
  const feed = liveFeed({
    onEvents,
    onGap: () => refresh().catch(() => {}),
    onStatus: (what) => {
      connection.hidden = what === "live";
      connection.textContent = what === "live" ? "" : "Live updates lost — reconnecting…";
      mapBox.dataset.live = what;
    },
    onUnavailable: startPolling,
    onRefused: startPolling,  // a session that ended: the next request returns to the login page
  });
  try {
    await refresh();
  } catch (err) {
    if (err.status === 401) return () => feed.stop();
    status.textContent = `Could not load the cars (${err.message}).`;
  }
  return () => {
    stopped = true;
    feed.stop();
    clearTimeout(timer);
    clearTimeout(pending);
    if (frame !== null) cancelAnimationFrame(frame);
    if (map) map.remove();
  };
}
