// The one search box: grouped results as you type (shows, songs, artists, hosts, hashtags and
// who is playing them), the address kept in step so a search can be shared. Every result is a
// link; the arrow keys walk them, as Tab does.
import { apiGet, debounce, el, localizeTimes, mmss, statusBadge } from "./common.js";

const form = document.getElementById("search-form");
const input = document.getElementById("q");
const results = document.querySelector("[data-results]");
const status = document.querySelector("[data-search-status]");
let inflight = null;

function hit(kind, href, title, ...sub) {
  return el(
    "li",
    { class: `hit hit-${kind}` },
    el("a", { class: "hit-link", href }, el("span", { class: "hit-title", text: title }), ...sub),
  );
}

function line(cls, ...parts) {
  return el("span", { class: cls }, ...parts);
}

function byHost(show) {
  return line("hit-sub", statusBadge(show.status), ` by ${show.host.display_name}`, show.genre ? ` · ${show.genre}` : "");
}

function playHit(play, now) {
  const song = `“${play.track.title}” by ${play.track.artists.join(", ")}`;
  const heard = now ? null : at(play.started_at);
  const item = hit(
    "play",
    `/shows/${play.show.id}`,
    play.show.title,
    byHost(play.show),
    line("hit-when", `${now ? "Playing" : "Played"} ${song}`, heard ? " · " : "", heard),
  );
  item.dataset.showId = String(play.show.id);
  item.dataset.trackId = String(play.track.id);
  return item;
}

function at(iso) {
  return el("time", { datetime: iso, "data-local": true, text: iso });
}

// As the server's when() macro says it.
function when(show) {
  if (show.status === "live" && show.started_at) return line("hit-when", "On air since ", at(show.started_at));
  if (show.status === "ended" && show.ended_at) return line("hit-when", "Ended ", at(show.ended_at));
  if (show.scheduled_start) return line("hit-when", "Starts ", at(show.scheduled_start));
  return line("hit-when", "Starts when the host goes live");
}

function showHit(show) {
  const item = hit("show", `/shows/${show.id}`, show.title, byHost(show), when(show));
  item.dataset.showId = String(show.id);
  return item;
}

function songHit(track) {
  const length = mmss(track.duration_s);
  const sub = track.artists.join(", ") + (track.album ? ` · ${track.album}` : "") + (length ? ` · ${length}` : "");
  const item = hit("song", `/tracks/${track.id}`, track.title, line("hit-sub", sub));
  if (track.explicit) {
    item.querySelector(".hit-title").append(" ", el("span", { class: "badge explicit", title: "Explicit lyrics", text: "Explicit" }));
  }
  item.dataset.trackId = String(track.id);
  return item;
}

const GROUPS = [
  ["playing-now", "Playing now", (r) => r.playing_now, (p) => playHit(p, true)],
  ["shows", "Shows", (r) => r.shows, showHit],
  ["songs", "Songs", (r) => r.tracks, songHit],
  ["artists", "Artists", (r) => r.artists, (a) => hit("artist", `/artists/${a.id}`, a.name, line("hit-sub", "Artist"))],
  ["hosts", "Hosts", (r) => r.hosts, (u) => hit("host", `/users/${encodeURIComponent(u.username)}`, u.display_name, line("hit-sub", `@${u.username}`))],
  [
    "hashtags",
    "Hashtags",
    (r) => r.hashtags,
    (h) => hit("hashtag", `/hashtags/${encodeURIComponent(h.tag)}`, `#${h.tag}`, line("hit-sub", `${h.shows} show${h.shows === 1 ? "" : "s"}`)),
  ],
  ["recently-played", "Recently played", (r) => r.recently_played, (p) => playHit(p, false)],
];

function render(data) {
  const sections = [];
  for (const [id, heading, items, row] of GROUPS) {
    const found = items(data);
    if (!found.length) continue;
    sections.push(
      el(
        "section",
        { class: "results-group", "aria-labelledby": `${id}-heading`, dataset: { group: id } },
        el("h2", { id: `${id}-heading`, text: heading }),
        el("ul", { class: "hits" }, ...found.map(row)),
      ),
    );
  }
  results.replaceChildren(...sections);
  localizeTimes(results);
  return sections.length;
}

async function run() {
  const q = input.value.trim();
  const url = new URL(window.location.href);
  if (q) url.searchParams.set("q", q);
  else url.searchParams.delete("q");
  window.history.replaceState(null, "", url);
  inflight?.abort();
  if (!q) {
    results.replaceChildren();
    status.textContent = "Start typing to search.";
    return;
  }
  inflight = new AbortController();
  let result;
  try {
    result = await apiGet(`/api/v1/search?q=${encodeURIComponent(q)}`, inflight.signal);
  } catch (err) {
    if (err.name === "AbortError") return;
    status.textContent = "Could not reach OnAir. Check your connection and try again.";
    return;
  }
  if (!result.ok) {
    status.textContent = result.message;
    return;
  }
  status.textContent = render(result.data) ? `Results for “${q}”` : `Nothing matches “${q}”.`;
}

function links() {
  return [...results.querySelectorAll("a.hit-link")];
}

function walk(event) {
  if (event.key !== "ArrowDown" && event.key !== "ArrowUp") return;
  const all = links();
  if (!all.length) return;
  const at = all.indexOf(document.activeElement);
  let next;
  if (event.target === input) {
    if (event.key !== "ArrowDown") return;
    next = 0;
  } else if (at === -1) {
    return;
  } else if (event.key === "ArrowDown") {
    next = Math.min(at + 1, all.length - 1);
  } else if (at === 0) {
    event.preventDefault();
    input.focus();
    return;
  } else {
    next = at - 1;
  }
  event.preventDefault();
  all[next].focus();
}

if (form && input && results) {
  const later = debounce(run, 150);
  input.addEventListener("input", later);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run();
  });
  input.addEventListener("keydown", walk);
  results.addEventListener("keydown", walk);
  if (!input.value) input.focus();
}
