// The web app's frame: who is logged in, which page the address names, and the login and account pages.
// Pages are addressed by the hash (#/map, #/vehicles/ID, #/account, #/login?next=...), so one HTML file
// serves them all and a page survives a login: an ended session returns here afterwards.

import { ApiError, api, useSession, whenSessionEnds } from "./api.js";
import { TIME_ZONE, el } from "./format.js";
import { fleetPage } from "./fleet.js";
import { mapPage } from "./livemap.js";
import { tokensSection } from "./tokens.js";
import { inviteSection, invitePage } from "./invite.js";
import { myScoreSection } from "./care.js";
import { vehiclePage } from "./vehicle.js";

const main = document.getElementById("main");
const nav = document.getElementById("nav");
const who = document.getElementById("who");
document.getElementById("tz").textContent = TIME_ZONE;

let session = null;
let cleanup = null;

function setSession(next) {
  session = next;
  useSession(next);
  nav.hidden = !next;
  who.textContent = next ? `${next.user_name} (${next.role})` : "Account";
  // The fleet page is for those who run a fleet: operators and admins (an owner's cars are on the map).
  document.getElementById("nav-fleet").hidden = !next || !["operator", "admin"].includes(next.role);
}

function toLogin(message) {
  if (location.hash.startsWith("#/login")) return; // several requests found the session ended at once
  const here = location.hash || "#/map";
  setSession(null);
  location.hash = `#/login?next=${encodeURIComponent(here)}${message ? `&why=${encodeURIComponent(message)}` : ""}`;
}

whenSessionEnds(() => toLogin("Your session has ended; log in again."));

function fieldError(form, message) {
  const box = form.querySelector(".error");
  box.textContent = message;
  box.hidden = !message;
}

function loginPage(root, params) {
  const next = params.get("next") || "#/map";
  const form = el(
    "form",
    { class: "stack", novalidate: true },
    el("label", {}, "User name", el("input", { name: "user_name", autocomplete: "username", required: true, autofocus: true })),
    el("label", {}, "Password", el("input", { name: "password", type: "password", autocomplete: "current-password", required: true })),
    el("p", { class: "error", role: "alert", hidden: true }),
    el("button", { type: "submit" }, "Log in"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const user_name = form.user_name.value.trim();
    const password = form.password.value;
    if (!user_name || !password) return fieldError(form, "Enter your user name and password.");
    const button = form.querySelector("button");
    button.disabled = true;
    fieldError(form, "");
    try {
      setSession(await api("POST", "/api/v1/session", { user_name, password }, { loginForm: true }));
      location.hash = next;
    } catch (err) {
      fieldError(form, err instanceof ApiError ? err.message : String(err));
      form.password.select();
    } finally {
      button.disabled = false;
    }
  });
  const why = params.get("why");
  root.replaceChildren(
    el(
      "section",
      { class: "card login", "aria-labelledby": "login-h" },
      el("h1", { id: "login-h" }, "Log in to Microfleet"),
      why ? el("p", { class: "muted" }, why) : null,
      form,
      el("p", { class: "muted" }, "An administrator sets your password: microfleet admin set-password NAME."),
    ),
  );
  form.user_name.focus();
}

function accountPage(root) {
  const tokens = tokensSection();
  const invites = session.role === "admin" ? inviteSection() : null;
  const form = el(
    "form",
    { class: "stack", novalidate: true },
    el("label", {}, "Current password", el("input", { name: "current", type: "password", autocomplete: "current-password", required: true })),
    el("label", {}, "New password (at least 8 characters)", el("input", { name: "fresh", type: "password", autocomplete: "new-password", minlength: 8, required: true })),
    el("label", {}, "New password again", el("input", { name: "again", type: "password", autocomplete: "new-password", required: true })),
    el("p", { class: "error", role: "alert", hidden: true }),
    el("p", { class: "ok", role: "status" }),
    el("button", { type: "submit" }, "Change password"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const done = form.querySelector(".ok");
    done.textContent = "";
    if (form.fresh.value.length < 8) return fieldError(form, "The new password needs at least 8 characters.");
    if (form.fresh.value !== form.again.value) return fieldError(form, "The two new passwords differ.");
    fieldError(form, "");
    try {
      const body = { current_password: form.current.value, new_password: form.fresh.value };
      setSession(await api("POST", "/api/v1/session/password", body));
      form.reset();
      done.textContent = "Password changed. Your other sessions have ended.";
    } catch (err) {
      fieldError(form, err.message);
    }
  });
  const logout = el("button", { type: "button", class: "secondary" }, "Log out");
  logout.addEventListener("click", async () => {
    try {
      await api("DELETE", "/api/v1/session");
    } finally {
      setSession(null);
      location.hash = "#/login";
    }
  });
  root.replaceChildren(
    el("h1", {}, "Account"),
    el(
      "section",
      { class: "card" },
      el("p", {}, `Logged in as ${session.user_name}, ${session.role}${session.fleet_id ? ` of fleet ${session.fleet_id}` : ""}.`),
      logout,
    ),
    el("section", { class: "card", "aria-labelledby": "pw-h" }, el("h2", { id: "pw-h" }, "Change password"), form),
    tokens.section,
    ...(invites ? [invites.section] : []),
  );
  const loads = [tokens.load(), invites ? invites.load() : null];
  if (session.role === "driver") {
    loads.push(myScoreSection().then((section) => section && root.append(section)));
  }
  return Promise.all(loads);
}

const ROUTES = [
  [/^#\/map$/, (root) => mapPage(root)],
  [/^#\/vehicles\/([^/?]+)$/, (root, m) => vehiclePage(root, decodeURIComponent(m[1]))],
  [/^#\/account$/, (root) => accountPage(root)],
  [/^#\/fleet$/, (root) => fleetPage(root, session)],
];

async function route() {
  if (cleanup) {
    const done = cleanup;
    cleanup = null;
    try {
      (await done)?.();
    } catch (err) {
      /* the page had not finished loading */
    }
  }
  const hash = location.hash || "#/map";
  if (hash.startsWith("#/invite")) {
    document.title = "Join · Microfleet";
    return invitePage(main, new URLSearchParams(hash.split("?")[1] || ""), setSession);
  }
  if (hash.startsWith("#/login")) {
    document.title = "Log in · Microfleet";
    return loginPage(main, new URLSearchParams(hash.split("?")[1] || ""));
  }
  if (!session) {
    try {
      setSession(await api("GET", "/api/v1/session", undefined, { loginForm: true }));
    } catch (err) {
      return toLogin(err.status === 401 ? "" : err.message);
    }
  }
  for (const [pattern, render] of ROUTES) {
    const match = hash.match(pattern);
    if (match) {
      main.replaceChildren(el("p", { class: "muted" }, "Loading…"));
      document.title = `${hash.startsWith("#/vehicles") ? "Vehicle" : hash.slice(2, 3).toUpperCase() + hash.slice(3)} · Microfleet`;
      const page = Promise.resolve(render(main, match));
      cleanup = page;
      try {
        await page;
      } catch (err) {
        if (err.status === 401) return;
        main.replaceChildren(
          el("h1", {}, err.status === 404 ? "Not found" : "Something went wrong"),
          el("p", { class: "error", role: "alert" }, err.message),
          el("p", {}, el("a", { href: "#/map" }, "Back to the live map")),
        );
      }
      main.focus({ preventScroll: true });
      return;
    }
  }
  location.hash = "#/map";
}

window.addEventListener("hashchange", route);
route();
