// The console's Restream panel (the host's alone): their RTMP destinations and, while the show is
// live, each push's state: connecting, live, retrying (with the last error) or stopped. The
// server says what happened; the panel asks again every few seconds and draws its answer.
import { api, el, reportInvalid, say } from "./common.js";

const REFRESH_MS = 3000;

const panel = document.querySelector("[data-restream]");
if (panel) start(panel);

function duration(seconds) {
  const s = Math.max(0, Math.round(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const pad = (n) => String(n).padStart(2, "0");
  return h ? `${h}:${pad(m)}:${pad(s % 60)}` : `${m}:${pad(s % 60)}`;
}

function describe(push, live) {
  if (!push) return live ? "Not pushing." : "Starts when you go live.";
  switch (push.state) {
    case "connecting":
      return "Connecting…";
    case "live":
      return `Live · ${duration(push.sent_s)} sent${push.dropped ? ` · ${push.dropped} packets lost` : ""}`;
    case "retrying": {
      const failures = `${push.failures} ${push.failures === 1 ? "failure" : "failures"} in a row`;
      if (!push.retry_at) return `Retrying now (${failures}): ${push.error}`;
      const wait = Math.max(0, (Date.parse(push.retry_at) - Date.now()) / 1000);
      return `Retrying in ${Math.ceil(wait)} s (${failures}): ${push.error}`;
    }
    default:
      return push.error ? `Stopped (last error: ${push.error})` : "Stopped.";
  }
}

function start(panel) {
  const showId = panel.dataset.showId;
  const q = (selector) => panel.querySelector(selector);
  const list = q("[data-restream-list]");
  const error = q("[data-restream-error]");
  const summary = q("[data-restream-summary]");
  const form = q("[data-restream-form]");
  let busy = false;

  async function refresh() {
    if (busy || document.hidden) return;
    const result = await api("GET", `/api/v1/shows/${showId}/restream`);
    if (result.ok) render(result.data);
    else say(error, result.message);
  }

  async function act(method, path, body) {
    busy = true;
    say(error, "");
    try {
      const result = await api(method, path, body);
      if (!result.ok) say(error, result.message);
      return result.ok;
    } finally {
      busy = false;
      await refresh();
    }
  }

  function row(item, live) {
    const d = item.destination;
    const push = item.push;
    const pushing = push && push.state !== "stopped";
    const state = push ? push.state : "off";
    const button = (label, onclick, cls) => el("button", { type: "button", class: cls, "aria-label": `${label}: ${d.name}`, onclick }, label);
    const enabled = el("input", {
      type: "checkbox",
      checked: d.enabled,
      onchange: (event) => act("PATCH", `/api/v1/restream/destinations/${d.id}`, { enabled: event.currentTarget.checked }),
    });
    return el(
      "li",
      { class: `restream-item state-${state}`, dataset: { destinationId: String(d.id), state } },
      el(
        "div",
        { class: "restream-what" },
        el("p", { class: "restream-name", text: d.name }),
        el("p", { class: "track-sub", text: d.stream_key ? `${d.url} · key ${d.stream_key}` : d.url }),
        el("p", { class: "restream-state", dataset: { restreamState: "" }, text: describe(push, live) }),
        el("label", { class: "check" }, enabled, el("span", { text: "Start whenever I go live" })),
      ),
      el(
        "div",
        { class: "row-actions" },
        live && !pushing ? button("Start", () => act("POST", `/api/v1/shows/${showId}/restream/${d.id}/start`), "primary") : null,
        live && pushing ? button("Stop", () => act("POST", `/api/v1/shows/${showId}/restream/${d.id}/stop`)) : null,
        button("Remove", () => {
          if (window.confirm(`Remove ${d.name}? Its stream key is forgotten.`)) act("DELETE", `/api/v1/restream/destinations/${d.id}`);
        }, "danger"),
      ),
    );
  }

  function render(data) {
    const items = data.destinations;
    list.replaceChildren(...items.map((item) => row(item, data.live)));
    const live = items.filter((i) => i.push && i.push.state === "live").length;
    if (!items.length) summary.textContent = "No destinations yet.";
    else if (data.live) summary.textContent = `${live} of ${items.length} live`;
    else summary.textContent = `${items.length} ${items.length === 1 ? "destination" : "destinations"}`;
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    if (reportInvalid(form, error)) return;
    const body = {
      name: form.elements.name.value,
      url: form.elements.url.value.trim(),
      stream_key: form.elements.stream_key.value.trim(),
      enabled: form.elements.enabled.checked,
    };
    if (await act("POST", "/api/v1/restream/destinations", body)) {
      form.reset();
      form.closest("details").open = false;
    }
  });

  refresh();
  setInterval(refresh, REFRESH_MS);
  document.addEventListener("visibilitychange", refresh);
}
