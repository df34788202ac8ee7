// The host console: go live / end, edit details and cover, search the catalog and run the queue;
// while live, the Studio panel (studio.js) runs the microphone, the music and the room's news.
// The page arrives server-rendered; from here on every change goes through the shows API and the
// queue is re-drawn from the API's answer, so the page never guesses what the server decided.
import {
  api,
  apiGet,
  debounce,
  el,
  isoToLocalInput,
  localInputToIso,
  localizeTimes,
  markField,
  reportInvalid,
  say,
  splitHashtags,
  statusBadge,
  trackLine,
} from "./common.js";
import { createCallIns, createCoHosts } from "./callins.js";
import { createChat } from "./chat.js";
import { joinRoom } from "./room.js";
import { createStudio } from "./studio.js";
import { checkTracks, markRow } from "./licensing.js";
import { countText, trackRow } from "./tracks.js";

const root = document.querySelector("[data-console]");
const showId = root.dataset.showId;
const base = `/api/v1/shows/${showId}`;
let status = root.dataset.status;
let queue = JSON.parse(document.getElementById("queue-data").textContent);
let busy = false;
// The song listeners hear now, from the room (it may be the auto-DJ's, not in the queue).
let heardTrack = null;

const q = (selector) => root.querySelector(selector);
const list = q("[data-queue]");
const queueError = q("[data-queue-error]");
const queueStatus = q("[data-queue-status]");
const statusError = q("[data-status-error]");
const statusMessage = q("[data-status-message]");
const goLiveButton = q("[data-go-live]");
const endButton = q("[data-end-show]");
const searchInput = document.getElementById("catalog-q");

// The queue -----------------------------------------------------------------------------------

function queueRow(item, index, count) {
  const title = item.track.title;
  const editable = status !== "ended";
  const actions = editable
    ? el(
        "div",
        { class: "row-actions" },
        el("button", { type: "button", class: "icon", "aria-label": `Move ${title} up`, disabled: index === 0, dataset: { move: "up" } }, "↑"),
        el("button", { type: "button", class: "icon", "aria-label": `Move ${title} down`, disabled: index === count - 1, dataset: { move: "down" } }, "↓"),
        el("button", { type: "button", class: "icon remove", "aria-label": `Remove ${title}`, dataset: { remove: "" } }, "✕"),
      )
    : null;
  const row = trackRow(item.track, actions);
  row.dataset.itemId = String(item.id);
  markRow(row, item.problems);
  return row;
}

function renderQueue() {
  const items = queue.upcoming;
  list.replaceChildren(...items.map((item, i) => queueRow(item, i, items.length)));
  q("[data-queue-empty]").hidden = items.length > 0;
  const playing = status === "live" && heardTrack ? heardTrack : queue.now_playing?.track;
  q("[data-now-playing]").textContent = playing ? trackLine(playing) : "Nothing playing yet";
}

/** Puts focus back where the keyboard user was, on the row that moved, after a re-draw. */
function restoreFocus(itemId, control, fallbackIndex) {
  const row = list.querySelector(`[data-item-id="${itemId}"]`);
  if (row) {
    const wanted = row.querySelector(control === "remove" ? "[data-remove]" : `[data-move="${control}"]`);
    const other = row.querySelector(`[data-move="${control === "up" ? "down" : "up"}"]`);
    const target = wanted && !wanted.disabled ? wanted : other && !other.disabled ? other : row.querySelector("[data-remove]");
    target?.focus();
    return;
  }
  const rows = list.querySelectorAll("li");
  const next = rows[Math.min(fallbackIndex, rows.length - 1)];
  (next?.querySelector("[data-remove]") ?? searchInput).focus();
}

async function changeQueue(method, path, body) {
  if (busy) return null;
  busy = true;
  say(queueError, "");
  try {
    const result = await api(method, path, body);
    if (!result.ok) {
      say(queueError, result.message);
      if (result.status === 422 || result.status === 404) await refreshQueue();
      return null;
    }
    queue = result.data;
    renderQueue();
    return result;
  } finally {
    busy = false;
  }
}

async function refreshQueue() {
  const result = await api("GET", `${base}/queue`);
  if (result.ok) {
    queue = result.data;
    renderQueue();
  }
}

// A song queued from the Requests panel: redraw the queue from the server's own answer.
document.addEventListener("onair:queue-changed", () => refreshQueue());

async function move(itemId, direction) {
  const ids = queue.upcoming.map((i) => i.id);
  const from = ids.indexOf(itemId);
  const to = from + (direction === "up" ? -1 : 1);
  if (from < 0 || to < 0 || to >= ids.length) return;
  ids.splice(to, 0, ids.splice(from, 1)[0]);
  const title = queue.upcoming[from].track.title;
  if (await changeQueue("PUT", `${base}/queue`, { item_ids: ids })) {
    say(queueStatus, `Moved ${title} to position ${to + 1} of ${ids.length}.`);
    restoreFocus(itemId, direction, to);
  }
}

