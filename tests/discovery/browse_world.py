"""Shows with play logs, for the browse tests.

A live show's studio writes its play log and credits each play's seconds to the show's genre
time (onair/live/station.py: play_started when a song is heard, play_progress and credit_play
as it plays and ends). `play` does the same writes for a song a test says was played, so the
ranking is built the way a show builds it, on whatever catalog the test uses; the live test
(test_browse_live.py) checks that a real studio writes them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from onair.accounts.service import create_user
from onair.catalog.models import Genre, TrackGenre
from onair.clock import Clock
from onair.royalties import service as play_log
from onair.shows import service as shows
from onair.shows.browse import service as browse
from onair.shows.models import Show


async def play(
    db: AsyncSession,
    show_id: int,
    track_id: int,
    seconds: float,
    at: datetime,
    listeners: int = 0,
) -> None:
    """One song heard from `at` for `seconds` by `listeners`, as the studio records it."""
    play_id = await play_log.play_started(
        db,
        show_id=show_id,
        track_id=track_id,
        queue_item_id=None,
        started_at=at,
        listeners=listeners,
        auto_dj=False,
    )
    await play_log.play_progress(
        db,
        play_id,
        seconds_played=seconds,
        listener_seconds=listeners * seconds,
        peak_listeners=listeners,
        ended_at=at + timedelta(seconds=seconds),
        end_reason="finished",
    )
    await browse.credit_play(db, show_id, await browse.track_genre_ids(db, track_id), seconds)


async def tracks_only_in(db: AsyncSession, genre: str, count: int) -> list[int]:
    """Tracks whose one and only genre is `genre` (so shares come out exact)."""
    genre_id = await db.scalar(select(Genre.id).where(Genre.name == genre))
    assert genre_id is not None, f"no genre {genre!r} in the catalog"
    stmt = select(TrackGenre.track_id).where(TrackGenre.genre_id == genre_id)
    found: list[int] = []
    for track_id in await db.scalars(stmt.order_by(TrackGenre.track_id)):
        if await browse.track_genre_ids(db, track_id) == (genre_id,):
            found.append(track_id)
        if len(found) == count:
            return found
    raise AssertionError(f"only {len(found)} tracks in {genre} alone")


@dataclass
class Made:
    id: int
    title: str


async def live_show(
    db: AsyncSession,
    clock: Clock,
    host: str,
    title: str,
    genre: str | None,
    hashtags: Sequence[str] = (),
) -> Made:
    """A host and their show, live (the studio is not started: `play` stands in for it)."""
    user = await create_user(
        db, clock, username=host, email=f"{host}@example.org", password="correct horse"
    )
    show = await shows.create_show(
        db, clock, user, shows.ShowFields(title=title, genre=genre, hashtags=list(hashtags))
    )
    await shows.go_live(db, clock, show)
    await db.commit()
    return Made(show.id, title)


async def end(db: AsyncSession, clock: Clock, made: Made) -> None:
    show = await db.get(Show, made.id)
    assert show is not None
    await shows.end_show(db, clock, show)
    await db.commit()


# The genre scenario: what each show claims, and the minutes it played of which genre.
# Shares of Jazz: Real 90 %, Electro Night (claims Electronic) 80 %, Jazzish 60 %,
# New (2 minutes: too early to tell), Medley 30 %, Fake 0 %.
GENRE_SHOWS = (
    ("real", "Real Jazz", "Jazz", {"Jazz": 9, "Electronic": 1}),
    ("electro", "Electro Night", "Electronic", {"Jazz": 8, "Electronic": 2}),
    ("jazzish", "Jazzish", "Jazz", {"Jazz": 6, "Electronic": 4}),
    ("newbie", "New Jazz Show", "Jazz", {"Jazz": 2}),
    ("medley", "Medley", "Jazz", {"Jazz": 3, "Electronic": 3, "Rock": 4}),
    ("fake", "Fake Jazz", "Jazz", {"Electronic": 5}),
)
JAZZ_RANKING = ["Real Jazz", "Electro Night", "Jazzish", "New Jazz Show", "Medley", "Fake Jazz"]


async def genre_scenario(db: AsyncSession, clock: Clock) -> dict[str, Made]:
    """The six live shows of GENRE_SHOWS, each having played one-minute plays."""
    pools = {g: await tracks_only_in(db, g, 10) for g in ("Jazz", "Electronic", "Rock")}
    made: dict[str, Made] = {}
    for host, title, genre, minutes in GENRE_SHOWS:
        show = await live_show(db, clock, f"{host}_host", title, genre)
        at = clock.now()
        for name, count in minutes.items():
            for track_id in pools[name][:count]:
                await play(db, show.id, track_id, 60.0, at)
                at += timedelta(seconds=60)
        made[host] = show
    return made
