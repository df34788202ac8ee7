// Sign-up and log-in forms: post JSON to the accounts API, show its errors inline, then go on.
import { api, markField, reportInvalid, say } from "./common.js";

/** Only same-site paths, as the server also insists. */
function safeNext(raw) {
  if (!raw || !raw.startsWith("/") || raw.startsWith("//") || raw.includes("\\")) return "/";
  return raw;
}

const form = document.getElementById("auth-form");
if (form) {
  const region = form.querySelector("[data-form-error]");
  const submit = form.querySelector('button[type="submit"]');
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    say(region, "");
    if (reportInvalid(form, region)) return;
    const body = {};
    for (const [key, value] of new FormData(form)) {
      const text = String(value);
      if (key === "display_name" && !text.trim()) continue;
      body[key] = key === "password" ? text : text.trim();
    }
    submit.disabled = true;
    const result = await api("POST", form.dataset.endpoint, body);
    if (result.ok) {
      window.location.assign(safeNext(form.dataset.next));
      return;
    }
    submit.disabled = false;
    say(region, result.message);
    markField(form, result);
  });
}
