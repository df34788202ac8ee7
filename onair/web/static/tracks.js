// One song as a list row, the same markup the server's track_row macro renders.
import { el, mmss } from "./common.js";

export function trackRow(track, ...actions) {
  const art = track.artwork_url
    ? el("img", { class: "art", src: track.artwork_url, alt: "", width: 48, height: 48, loading: "lazy" })
    : el("span", { class: "art placeholder", "aria-hidden": "true", text: "♪" });
  const sub = track.artists.join(", ") + (track.album ? ` · ${track.album}` : "");
  return el(
    "li",
    { class: "track", dataset: { trackId: String(track.id) } },
    art,
    el(
      "div",
      { class: "track-main" },
      el("span", { class: "track-title", text: track.title }),
      track.explicit ? el("span", { class: "badge explicit", title: "Explicit lyrics", text: "Explicit" }) : null,
      el("span", { class: "track-sub", text: sub }),
    ),
    el("span", { class: "track-genre", text: track.genres.join(", ") }),
    el("span", { class: "track-duration", text: mmss(track.duration_s) }),
    ...actions,
  );
}

export function countText(n) {
  return `${n} song${n === 1 ? "" : "s"} found`;
}
