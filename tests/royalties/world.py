"""A play log and listener samples built by hand, with the totals worked out on paper.

March 2026 (UTC), recordings (performances / plays):
  Blue Hour   (Ada Lane)          10 + 7 + 0      = 17 / 3   (one play heard by nobody)
  Second Wind (Ada Lane, Ben Ortiz) 12 (skipped) + 3 = 15 / 2 (the 3 starts at 00:00:00 on the 1st)
  Edge Case   (Cleo | Pipe)        5              =  5 / 1   (starts 23:58:30 on the 31st and
                                                               ends in April: it counts in March)
  not in March: Edge Case's play starting 23:59 on 28 February (9), Outside's at 00:00:00 on
  1 April (4).
  Totals: 3 recordings, 6 plays, 37 performances.

Aggregate tuning hours, March: show A 4 listeners from before the month to 01:00 on the 1st
(4 h inside), then 2 until 02:00 (2 h); show B 6 from 23:30 on the 31st into April (3 h); show D
1 listener from 27 February until 12:00 on 2 March (36 h inside); show E 3 from 10:00 on the
15th, no closing sample, ended 10:20 (1 h). 4 + 2 + 3 + 36 + 1 = 46.
February: show A 4 from 23:00 on the 28th (1 h: 4 h), show C 2 for an hour (2 h), show D from
12:00 on the 27th (36 h): 42.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from onair.accounts.models import Role, User
from onair.catalog.models import Track
from onair.catalog.service import CatalogWriter, LicenceTerms, TrackInput
from onair.clock import FakeClock
from onair.royalties.models import ListenerSample, PlayLog
from onair.shows.models import Show, ShowHashtag, ShowStatus

MARCH = ("2026-03-01", "2026-03-31")
FEBRUARY = ("2026-02-01", "2026-02-28")
MARCH_ATH = 46.0
FEBRUARY_ATH = 42.0

# (title, artists, isrc, album, label)
TRACKS = {
    "blue": ("Blue Hour", ("Ada Lane",), "USABC2600001", "Night Songs", "Lantern Records"),
    "wind": ("Second Wind", ("Ada Lane", "Ben Ortiz"), None, "Wind", "Gale Music"),
    "edge": ("Edge Case", ("Cleo | Pipe",), "GBXYZ2600003", "Odd | Album", "Edge Lab"),
    "outside": ("Outside", ("Dan",), "USABC2600004", "Elsewhere", "Later Label"),
}
# title -> (featured artist as reported, performances, plays) in March
MARCH_ROWS = {
    "Blue Hour": ("Ada Lane", 17, 3),
    "Second Wind": ("Ada Lane, Ben Ortiz", 15, 2),
    "Edge Case": ("Cleo | Pipe", 5, 1),
}
FEBRUARY_ROWS = {"Edge Case": ("Cleo | Pipe", 9, 1)}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass
class World:
    host_id: int
    shows: dict[str, int]
    tracks: dict[str, int]


async def build(db: AsyncSession, host_id: int | None = None) -> World:
    """The world; its shows are `host_id`'s (an account a test signed up) or a new user's."""
    clock = FakeClock()
    host = await db.get(User, host_id) if host_id is not None else None
    if host is None:
        host = User(
            username="ada",
            display_name="Ada",
            email="ada@example.org",
            password_hash="x",
            role=Role.listener,
            created_at=at("2026-01-01T00:00:00"),
        )
        db.add(host)
        await db.flush()
    items = [
        TrackInput(
            source="test",
            source_key=f"royalty:{key}",
            title=title,
            artists=artists,
            album=album,
            isrc=isrc,
            duration_s=240.0,
            licence=LicenceTerms(label=label),
        )
        for key, (title, artists, isrc, album, label) in TRACKS.items()
    ]
    await CatalogWriter(db, clock).write(items)
    await db.flush()
    tracks = {
        key: int(await db.scalar(select(Track.id).where(Track.source_key == f"royalty:{key}")))
        for key in TRACKS
    }

    def show(name: str, start: str, end: str | None) -> Show:
        s = Show(
            host_id=host.id,
            title=f"Show {name}",
            description="",
            status=ShowStatus.ended if end else ShowStatus.live,
            started_at=at(start),
            ended_at=at(end) if end else None,
            created_at=at(start),
            updated_at=at(start),
        )
        db.add(s)
        return s

    shows = {
        "A": show("A", "2026-02-28T23:00:00", "2026-04-01T00:05:00"),
        "B": show("B", "2026-03-31T23:30:00", "2026-04-01T00:30:00"),
        "C": show("C", "2026-02-10T10:00:00", "2026-02-10T11:00:00"),
        "D": show("D", "2026-02-27T12:00:00", "2026-03-02T12:00:00"),
        "E": show("E", "2026-03-15T10:00:00", "2026-03-15T10:20:00"),
    }
    await db.flush()
    # Tagged, as most shows are: the command's migration step then indexes them for search
    # (see the report to the lead: the index backfill fails on shows without any hashtag).
    db.add_all(ShowHashtag(show_id=s.id, tag="royalties", position=0) for s in shows.values())
    a = shows["A"].id

    def play(track: str, start: str, performances: int, *, skipped: bool = False) -> PlayLog:
        started = at(start)
        seconds = 60.0 if skipped else 240.0
        return PlayLog(
            show_id=a,
            track_id=tracks[track],
            started_at=started,
            ended_at=started + timedelta(seconds=seconds),
            seconds_played=seconds,
            listeners_at_start=performances,
            listener_seconds=performances * seconds,
            peak_listeners=performances,
            performances=performances,
            auto_dj=False,
            skipped=skipped,
            end_reason="skipped" if skipped else "finished",
        )

    db.add_all(
        [
            play("blue", "2026-03-05T20:00:00", 10),
            play("blue", "2026-03-20T21:00:00", 7),
            play("wind", "2026-03-20T21:04:00", 12, skipped=True),
            play("edge", "2026-03-31T23:58:30", 5),
            play("edge", "2026-02-28T23:59:00", 9),
            play("outside", "2026-04-01T00:00:00", 4),
            play("wind", "2026-03-01T00:00:00", 3),
            play("blue", "2026-03-10T08:00:00", 0),
        ]
    )

    def sample(name: str, when: str, *, reactions: int = 0, **kinds: int) -> ListenerSample:
        return ListenerSample(
            show_id=shows[name].id,
            at=at(when),
            webrtc=kinds.get("webrtc", 0),
            hls=kinds.get("hls", 0),
            stream=kinds.get("stream", 0),
            smart_speaker=kinds.get("smart_speaker", 0),
            reactions=reactions,
        )

    db.add_all(
        [
            sample("A", "2026-02-28T23:00:00", webrtc=1, hls=1, stream=1, smart_speaker=1),
            sample("A", "2026-03-01T01:00:00", stream=2, reactions=5),
            sample("A", "2026-03-01T02:00:00", reactions=2),
            sample("B", "2026-03-31T23:30:00", webrtc=6),
            sample("B", "2026-04-01T00:30:00"),
            sample("C", "2026-02-10T10:00:00", hls=2),
            sample("C", "2026-02-10T11:00:00"),
            sample("D", "2026-02-27T12:00:00", stream=1),
            sample("D", "2026-03-02T12:00:00"),
            sample("E", "2026-03-15T10:00:00", webrtc=3),
        ]
    )
    await db.commit()
    return World(host.id, {k: v.id for k, v in shows.items()}, tracks)
