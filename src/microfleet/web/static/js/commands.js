// Remote commands from the vehicle page: each asks for confirmation, then follows the command until the car
// answers or it expires (POST/GET /api/v1/vehicles/{id}/commands, docs/commands.md).

import { api, get, vehiclePath } from "./api.js";
import { clock, el } from "./format.js";

const ACTIONS = [
  ["lock", "Lock"],
  ["unlock", "Unlock"],
  ["locate", "Flash and horn"],
];
const FINAL = new Set(["acknowledged", "failed", "refused", "expired"]);
const FOLLOW_MS = 1000;
const EXPIRES_IN_S = 60;

function idempotencyKey() {
  // crypto.randomUUID needs a secure context; a LAN address over plain HTTP is not one
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

function describe(label, command) {
  const at = command.result_at_ms ? ` at ${clock(command.result_at_ms)}` : "";
  switch (command.status) {
    case "queued":
      return `${label}: waiting to be sent to the car…`;
    case "sent":
      return `${label}: sent, waiting for the car's answer…`;
    case "acknowledged":
      return `${label}: done — the car acknowledged it${at}.`;
    case "expired":
      return `${label}: expired — the car did not answer by ${clock(command.expires_at_ms)}; nothing will happen late.`;
    default:
      return `${label}: ${command.status}${command.result_reason ? ` (${command.result_reason})` : ""}${at}.`;
  }
}

export function commandPanel(vehicle, isGone) {
  const base = `${vehiclePath(vehicle.vehicle_id)}/commands`;
  const result = el("p", { class: "command-result", role: "status", "aria-live": "polite" });
  const confirmBox = el("div", { class: "confirm", hidden: true });
  const buttons = ACTIONS.map(([action, label]) =>
    el("button", { type: "button", class: "secondary", "data-action": action, onclick: () => ask(action, label) }, label),
  );

  function setBusy(busy) {
    for (const b of buttons) b.disabled = busy;
  }

  function ask(action, label) {
    const send = el("button", { type: "button", onclick: () => run(action, label) }, `Yes, ${label.toLowerCase()}`);
    const cancel = el("button", { type: "button", class: "secondary", onclick: () => close() }, "Cancel");
    confirmBox.replaceChildren(el("p", {}, `${label} ${vehicle.name}?`), send, " ", cancel);
    confirmBox.hidden = false;
    send.focus();
  }

  function close() {
    confirmBox.hidden = true;
    confirmBox.replaceChildren();
  }

  async function run(action, label) {
    close();
    setBusy(true);
    result.dataset.status = "";
    result.textContent = `${label}: sending…`;
    try {
      let command = await api("POST", base, { action, params: {}, expires_in_s: EXPIRES_IN_S }, { headers: { "Idempotency-Key": idempotencyKey() } });
      result.dataset.status = command.status;
      result.textContent = describe(label, command);
      while (!FINAL.has(command.status) && !isGone()) {
        await new Promise((resolve) => setTimeout(resolve, FOLLOW_MS));
        command = (await get(`${base}/${encodeURIComponent(command.command_id)}`)).command;
        result.dataset.status = command.status;
        result.textContent = describe(label, command);
      }
    } catch (err) {
      result.dataset.status = "error";
      result.textContent = `${label}: ${err.message}`;
    } finally {
      setBusy(false);
    }
  }

  return el(
    "section",
    { class: "card", "aria-labelledby": "commands-h" },
    el("h2", { id: "commands-h" }, "Remote control"),
    el("div", { class: "exports" }, buttons),
    confirmBox,
    result,
    el("p", { class: "muted" }, "Each command is signed for this car and expires after 60 s if the car does not answer."),
  );
}
