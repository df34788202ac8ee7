// The follow button by a host's name (host page, show page): follows or unfollows through the API.

import { api, say } from "./common.js";

function followers(n) {
  return `${n} follower${n === 1 ? "" : "s"}`;
}

for (const box of document.querySelectorAll("[data-follow]")) {
  const button = box.querySelector("[data-follow-button]");
  const count = box.querySelector("[data-follower-count]");
  const error = box.querySelector("[data-follow-error]");
  if (!button || button.tagName !== "BUTTON") continue;
  button.addEventListener("click", async () => {
    const following = button.getAttribute("aria-pressed") === "true";
    say(error, "");
    button.disabled = true;
    const result = await api(following ? "DELETE" : "PUT", `/api/v1/users/${box.dataset.hostId}/follow`);
    button.disabled = false;
    button.focus();
    if (!result.ok) {
      say(error, result.message);
      return;
    }
    const now = result.data.following;
    button.setAttribute("aria-pressed", now ? "true" : "false");
    button.textContent = now ? "Following" : "Follow";
    count.textContent = followers(result.data.followers);
    say(error, "");
  });
}
