// The listener's show page: one button to listen over WebRTC (WHEP, no account needed), the MP3
// stream when WebRTC is not to be had, what is playing as it is heard (from the room), and a
// small meter that says whether audio is really arriving.
import { createCallIn } from "./callin.js";
import { createChat } from "./chat.js";
import { api, el, localizeTimes, mmss, say, statusBadge } from "./common.js";
import { joinRoom } from "./room.js";
import { audioStats, hangUp, negotiate, showLevel } from "./webrtc.js";

const STATS_MS = 500;
const TICK_MS = 500;
// Packets must have grown within this long for the page to say audio is arriving.
const RECEIVING_WINDOW_MS = 1500;
const RETRIES = 3;

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

const button = panel?.querySelector("[data-listen-button]");
const stateText = panel?.querySelector("[data-listen-state]");
const receivingLine = panel?.querySelector("[data-receiving-line]");
const receivingText = panel?.querySelector("[data-receiving-text]");
const meter = panel?.querySelector("[data-listen-meter]");
const player = panel?.querySelector("[data-player]");
let session = null; // { pc, location } over WebRTC, or { mp3: true }
let listening = false;
let retries = 0;
let statsTimer = null;
let lastGrowth = 0;
let lastPackets = 0;

function setState(text) {
  if (stateText) stateText.textContent = text;
}

function setButton(on) {
  listening = on;
  panel.dataset.listening = String(on);
  button.setAttribute("aria-pressed", String(on));
  panel.querySelector("[data-listen-label]").textContent = on ? "Stop" : "Listen";
  panel.querySelector("[data-listen-icon]").textContent = on ? "■" : "▶";
}

function setReceiving(receiving, text) {
  panel.dataset.receiving = receiving ? "yes" : "no";
  receivingLine.hidden = !listening;
  receivingLine.classList.toggle("on", receiving);
  receivingText.textContent = text;
}

async function listen() {
  setButton(true);
  retries = 0;
  if (typeof RTCPeerConnection === "undefined") {
    playMp3("This browser has no WebRTC; playing the MP3 stream instead.");
    return;
  }
  await connect();
}

async function connect() {
  setState("Connecting…");
  setReceiving(false, "Waiting for audio…");
  const pc = new RTCPeerConnection();
  const current = { pc, location: null };
  session = current;
  pc.addTransceiver("audio", { direction: "recvonly" });
  pc.addEventListener("track", (event) => {
    player.srcObject = event.streams[0] ?? new MediaStream([event.track]);
    player.play().catch(() => setState("The browser held the sound back: press Stop, then Listen."));
  });
  pc.addEventListener("connectionstatechange", () => onConnectionState(current));
  const result = await negotiate(pc, `/api/v1/shows/${showId}/whep`);
  if (session !== current) {
    pc.close();
    if (result.ok) hangUp(result.location);
    return;
  }
  if (!result.ok) {
    pc.close();
    session = null;
    if (result.code === "not_live") {
      stop(result.message);
      return;
    }
    playMp3(`${result.message} Playing the MP3 stream instead.`);
    return;
  }
  current.location = result.location;
  lastPackets = 0;
  lastGrowth = 0;
  clearInterval(statsTimer);
  statsTimer = setInterval(readStats, STATS_MS);
}

function onConnectionState(current) {
  if (session !== current) return;
  const state = current.pc.connectionState;
  if (state === "connected") {
    retries = 0;
    setState("Listening live.");
  } else if (state === "disconnected") {
    setState("The connection is unstable…");
  } else if (state === "failed") {
    current.pc.close();
    hangUp(current.location);
    session = null;
    if (retries < RETRIES) {
      retries += 1;
      setState("The connection dropped; reconnecting…");
      setTimeout(() => listening && !session && connect(), 1000 * retries);
    } else {
      playMp3("WebRTC did not connect; playing the MP3 stream instead.");
    }
  }
}

async function readStats() {
  const pc = session?.pc;
  if (!pc) return;
  const stats = await audioStats(pc).catch(() => null);
  if (!stats || session?.pc !== pc) return;
  const now = performance.now();
  if (stats.packetsReceived > lastPackets) lastGrowth = now;
  lastPackets = stats.packetsReceived;
  panel.dataset.packetsReceived = String(stats.packetsReceived);
  panel.dataset.audioLevel = String(stats.audioLevel);
  showLevel(meter, stats.audioLevel);
  const receiving = lastGrowth > 0 && now - lastGrowth < RECEIVING_WINDOW_MS;
  setReceiving(receiving, receiving ? "Receiving audio" : lastGrowth ? "No audio arriving…" : "Waiting for audio…");
}

function playMp3(message) {
  session = { mp3: true };
  clearInterval(statsTimer);
  player.srcObject = null;
  player.src = q("[data-mp3-link]").href;
  setState(message);
  setReceiving(false, "Waiting for audio…");
  player.play().catch(() => setState("The stream could not start; try a link below in your own player."));
}

if (player) {
  player.addEventListener("playing", () => {
    if (session?.mp3) setReceiving(true, "Receiving audio (MP3 stream)");
  });
  player.addEventListener("waiting", () => {
    if (session?.mp3) setReceiving(false, "Buffering…");
  });
}

/**
 * Stops listening; `message` says why (the listener's own Stop says nothing special). The
 * session is ended at the server too, unless the show's end has already closed it.
 */
function stop(message, { tell = true } = {}) {
  const old = session;
  session = null;
  clearInterval(statsTimer);
  if (old?.pc) {
    // The server first, then the browser, so the DELETE finds the session it ends.
    const closing = tell ? hangUp(old.location) : Promise.resolve();
    closing.then(() => old.pc.close());
  }
  player.pause();
  player.srcObject = null;
  player.removeAttribute("src");
  player.load();
  setButton(false);
  receivingLine.hidden = true;
  panel.dataset.receiving = "no";
  showLevel(meter, 0);
  setState(message ?? "Stopped. Press Listen to tune in again.");
}

if (button) {
  button.addEventListener("click", () => (listening ? stop() : listen()));
  panel.querySelector("[data-volume]").addEventListener("input", (event) => {
    player.volume = Number(event.target.value);
  });
  window.addEventListener("pagehide", () => {
    if (session?.location) hangUp(session.location, { keepalive: true });
  });
}

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
        if (listening) {
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
  if (!listening) setState("Live now. No account needed.");
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
