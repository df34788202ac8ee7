// The console's Studio panel while the show is live: the host's microphone line (WebRTC, with
// the program minus their own voice played back to them), the music transport and fader, what
// is heard now and how far into it, listeners, and the studio's messages from the room.
import { api, el, mmss, say, sentence, trackLine } from "./common.js";
import { joinRoom } from "./room.js";
import { audioStats, hangUp, negotiate, showLevel } from "./webrtc.js";

const POLL_MS = 3000;
const STATS_MS = 500;
const TICK_MS = 250;
const FADER_MS = 150;
const LOG_LIMIT = 30;
// A line replaced this soon after our own connect was our own older line, not another tab's.
const OWN_REPLACE_MS = 3000;

const LINE_TEXT = {
  off: "Microphone not connected.",
  asking: "Waiting for the browser to let OnAir use your microphone…",
  connecting: "Connecting your microphone to the studio…",
  connected: "Microphone connected: you are on the air.",
  muted: "Microphone connected and muted: listeners do not hear you.",
  unstable: "The line is unstable; holding on…",
  dropped: "The line dropped. The music goes on: reconnect to talk again.",
  replaced: "Your microphone was connected from another tab or device. Reconnect to take it back here.",
};

const LEFT_BECAUSE = {
  failed: "the connection failed",
  closed: "the connection closed",
  replaced: "it was connected again elsewhere",
  show_ended: "the show ended",
  off_stage: "their call ended",
};

function micError(err) {
  if (err?.name === "NotAllowedError") return "The browser did not allow the microphone. Allow it for this site, then connect again.";
  if (err?.name === "NotFoundError") return "No microphone was found. Plug one in, then connect again.";
  if (err?.name === "NotReadableError") return "The microphone is in use by another program.";
  return `The microphone could not be opened (${err?.message ?? err}).`;
}

function listenerText(n) {
  return `${n} listener${n === 1 ? "" : "s"}`;
}

/**
 * Drives the Studio panel `panel`. `voiceId` is how the studio knows this host's microphone.
 * `onHeard(track)` runs when a song starts being heard, `onQueueChanged()` when the queue may
 * have moved on, `onEnded()` when the room says the show has ended; `onEvent(event, { state })`
 * sees every room event too (the call-ins panel follows the stage through it).
 */
