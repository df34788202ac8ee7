// The room's chat: messages as they come, sending with acknowledgements, reactions, and for
// the crew the moderation tools (delete, pin, time out, remove, ban, slow mode, held messages).
// Every piece of user text goes in as textContent: nothing anyone types becomes markup.

import { api, el, say, sentence } from "./common.js";

const MAX_SHOWN = 200;
const BURST_MS = 2500;
const REASONS = [
  ["spam", "Spam"],
  ["harassment", "Harassment"],
  ["hate", "Hate"],
  ["sexual", "Sexual content"],
  ["copyright", "Copyright"],
  ["other", "Something else"],
];

function clock(iso) {
  const at = new Date(iso);
  return Number.isNaN(at.getTime()) ? "" : at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

/**
 * Brings the chat panel to life. `room` is the page's joinRoom() (for sending); feed it the
 * room's events with `onEvent(event)` and its welcomes with `onWelcome(welcome)`.
 */
export function createChat(panel, { showId, room = null }) {
  const q = (selector) => panel.querySelector(selector);
  const base = `/api/v1/shows/${showId}`;
  const userId = Number(panel.dataset.userId) || null;
  const crew = panel.dataset.crew === "yes";
  const log = q("[data-chat-log]");
  const empty = q("[data-chat-empty]");
  const form = q("[data-chat-form]");
  const input = q("[data-chat-text]");
  const errorLine = q("[data-chat-error]");
  const notice = q("[data-chat-notice]");
  const modeLine = q("[data-chat-mode]");
  const pinned = q("[data-chat-pinned]");
  const heldList = q("[data-chat-held]");
  const heldCount = q("[data-chat-held-count]");
  const slowSelect = q("[data-chat-slow]");
  const reactionButtons = q("[data-reaction-buttons]");
  const burstLine = q("[data-reaction-burst]");

  const shown = new Map(); // message id -> <li>
  const held = new Map();
  let pending = null; // { ref, text } of the message being sent
  let refs = 0;
  let burstTimer = null;
  let slowMode = 0;

  function author(message) {
    return el("a", { class: "chat-author", href: `/users/${encodeURIComponent(message.user.username)}` }, message.user.display_name);
  }

  function actionButton(label, onClick, extra = {}) {
    return el("button", { type: "button", class: "link-button", onclick: onClick, ...extra }, label);
  }

  function moderationMenu(message) {
    const who = message.user.display_name;
    const items = [];
    if (crew) {
      items.push(
        actionButton("Delete", () => remove(message)),
        actionButton("Pin", () => pin(message.id)),
      );
      if (message.user.id !== userId) {
        items.push(
          actionButton("Time out 5 min", () => sanction(message, "timeout", 5)),
          actionButton("Remove from room", () => sanction(message, "removed", null)),
          actionButton("Ban from my shows", () => sanction(message, "banned", null)),
        );
      }
    } else if (message.user.id === userId) {
      items.push(actionButton("Delete", () => remove(message)));
    }
    if (userId && message.user.id !== userId) items.push(reportForm(message));
    if (!items.length) return null;
    return el(
      "details",
      { class: "msg-actions" },
      el("summary", { "aria-label": `Actions for the message from ${who}`, title: "Actions" }, "⋯"),
      el("div", { class: "msg-actions-menu" }, ...items),
    );
  }

  function reportForm(message) {
    const select = el("select", { "aria-label": "Why report this message?" }, ...REASONS.map(([value, label]) => el("option", { value }, label)));
    const status = el("span", { class: "help", "aria-live": "polite" });
    const send = async () => {
      const result = await api("POST", "/api/v1/reports", { target: "message", target_id: message.id, reason: select.value });
      say(status, result.ok ? "Reported. Thank you: moderators will look at it." : result.message);
    };
    return el("div", { class: "report-form" }, el("span", {}, "Report: "), select, actionButton("Send report", send), status);
  }

  function messageItem(message) {
    const li = el(
      "li",
      { class: "chat-message", dataset: { messageId: String(message.id) } },
      el("p", { class: "chat-line" }, author(message), " ", el("span", { class: "chat-text" }, message.text)),
      el("time", { class: "chat-time", datetime: message.created_at }, clock(message.created_at)),
      moderationMenu(message),
    );
    if (message.user.id === userId) li.classList.add("mine");
    return li;
  }

  function heldItem(message) {
    const li = messageItem(message);
    li.querySelector(".chat-line").append(" ", el("span", { class: "badge" }, message.held === "link" ? "link" : "blocked word"));
    li.append(
      el(
        "div",
        { class: "button-row" },
        el("button", { type: "button", onclick: () => release(message) }, "Let through"),
        el("button", { type: "button", class: "danger", onclick: () => remove(message) }, "Delete"),
      ),
    );
    return li;
  }

  function updateEmpty() {
    empty.hidden = shown.size > 0;
  }

  function add(message) {
    if (shown.has(message.id)) return;
    const li = messageItem(message);
    shown.set(message.id, li);
    const atBottom = log.scrollHeight - log.scrollTop - log.clientHeight < 40;
    log.append(li);
    while (shown.size > MAX_SHOWN) {
      const [oldest, node] = shown.entries().next().value;
      node.remove();
      shown.delete(oldest);
    }
    if (atBottom || message.user.id === userId) log.scrollTop = log.scrollHeight;
    updateEmpty();
  }

  function drop(id) {
    shown.get(id)?.remove();
    shown.delete(id);
    dropHeld(id);
    updateEmpty();
  }

  function addHeld(message) {
    if (!heldList || held.has(message.id)) return;
    const li = heldItem(message);
    held.set(message.id, li);
    heldList.append(li);
    heldCount.textContent = String(held.size);
  }

  function dropHeld(id) {
    if (!heldList || !held.has(id)) return;
    held.get(id).remove();
    held.delete(id);
    heldCount.textContent = String(held.size);
  }

  function applySettings(settings) {
    slowMode = settings.slow_mode_s ?? 0;
    if (slowSelect) slowSelect.value = String(slowMode);
    modeLine.textContent = slowMode ? `Slow mode: one message every ${slowMode} s` : "";
    const message = settings.pinned;
    pinned.hidden = !message;
    if (message) {
      q("[data-chat-pinned-author]").textContent = `${message.user.display_name}:`;
      q("[data-chat-pinned-text]").textContent = message.text;
    }
  }

  function showBurst(counts) {
    burstLine.textContent = Object.entries(counts)
      .map(([emoji, n]) => `${emoji} ${n}`)
      .join("  ");
    burstLine.classList.remove("pop");
    void burstLine.offsetWidth; // restart the animation
    burstLine.classList.add("pop");
    clearTimeout(burstTimer);
    burstTimer = setTimeout(() => {
      burstLine.textContent = "";
    }, BURST_MS);
  }

  function renderReactions(emoji) {
    if (!reactionButtons || reactionButtons.childElementCount) return;
    for (const e of emoji) {
      reactionButtons.append(
        el("button", { type: "button", class: "reaction", "aria-label": `React ${e}`, disabled: !userId, onclick: () => react(e) }, e),
      );
    }
  }

  // --- actions -----------------------------------------------------------------------------

  async function sendMessage(event) {
    event.preventDefault();
    const text = input.value.trim();
    if (!text || pending) return;
    say(errorLine, "");
    refs += 1;
    pending = { ref: `m${refs}`, text };
    if (room?.send({ action: "chat.send", text, ref: pending.ref })) return;
    // No socket right now: the REST API stores it just the same.
    const result = await api("POST", `${base}/chat`, { text });
    finishSend(result.ok ? { held: result.data.held ?? null } : { message: result.message });
    if (result.ok && !result.data.held) add(result.data);
  }

  function finishSend({ held: heldReason = null, message = null }) {
    pending = null;
    if (message) {
      say(errorLine, message);
      return;
    }
    input.value = "";
    say(errorLine, "");
    say(notice, heldReason ? "Your message waits for the host to review it." : "");
  }

  async function react(emoji) {
    if (room?.send({ action: "react", emoji })) return;
    const result = await api("POST", `${base}/reactions`, { emoji });
    if (!result.ok) say(errorLine, result.message);
  }

  async function remove(message) {
    const result = await api("DELETE", `${base}/chat/${message.id}`);
    if (result.ok) drop(message.id);
    else say(errorLine, result.message);
  }

  async function release(message) {
    const result = await api("POST", `${base}/chat/${message.id}/release`);
    if (result.ok) {
      dropHeld(message.id);
      add(result.data);
    } else say(errorLine, result.message);
  }

  async function pin(messageId) {
    const result = await api("PUT", `${base}/chat/pin`, { message_id: messageId });
    if (result.ok) applySettings(result.data);
    else say(errorLine, result.message);
  }

  async function sanction(message, kind, minutes) {
    const result = await api("POST", `${base}/sanctions`, { user_id: message.user.id, kind, minutes, reason: "" });
    const what = { timeout: "timed out for 5 minutes", removed: "removed from the room", banned: "banned from your shows" }[kind];
    say(notice, result.ok ? `${message.user.display_name} is ${what}.` : "");
    if (!result.ok) say(errorLine, result.message);
  }

  async function setSlowMode() {
    const result = await api("PATCH", `${base}/chat/settings`, { slow_mode_s: Number(slowSelect.value) });
    if (result.ok) applySettings(result.data);
    else say(errorLine, result.message);
  }

  form?.addEventListener("submit", sendMessage);
  slowSelect?.addEventListener("change", setSlowMode);
  q("[data-chat-unpin]")?.addEventListener("click", () => pin(null));

  function onWelcome(welcome) {
    // Each connect starts from what the server has; events that follow are merged by id.
    for (const node of shown.values()) node.remove();
    shown.clear();
    for (const message of welcome.chat ?? []) add(message);
    for (const message of welcome.chat_held ?? []) addHeld(message);
    if (welcome.chat_settings) applySettings(welcome.chat_settings);
    renderReactions(welcome.reactions ?? []);
    updateEmpty();
  }

  function onEvent(event) {
    switch (event.type) {
      case "chat.message":
        dropHeld(event.message.id);
        add(event.message);
        break;
      case "chat.held":
        addHeld(event.message);
        break;
      case "chat.deleted":
        drop(event.id);
        break;
      case "chat.settings":
        applySettings(event);
        break;
      case "reactions":
        showBurst(event.counts);
        break;
      case "chat.ack":
        if (pending && event.ref === pending.ref) finishSend({ held: event.held });
        break;
      case "error":
        if (pending && event.ref === pending.ref) finishSend({ message: sentence(event.message) });
        else if (event.code === "rate_limited") say(errorLine, sentence(event.message));
        break;
      case "chat.sanction":
        say(notice, event.lifted ? "The host lifted your restriction." : sanctionText(event));
        break;
      case "moderation.warning":
        say(notice, `A moderator warned you: ${event.reason}`);
        break;
      default:
        break;
    }
  }

  function sanctionText(event) {
    const until = event.until ? ` until ${new Date(event.until).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}` : "";
    if (event.kind === "timeout") return `You are timed out of this chat${until}.`;
    if (event.kind === "removed") return "You were removed from this room.";
    return "You are banned from this host's shows.";
  }

  /** An ended show has no room to join: its chat is read once, as it was left. */
  async function loadHistory() {
    const result = await api("GET", `${base}/chat`);
    if (result.ok) onWelcome({ chat: result.data.messages });
  }

  return {
    onEvent,
    onWelcome,
    loadHistory,
    setRoom(value) {
      room = value;
    },
    onRemoved(reason) {
      say(notice, sentence(reason || "You were removed from this room"));
      if (form) form.hidden = true;
    },
  };
}
