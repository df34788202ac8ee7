// The embeddable player: the show page's listener (listen.js) on a compact card, what is
// playing from the show's room, and the Listen button waking up when the show goes live.
import { statusBadge } from "./common.js";
import { createListener } from "./listen.js";
import { joinRoom } from "./room.js";

const card = document.querySelector("[data-embed]");
const showId = card.dataset.showId;
const panel = card.querySelector("[data-listen]");
const listener = createListener(panel, { showId });
const now = card.querySelector("[data-embed-now]");

function nowPlaying(track) {
  if (!track) return;
  const artists = (track.artists ?? []).join(", ");
  now.textContent = `Now playing: ${track.title}${artists ? ` · ${artists}` : ""}`;
  card.dataset.heard = track.title;
}

function setStatus(value) {
  card.dataset.status = value;
  card.querySelector("[data-status-badge]")?.replaceWith(statusBadge(value));
}

function onEvent(event, { state }) {
  if (event.type === "now_playing") {
    // Titles change when the studio plays the song: the same moment the page shows it.
    const wait = Math.max(0, event.at * 1000 - Date.now());
    setTimeout(() => nowPlaying(event.track), wait);
  } else if (event.type === "show.live" && !state) {
    setStatus("live");
    listener.button.disabled = false;
    if (!listener.listening) listener.setState("Live now. No account needed.");
  } else if (event.type === "show.ended" && !state) {
    setStatus("ended");
    listener.stop("The show has ended.", { tell: false });
    listener.button.disabled = true;
    now.textContent = "This show has ended. Thanks for listening!";
    room?.close();
  }
}

const room = card.dataset.status === "ended" ? null : joinRoom(showId, { onEvent });
card.dataset.ready = "yes"; // wired: the button listens (tests wait for this)
