// Licensing in the host console: why a song cannot be queued, or which programming rule it
// would break when it plays, shown on the song's row before and after it is queued.
import { apiGet, el } from "./common.js";

/** The notes for one song's problems, or null when it has none. */
export function problemNotes(problems) {
  if (!problems || problems.length === 0) return null;
  return el(
    "div",
    { class: "licence-problems" },
    ...problems.map((p) =>
      el("p", { class: p.blocking ? "problem blocking" : "problem warning", dataset: { code: p.code } }, el("strong", { text: p.blocking ? "Can't play: " : "Rule: " }), p.message),
    ),
  );
}

/** Adds the notes under the song's title in its row; true when a problem blocks it. */
export function markRow(row, problems) {
  row.querySelector(".licence-problems")?.remove();
  const notes = problemNotes(problems);
  if (notes) row.querySelector(".track-main").append(notes);
  row.classList.toggle("has-problem", Boolean(notes));
  return (problems ?? []).some((p) => p.blocking);
}

/** The checks for songs the host is about to queue: a Map of track id to problems. */
export async function checkTracks(showId, trackIds, signal) {
  if (trackIds.length === 0) return new Map();
  const query = trackIds.map((id) => `track_id=${encodeURIComponent(id)}`).join("&");
  const result = await apiGet(`/api/v1/shows/${showId}/queue/checks?${query}`, signal);
  if (!result.ok) return new Map();
  return new Map(result.data.checks.map((c) => [c.track_id, c.problems]));
}
