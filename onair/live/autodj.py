"""The auto-DJ: when the host's queue runs out, music from the show's genre keeps the room alive.

The studio asks on its 20 ms frame path, so picks come from a list loaded ahead of time.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Sequence
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from onair.catalog.models import Genre, Track, TrackGenre
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


async def load_candidates(db: AsyncSession, genre_id: int | None) -> list[DeckTrack]:
    """Playable tracks of the genre first, topped up with others when the genre has few."""
    playable = select(Track).where(Track.audio_path.is_not(None))
    tracks: Sequence[Track] = []
    if genre_id is not None:
        in_genre = playable.join(TrackGenre, TrackGenre.track_id == Track.id).where(
            TrackGenre.genre_id == genre_id
        )
        tracks = (await db.scalars(in_genre.limit(CANDIDATES))).unique().all()
    if len(tracks) < ENOUGH:
        others = playable.where(Track.id.not_in([t.id for t in tracks])).limit(CANDIDATES)
        tracks = [*tracks, *(await db.scalars(others)).unique().all()]
    return [deck_track(t) for t in tracks if t.audio_path and Path(t.audio_path).is_file()]


async def genre_name(db: AsyncSession, genre_id: int | None) -> str | None:
    if genre_id is None:
        return None
    return await db.scalar(select(Genre.name).where(Genre.id == genre_id))


class AutoDj:
    def __init__(self, candidates: list[DeckTrack], rng: random.Random | None = None) -> None:
        self._candidates = candidates
        self._recent: deque[int] = deque(maxlen=min(AVOID_RECENT, max(len(candidates) - 1, 0)))
        self._rng = rng or random.Random()

    def played(self, track_id: int) -> None:
        self._recent.append(track_id)

    def pick(self) -> DeckTrack | None:
        fresh = [t for t in self._candidates if t.track_id not in self._recent]
        choices = fresh or self._candidates
        if not choices:
            return None
        track = self._rng.choice(choices)
        self.played(track.track_id)
        return track
