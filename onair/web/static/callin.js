// Calling in from the show page: raise a hand (with a topic), wait in the queue, talk to the
// host off air while they screen you, then on air; mute yourself or hang up at any time. The
// server says where you are (`GET /stage`), so a reload puts the page back in the same place;
// the room's `stage` events say when to ask again. While you are on the line you hear the show
// through your call (the program without your own voice), so the page's Listen stops.
import { api, say } from "./common.js";
import { hangUp, negotiate } from "./webrtc.js";

const TEXT = {
  listening: "Raise your hand to talk on air. The host talks to you off air first, then decides.",
  requested: "You are in the call-in queue. Stay on this page: the host will pick you up.",
  screening: "The host is talking to you off air. Listeners cannot hear you yet.",
  on_air: "You are ON AIR: everyone listening hears you.",
  dropped: "The host ended your call. You can call in again.",
};

const BECAUSE = {
  connection_lost: "Your connection dropped, so you are back in the queue.",
  host_left: "The host left, so you are back in the queue.",
  screener_left: "The host who was talking to you left, so you are back in the queue.",
  screener_moved_on: "The host took another call first; you are back in the queue.",
  sent_back: "The host put you back in the queue.",
  studio_restarted: "The studio restarted; you are back in the queue.",
};

const ON_LINE = new Set(["screening", "on_air"]);

function micError(err) {
  if (err?.name === "NotAllowedError") return "The browser did not allow the microphone. Allow it for this site to call in.";
  if (err?.name === "NotFoundError") return "No microphone was found. Plug one in to call in.";
  return `The microphone could not be opened (${err?.message ?? err}).`;
}

/**
 * Drives the Call in panel. `onLine(true)` runs when the call's audio line opens (the page
 * should stop its own listening), `onLine(false)` when it closes.
 */
export function createCallIn(panel, { showId, userId, onLine }) {
  const base = `/api/v1/shows/${showId}`;
  const q = (selector) => panel.querySelector(selector);
  const stateText = q("[data-call-state]");
  const form = q("[data-call-form]");
  const topic = q("[data-call-topic]");
  const controls = q("[data-call-controls]");
  const muteButton = q("[data-call-mute]");
  const hangupButton = q("[data-call-hangup]");
  const error = q("[data-call-error]");
  const returnAudio = q("[data-call-return]");
  let state = "listening";
  let selfMuted = false;
  let stream = null;
  let line = null; // { pc, location }
  let opening = false;

  function apply(me) {
    if (!me) return;
    const was = state;
    state = me.state;
    selfMuted = me.call?.self_muted ?? false;
    panel.dataset.state = state;
    const reason = me.call?.reason;
    let text = TEXT[state] ?? "";
    if (state === "requested" && was !== "requested" && BECAUSE[reason]) text = `${BECAUSE[reason]} ${text}`;
    if (state === "requested" && me.call?.topic) text = `${text} Your topic: “${me.call.topic}”.`;
    stateText.textContent = text;
    const calling = state === "requested" || ON_LINE.has(state);
    form.hidden = calling;
    controls.hidden = !calling;
    muteButton.hidden = !ON_LINE.has(state);
    muteButton.setAttribute("aria-pressed", String(selfMuted));
    muteButton.textContent = selfMuted ? "Unmute me" : "Mute me";
    for (const track of stream?.getAudioTracks() ?? []) track.enabled = !selfMuted;
    if (ON_LINE.has(state)) openLine();
    else closeLine();
    if (!calling && was !== state && stream) {
      for (const track of stream.getTracks()) track.stop();
      stream = null;
    }
  }

  async function refresh() {
    const result = await api("GET", `${base}/stage`);
    if (result.ok) apply(result.data.me);
  }

  async function microphone() {
    if (stream?.getAudioTracks().some((t) => t.readyState === "live")) return stream;
    if (!navigator.mediaDevices?.getUserMedia) throw new Error("this browser offers no microphone here (it needs https)");
    stream = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 },
      video: false,
    });
    return stream;
  }

  async function openLine() {
    if (line || opening) return;
    opening = true;
    try {
      let mic;
      try {
        mic = await microphone();
      } catch (err) {
        say(error, micError(err));
        await api("DELETE", `${base}/stage/call`);
        await refresh();
        return;
      }
      const pc = new RTCPeerConnection();
      const current = { pc, location: null };
      line = current;
      onLine(true);
      const track = mic.getAudioTracks()[0];
      track.enabled = !selfMuted;
      pc.addTransceiver(track, { direction: "sendrecv", streams: [mic] });
      pc.addEventListener("track", (event) => {
        returnAudio.srcObject = event.streams[0] ?? new MediaStream([event.track]);
        returnAudio.play().catch(() => say(error, "The browser held the sound back: press Mute me twice to hear the show."));
      });
      pc.addEventListener("connectionstatechange", () => {
        if (line === current) panel.dataset.line = pc.connectionState;
      });
      const result = await negotiate(pc, `${base}/studio/webrtc`);
      if (line !== current) {
        pc.close();
        if (result.ok) hangUp(result.location);
        return;
      }
      if (!result.ok) {
        line = null;
        pc.close();
        onLine(false);
        say(error, result.message);
        await refresh();
        return;
      }
      current.location = result.location;
    } finally {
      opening = false;
    }
  }

  function closeLine() {
    const old = line;
    line = null;
    if (!old) return;
    old.pc.close();
    returnAudio.srcObject = null;
    panel.dataset.line = "closed";
    onLine(false);
  }

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    say(error, "");
    const button = q("[data-call-button]");
    button.disabled = true;
    try {
      // Asked now, while the listener is pressing the button, not later when the host picks up.
      await microphone();
    } catch (err) {
      say(error, micError(err));
      button.disabled = false;
      return;
    }
    const result = await api("POST", `${base}/stage/call`, { topic: topic.value.trim() });
    button.disabled = false;
    if (!result.ok) {
      say(error, result.message);
      return;
    }
    apply(result.data.me);
    hangupButton.focus();
  });

  hangupButton.addEventListener("click", async () => {
    say(error, "");
    hangupButton.disabled = true;
    const result = await api("DELETE", `${base}/stage/call`);
    hangupButton.disabled = false;
    if (!result.ok) say(error, result.message);
    else apply(result.data.me);
    if (!form.hidden) topic.focus();
  });

  muteButton.addEventListener("click", async () => {
    say(error, "");
    const result = await api("PATCH", `${base}/stage/call`, { muted: !selfMuted });
    if (!result.ok) say(error, result.message);
    else apply(result.data.me);
  });

  // No hang-up on pagehide: a reload comes straight back to the same place on the stage, and a
  // page that is gone for good drops its line, which the server notices within seconds.

  return {
    start() {
      panel.hidden = false;
      refresh();
    },
    stop() {
      closeLine();
      for (const track of stream?.getTracks() ?? []) track.stop();
      stream = null;
      panel.hidden = true;
    },
    onStage(event) {
      // The public event says where this page's user stands; only a move of their own is
      // worth asking the server about (every waiting caller asking at every move would not be).
      const mine = (list) => (list ?? []).some((c) => (c.user_id ?? c) === userId);
      const there = mine(event.on_air) ? "on_air" : mine(event.screening) ? "screening" : mine(event.waiting) ? "requested" : null;
      const here = state === "requested" || ON_LINE.has(state) ? state : null;
      if (there !== here) refresh();
    },
  };
}