async function remove(itemId) {
  const index = queue.upcoming.findIndex((i) => i.id === itemId);
  if (index < 0) return;
  const title = queue.upcoming[index].track.title;
  if (await changeQueue("DELETE", `${base}/queue/${itemId}`)) {
    say(queueStatus, `Removed ${title} from the queue.`);
    restoreFocus(itemId, "remove", index);
  }
}

list.addEventListener("click", (event) => {
  const button = event.target.closest("button");
  const row = button?.closest("[data-item-id]");
  if (!button || !row || button.disabled) return;
  const itemId = Number(row.dataset.itemId);
  if (button.dataset.move) move(itemId, button.dataset.move);
  else if ("remove" in button.dataset) remove(itemId);
});

// Catalog search ------------------------------------------------------------------------------

const results = q("[data-catalog-results]");
const catalogStatus = q("[data-catalog-status]");
let inflight = null;

async function add(track, button) {
  const result = await changeQueue("POST", `${base}/queue`, { track_id: track.id });
  if (result) {
    say(queueStatus, `Added ${track.title} to the queue, position ${queue.upcoming.length}.`);
    button.textContent = "Added";
    setTimeout(() => {
      button.textContent = "Add";
    }, 1500);
  }
}

async function searchCatalog() {
  const text = searchInput.value.trim();
  inflight?.abort();
  if (!text) {
    results.replaceChildren();
    catalogStatus.textContent = "";
    return;
  }
  inflight = new AbortController();
  let result;
  try {
    result = await apiGet(`/api/v1/catalog/search?playable=true&limit=20&q=${encodeURIComponent(text)}`, inflight.signal);
  } catch (err) {
    if (err.name !== "AbortError") catalogStatus.textContent = "Could not reach OnAir. Try again.";
    return;
  }
  if (!result.ok) {
    catalogStatus.textContent = result.message;
    return;
  }
  const tracks = result.data.tracks;
  results.replaceChildren(
    ...tracks.map((track) => {
      const button = el("button", { type: "button", class: "add", "aria-label": `Add ${track.title} to the queue` }, "Add");
      button.addEventListener("click", () => add(track, button));
      return trackRow(track, button);
    }),
  );
  catalogStatus.textContent = tracks.length ? countText(tracks.length) : `No playable songs match “${text}”.`;
  await markResults(tracks, inflight.signal);
}

/** Marks the songs the queue would refuse, or that would break a programming rule, before
 * the host tries to add them. */
async function markResults(tracks, signal) {
  let checks;
  try {
    checks = await checkTracks(showId, tracks.map((t) => t.id), signal);
  } catch {
    return; // a newer search took over
  }
  for (const row of results.querySelectorAll("[data-track-id]")) {
    const problems = checks.get(Number(row.dataset.trackId));
    if (!markRow(row, problems)) continue;
    const button = row.querySelector("button.add");
    button.disabled = true;
    button.textContent = "Can't add";
    button.setAttribute("aria-label", `Can't add ${row.querySelector(".track-title").textContent}: see why below it`);
  }
}

searchInput.addEventListener("input", debounce(searchCatalog, 200));
searchInput.addEventListener("keydown", (event) => {
  if (event.key === "Enter") {
    event.preventDefault();
    searchCatalog();
  }
});

// Going live and ending -----------------------------------------------------------------------

function whenLine(show) {
  const at = (iso) => el("time", { datetime: iso, "data-local": true }, iso);
  if (show.status === "live" && show.started_at) return ["On air since ", at(show.started_at)];
  if (show.status === "ended" && show.ended_at) return ["Ended ", at(show.ended_at)];
  if (show.scheduled_start) return ["Starts ", at(show.scheduled_start)];
  return ["Starts when the host goes live"];
}

function applyStatus(show) {
  status = show.status;
  root.dataset.status = status;
  q("[data-status-badge]").replaceWith(statusBadge(status));
  const when = q("[data-when]");
  when.replaceChildren(...whenLine(show));
  localizeTimes(when);
  goLiveButton.hidden = status !== "scheduled";
  endButton.hidden = status !== "live";
  q("[data-ended-note]").hidden = status !== "ended";
  q("[data-replay-note]").hidden = status !== "ended";
  for (const fieldset of root.querySelectorAll("[data-live-controls]")) fieldset.disabled = status === "ended";
  const start = document.getElementById("scheduled_start");
  if (start && status !== "scheduled") start.closest(".field").remove();
  q("[data-mic-offer]").hidden = status !== "scheduled";
  if (status === "live") {
    studio.start();
    callIns.start();
  } else {
    heardTrack = null;
    studio.stop();
    callIns.stop();
  }
  renderQueue();
}

const callIns = createCallIns(q("[data-call-ins]"), { showId });

// The chat keeps its own connection to the room: it runs before, during and after the
// studio (which joins the room only while live).
const chat = createChat(q("[data-chat]"), { showId });
if (status === "ended") {
  chat.loadHistory();
} else {
  chat.setRoom(
    joinRoom(showId, {
      onEvent: (event) => chat.onEvent(event),
      onWelcome: (welcome) => chat.onWelcome(welcome),
    }),
  );
}
createCoHosts(q("[data-cohosts]"), { showId, isHost: root.dataset.isHost === "yes" });

