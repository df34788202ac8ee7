// Creating a show: the API call, then the optional cover upload, then on to the console.
import { api, localInputToIso, isoToLocalInput, markField, reportInvalid, say, splitHashtags } from "./common.js";

const form = document.getElementById("show-form");
if (form) {
  const region = form.querySelector("[data-form-error]");
  const submit = form.querySelector('button[type="submit"]');
  const start = form.elements.scheduled_start;
  const cover = form.elements.cover;
  const preview = form.querySelector("[data-cover-preview]");
  start.min = isoToLocalInput(new Date().toISOString());

  cover.addEventListener("change", () => {
    const file = cover.files[0];
    if (preview.src) URL.revokeObjectURL(preview.src);
    preview.hidden = !file;
    if (file) preview.src = URL.createObjectURL(file);
  });

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    say(region, "");
    if (reportInvalid(form, region)) return;
    const body = {
      title: form.elements.title.value.trim(),
      description: form.elements.description.value,
      hashtags: splitHashtags(form.elements.hashtags.value),
      clean: form.elements.clean.checked,
    };
    const genre = form.elements.genre.value.trim();
    if (genre) body.genre = genre;
    const when = localInputToIso(start.value);
    if (when) body.scheduled_start = when;

    submit.disabled = true;
    const created = await api("POST", "/api/v1/shows", body);
    if (!created.ok) {
      submit.disabled = false;
      say(region, created.message);
      markField(form, created);
      return;
    }
    const consoleUrl = `/shows/${created.data.id}/console`;
    const file = cover.files[0];
    if (file) {
      const upload = new FormData();
      upload.append("file", file);
      const stored = await api("PUT", `/api/v1/shows/${created.data.id}/cover`, upload);
      if (!stored.ok) {
        // The show exists now; say so rather than let a second submit create another.
        say(region, `The show was created, but the cover was not saved: ${stored.message} Opening the console, where you can try again…`);
        setTimeout(() => window.location.assign(consoleUrl), 2500);
        return;
      }
    }
    window.location.assign(consoleUrl);
  });
}
