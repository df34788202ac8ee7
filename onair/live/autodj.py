"""The auto-DJ: when the host's queue runs out, music from the show's genre keeps the room alive.

The studio asks on its 20 ms frame path, so picks come from a list loaded ahead of time.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from onair.catalog.models import Genre, Licence, Track, TrackGenre
from onair.licensing.licences import window_closes, window_opens
from onair.licensing.rules import Song
from onair.licensing.service import Licensing, song_of, track_problems
from onair.shows.models import Show
from onair.studio.deck import DeckTrack

CANDIDATES = 200
AVOID_RECENT = 10
ENOUGH = 8  # fewer songs than this in the genre would repeat: top up from the rest


def deck_track(track: Track, queue_item_id: int | None = None) -> DeckTrack:
    assert track.audio_path is not None
    return DeckTrack(
        queue_item_id=queue_item_id,
        track_id=track.id,
        path=Path(track.audio_path),
        title=track.title,
        artists=tuple(track.artists),
        loudness_lufs=track.loudness_lufs,
        duration_s=track.duration_s or 0.0,
    )


@dataclass(frozen=True)
class Window:
    """When an auto-DJ candidate's licence covers the show: [opens, closes)."""

    opens: datetime | None
    closes: datetime | None

    def covers(self, at: datetime) -> bool:
        return (self.opens is None or at >= self.opens) and (
            self.closes is None or at < self.closes
        )


async def load_candidates(
    db: AsyncSession,
    genre_id: int | None,
    *,
    licensing: Licensing | None = None,
    show: Show | None = None,
    windows: dict[int, Window] | None = None,
    songs: dict[int, Song] | None = None,
) -> list[DeckTrack]:
    """Playable tracks of the genre first, topped up with others when the genre has few.

    With `licensing`, only tracks licensed for the show's territories now (and, for a clean
    show, without explicit lyrics); each one's licence window goes into `windows`, so a pick
    can be checked again when it is made."""
    playable = select(Track).where(Track.audio_path.is_not(None))
    if licensing is not None and show is not None:
        playable = playable.join(Licence, Licence.track_id == Track.id)
        if show.clean:
            playable = playable.where(Track.explicit.is_(False))
    tracks: Sequence[Track] = []
    if genre_id is not None:
        in_genre = playable.join(TrackGenre, TrackGenre.track_id == Track.id).where(
            TrackGenre.genre_id == genre_id
        )
        tracks = (await db.scalars(in_genre.limit(CANDIDATES))).unique().all()
    if len(tracks) < ENOUGH:
        others = playable.where(Track.id.not_in([t.id for t in tracks])).limit(CANDIDATES)
        tracks = [*tracks, *(await db.scalars(others)).unique().all()]
    if licensing is not None and show is not None:
        now = licensing.clock.now()
        tracks = [t for t in tracks if not track_problems(licensing, show, t, now)]
        if windows is not None:
            for t in tracks:
                assert t.licence is not None
                windows[t.id] = Window(window_opens(t.licence), window_closes(t.licence))
        if songs is not None:
            songs.update((t.id, song_of(t)) for t in tracks)
    return [deck_track(t) for t in tracks if t.audio_path and Path(t.audio_path).is_file()]


async def genre_name(db: AsyncSession, genre_id: int | None) -> str | None:
    if genre_id is None:
        return None
    return await db.scalar(select(Genre.name).where(Genre.id == genre_id))


class AutoDj:
    """Picks at random among the candidates, avoiding the last few played; `allowed` is asked
    of each pick (the licence may have lapsed since the candidates were loaded), and a pick
    that `prefer` rejects (it would break a programming rule) gives way to one it accepts."""

    def __init__(
        self,
        candidates: list[DeckTrack],
        rng: random.Random | None = None,
        allowed: Callable[[DeckTrack], bool] | None = None,
        prefer: Callable[[DeckTrack], bool] | None = None,
    ) -> None:
        self._candidates = candidates
        self._allowed = allowed
        self._prefer = prefer
        self._recent: deque[int] = deque(maxlen=min(AVOID_RECENT, max(len(candidates) - 1, 0)))
        self._rng = rng or random.Random()

    def played(self, track_id: int) -> None:
        self._recent.append(track_id)

    def pick(self) -> DeckTrack | None:
        if self._allowed is not None:
            self._candidates = [t for t in self._candidates if self._allowed(t)]
        fresh = [t for t in self._candidates if t.track_id not in self._recent]
        choices = fresh or self._candidates
        if not choices:
            return None
        track = self._rng.choice(choices)
        if self._prefer is not None and not self._prefer(track):
            # Asked on the frame path: try the others in a random order and stop at the first
            # that keeps the programming rules; none does, the first pick plays.
            others = [t for t in choices if t is not track]
            self._rng.shuffle(others)
            track = next((t for t in others if self._prefer(t)), track)
        self.played(track.track_id)
        return track