const studio = createStudio(q("[data-studio]"), {
  showId,
  voiceId: root.dataset.voiceId,
  onEvent(event, { state } = {}) {
    if (event.type === "stage") callIns.onStage(event);
    if (event.type === "queue.skipped" && !state) {
      say(queueError, `Skipped “${event.title}”: ${event.reason}.`);
      refreshQueue();
    }
  },
  onHeard(track) {
    heardTrack = track;
    renderQueue();
  },
  onQueueChanged: () => refreshQueue(),
  async onEnded() {
    // Ended elsewhere (another tab, a moderator): show it as this page would have.
    const result = await api("GET", base);
    if (result.ok && result.data.status === "ended" && status !== "ended") {
      applyStatus(result.data);
      say(statusMessage, "The show has ended.");
    }
  },
});
if (status === "live") {
  studio.start();
  callIns.start();
}
renderQueue(); // with each queued song's licence and rule notes

goLiveButton.addEventListener("click", async () => {
  say(statusError, "");
  goLiveButton.disabled = true;
  const result = await api("POST", `${base}/live`);
  goLiveButton.disabled = false;
  if (!result.ok) {
    say(statusError, result.message);
    return;
  }
  applyStatus(result.data);
  endButton.focus();
  if (q("[data-mic-on-live]").checked) {
    say(statusMessage, "You are live. Listeners can tune in now.");
    await studio.connectMic();
  } else {
    say(statusMessage, "You are live. Listeners can tune in now. Connect your microphone in the Studio panel to talk.");
  }
});

// Ending cannot be undone, so it takes a second press to confirm.
let confirmTimer = null;
endButton.addEventListener("click", async () => {
  say(statusError, "");
  if (!confirmTimer) {
    endButton.textContent = "Press again to end";
    say(statusMessage, "Press End show again within 5 seconds to end the show for everyone.");
    confirmTimer = setTimeout(() => {
      confirmTimer = null;
      endButton.textContent = "End show";
      say(statusMessage, "");
    }, 5000);
    return;
  }
  clearTimeout(confirmTimer);
  confirmTimer = null;
  endButton.textContent = "End show";
  endButton.disabled = true;
  const result = await api("POST", `${base}/end`);
  endButton.disabled = false;
  if (!result.ok) {
    say(statusError, result.message);
    return;
  }
  applyStatus(result.data);
  say(q("[data-edit-status]"), "");
  // The message says it (and is announced), so the page's standing note would only repeat it.
  q("[data-ended-note]").hidden = true;
  say(statusMessage, "The show has ended. Thanks for hosting!");
  q("h1").focus();
});

// Details and cover ---------------------------------------------------------------------------

const editForm = q("[data-edit-form]");
const editError = q("[data-edit-error]");
const editStatus = q("[data-edit-status]");
const startInput = document.getElementById("scheduled_start");
if (startInput?.dataset.iso) startInput.value = isoToLocalInput(startInput.dataset.iso);
let savedStart = startInput?.value ?? "";

editForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  say(editError, "");
  say(editStatus, "");
  if (reportInvalid(editForm, editError)) return;
  const els = editForm.elements;
  const body = {
    title: els.title.value.trim(),
    description: els.description.value,
    genre: els.genre.value.trim(),
    hashtags: splitHashtags(els.hashtags.value),
    clean: els.clean.checked,
  };
  // Only a changed start is sent: an unchanged one may already be in the past.
  const start = document.getElementById("scheduled_start");
  if (start && start.value && start.value !== savedStart) body.scheduled_start = localInputToIso(start.value);
  const result = await api("PATCH", base, body);
  if (!result.ok) {
    say(editError, result.message);
    markField(editForm, result);
    return;
  }
  const show = result.data;
  savedStart = start?.value ?? "";
  q("[data-show-title]").textContent = show.title;
  document.title = `Console: ${show.title} · OnAir`;
  els.hashtags.value = show.hashtags.map((t) => `#${t}`).join(" ");
  els.genre.value = show.genre ?? "";
  els.clean.checked = show.clean;
  q("[data-when]").replaceChildren(...whenLine(show));
  localizeTimes(q("[data-when]"));
  say(editStatus, "Saved.");
  refreshQueue(); // a show just marked clean marks its explicit songs
});

const coverForm = q("[data-cover-form]");
const coverError = q("[data-cover-error]");
coverForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  say(coverError, "");
  const file = coverForm.elements.file.files[0];
  if (!file) {
    say(coverError, "Choose an image first.");
    coverForm.elements.file.focus();
    return;
  }
  const body = new FormData();
  body.append("file", file);
  const result = await api("PUT", `${base}/cover`, body);
  if (!result.ok) {
    say(coverError, result.message);
    return;
  }
  const img = el("img", { class: "cover cover-small", src: result.data.cover_url, alt: "", width: 96, height: 96 });
  q("[data-cover-holder]").replaceChildren(img);
  coverForm.reset();
});
