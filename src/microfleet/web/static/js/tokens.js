// The account page's API tokens: make one for a script or an app (its text shown once, to copy), see which
// are live by their labels, revoke one. Every request is the API's own (GET/POST/DELETE /api/v1/tokens).

import { api, get } from "./api.js";
import { el, when } from "./format.js";

export function tokensSection() {
  const list = el("ul", { class: "alerts", id: "tokens" });
  const shown = el("div", { id: "new-token", hidden: true });
  const problem = el("p", { class: "error", role: "alert", hidden: true });
  const label = el("input", { name: "label", maxlength: 200, required: true, autocomplete: "off", placeholder: "e.g. home assistant" });
  const form = el(
    "form",
    { class: "stack", novalidate: true },
    el("label", {}, "What the token is for", label),
    problem,
    el("button", { type: "submit" }, "Make a token"),
  );
  const say = (message) => {
    problem.hidden = !message;
    problem.textContent = message;
  };

  async function load() {
    const tokens = await get("/api/v1/tokens");
    list.replaceChildren(
      ...(tokens.length
        ? tokens.map((t) => {
            const revoke = el("button", { type: "button", class: "secondary", "aria-label": `Revoke ${t.label}` }, "Revoke");
            revoke.addEventListener("click", async () => {
              if (!window.confirm(`Revoke "${t.label}"? Whatever uses it stops working at once.`)) return;
              try {
                await api("DELETE", `/api/v1/tokens/${t.token_id}`);
                await load();
              } catch (err) {
                say(err.message);
              }
            });
            return el("li", { "data-token-id": t.token_id }, el("strong", {}, t.label), el("span", { class: "muted" }, `made ${when(t.created_at_ms)}`), revoke);
          })
        : [el("li", { class: "muted" }, "No API tokens yet.")]),
    );
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const text = label.value.trim();
    if (!text) return say("Say what the token is for, so you can tell it apart later.");
    say("");
    try {
      const made = await api("POST", "/api/v1/tokens", { label: text });
      form.reset();
      const code = el("code", { class: "token-text" }, made.token);
      shown.replaceChildren(
        el("p", { role: "status" }, `Token "${made.label}" made. Copy it now: it is not shown again.`),
        code,
      );
      shown.hidden = false;
      await load();
    } catch (err) {
      say(err.message);
    }
  });

  const section = el(
    "section",
    { class: "card", "aria-labelledby": "tokens-h" },
    el("h2", { id: "tokens-h" }, "API tokens"),
    el("p", { class: "muted" }, "A token lets a script or an app use Microfleet's API as you (Authorization: Bearer …)."),
    list,
    shown,
    form,
  );
  return { section, load };
}
