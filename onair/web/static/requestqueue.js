// The console's Requests panel: listeners' open requests grouped by song, the most wanted first,
// with who asked and their dedications; "Add to queue" puts the song on the queue once and
// answers every request for it, "Dismiss" answers them without playing it. The room's
// crew-only `requests` event says when to look again.
import { api, el, say } from "./common.js";
import { joinRoom } from "./room.js";

// A slow look now and then, for a console whose room connection misses the crew's events.
const REFRESH_MS = 15000;

const panel = document.querySelector("[data-request-queue]");
if (panel && !panel.hidden) start(panel);

function clockTime(iso) {
  return new Intl.DateTimeFormat(undefined, { timeStyle: "short" }).format(new Date(iso));
}

function start(panel) {
  const showId = panel.dataset.showId;
  const base = `/api/v1/shows/${showId}`;
  const q = (selector) => panel.querySelector(selector);
  const list = q("[data-request-groups]");
  const summary = q("[data-request-summary]");
  const error = q("[data-request-queue-error]");
  const status = q("[data-request-queue-status]");
  let groups = [];
  let loading = false;
  let again = false;
  let busy = false;
  let ended = false;

  async function refresh() {
    // One look at a time; events arriving meanwhile ask for one more afterwards.
    if (loading) {
      again = true;
      return;
    }
    loading = true;
    try {
      const result = await api("GET", `${base}/requests`);
      if (result.ok) render(result.data);
      else say(error, result.message);
    } finally {
      loading = false;
      if (again) {
        again = false;
        refresh();
      }
    }
  }

  function who(requester) {
    return `${requester.user.display_name} (@${requester.user.username})`;
  }

  function groupRow(group) {
    const track = group.track;
    const title = track.title;
    const sub = track.artists.join(", ") + (track.album ? ` · ${track.album}` : "");
    const said = group.requesters.filter((r) => r.dedication);
    const quiet = group.requesters.filter((r) => !r.dedication);
    const button = (label, action, cls) =>
      el("button", { type: "button", class: cls, "aria-label": `${label}: ${title}`, dataset: { action }, disabled: ended, onclick: (event) => act(group, action, event.currentTarget) }, label);
    const first = clockTime(group.first_requested_at);
    const last = clockTime(group.last_requested_at);
    const times = first === last ? ` · asked at ${first}` : ` · first asked ${first}, latest ${last}`;
    return el(
      "li",
      { class: "request-group", dataset: { trackId: String(track.id), count: String(group.count) } },
      el("span", { class: "request-count", "aria-hidden": "true", text: `×${group.count}` }),
      el(
        "div",
        { class: "request-song" },
        el("p", { class: "request-title" }, el("span", { class: "track-title", text: title }), track.explicit ? el("span", { class: "badge explicit", title: "Explicit lyrics", text: "Explicit" }) : null),
        el("p", { class: "track-sub", text: sub }),
        el(
          "p",
          { class: "meta" },
          el("span", { dataset: { requestCountText: "" }, text: `${group.count} ${group.count === 1 ? "request" : "requests"}` }),
          times,
          group.in_queue ? el("span", { class: "chip request-in-queue", text: "Already in the queue" }) : null,
        ),
        said.length
          ? el(
              "ul",
              { class: "request-dedications", "aria-label": `Dedications for ${title}` },
              ...said.map((r) => el("li", {}, el("span", { class: "request-who", text: who(r) }), " ", el("span", { class: "request-dedication", text: `“${r.dedication}”` }))),
            )
          : null,
        quiet.length ? el("p", { class: "meta request-also", text: `${said.length ? "Also asked" : "Asked"} by ${quiet.map(who).join(", ")}` }) : null,
      ),
      el("div", { class: "row-actions" }, button("Add to queue", "queue", "primary"), button("Dismiss", "dismiss", "")),
    );
  }

  function render(board) {
    groups = board.groups;
    const songs = groups.length;
    summary.textContent = board.open ? `${board.open} open ${board.open === 1 ? "request" : "requests"} · ${songs} ${songs === 1 ? "song" : "songs"}` : "No requests yet.";
    panel.dataset.open = String(board.open);
    // Keep the keyboard where it was across the re-draw.
    const focused = list.contains(document.activeElement) ? document.activeElement : null;
    const keep = focused ? { track: focused.closest("[data-track-id]")?.dataset.trackId, action: focused.dataset.action } : null;
    list.replaceChildren(...groups.map(groupRow));
    if (keep) list.querySelector(`[data-track-id="${keep.track}"] [data-action="${keep.action}"]`)?.focus();
  }

  async function act(group, action, button) {
    if (busy || ended) return;
    busy = true;
    say(error, "");
    const index = groups.indexOf(group);
    const title = group.track.title;
    button.disabled = true;
    try {
      const result = await api("POST", `${base}/requests/tracks/${group.track.id}/${action}`);
      if (!result.ok) {
        button.disabled = false;
        say(error, result.message);
        // Someone else of the crew may have answered them first.
        if (result.status === 404) await refresh();
        return;
      }
      const { handled, queue } = result.data;
      render(result.data.board);
      const listeners = `${handled} ${handled === 1 ? "listener" : "listeners"}`;
      if (action === "queue") {
        say(status, `Added ${title} to the queue, asked for by ${listeners}.`);
        // The console's queue (console.js) can redraw from this instead of asking again.
        document.dispatchEvent(new CustomEvent("onair:queue-changed", { detail: queue }));
      } else {
        say(status, `Dismissed the requests for ${title} (${listeners}).`);
      }
      const rows = list.querySelectorAll("[data-track-id]");
      const next = rows[Math.min(index, rows.length - 1)];
      (next?.querySelector(`[data-action="${action}"]`) ?? q("h2")).focus();
    } finally {
      busy = false;
    }
  }

  function end() {
    ended = true;
    for (const button of list.querySelectorAll("button")) button.disabled = true;
    say(status, "The show has ended; it takes no more requests.");
  }

  let opened = false;
  joinRoom(showId, {
    onEvent(event, { state }) {
      if (state) return;
      if (event.type === "requests") refresh();
      else if (event.type === "show.ended") end();
    },
    onStatus(state) {
      if (state !== "open") return;
      if (opened) refresh(); // back after a break: look again rather than trust the gap
      opened = true;
    },
  });
  setInterval(() => {
    if (!ended && document.visibilityState === "visible") refresh();
  }, REFRESH_MS);
  refresh();
}
