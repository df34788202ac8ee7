// The bell in the page header: the unread count, kept live by the user's notification stream
// (server-sent events), and a short notice when something happens while the page is open.

import { el } from "./common.js";

const bell = document.querySelector("[data-bell]");
const count = bell?.querySelector("[data-bell-count]");
const seen = new Set();
let notices;

function setUnread(n) {
  if (!bell) return;
  count.hidden = n <= 0;
  count.textContent = n > 99 ? "99+" : String(n);
  bell.setAttribute("aria-label", n > 0 ? `Notifications, ${n} unread` : "Notifications");
  bell.dataset.unread = String(n);
  document.dispatchEvent(new CustomEvent("onair:unread", { detail: { unread: n } }));
}

function describe(n) {
  const who = n.host.display_name;
  return n.kind === "live" ? `${who} is live: ${n.show.title}` : `${who} scheduled ${n.show.title}`;
}

/** The region the notices go in, in the page from the start so screen readers announce them. */
function noticeRegion() {
  notices = el("div", { class: "notices", role: "status", "aria-live": "polite", dataset: { notices: "" } });
  document.body.append(notices);
}

function notice(n) {
  const close = el("button", { type: "button", class: "link-button", "aria-label": "Dismiss", text: "×" });
  const item = el(
    "div",
    { class: `notice kind-${n.kind}`, dataset: { notice: String(n.id) } },
    el("a", { href: n.show.url, text: describe(n) }),
    close,
  );
  close.addEventListener("click", () => item.remove());
  notices.append(item);
  setTimeout(() => item.remove(), 30_000);
}

function connect() {
  const source = new EventSource("/api/v1/notifications/stream");
  source.addEventListener("unread", (event) => setUnread(JSON.parse(event.data).unread));
  source.addEventListener("notification", (event) => {
    const n = JSON.parse(event.data);
    if (seen.has(n.id)) return;
    seen.add(n.id);
    if (typeof n.unread === "number") setUnread(n.unread);
    notice(n);
    document.dispatchEvent(new CustomEvent("onair:notification", { detail: n }));
  });
  // Suspended, banned or signed out: the stream is over for this page.
  source.addEventListener("closed", (event) => {
    const reason = JSON.parse(event.data).reason;
    if (reason === "suspended" || reason === "banned") source.close();
  });
  return source;
}

if (bell) {
  noticeRegion();
  bell.dataset.stream = "connecting";
  const source = connect();
  source.addEventListener("open", () => (bell.dataset.stream = "open"));
  window.addEventListener("pagehide", () => source.close());
}
