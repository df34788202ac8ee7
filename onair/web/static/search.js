// The search page: results as you type, with the address kept in step so it can be shared.
import { apiGet, debounce } from "./common.js";
import { countText, trackRow } from "./tracks.js";

const form = document.getElementById("search-form");
const input = document.getElementById("q");
const list = document.getElementById("results");
const status = document.querySelector("[data-search-status]");
let inflight = null;

async function run() {
  const q = input.value.trim();
  const url = new URL(window.location.href);
  if (q) url.searchParams.set("q", q);
  else url.searchParams.delete("q");
  window.history.replaceState(null, "", url);
  inflight?.abort();
  if (!q) {
    list.replaceChildren();
    status.textContent = "Start typing to search.";
    return;
  }
  inflight = new AbortController();
  let result;
  try {
    result = await apiGet(`/api/v1/catalog/search?q=${encodeURIComponent(q)}&limit=30`, inflight.signal);
  } catch (err) {
    if (err.name === "AbortError") return;
    status.textContent = "Could not reach OnAir. Check your connection and try again.";
    return;
  }
  if (!result.ok) {
    status.textContent = result.message;
    return;
  }
  const tracks = result.data.tracks;
  list.replaceChildren(...tracks.map((t) => trackRow(t)));
  status.textContent = tracks.length ? countText(tracks.length) : `No songs match “${q}”.`;
}

if (form && input) {
  const later = debounce(run, 200);
  input.addEventListener("input", later);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    run();
  });
  if (!input.value) input.focus();
}
