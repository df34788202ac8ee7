// The console's Call-ins and Co-hosts panels: the call-in queue as the crew sees it (name, topic,
// how long each has waited), with screen / on air / back to queue / drop, mute and level for
// each caller; and the show's co-hosts. The room's `stage` events say when to look again.
import { api, el, mmss, say } from "./common.js";

const TICK_MS = 1000;
const REFRESH_MS = 10000;

const STATE_TEXT = {
  requested: "Waiting",
  screening: "Screening (off air)",
  on_air: "On air",
};

/** Drives the Call-ins panel; `start()` when the show is live, `stop()` when it ends. */
export function createCallIns(panel, { showId }) {
  const base = `/api/v1/shows/${showId}`;
  const list = panel.querySelector("[data-callin-list]");
  const summary = panel.querySelector("[data-callins-summary]");
  const error = panel.querySelector("[data-callins-error]");
  let timers = [];
  let stage = null;
  let loadedAt = 0;
  let version = -1;
  let inflight = false;

  async function refresh() {
    if (inflight) return;
    inflight = true;
    try {
      const result = await api("GET", `${base}/stage`);
      if (!result.ok) {
        if (result.data?.error?.code !== "not_live") say(error, result.message);
        return;
      }
      stage = result.data;
      loadedAt = Date.now();
      render();
    } finally {
      inflight = false;
    }
  }

  function waited(caller) {
    return caller.waited_s + Math.round((Date.now() - loadedAt) / 1000);
  }

  async function act(caller, action, button) {
    say(error, "");
    button.disabled = true;
    const path = `${base}/stage/callers/${caller.user_id}`;
    const result = action.body ? await api("PATCH", path, action.body) : await api("POST", `${path}/${action.path}`);
    button.disabled = false;
    if (!result.ok) {
      say(error, result.message);
      return;
    }
    stage = result.data;
    loadedAt = Date.now();
    render();
    const row = list.querySelector(`[data-caller-id="${caller.user_id}"]`);
    (row?.querySelector("button:not([disabled])") ?? list.closest("section").querySelector("h2"))?.focus();
  }

  function actions(caller) {
    const button = (label, action, cls) => {
      const node = el("button", { type: "button", class: cls, "aria-label": `${label}: ${caller.name}` }, label);
      node.addEventListener("click", () => act(caller, action, node));
      return node;
    };
    const buttons = [];
    if (caller.state === "requested") {
      buttons.push(button("Screen", { path: "screen" }, "primary"));
    } else if (caller.state === "screening") {
      buttons.push(button("Put on air", { path: "air" }, "primary"), button("Back to queue", { path: "queue" }));
    } else if (caller.state === "on_air") {
      buttons.push(button(caller.host_muted ? "Unmute" : "Mute", { body: { muted: !caller.host_muted } }), button("Back to queue", { path: "queue" }));
    }
    buttons.push(button("Drop", { path: "drop" }, "danger"));
    return el("div", { class: "row-actions" }, ...buttons);
  }

  function level(caller) {
    if (caller.state === "requested") return null;
    const id = `level-${caller.user_id}`;
    const output = el("output", { for: id, text: `${caller.level_db} dB` });
    const input = el("input", { id, type: "range", min: "-30", max: "12", step: "1", value: String(caller.level_db) });
    let timer = null;
    input.addEventListener("input", () => {
      output.textContent = `${input.value} dB`;
      clearTimeout(timer);
      timer = setTimeout(async () => {
        const result = await api("PATCH", `${base}/stage/callers/${caller.user_id}`, { level_db: Number(input.value) });
        if (!result.ok) say(error, result.message);
      }, 150);
    });
    return el("div", { class: "field caller-level" }, el("label", { for: id }, "Level ", output), input);
  }

  function row(caller) {
    const state = STATE_TEXT[caller.state] ?? caller.state;
    const line = caller.state === "requested" ? "" : caller.on_line ? " · connected" : " · connecting…";
    return el(
      "li",
      { class: `callin callin-${caller.state}`, dataset: { callerId: String(caller.user_id), state: caller.state } },
      el(
        "div",
        { class: "callin-who" },
        el("strong", { text: caller.name }),
        " ",
        el("span", { class: "meta", text: `@${caller.username}` }),
        el("p", { class: "callin-topic", text: caller.topic || "No topic given." }),
        el("p", { class: "meta" }, el("span", { class: `chip state-${caller.state}`, text: state }), caller.state === "requested" ? " waiting " : " called in ", el("span", { dataset: { waited: "" }, text: mmss(waited(caller)) }), caller.state === "requested" ? "" : " ago", line, caller.host_muted ? " · muted by you" : caller.self_muted ? " · muted themselves" : ""),
      ),
      level(caller),
      actions(caller),
    );
  }

  function render() {
    if (!stage) return;
    const queue = stage.queue ?? [];
    const waiting = queue.filter((c) => c.state === "requested").length;
    const onAir = queue.filter((c) => c.state === "on_air").length;
    summary.textContent = queue.length
      ? `${waiting} waiting · ${onAir} on air · ${stage.voices_on_air} of ${stage.max_on_air} voices`
      : "No one is calling in.";
    panel.dataset.callers = String(queue.length);
    const focused = document.activeElement && list.contains(document.activeElement) ? document.activeElement : null;
    const keep = focused ? { id: focused.closest("[data-caller-id]")?.dataset.callerId, label: focused.getAttribute("aria-label") } : null;
    list.replaceChildren(...queue.map(row));
    if (keep) {
      const again = [...list.querySelectorAll(`[data-caller-id="${keep.id}"] button`)].find((b) => b.getAttribute("aria-label") === keep.label);
      again?.focus();
    }
  }

  function tick() {
    if (!stage) return;
    for (const item of list.querySelectorAll("[data-caller-id]")) {
      const caller = stage.queue.find((c) => String(c.user_id) === item.dataset.callerId);
      const shown = item.querySelector("[data-waited]");
      if (caller && shown) shown.textContent = mmss(waited(caller));
    }
  }

  return {
    start() {
      panel.hidden = false;
      refresh();
      timers = [setInterval(tick, TICK_MS), setInterval(refresh, REFRESH_MS)];
    },
    stop() {
      panel.hidden = true;
      for (const timer of timers) clearInterval(timer);
      timers = [];
    },
    onStage(event) {
      if (event.version === version) return;
      version = event.version;
      refresh();
    },
  };
}

