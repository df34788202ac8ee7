// The listener's show page: listening (listen.js: WebRTC, else the MP3 stream), what is playing
// as it is heard (from the room), calling in and the show's own news.
import { createCallIn } from "./callin.js";
import { createChat } from "./chat.js";
import { api, el, localizeTimes, mmss, say, statusBadge } from "./common.js";
import { createListener } from "./listen.js";
import { joinRoom } from "./room.js";

const TICK_MS = 500;

const page = document.querySelector("[data-show-page]");
const showId = page.dataset.showId;
const panel = page.querySelector("[data-listen]");
const q = (selector) => page.querySelector(selector);

// --- now playing, shown when it is heard ----------------------------------------------------

const npTitle = q("[data-np-title]");
const npSub = q("[data-np-sub]");
const npEmpty = q("[data-np-empty]");
const npProgress = q("[data-np-progress]");
let heard = null; // { track, at } with `at` the unix time the song started being heard
let pendingHeard = null;

function showTrack(track, at) {
  heard = track ? { track, at } : null;
  npTitle.hidden = npSub.hidden = !track;
  npEmpty.hidden = Boolean(track);
  npProgress.hidden = !track?.duration_s;
  if (track) {
    npTitle.textContent = track.title;
    npSub.textContent = (track.artists ?? []).join(", ");
  }
  page.dataset.heard = track?.title ?? "";
  tick();
}

function tick() {
  if (!heard?.track.duration_s) return;
  const total = heard.track.duration_s;
  const at = Math.min(total, Math.max(0, Date.now() / 1000 - heard.at));
  q("[data-np-position]").textContent = `${mmss(at)} / ${mmss(total)}`;
  q("[data-np-fill]").style.transform = `scaleX(${(at / total).toFixed(4)})`;
}

function nowPlaying(event) {
  clearTimeout(pendingHeard);
  // `at` is when the studio plays the song; over WebRTC it reaches the ear about 0.3 s later,
  // so changing the title at `at` (by this device's clock) matches what is heard.
  const wait = event.at * 1000 - Date.now();
  const show = () => showTrack(event.track, event.at);
  if (wait > 0) pendingHeard = setTimeout(show, wait);
  else show();
}

// --- listening ------------------------------------------------------------------------------

const listener = panel ? createListener(panel, { showId }) : null;
const button = listener?.button;
const setState = (text) => listener?.setState(text);
const stop = (message, options) => listener?.stop(message, options);
const listen = () => listener?.listen();

// --- the show's own news --------------------------------------------------------------------

/** The badge and the "On air since" / "Ended" line, from the event's server time. */
function setStatus(value, ts) {
  page.dataset.status = value;
  q("[data-status-badge]").replaceWith(statusBadge(value));
  const when = q("[data-when]");
  const iso = new Date(ts * 1000).toISOString();
  when.replaceChildren(value === "live" ? "On air since " : "Ended ", el("time", { datetime: iso, "data-local": true }, iso));
  localizeTimes(when);
}

// --- calling in, and co-host invitations ----------------------------------------------------

const callPanel = page.querySelector("[data-call-in]");
const userId = Number(page.dataset.userId) || null;
let callIn = null;
let resumeListening = false;
if (callPanel?.querySelector("[data-call-form]")) {
  callIn = createCallIn(callPanel, {
    showId,
    userId,
    onLine(open) {
      if (!button) return;
      if (open) {
        // The call carries the show (without your own voice): no second copy from Listen.
        if (listener.listening) {
          resumeListening = true;
          stop("You are on the line: you hear the show through your call.");
        }
        button.disabled = true;
      } else {
        button.disabled = page.dataset.status !== "live";
        if (resumeListening) {
          resumeListening = false;
          listen();
        }
      }
    },
  });
  if (page.dataset.status === "live") callIn.start();
}

async function offerCoHosting() {
  const invite = q("[data-cohost-invite]");
  if (!userId || !invite) return;
  const result = await api("GET", `/api/v1/shows/${showId}/cohosts`);
  const mine = result.ok && result.data.find((c) => c.user_id === userId && !c.accepted);
  if (!mine) return;
  invite.hidden = false;
  invite.querySelector("[data-cohost-accept]").addEventListener("click", async () => {
    const accepted = await api("POST", `/api/v1/shows/${showId}/cohosts/accept`);
    if (accepted.ok) window.location.reload();
    else say(invite, accepted.message);
  });
}
offerCoHosting();

function wentLive(event) {
  setStatus("live", event.ts);
  if (callPanel) callPanel.hidden = false;
  callIn?.start();
  if (!button) return;
  button.disabled = false;
  if (!listener.listening) setState("Live now. No account needed.");
}

function ended(event) {
  setStatus("ended", event.ts);
  callIn?.stop();
  if (callPanel) callPanel.hidden = true;
  clearTimeout(pendingHeard);
  if (panel) {
    stop("The show has ended.", { tell: false });
    panel.hidden = true;
  }
  // Said once, where the song was: the listening panel has nothing left to offer.
  showTrack(null);
  npEmpty.textContent = "The show has ended. Thanks for listening!";
  room?.close();
}

const chatPanel = document.querySelector("[data-chat]");
const chat = chatPanel ? createChat(chatPanel, { showId }) : null;

function onRoomEvent(event, { state }) {
  chat?.onEvent(event);
  if (event.type === "now_playing") nowPlaying(event);
  else if (event.type === "show.live" && !state) wentLive(event);
  else if (event.type === "show.ended" && !state) ended(event);
  else if (event.type === "stage") callIn?.onStage(event);
}

let room = null;
if (page.dataset.status !== "ended") {
  room = joinRoom(showId, {
    onEvent: onRoomEvent,
    onWelcome: (welcome) => chat?.onWelcome(welcome),
    onStatus: (status, reason) => {
      page.dataset.room = status;
      if (status === "removed") chat?.onRemoved(reason);
    },
  });
  chat?.setRoom(room);
  setInterval(tick, TICK_MS);
} else {
  chat?.loadHistory();
}
