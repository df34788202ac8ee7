// The console's "Broadcast from DJ software" panel: reveal, hide and rotate the show's source key.
import { api } from "./common.js";

const panel = document.querySelector("[data-source-settings]");
const keyText = panel?.querySelector("[data-source-key]");
const reveal = panel?.querySelector("[data-source-reveal]");
const rotate = panel?.querySelector("[data-source-rotate]");
const status = panel?.querySelector("[data-source-status]");
const error = panel?.querySelector("[data-source-error]");
const path = panel ? `/api/v1/shows/${panel.dataset.showId}/source` : "";

function show(key) {
  keyText.textContent = key;
  reveal.textContent = "Hide key";
  reveal.setAttribute("aria-pressed", "true");
}

function hide() {
  keyText.textContent = "hidden";
  reveal.textContent = "Show key";
  reveal.setAttribute("aria-pressed", "false");
}

async function load(method, url, done) {
  error.textContent = "";
  status.textContent = "";
  const result = await api(method, url);
  if (!result.ok) {
    error.textContent = result.message;
    return;
  }
  show(result.data.key);
  status.textContent = done;
}

if (panel && reveal && rotate) {
  reveal.addEventListener("click", () => {
    if (reveal.getAttribute("aria-pressed") === "true") hide();
    else load("GET", path, "");
  });
  rotate.addEventListener("click", () => {
    if (!window.confirm("Make a new key? DJ software using the old one will be refused from now on.")) return;
    load("POST", `${path}/rotate`, "A new key is in place: update your DJ software.");
  });
}
