// Shared by every page: calling the JSON API, building DOM without innerHTML, local times, log out.

/**
 * Calls the API and never throws: the result says whether it worked and, if not, the message
 * to show (the API's {"error": {"message"}} or a plain explanation).
 */
export async function api(method, path, body) {
  const init = { method, headers: { Accept: "application/json" }, credentials: "same-origin" };
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (err) {
    if (err.name === "AbortError") throw err;
    return { ok: false, status: 0, data: null, message: "Could not reach OnAir. Check your connection and try again." };
  }
  let data = null;
  if (response.status !== 204) {
    try {
      data = await response.json();
    } catch {
      data = null;
    }
  }
  const message = response.ok ? "" : sentence(data?.error?.message ?? `The server answered ${response.status}.`);
  return { ok: response.ok, status: response.status, data, message };
}

/** Same as api() but for GETs that a newer one may cancel. */
export async function apiGet(path, signal) {
  const response = await fetch(path, { headers: { Accept: "application/json" }, credentials: "same-origin", signal });
  const data = await response.json().catch(() => null);
  return { ok: response.ok, status: response.status, data, message: response.ok ? "" : sentence(data?.error?.message ?? "Search failed.") };
}

export function sentence(text) {
  const s = String(text).trim();
  if (!s) return s;
  const first = s[0].toUpperCase() + s.slice(1);
  return /[.!?]$/.test(first) ? first : `${first}.`;
}

/** createElement with text children only: data never becomes markup. */
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key === "dataset") Object.assign(node.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child);
  }
  return node;
}

export function debounce(fn, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

/** Seconds as m:ss, like the server's filter. */
export function mmss(seconds) {
  if (seconds === null || seconds === undefined || seconds < 0) return "";
  const total = Math.round(seconds);
  return `${Math.floor(total / 60)}:${String(total % 60).padStart(2, "0")}`;
}

/** The status badge, as the server's status_badge macro renders it. */
export function statusBadge(value) {
  const label = { live: "Live", ended: "Ended" }[value] ?? "Scheduled";
  const badge = el("span", { class: `badge status-${value}`, dataset: { statusBadge: "" } });
  if (value === "live") badge.append(el("span", { class: "pulse", "aria-hidden": "true" }));
  badge.append(label);
  return badge;
}

/** "Title — Artist, Artist" for a track as the API and room events describe it. */
export function trackLine(track) {
  const artists = (track.artists ?? []).join(", ");
  return artists ? `${track.title} — ${artists}` : track.title;
}

/** Rewrites every <time data-local> from its UTC fallback into the viewer's own zone. */
export function localizeTimes(root = document) {
  const now = new Date();
  for (const node of root.querySelectorAll("time[data-local]")) {
    const moment = new Date(node.dateTime);
    if (Number.isNaN(moment.getTime())) continue;
    const options = { weekday: "short", day: "numeric", month: "short", hour: "numeric", minute: "2-digit", timeZoneName: "short" };
    if (moment.getFullYear() !== now.getFullYear()) options.year = "numeric";
    node.textContent = new Intl.DateTimeFormat(undefined, options).format(moment);
    node.title = moment.toISOString();
  }
}

export function timeZoneName() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "your time zone";
}

/** A datetime-local value ("2026-05-01T20:00", the viewer's zone) as an ISO instant, or null. */
export function localInputToIso(value) {
  if (!value) return null;
  const moment = new Date(value);
  return Number.isNaN(moment.getTime()) ? null : moment.toISOString();
}

/** An ISO instant as a datetime-local value in the viewer's zone. */
export function isoToLocalInput(iso) {
  const moment = new Date(iso);
  if (Number.isNaN(moment.getTime())) return "";
  const pad = (n) => String(n).padStart(2, "0");
  return `${moment.getFullYear()}-${pad(moment.getMonth() + 1)}-${pad(moment.getDate())}T${pad(moment.getHours())}:${pad(moment.getMinutes())}`;
}

/** Hashtags typed as "#jazz, brunch  #late" → ["jazz", "brunch", "late"]. */
export function splitHashtags(text) {
  return text.split(/[\s,]+/).map((t) => t.replace(/^#+/, "")).filter(Boolean);
}

/** Puts a message in an aria-live region; the region stays in the page so it is announced. */
export function say(region, message) {
  if (region) region.textContent = message || "";
}

/** Checks a form with the browser's rules; reports the first problem and focuses its field. */
export function reportInvalid(form, region) {
  for (const field of form.querySelectorAll("input, textarea, select")) {
    field.removeAttribute("aria-invalid");
  }
  const bad = [...form.querySelectorAll("input, textarea, select")].find((f) => !f.checkValidity());
  if (!bad) return false;
  const label = form.querySelector(`label[for="${bad.id}"]`);
  const name = label ? label.firstChild.textContent.trim() : bad.name;
  say(region, `${name}: ${bad.validationMessage}`);
  bad.setAttribute("aria-invalid", "true");
  bad.focus();
  return true;
}

/** Marks the field an API message names ("username: ..." or a validation detail) as invalid. */
export function markField(form, result) {
  const detail = result.data?.error?.details?.[0]?.field ?? "";
  const prefix = (result.data?.error?.message ?? "").split(":")[0];
  for (const candidate of [detail.split(".").pop(), prefix]) {
    const field = candidate && form.querySelector(`[name="${CSS.escape(candidate)}"]`);
    if (field) {
      field.setAttribute("aria-invalid", "true");
      field.focus();
      return;
    }
  }
}

function start() {
  localizeTimes();
  for (const help of document.querySelectorAll("[data-zone-help]")) {
    help.textContent = `In your time zone (${timeZoneName()}).`;
  }
  for (const button of document.querySelectorAll("[data-logout]")) {
    button.addEventListener("click", async () => {
      button.disabled = true;
      await api("POST", "/api/v1/accounts/logout");
      window.location.assign("/");
    });
  }
}

if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
else start();
