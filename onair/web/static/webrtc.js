// WebRTC with OnAir's studio: one offer with every ICE candidate in it (no trickle), posted as
// application/sdp; the answer comes back with a Location to DELETE when done (WHEP-style).
import { sentence } from "./common.js";

const GATHER_TIMEOUT_MS = 3000;

/** Resolves once ICE gathering is complete, or after `timeoutMs` with what was found by then. */
export function iceGathered(pc, timeoutMs = GATHER_TIMEOUT_MS) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(done, timeoutMs);
    function done() {
      clearTimeout(timer);
      pc.removeEventListener("icegatheringstatechange", check);
      resolve();
    }
    function check() {
      if (pc.iceGatheringState === "complete") done();
    }
    pc.addEventListener("icegatheringstatechange", check);
  });
}

/**
 * Offers `pc` to `path` and applies the answer. Never throws for a refusal: the result says
 * whether it worked, where to DELETE the session, and otherwise a message to show.
 */
export async function negotiate(pc, path) {
  await pc.setLocalDescription(await pc.createOffer());
  await iceGathered(pc);
  let response;
  try {
    response = await fetch(path, {
      method: "POST",
      headers: { "Content-Type": "application/sdp", Accept: "application/sdp, application/json" },
      credentials: "same-origin",
      body: pc.localDescription.sdp,
    });
  } catch {
    return { ok: false, status: 0, message: "Could not reach OnAir. Check your connection and try again." };
  }
  if (response.status !== 201) {
    const data = await response.json().catch(() => null);
    const message = sentence(data?.error?.message ?? `The server answered ${response.status}.`);
    return { ok: false, status: response.status, code: data?.error?.code, message };
  }
  const sdp = await response.text();
  try {
    await pc.setRemoteDescription({ type: "answer", sdp });
  } catch (err) {
    return { ok: false, status: response.status, message: `The browser refused the server's answer (${err.message}).` };
  }
  return { ok: true, status: 201, location: response.headers.get("Location") };
}

/** Ends a session at its Location; `keepalive` lets it finish while the page unloads. */
export function hangUp(location, { keepalive = false } = {}) {
  if (!location) return Promise.resolve();
  return fetch(location, { method: "DELETE", credentials: "same-origin", keepalive }).catch(() => undefined);
}

/**
 * The audio figures of a connection: what arrives (`inbound-rtp`) and, when we send, the
 * microphone's own level (`media-source`). Levels are linear, 0..1, as the browser reports them.
 */
export async function audioStats(pc) {
  const found = { packetsReceived: 0, audioLevel: 0, packetsLost: 0, jitter: 0, micLevel: null };
  const report = await pc.getStats();
  for (const stat of report.values()) {
    if (stat.type === "inbound-rtp" && stat.kind === "audio") {
      found.packetsReceived = stat.packetsReceived ?? 0;
      found.packetsLost = stat.packetsLost ?? 0;
      found.jitter = stat.jitter ?? 0;
      found.audioLevel = stat.audioLevel ?? 0;
    } else if (stat.type === "media-source" && stat.kind === "audio") {
      found.micLevel = stat.audioLevel ?? 0;
    }
  }
  return found;
}

/** A linear level as a meter's fill, 0..1, on a -60..0 dB scale (how level meters read). */
export function meterFraction(level) {
  if (!level || level <= 0) return 0;
  const db = 20 * Math.log10(level);
  return Math.min(1, Math.max(0, (db + 60) / 60));
}

/** Sets a `.meter` element's fill; the style goes through the CSSOM, which the CSP allows. */
export function showLevel(meter, level) {
  const fill = meter?.querySelector(".meter-fill");
  if (fill) fill.style.transform = `scaleX(${meterFraction(level).toFixed(3)})`;
}