export function createStudio(panel, { showId, voiceId, onHeard, onQueueChanged, onEnded, onEvent = () => {} }) {
  const base = `/api/v1/shows/${showId}`;
  const q = (selector) => panel.querySelector(selector);
  const lineText = q("[data-line-state]");
  const connectButton = q("[data-connect]");
  const hangupButton = q("[data-hangup]");
  const muteButton = q("[data-mute]");
  const headphones = q("[data-headphones]");
  const returnAudio = q("[data-return]");
  const error = q("[data-studio-error]");
  const fader = q("[data-music-level]");
  const faderOut = q("[data-music-level-out]");
  const crossfade = q("[data-crossfade]");
  const logList = q("[data-studio-log]");
  const nowText = q("[data-studio-now]");
  const positionText = q("[data-studio-position]");
  const progress = q("[data-studio-progress]");

  let running = false;
  let room = null;
  let timers = [];
  let stream = null;
  let line = null; // { pc, location, openedAt }
  let lineState = "off";
  let connecting = false;
  let muted = false;
  // What is heard, and where in it: position0 seconds at t0 (performance.now), moving if playing.
  let heard = null;
  let position0 = 0;
  let t0 = 0;
  let moving = true;
  let lastPoll = null;
  let pendingHeard = null;
  let faderTouched = 0;

  // --- messages -------------------------------------------------------------------------

  function log(text, kind = "info") {
    const at = new Date().toLocaleTimeString(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
    const item = el("li", { class: `log-${kind}` }, el("time", { text: at }), " ", el("span", { text }));
    logList.prepend(item);
    while (logList.children.length > LOG_LIMIT) logList.lastElementChild.remove();
  }

  // --- the microphone line --------------------------------------------------------------

  function setLine(state, message) {
    lineState = state;
    const shown = state === "connected" && muted ? "muted" : state;
    panel.dataset.line = state;
    lineText.textContent = message ?? LINE_TEXT[shown] ?? "";
    lineText.className = `line-state line-${shown}`;
    const live = ["asking", "connecting", "connected", "unstable"].includes(state);
    connectButton.hidden = live;
    connectButton.textContent = state === "dropped" || state === "replaced" ? "Reconnect microphone" : "Connect microphone";
    hangupButton.hidden = !live;
    muteButton.disabled = state !== "connected" && state !== "unstable";
  }

  function constraints() {
    // Speakers need echo cancellation or the mic picks the music up again; on headphones it
    // only costs quality. Automatic gain would lift the room's hiss between words and duck.
    const cancel = !headphones.checked;
    return { echoCancellation: cancel, noiseSuppression: cancel, autoGainControl: false, channelCount: 1 };
  }

  async function openMicrophone() {
    if (stream?.getAudioTracks().some((t) => t.readyState === "live")) return stream;
    if (!navigator.mediaDevices?.getUserMedia) throw new Error("this browser offers no microphone here (it needs https)");
    stream = await navigator.mediaDevices.getUserMedia({ audio: constraints(), video: false });
    return stream;
  }

  /** Hangs up; `tell` is false once the show has ended, which already closed every line. */
  async function closeLine({ tell = true } = {}) {
    const old = line;
    line = null;
    if (!old) return;
    // The studio first, then the browser: closing first would let the server see the line
    // fail and forget it before the DELETE arrives.
    if (tell) await hangUp(old.location);
    old.pc.close();
  }

  function onConnectionState(pc) {
    if (line?.pc !== pc) return;
    const state = pc.connectionState;
    if (state === "connected") {
      if (lineState !== "connected") log("Microphone connected.");
      setLine("connected");
    } else if (state === "disconnected") {
      setLine("unstable");
    } else if (state === "failed") {
      dropped("dropped");
    } else if (state === "new" || state === "connecting") {
      setLine("connecting");
    }
  }

  function dropped(state) {
    const old = line;
    line = null;
    old?.pc.close();
    setLine(state);
    log(LINE_TEXT[state], "error");
  }

  async function connectMic() {
    if (connecting || !running) return;
    connecting = true;
    say(error, "");
    try {
      setLine("asking");
      let mic;
      try {
        mic = await openMicrophone();
      } catch (err) {
        setLine("error", micError(err));
        return;
      }
      await closeLine();
      panel.dataset.returnPackets = "0";
      setLine("connecting");
      const pc = new RTCPeerConnection();
      const current = { pc, location: null, openedAt: Date.now() };
      line = current;
      const track = mic.getAudioTracks()[0];
      track.enabled = !muted;
      pc.addTransceiver(track, { direction: "sendrecv", streams: [mic] });
      pc.addEventListener("track", (event) => playReturn(event));
      pc.addEventListener("connectionstatechange", () => onConnectionState(pc));
      const result = await negotiate(pc, `${base}/studio/webrtc`);
      if (line !== current) {
        // Hung up (or the show ended) while the offer was out.
        pc.close();
        if (result.ok) hangUp(result.location);
        return;
      }
      if (!result.ok) {
        line = null;
        pc.close();
        setLine("error", result.message);
        return;
      }
      current.location = result.location;
      current.openedAt = Date.now();
      onConnectionState(pc);
      if (muted) await sendMute(true);
    } finally {
      connecting = false;
    }
  }

  function playReturn(event) {
    returnAudio.srcObject = event.streams[0] ?? new MediaStream([event.track]);
    returnAudio.play().catch(() => {
      log("Press Connect again to hear the program: the browser held the sound back.", "error");
    });
  }

  async function disconnectMic() {
    await closeLine();
    for (const track of stream?.getTracks() ?? []) track.stop();
    stream = null;
    returnAudio.srcObject = null;
    setLine("off");
    log("Microphone disconnected.");
    connectButton.focus();
  }

  async function sendMute(value) {
    const result = await api("PATCH", `${base}/studio`, { mic_muted: value });
    if (!result.ok) {
      say(error, result.message);
      return false;
    }
    return true;
  }

  async function toggleMute() {
    const want = !muted;
    muteButton.disabled = true;
    const ok = await sendMute(want);
    muteButton.disabled = lineState !== "connected" && lineState !== "unstable";
    if (!ok) return;
    applyMute(want);
    log(want ? "Microphone muted." : "Microphone on.");
  }

  function applyMute(value) {
    muted = value;
    // Muted twice over: the studio mutes the voice, and the browser sends silence.
    for (const track of stream?.getAudioTracks() ?? []) track.enabled = !value;
    muteButton.setAttribute("aria-pressed", String(value));
    muteButton.textContent = value ? "Unmute mic" : "Mute mic";
    panel.dataset.micMuted = String(value);
    if (lineState === "connected") setLine("connected");
  }

  async function readStats() {
    const pc = line?.pc;
    if (!pc) {
      showLevel(q("[data-mic-meter]"), 0);
      showLevel(q("[data-return-meter]"), 0);
      return;
    }
    const stats = await audioStats(pc).catch(() => null);
    if (!stats || line?.pc !== pc) return;
    showLevel(q("[data-mic-meter]"), muted ? 0 : stats.micLevel ?? 0);
    showLevel(q("[data-return-meter]"), stats.audioLevel);
    panel.dataset.micLevel = String(stats.micLevel ?? 0);
    panel.dataset.returnPackets = String(stats.packetsReceived);
  }

  // --- what is heard --------------------------------------------------------------------

  function setHeard(track, positionS) {
    heard = track;
    position0 = Math.max(0, positionS);
    t0 = performance.now();
    nowText.textContent = track ? trackLine(track) : "Nothing playing";
    panel.dataset.heard = track?.title ?? "";
    tick();
  }

  function positionNow() {
    const extra = moving ? (performance.now() - t0) / 1000 : 0;
    const total = heard?.duration_s;
    const at = position0 + extra;
    return total ? Math.min(at, total) : at;
  }

  function tick() {
    if (!heard) {
      positionText.textContent = "";
      progress.style.transform = "scaleX(0)";
      return;
    }
    const at = positionNow();
    const total = heard.duration_s;
    positionText.textContent = `${mmss(at)}${total ? ` / ${mmss(total)}` : ""}${moving ? "" : " · paused"}`;
    progress.style.transform = `scaleX(${total ? Math.min(1, at / total).toFixed(4) : 0})`;
  }

  function nowPlaying(event, fromState) {
    const start = () => {
      pendingHeard = null;
      setHeard(event.track, Date.now() / 1000 - event.at);
      onHeard(event.track);
      if (!fromState) log(`Now playing: ${trackLine(event.track)}${event.auto_dj ? " (auto-DJ)" : ""}.`);
    };
    clearTimeout(pendingHeard);
    // `at` is when the studio plays the song; show it then, not when the event arrives.
    const wait = event.at * 1000 - Date.now();
    if (wait > 0) pendingHeard = setTimeout(start, wait);
    else start();
  }

  function onRoomEvent(event, { state }) {
    onEvent(event, { state });
    switch (event.type) {
      case "now_playing":
        nowPlaying(event, state);
        // The song came off the queue (even one replayed from the welcome may be news here).
        onQueueChanged();
        break;
      case "studio.auto_dj":
        if (!state) log(sentence(event.message));
        break;
      case "studio.source":
        if (state) break;
        if (event.state === "connected") log(`DJ software connected (${event.name}): its music goes on air in a moment.`);
        else log(`DJ software stopped (${event.reason}); the queue carries on.`);
        break;
      case "studio.track_failed":
        if (state) break;
        log(`Could not play “${event.track.title}” (${event.reason}); skipped to the next song.`, "error");
        onQueueChanged();
        break;
      case "studio.voice_joined":
        if (!state && event.voice !== voiceId) log(`${event.name ?? event.voice} joined the line.`);
        break;
      case "studio.voice_left":
        if (!state) voiceLeft(event);
        break;
      case "show.ended":
        if (!state) onEnded();
        break;
      default:
        break;
    }
  }

  function voiceLeft(event) {
    if (event.voice !== voiceId) {
      log(`${event.name ?? event.voice} left the line (${LEFT_BECAUSE[event.reason] ?? event.reason}).`);
      return;
    }
    // "left" is our own hang-up, and the show's end is told by show.ended.
    if (!line || event.reason === "left" || event.reason === "show_ended") return;
    if (event.reason === "replaced") {
      // Our own connect replaces an older line of ours; only a later replace is someone else.
      if (connecting || Date.now() - line.openedAt < OWN_REPLACE_MS) return;
      dropped("replaced");
      return;
    }
    dropped("dropped");
  }

  // --- the studio's state, polled -------------------------------------------------------

  function applyState(state) {
    const count = state.listeners ?? 0;
    const listeners = q("[data-listeners]");
    listeners.textContent = listenerText(count);
    panel.dataset.listenerCount = String(count);
    const track = state.now_playing;
    if (track && heard && track.id === heard.id) {
      // The deck's position moves unless the music is paused.
      if (lastPoll && lastPoll.id === track.id) {
        const seconds = (performance.now() - lastPoll.at) / 1000;
        moving = state.position_s - lastPoll.position > Math.min(0.5, seconds / 2);
      }
      position0 = state.position_s;
      t0 = performance.now();
    } else if (!track && !pendingHeard) {
      setHeard(null, 0);
    } else if (track && !heard && !pendingHeard) {
      setHeard(track, state.position_s);
    }
    lastPoll = track ? { id: track.id, position: state.position_s, at: performance.now() } : null;
    if (Date.now() - faderTouched > 2000 && document.activeElement !== fader) {
      fader.value = String(Math.round(state.music_level_db));
      faderOut.textContent = dbText(fader.value);
    }
    if (document.activeElement !== crossfade) crossfade.value = String(state.crossfade_s);
    const voice = state.voices?.[voiceId];
    if (voice && voice.muted !== muted && lineState === "connected") applyMute(voice.muted);
    tick();
  }

  async function poll() {
    const result = await api("GET", `${base}/studio`);
    if (result.ok) {
      panel.dataset.studioState = "on";
      applyState(result.data);
    } else if (result.status === 409) {
      panel.dataset.studioState = "off";
      q("[data-listeners]").textContent = "Studio offline";
    }
  }

  // --- controls -------------------------------------------------------------------------

  async function transport(action) {
    say(error, "");
    const result = await api("POST", `${base}/studio/${action}`);
    if (!result.ok) {
      say(error, result.message);
      return;
    }
    if (action === "pause" || action === "play") {
      position0 = positionNow();
      t0 = performance.now();
      moving = action === "play";
      lastPoll = null;
      log(action === "pause" ? "Music paused." : "Music playing.");
    } else {
      log("Skipping to the next song.");
    }
    applyState(result.data);
  }

  function dbText(value) {
    const n = Number(value);
    return `${n > 0 ? "+" : n < 0 ? "−" : ""}${Math.abs(n)} dB`;
  }

  let faderTimer = null;
  let faderSent = 0;
  async function sendFader() {
    faderTimer = null;
    faderSent = performance.now();
    const result = await api("PATCH", `${base}/studio`, { music_level_db: Number(fader.value) });
    if (!result.ok) say(error, result.message);
  }

  function onFader() {
    faderTouched = Date.now();
    faderOut.textContent = dbText(fader.value);
    panel.dataset.faderDb = fader.value;
    if (faderTimer) return;
    // At most one change per FADER_MS, the last one always sent.
    const wait = Math.max(0, FADER_MS - (performance.now() - faderSent));
    faderTimer = setTimeout(sendFader, wait);
  }

  async function onCrossfade() {
    say(error, "");
    if (!crossfade.checkValidity() || crossfade.value === "") {
      say(error, "Crossfade: give a number of seconds from 0 to 12.");
      crossfade.setAttribute("aria-invalid", "true");
      return;
    }
    crossfade.removeAttribute("aria-invalid");
    const result = await api("PATCH", `${base}/studio`, { crossfade_s: Number(crossfade.value) });
    if (!result.ok) {
      say(error, result.message);
      return;
    }
    log(`Crossfade set to ${result.data.crossfade_s} s.`);
  }

  connectButton.addEventListener("click", () => connectMic());
  hangupButton.addEventListener("click", () => disconnectMic());
  muteButton.addEventListener("click", () => toggleMute());
  headphones.addEventListener("change", () => {
    for (const track of stream?.getAudioTracks() ?? []) track.applyConstraints(constraints()).catch(() => undefined);
  });
  q("[data-play]").addEventListener("click", () => transport("play"));
  q("[data-pause]").addEventListener("click", () => transport("pause"));
  q("[data-skip]").addEventListener("click", () => transport("skip"));
  fader.addEventListener("input", onFader);
  crossfade.addEventListener("change", onCrossfade);
  window.addEventListener("pagehide", () => {
    if (line?.location) hangUp(line.location, { keepalive: true });
  });

  return {
    /** The show is live: open the panel, the room and the polls. */
    start() {
      if (running) return;
      running = true;
      panel.hidden = false;
      setLine("off");
      room = joinRoom(showId, {
        onEvent: onRoomEvent,
        onStatus: (status) => {
          panel.dataset.room = status;
        },
      });
      poll();
      timers = [setInterval(poll, POLL_MS), setInterval(readStats, STATS_MS), setInterval(tick, TICK_MS)];
    },
    /** The show has ended: hang up and close everything. */
    async stop() {
      if (!running) return;
      running = false;
      for (const timer of timers) clearInterval(timer);
      clearTimeout(pendingHeard);
      room?.close();
      room = null;
      await closeLine({ tell: false });
      for (const track of stream?.getTracks() ?? []) track.stop();
      stream = null;
      returnAudio.srcObject = null;
      panel.hidden = true;
    },
    connectMic,
  };
}
