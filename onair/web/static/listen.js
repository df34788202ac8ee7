// Listening to a live show: one button to listen over WebRTC (WHEP, no account needed), the MP3
// stream when WebRTC is not to be had, and a small meter that says whether audio is really
// arriving. Used by the show page and the embeddable player, on the same markup: a panel with
// [data-listen-button] (its [data-listen-label] and [data-listen-icon]), [data-listen-state],
// [data-receiving-line] with [data-receiving-text] and [data-listen-meter], [data-volume],
// [data-mp3-link] and the [data-player] audio element.
import { audioStats, hangUp, negotiate, showLevel } from "./webrtc.js";

const STATS_MS = 500;
// Packets must have grown within this long for the page to say audio is arriving.
const RECEIVING_WINDOW_MS = 1500;
const RETRIES = 3;

/**
 * Wires `panel` to listen to `showId`. Returns `{ listen(), stop(message, { tell }),
 * setState(text), listening, button }`; `listening` is read live.
 */
export function createListener(panel, { showId }) {
  const button = panel.querySelector("[data-listen-button]");
  const stateText = panel.querySelector("[data-listen-state]");
  const receivingLine = panel.querySelector("[data-receiving-line]");
  const receivingText = panel.querySelector("[data-receiving-text]");
  const meter = panel.querySelector("[data-listen-meter]");
  const player = panel.querySelector("[data-player]");
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
    player.src = panel.querySelector("[data-mp3-link]").href;
    setState(message);
    setReceiving(false, "Waiting for audio…");
    player.play().catch(() => setState("The stream could not start; try a link below in your own player."));
  }

  player.addEventListener("playing", () => {
    if (session?.mp3) setReceiving(true, "Receiving audio (MP3 stream)");
  });
  player.addEventListener("waiting", () => {
    if (session?.mp3) setReceiving(false, "Buffering…");
  });

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

  button.addEventListener("click", () => (listening ? stop() : listen()));
  panel.querySelector("[data-volume]").addEventListener("input", (event) => {
    player.volume = Number(event.target.value);
  });
  window.addEventListener("pagehide", () => {
    if (session?.location) hangUp(session.location, { keepalive: true });
  });

  return {
    listen,
    stop,
    setState,
    button,
    get listening() {
      return listening;
    },
  };
}