/** The Co-hosts panel: the list (with invitations for the host) and the invite form. */
export function createCoHosts(panel, { showId, isHost }) {
  const base = `/api/v1/shows/${showId}`;
  const list = panel.querySelector("[data-cohost-list]");
  const form = panel.querySelector("[data-cohost-form]");
  const error = panel.querySelector("[data-cohost-error]");

  function render(cohosts) {
    if (!cohosts.length) {
      list.replaceChildren(el("li", { class: "empty", text: "No co-hosts yet." }));
      return;
    }
    list.replaceChildren(
      ...cohosts.map((c) => {
        const remove = isHost
          ? el("button", { type: "button", class: "icon remove", "aria-label": `Remove ${c.name}`, onclick: () => removeCoHost(c) }, "✕")
          : null;
        return el("li", { dataset: { cohost: c.username } }, el("span", { text: `${c.name} (@${c.username})` }), " ", el("span", { class: "meta", text: c.accepted ? "co-host" : "invited" }), " ", remove);
      }),
    );
  }

  async function load() {
    const result = await api("GET", `${base}/cohosts`);
    if (result.ok) render(result.data);
  }

  async function removeCoHost(cohost) {
    say(error, "");
    const result = await api("DELETE", `${base}/cohosts/${cohost.user_id}`);
    if (!result.ok) {
      say(error, result.message);
      return;
    }
    render(result.data);
    form?.querySelector("input")?.focus();
  }

  form?.addEventListener("submit", async (event) => {
    event.preventDefault();
    say(error, "");
    const input = form.querySelector("input");
    const username = input.value.trim().replace(/^@/, "");
    if (!username) {
      say(error, "Type the username of the person to invite.");
      input.focus();
      return;
    }
    const result = await api("POST", `${base}/cohosts`, { username });
    if (!result.ok) {
      say(error, result.message);
      input.focus();
      return;
    }
    input.value = "";
    render(result.data);
  });

  load();
  return { load };
}
