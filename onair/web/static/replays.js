// An ended show's replays: chapters seek the player; the host publishes and unpublishes, and a
// replay still processing is watched until it is ready (then the page reloads to show it).

import { api, say } from "./common.js";

const box = document.querySelector("[data-replays]");

function watch(replayId) {
  const tick = async () => {
    const result = await api("GET", `/api/v1/replays/${replayId}`);
    if (result.ok && result.data.state !== "processing") {
      window.location.reload();
      return;
    }
    setTimeout(tick, 1500);
  };
  setTimeout(tick, 1500);
}

if (box) {
  const showId = box.dataset.showId;
  const error = box.querySelector("[data-publish-error]");

  for (const button of box.querySelectorAll("[data-seek]")) {
    button.addEventListener("click", () => {
      const audio = button.closest("[data-replay]").querySelector("[data-replay-audio]");
      audio.currentTime = Number(button.dataset.seek);
      audio.play().catch(() => {});
    });
  }

  for (const button of box.querySelectorAll("[data-publish]")) {
    button.addEventListener("click", async () => {
      say(error, "");
      button.disabled = true;
      const result = await api("POST", `/api/v1/shows/${showId}/replays`, { kind: button.dataset.publish });
      if (!result.ok) {
        button.disabled = false;
        say(error, result.message);
        return;
      }
      window.location.reload();
    });
  }

  for (const button of box.querySelectorAll("[data-unpublish]")) {
    const problem = button.closest("[data-replay]").querySelector("[data-replay-error]");
    button.addEventListener("click", async () => {
      say(problem, "");
      button.disabled = true;
      const result = await api("DELETE", `/api/v1/replays/${button.dataset.unpublish}`);
      if (!result.ok) {
        button.disabled = false;
        say(problem, result.message);
        return;
      }
      window.location.reload();
    });
  }

  for (const replay of box.querySelectorAll('[data-replay][data-state="processing"]')) {
    watch(replay.dataset.replayId);
  }
}
