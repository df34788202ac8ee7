// The notifications page: mark read, unfollow, and the private calendar link.

import { api, say } from "./common.js";

const page = document.querySelector("[data-notifications-page]");
const markAll = page.querySelector("[data-mark-all-read]");
const unreadLine = page.querySelector("[data-unread-line]");

function showUnread(n) {
  unreadLine.textContent = n ? `${n} unread` : "All caught up.";
  markAll.disabled = n === 0;
}

document.addEventListener("onair:unread", (event) => showUnread(event.detail.unread));

markAll.addEventListener("click", async () => {
  markAll.disabled = true;
  const result = await api("POST", "/api/v1/notifications/read", {});
  if (!result.ok) {
    markAll.disabled = false;
    say(unreadLine, result.message);
    return;
  }
  for (const item of page.querySelectorAll(".notification.unread")) {
    item.classList.remove("unread");
    item.querySelector(".visually-hidden")?.remove();
  }
  showUnread(result.data.unread);
  markAll.focus();
});

for (const link of page.querySelectorAll("[data-notification-link]")) {
  link.addEventListener("click", () => {
    const item = link.closest("[data-notification-id]");
    if (!item.classList.contains("unread")) return;
    // keepalive: the request outlives the page it was sent from.
    fetch("/api/v1/notifications/read", {
      method: "POST",
      headers: { "Content-Type": "application/json", Accept: "application/json" },
      credentials: "same-origin",
      keepalive: true,
      body: JSON.stringify({ ids: [Number(item.dataset.notificationId)] }),
    });
  });
}

for (const button of page.querySelectorAll("[data-unfollow]")) {
  button.addEventListener("click", async () => {
    const item = button.closest("[data-followed]");
    button.disabled = true;
    const result = await api("DELETE", `/api/v1/users/${item.dataset.hostId}/follow`);
    if (!result.ok) {
      button.disabled = false;
      button.textContent = `Unfollow (${result.message})`;
      return;
    }
    const list = item.parentElement;
    const next = item.nextElementSibling?.querySelector("button") ?? item.previousElementSibling?.querySelector("button");
    item.remove();
    if (next) next.focus();
    else if (!list.children.length) list.replaceWith(Object.assign(document.createElement("p"), { className: "empty", textContent: "You follow nobody now." }));
  });
}

const calendar = page.querySelector("[data-calendar]");
const makeLink = calendar.querySelector("[data-calendar-new]");
makeLink.addEventListener("click", async () => {
  const error = calendar.querySelector("[data-calendar-error]");
  const done = calendar.querySelector("[data-calendar-done]");
  say(error, "");
  say(done, "");
  makeLink.disabled = true;
  const result = await api("POST", "/api/v1/calendar/token");
  makeLink.disabled = false;
  if (!result.ok) {
    say(error, result.message);
    return;
  }
  const input = calendar.querySelector("[data-calendar-url]");
  input.value = result.data.url;
  calendar.querySelector("[data-calendar-url-line]").hidden = false;
  makeLink.textContent = "Make a new link";
  say(done, "Your new link is ready; any older one no longer works.");
  input.focus();
  input.select();
});
