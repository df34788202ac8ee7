// The show page's "Share / embed": copy the link or the player's iframe with one press.
const share = document.querySelector("[data-share]");

async function copy(field, said) {
  field.select();
  try {
    await navigator.clipboard.writeText(field.value);
    said.textContent = "Copied.";
  } catch {
    // No clipboard (an insecure origin, or the permission refused): it is selected to copy.
    said.textContent = "Selected: press Ctrl+C (⌘C) to copy.";
  }
}

if (share) {
  const said = share.querySelector("[data-share-said]");
  for (const button of share.querySelectorAll("[data-copy]")) {
    const field = share.querySelector(`#${button.dataset.copy}`);
    button.addEventListener("click", () => copy(field, said));
  }
  for (const field of share.querySelectorAll("[data-share-field]")) {
    field.addEventListener("focus", () => field.select());
  }
}
