// Invitations: an administrator invites a person from the account page (a one-time link to send them); the
// person opens the link (#/invite?code=...), chooses a password and is logged in.

import { ApiError, api, get } from "./api.js";
import { el, when } from "./format.js";

function say(box, message) {
  box.hidden = !message;
  box.textContent = message;
}

export function invitePage(root, params, onSession) {
  const code = params.get("code") || "";
  const problem = el("p", { class: "error", role: "alert", hidden: true });
  const form = el(
    "form",
    { class: "stack", novalidate: true },
    el("label", {}, "Choose a password (at least 8 characters)", el("input", { name: "fresh", type: "password", autocomplete: "new-password", required: true })),
    el("label", {}, "The password again", el("input", { name: "again", type: "password", autocomplete: "new-password", required: true })),
    problem,
    el("button", { type: "submit" }, "Join Microfleet"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (!code) return say(problem, "This link has no invitation code: ask for the whole link again.");
    if (form.fresh.value.length < 8) return say(problem, "The password needs at least 8 characters.");
    if (form.fresh.value !== form.again.value) return say(problem, "The two passwords differ.");
    say(problem, "");
    try {
      onSession(await api("POST", "/api/v1/session/invitation", { code, password: form.fresh.value }, { loginForm: true }));
      location.hash = "#/map";
    } catch (err) {
      say(problem, err instanceof ApiError ? err.message : String(err));
    }
  });
  root.replaceChildren(
    el(
      "section",
      { class: "card login", "aria-labelledby": "invite-h" },
      el("h1", { id: "invite-h" }, "Join Microfleet"),
      el("p", { class: "muted" }, "You were invited. Choose the password you will log in with; the link then stops working."),
      form,
    ),
  );
  form.fresh.focus();
}

export function inviteSection() {
  const problem = el("p", { class: "error", role: "alert", hidden: true });
  const made = el("div", { id: "new-invitation", hidden: true });
  const list = el("ul", { class: "alerts", id: "invitations" });
  const role = el("select", { name: "role" }, ["owner", "driver", "operator", "admin"].map((r) => el("option", { value: r }, r)));
  const form = el(
    "form",
    { class: "stack", novalidate: true },
    el("label", {}, "User name", el("input", { name: "user_name", maxlength: 200, autocomplete: "off", required: true })),
    el("label", {}, "Role", role),
    el("label", {}, "Fleet (for operators and drivers)", el("input", { name: "fleet_id", maxlength: 64, autocomplete: "off" })),
    problem,
    el("button", { type: "submit" }, "Invite"),
  );
  async function load() {
    const pending = await get("/api/v1/invitations");
    list.replaceChildren(
      ...(pending.length
        ? pending.map((i) => {
            const withdraw = el("button", { type: "button", class: "secondary", "aria-label": `Withdraw the invitation of ${i.user_name}` }, "Withdraw");
            withdraw.addEventListener("click", async () => {
              try {
                await api("DELETE", `/api/v1/invitations/${i.invitation_id}`);
                await load();
              } catch (err) {
                say(problem, err.message);
              }
            });
            return el("li", {}, el("strong", {}, i.user_name), el("span", {}, `${i.role}${i.fleet_id ? ` of ${i.fleet_id}` : ""}`),
              el("span", { class: "muted" }, `until ${when(i.expires_at_ms)}`), withdraw);
          })
        : [el("li", { class: "muted" }, "No pending invitations.")]),
    );
  }
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const user_name = form.user_name.value.trim();
    const fleet_id = form.fleet_id.value.trim() || null;
    if (!user_name) return say(problem, "Enter the user name the person will log in with.");
    if (["operator", "driver"].includes(role.value) && !fleet_id) return say(problem, `An invited ${role.value} needs their fleet.`);
    say(problem, "");
    try {
      const invitation = await api("POST", "/api/v1/invitations", { user_name, role: role.value, fleet_id });
      form.reset();
      made.replaceChildren(
        el("p", { role: "status" }, `Invitation for ${invitation.user_name} made. Send this link (it works once, until ${when(invitation.expires_at_ms)}):`),
        el("code", { class: "token-text" }, `${location.origin}${invitation.link}`),
      );
      made.hidden = false;
      await load();
    } catch (err) {
      say(problem, err.message);
    }
  });
  const section = el(
    "section",
    { class: "card", "aria-labelledby": "invite-h" },
    el("h2", { id: "invite-h" }, "Invite a person"),
    list,
    made,
    form,
  );
  return { section, load };
}
