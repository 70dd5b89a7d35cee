// A MapLibre map drawn from Microfleet's own street GeoJSON (OpenStreetMap data): no tile server, no CDN.

const MAJOR = ["trunk", "primary", "secondary", "trunk_link", "primary_link", "secondary_link"];

// A colour (or any value) of the page's CSS custom properties, so charts follow light and dark.
export function css(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
}

export function stateColor(state) {
  return css(`--${state}`) || "#888";
}

export function createMap(container, { center = [121.47, 31.23], zoom = 13 } = {}) {
  const maplibregl = window.maplibregl;
  const map = new maplibregl.Map({
    container,
    center,
    zoom,
    attributionControl: false,
    style: {
      version: 8,
      sources: {
        streets: { type: "geojson", data: "/map/streets.geojson" },
      },
      layers: [
        { id: "background", type: "background", paint: { "background-color": css("--map-bg") } },
        {
          id: "streets-edge",
          type: "line",
          source: "streets",
          paint: {
            "line-color": css("--street-edge"),
            "line-width": ["interpolate", ["linear"], ["zoom"], 11, 1, 16, 8],
          },
          layout: { "line-cap": "round", "line-join": "round" },
        },
        {
          id: "streets",
          type: "line",
          source: "streets",
          paint: {
            "line-color": ["match", ["get", "class"], MAJOR, css("--street-major"), css("--street")],
            "line-width": [
              "interpolate", ["linear"], ["zoom"],
              11, ["match", ["get", "class"], MAJOR, 1.2, 0.5],
              16, ["match", ["get", "class"], MAJOR, 7, 5],
            ],
          },
          layout: { "line-cap": "round", "line-join": "round" },
        },
      ],
    },
  });
  map.addControl(new maplibregl.NavigationControl({ showCompass: false }), "top-right");
  map.addControl(
    new maplibregl.AttributionControl({ compact: true, customAttribution: "© OpenStreetMap contributors" }),
  );
  // "style.load": the style is parsed, layers can be added; "load": every source (the streets) is drawn too.
  // The cars go on at the first, so a fleet shows while the streets' GeoJSON still arrives.
  map.whenStyled = new Promise((resolve) => map.once("style.load", resolve));
  map.whenLoaded = new Promise((resolve) => map.once("load", resolve));
  map.whenLoaded.then(() => (container.dataset.streets = "true"));
  return map;
}

// A transparent map stacked over `map`, following its camera, for what changes every second (the cars).
// Redrawing it leaves the streets' canvas as it is: without a GPU (SwiftShader) drawing the streets is
// most of a frame's cost, and a live fleet would redraw them several times a second. It takes no input
// (the map under it does; ask this one's queryRenderedFeatures what is at a point) and lies under the
// map's popups and controls.
export function createOverlay(map) {
  const maplibregl = window.maplibregl;
  const box = document.createElement("div");
  box.className = "map-overlay";
  box.style.cssText = "position: absolute; inset: 0; pointer-events: none;";
  map.getCanvasContainer().appendChild(box);
  const camera = () => ({
    center: map.getCenter(),
    zoom: map.getZoom(),
    bearing: map.getBearing(),
    pitch: map.getPitch(),
  });
  const overlay = new maplibregl.Map({
    container: box,
    interactive: false,
    attributionControl: false,
    ...camera(),
    style: { version: 8, sources: {}, layers: [] },
  });
  // Moved in the same frame as the streets: the camera is copied on every move, and drawn at once when
  // the map under it draws (not one animation frame later, which shows while panning).
  let moved = false;
  map.on("move", () => {
    overlay.jumpTo(camera());
    moved = true;
  });
  map.on("render", () => {
    if (moved && overlay.isStyleLoaded()) {
      moved = false;
      overlay.redraw();
    }
  });
  map.on("remove", () => overlay.remove());
  overlay.whenStyled = new Promise((resolve) => overlay.once("style.load", resolve));
  return overlay;
}

export function boundsOf(points) {
  const maplibregl = window.maplibregl;
  const bounds = new maplibregl.LngLatBounds();
  for (const p of points) bounds.extend(p);
  return bounds;
}
