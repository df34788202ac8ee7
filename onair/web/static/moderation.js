// The moderation pages: acting on the reports queue, and the admins' edit of the community rules.
// The pages arrive server-rendered; every change goes through the JSON API, and a row leaves the
// queue only once the server says the report is closed.
import { api, el, say } from "./common.js";

// The reports queue ---------------------------------------------------------------------------

const DONE = {
  dismiss: "dismissed",
  remove_message: "closed: the message was removed",
  warn: "closed: the user was warned",
  suspend: "closed: the account was suspended",
  ban: "closed: the account was banned",
  end_show: "closed: the show was ended",
};

const queue = document.querySelector("[data-report-queue]");

function openCountText(count) {
  return `${count} open ${count === 1 ? "report" : "reports"}`;
}

/** Destructive actions take a second press, as the console's End show does. */
const armed = new Map();

function needsSecondPress(button) {
  const prompt = button.dataset.confirm;
  if (!prompt || armed.has(button)) return false;
  const label = button.textContent;
  button.textContent = prompt;
  armed.set(button, { label, timer: setTimeout(() => disarm(button), 4000) });
  return true;
}

function disarm(button) {
  const state = armed.get(button);
  if (!state) return;
  clearTimeout(state.timer);
  armed.delete(button);
  button.textContent = state.label;
}

function removeRows(rows) {
  const list = queue.querySelector("[data-report-list]");
  const all = [...list.children];
  const firstGone = all.indexOf(rows[0]);
  for (const row of rows) row.remove();
  const left = [...list.children];
  queue.querySelector("[data-open-count]").textContent = openCountText(left.length);
  queue.querySelector("[data-queue-empty]").hidden = left.length > 0;
  // Keyboard users carry on with the next report, or land on the heading when none is left.
  const next = left[Math.min(Math.max(firstGone, 0), left.length - 1)];
  const field = next?.querySelector("textarea");
  (field ?? queue.querySelector("#queue-heading")).focus();
}

async function act(row, button) {
  const form = row.querySelector("[data-report-form]");
  const error = form.querySelector("[data-report-error]");
  const reasonField = form.elements.reason;
  const action = button.dataset.action;
  say(error, "");
  reasonField.removeAttribute("aria-invalid");
  const reason = reasonField.value.trim();
  if (!reason) {
    disarm(button);
    say(error, "Reason: say why. It is kept in the audit log.");
    reasonField.setAttribute("aria-invalid", "true");
    reasonField.focus();
    return;
  }
  const body = { action, reason };
  if (action === "suspend") {
    const hours = form.elements.hours;
    if (!hours.checkValidity() || !hours.value) {
      say(error, "Suspend for: a whole number of hours from 1 to 8760.");
      hours.setAttribute("aria-invalid", "true");
      hours.focus();
      return;
    }
    hours.removeAttribute("aria-invalid");
    body.hours = Number(hours.value);
  }
  if (needsSecondPress(button)) return;
  disarm(button);
  const buttons = [...form.querySelectorAll("button")];
  for (const b of buttons) b.disabled = true;
  const result = await api("POST", `/api/v1/moderation/reports/${row.dataset.reportId}/actions`, body);
  for (const b of buttons) b.disabled = false;
  if (!result.ok) {
    say(error, result.message);
    button.focus();
    return;
  }
  // The other open reports on the same target were closed with this one.
  const key = row.dataset.targetKey;
  const rows = [row, ...[...queue.querySelectorAll("[data-report-id]")].filter((r) => r !== row && r.dataset.targetKey === key)];
  const others = rows.length - 1;
  const also = others ? ` (with ${others} other ${others === 1 ? "report" : "reports"} on the same target)` : "";
  say(queue.querySelector("[data-queue-status]"), `Report ${row.dataset.reportId} ${DONE[action]}${also}.`);
  removeRows(rows);
}

if (queue) {
  queue.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    const row = button?.closest("[data-report-id]");
    if (!button || !row || button.disabled) return;
    act(row, button);
  });
  // No form here is ever sent by the browser itself: Enter in a field must not act.
  queue.addEventListener("submit", (event) => event.preventDefault());
}

// The community rules -------------------------------------------------------------------------

/** The same reading of the plain text as the server's: paragraphs, and lists of "- " lines. */
function ruleBlocks(text) {
  const blocks = [];
  for (const chunk of text.trim().split(/\n\s*\n/)) {
    const lines = chunk.split("\n").map((l) => l.trim()).filter(Boolean);
    if (!lines.length) continue;
    if (lines.every((l) => /^[-*]\s+/.test(l))) {
      blocks.push(el("ul", {}, ...lines.map((l) => el("li", { text: l.replace(/^[-*]\s+/, "") }))));
    } else {
      const p = el("p");
      lines.forEach((line, i) => {
        if (i) p.append(el("br"));
        p.append(line);
      });
      blocks.push(p);
    }
  }
  return blocks;
}

const rulesForm = document.querySelector("[data-rules-form]");

if (rulesForm) {
  const error = rulesForm.querySelector("[data-rules-error]");
  const status = rulesForm.querySelector("[data-rules-status]");
  const field = rulesForm.elements.body;
  rulesForm.addEventListener("submit", async (event) => {
    event.preventDefault();
    say(error, "");
    say(status, "");
    field.removeAttribute("aria-invalid");
    if (!field.value.trim()) {
      say(error, "Rules: write the rules first.");
      field.setAttribute("aria-invalid", "true");
      field.focus();
      return;
    }
    const button = rulesForm.querySelector("button[type=submit]");
    button.disabled = true;
    const result = await api("PUT", "/api/v1/rules", { body: field.value });
    button.disabled = false;
    if (!result.ok) {
      say(error, result.message);
      field.focus();
      return;
    }
    document.querySelector("[data-rules-body]").replaceChildren(...ruleBlocks(result.data.body));
    const updated = new Date(result.data.updated_at);
    document.querySelector("[data-rules-updated]").textContent = `Last changed ${updated.toLocaleString()}.`;
    say(status, "Saved. Everyone sees the new rules now.");
  });
}
