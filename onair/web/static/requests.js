// The show page's "Request a song" panel: search the catalog as you type, ask the host for a
// song (with a dedication if you like) and follow your own requests. Only the host sees them;
// the room tells this listener alone when the host answers one (`request.update`).
import { api, apiGet, debounce, el, say, trackLine } from "./common.js";
import { joinRoom } from "./room.js";
import { countText, trackRow } from "./tracks.js";

const RESULTS = 10;

// Kept vague on purpose: a picked song is not announced as coming up next.
const STATE_TEXT = {
  open: "Waiting for the host",
  queued: "The host picked it",
  dismissed: "Not this time",
};

const panel = document.querySelector("[data-song-requests]");
const searchInput = panel?.querySelector("[data-request-q]");
if (panel && searchInput) start(panel);

function start(panel) {
  const showId = panel.dataset.showId;
  const base = `/api/v1/shows/${showId}`;
  const q = (selector) => panel.querySelector(selector);
  const fields = q("[data-request-fields]");
  const dedication = q("[data-request-dedication]");
  const results = q("[data-request-results]");
  const searchStatus = q("[data-request-search-status]");
  const status = q("[data-request-status]");
  const mineList = q("[data-my-requests]");
  const mineEmpty = q("[data-my-requests-empty]");
  let mine = [];
  let inflight = null;
  let closed = false;

  // Searching -----------------------------------------------------------------------------

  async function searchCatalog() {
    const text = searchInput.value.trim();
    inflight?.abort();
    if (!text) {
      results.replaceChildren();
      say(searchStatus, "");
      return;
    }
    inflight = new AbortController();
    let result;
    try {
      result = await apiGet(`/api/v1/catalog/search?playable=true&limit=${RESULTS}&q=${encodeURIComponent(text)}`, inflight.signal);
    } catch (err) {
      if (err.name !== "AbortError") say(searchStatus, "Could not reach OnAir. Try again.");
      return;
    }
    if (!result.ok) {
      say(searchStatus, result.message);
      return;
    }
    const tracks = result.data.tracks;
    results.replaceChildren(...tracks.map(resultRow));
    say(searchStatus, tracks.length ? countText(tracks.length) : `No songs you can request match “${text}”.`);
  }

  function resultRow(track) {
    const button = el("button", { type: "button", class: "primary", "aria-label": `Request ${track.title}`, dataset: { requestButton: "" } }, "Request");
    button.addEventListener("click", () => request(track, button));
    return trackRow(track, button);
  }

  /** Arrow keys walk the Request buttons; Escape goes back to the search box. */
  function onResultsKey(event) {
    const buttons = [...results.querySelectorAll("[data-request-button]")];
    const at = buttons.indexOf(document.activeElement);
    if (event.key === "Escape") {
      event.preventDefault();
      searchInput.focus();
    } else if (event.key === "ArrowDown" && at >= 0) {
      event.preventDefault();
      buttons[Math.min(at + 1, buttons.length - 1)].focus();
    } else if (event.key === "ArrowUp" && at >= 0) {
      event.preventDefault();
      (at === 0 ? searchInput : buttons[at - 1]).focus();
    }
  }

  searchInput.addEventListener("input", debounce(searchCatalog, 200));
  searchInput.addEventListener("keydown", (event) => {
    if (event.key === "Enter") {
      event.preventDefault();
      searchCatalog();
    } else if (event.key === "ArrowDown") {
      const first = results.querySelector("[data-request-button]");
      if (first) {
        event.preventDefault();
        first.focus();
      }
    }
  });
  results.addEventListener("keydown", onResultsKey);

  // Requesting ----------------------------------------------------------------------------

  async function request(track, button) {
    if (closed) return;
    say(status, "");
    button.disabled = true;
    const result = await api("POST", `${base}/requests`, { track_id: track.id, dedication: dedication.value.trim() });
    button.disabled = false;
    if (!result.ok) {
      say(status, result.message);
      if (result.data?.error?.code === "show_ended") close("The show has ended, so it takes no more requests.");
      return;
    }
    const updated = result.status === 200;
    say(status, updated ? `You had already asked for “${track.title}”: your dedication is updated.` : `You asked for “${track.title}”. The host will see it.`);
    button.textContent = "Requested";
    button.classList.remove("primary");
    dedication.value = "";
    await loadMine();
  }

  // Your requests ---------------------------------------------------------------------------

  async function loadMine() {
    const result = await api("GET", `${base}/requests/mine`);
    if (!result.ok) return;
    mine = result.data;
    renderMine();
  }

  function mineRow(item) {
    const withdraw =
      item.state === "open" && !closed
        ? el("button", { type: "button", class: "link-button", "aria-label": `Withdraw your request for ${item.track.title}`, onclick: () => withdrawRequest(item) }, "Withdraw")
        : null;
    return el(
      "li",
      { class: "my-request", dataset: { requestId: String(item.id), state: item.state } },
      el("span", { class: "my-request-song", text: trackLine(item.track) }),
      item.dedication ? el("span", { class: "my-request-dedication", text: `“${item.dedication}”` }) : null,
      el("span", { class: `chip request-state request-${item.state}`, text: STATE_TEXT[item.state] ?? item.state }),
      withdraw,
    );
  }

  function renderMine() {
    mineList.replaceChildren(...mine.map(mineRow));
    mineEmpty.hidden = mine.length > 0;
    panel.dataset.requests = String(mine.length);
  }

  async function withdrawRequest(item) {
    say(status, "");
    const result = await api("DELETE", `${base}/requests/${item.id}`);
    if (!result.ok) say(status, result.message);
    else say(status, `You withdrew your request for “${item.track.title}”.`);
    await loadMine();
    searchInput.focus();
  }

  function close(message) {
    closed = true;
    fields.disabled = true;
    for (const button of results.querySelectorAll("button")) button.disabled = true;
    say(status, message);
    renderMine();
  }

  // The room says when the host answers one of this listener's requests. ----------------------

  async function answered(event) {
    await loadMine();
    const item = mine.find((m) => m.id === event.request_id);
    if (!item) return;
    if (event.state === "queued") say(status, `The host picked your request, “${item.track.title}”.`);
    else if (event.state === "dismissed") say(status, `The host passed on “${item.track.title}” this time.`);
  }

  let opened = false;
  joinRoom(showId, {
    onEvent(event, { state }) {
      if (state) return;
      if (event.type === "request.update") answered(event);
      else if (event.type === "show.ended") close("The show has ended, so it takes no more requests.");
    },
    onStatus(state) {
      if (state !== "open") return;
      // Back after a break: the answers given meanwhile may not all be in the room's history.
      if (opened) loadMine();
      opened = true;
    },
  });
  loadMine();
}
