// The live feed (GET /api/v1/live, docs/live.md) over a WebSocket, authenticated by the session cookie.
// Keeps the last event_id and resumes with ?after= after a reconnect, so nothing is missed; says
// "reconnecting…" while the socket is down; a `gap` (events no longer kept) asks the page to refetch.
// If the socket never opens (a proxy without WebSocket support), onUnavailable lets the page poll instead.

const RETRY_MS = [1000, 2000, 5000, 10000];

export function liveFeed({ onEvents, onGap = () => {}, onStatus = () => {}, onUnavailable = () => {}, onRefused = () => {} }) {
  let after = null;
  let socket = null;
  let everReady = false;
  let failures = 0;
  let stopped = false;
  let timer = null;

  function connect() {
    const scheme = location.protocol === "https:" ? "wss:" : "ws:";
    const query = after == null ? "" : `?after=${after}`;
    socket = new WebSocket(`${scheme}//${location.host}/api/v1/live${query}`);
    socket.onmessage = (message) => {
      let events;
      try {
        events = JSON.parse(message.data);
      } catch (err) {
        return;
      }
      const changes = [];
      for (const event of events) {
        after = event.event_id;
        if (event.kind === "gap") onGap();
        else if (event.kind === "ready") {
          everReady = true;
          failures = 0;
          onStatus("live");
        } else changes.push(event);
      }
      if (changes.length) onEvents(changes);
    };
    socket.onclose = (event) => {
      socket = null;
      if (stopped) return;
      if (event.code === 1008) {
        onRefused(event.reason);  // the session ended, or refused: the page's next API call returns to login
        return;
      }
      if (!everReady && failures >= 1) {
        onUnavailable();  // never got through: poll instead
        return;
      }
      onStatus("reconnecting");
      const wait = RETRY_MS[Math.min(failures, RETRY_MS.length - 1)];
      failures += 1;
      timer = setTimeout(connect, wait);
    };
  }

  connect();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      if (socket) socket.close(1000);
    },
  };
}

// A car's `latest` (as GET /api/v1/vehicles/{id} returns it) with a position or state event applied.
export function applyEvent(latest, event) {
  const next = { ...(latest || {}), signals: { ...((latest && latest.signals) || {}) } };
  const payload = event.payload || {};
  for (const [name, s] of Object.entries(payload.signals || {})) next.signals[name] = s;
  const fix = payload.position;
  if (fix) {
    for (const name of ["lat_deg", "lon_deg", "speed_kmh", "heading_deg"]) {
      if (fix[name] != null) next.signals[name] = { value: fix[name], ts_ms: fix.ts_ms };
    }
  }
  next.last_ts_ms = Math.max(next.last_ts_ms || 0, event.ts_ms);
  return next;
}
