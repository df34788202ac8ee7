// "Report this show / this account": sends the report to the moderators' queue.

import { api, say } from "./common.js";

for (const box of document.querySelectorAll("[data-report]")) {
  const form = box.querySelector("[data-report-form]");
  const error = box.querySelector("[data-report-error]");
  const done = box.querySelector("[data-report-done]");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    say(error, "");
    say(done, "");
    const button = form.querySelector("button[type=submit]");
    button.disabled = true;
    const result = await api("POST", "/api/v1/reports", {
      target: box.dataset.target,
      target_id: Number(box.dataset.targetId),
      reason: form.elements.reason.value,
      details: form.elements.details.value.trim(),
    });
    button.disabled = false;
    if (result.ok) {
      form.elements.details.value = "";
      say(done, "Thank you. The moderators will look at it.");
    } else {
      say(error, result.message);
    }
  });
}
