// The show page's "Not available where you are": a listener whose account names a country
// outside the service's territories says where they really are, and the page reloads.
import { api, say } from "./common.js";

const form = document.querySelector("[data-territory-form]");
if (form) {
  const error = document.querySelector("[data-territory-error]");
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    say(error, "");
    const result = await api("PUT", "/api/v1/territory", { territory: form.elements.territory.value });
    if (!result.ok) {
      say(error, result.message);
      return;
    }
    window.location.reload();
  });
}
