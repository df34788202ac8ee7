"""The licensing checks a show's queue goes through, read from the database.

The decisions themselves are pure (`licences`, `rules`); this module gathers what they judge:
the show's territories, the songs heard in the last 3 hours (the play log) and the queue
ahead, each song placed at the moment it would be heard, projected from the song on air and
the lengths of those before it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from onair.catalog.models import Track
from onair.clock import Clock
from onair.errors import ApiError
from onair.licensing.licences import Problem, licence_problem, window_problem
from onair.licensing.rules import RULE_SETS, RuleSet, Slot, Song, breaches, check_all
from onair.royalties.models import PlayLog
from onair.settings import Settings
from onair.shows.models import QueueItem, QueueState, Show, ShowStatus

ON_AIR_AT_MOST = timedelta(hours=6)
"""A play log row older than this without an end is a crash's leftover, not a song on air."""


@dataclass(frozen=True)
class Licensing:
    """The operator's choices, and the clock every check takes "now" from."""

    territories: tuple[str, ...]
    rules: RuleSet | None
    block: bool
    clock: Clock
    crossfade_s: float = 3.0

    @classmethod
    def of(cls, settings: Settings, clock: Clock) -> Licensing:
        return cls(
            territories=settings.territory_list,
            rules=RULE_SETS[settings.programming_rules],
            block=settings.programming_rules_mode == "block",
            clock=clock,
            crossfade_s=settings.crossfade_s,
        )

    def show_territories(self, show: Show) -> tuple[str, ...]:
        """Where the show is heard: everywhere the service runs."""
        return self.territories


def track_problems(licensing: Licensing, show: Show, track: Track, at: datetime) -> list[Problem]:
    """What keeps `track` off `show`'s queue at `at` whatever the rules: its licence, and
    explicit lyrics in a clean show."""
    problems = []
    problem = licence_problem(track.licence, licensing.show_territories(show), at)
    if problem is not None:
        problems.append(problem)
    if show.clean and track.explicit:
        problems.append(Problem("explicit", "it has explicit lyrics and this show is marked clean"))
    return problems


def refuse(problems: Sequence[Problem], title: str) -> None:
    """Raises the first blocking problem as the API's refusal."""
    for problem in problems:
        if problem.blocking:
            raise ApiError(409, problem.code, f"{title!r} cannot be queued: {problem.message}")


def song_of(track: Track) -> Song:
    return Song(
        track_id=track.id,
        album_id=track.album_id,
        album_title=track.album.title if track.album else None,
        artists=tuple((link.artist_id, link.artist.name) for link in track.artist_links),
    )


@dataclass
class Timeline:
    """What the show has played in the rules' window and what it will play, in order."""

    heard: list[Slot]
    queued: list[tuple[QueueItem, Slot]]
    next_start: datetime
    """When a song added at the end of the queue would be heard."""
    tracks: dict[int, Track] = field(default_factory=dict)

    def slots(self) -> list[Slot]:
        return [*self.heard, *(slot for _, slot in self.queued)]


async def timeline(db: AsyncSession, licensing: Licensing, show: Show) -> Timeline:
    now = licensing.clock.now()
    window = licensing.rules.window if licensing.rules else timedelta(hours=3)
    plays = list(
        await db.scalars(
            select(PlayLog)
            .where(PlayLog.show_id == show.id, PlayLog.started_at >= now - window)
            .order_by(PlayLog.started_at, PlayLog.id)
        )
    )
    items = list(
        (
            await db.scalars(
                select(QueueItem)
                .where(QueueItem.show_id == show.id, QueueItem.state == QueueState.queued)
                .order_by(QueueItem.position)
            )
        ).unique()
    )
    ids = {p.track_id for p in plays} | {i.track_id for i in items}
    tracks = {t.id: t for t in (await db.scalars(select(Track).where(Track.id.in_(ids)))).unique()}
    heard = [Slot(song_of(tracks[p.track_id]), p.started_at) for p in plays if p.track_id in tracks]
    cursor = now
    if show.status is ShowStatus.scheduled and show.scheduled_start is not None:
        cursor = max(now, show.scheduled_start)
    on_air = next(
        (p for p in reversed(plays) if p.ended_at is None and now - p.started_at < ON_AIR_AT_MOST),
        None,
    )
    if on_air is not None and show.status is ShowStatus.live:
        length = tracks[on_air.track_id].duration_s or 0.0 if on_air.track_id in tracks else 0.0
        cursor = max(now, on_air.started_at + timedelta(seconds=_segue(licensing, length)))
    queued = []
    for item in items:
        queued.append((item, Slot(song_of(item.track), cursor)))
        cursor += timedelta(seconds=_segue(licensing, item.track.duration_s or 0.0))
    return Timeline(heard, queued, cursor, tracks)


def _segue(licensing: Licensing, length: float) -> float:
    """Seconds from a song's start to the next one's: the next starts as this one fades."""
    return length - licensing.crossfade_s if length > licensing.crossfade_s else length


@dataclass(frozen=True)
class Check:
    problems: list[Problem]
    at: datetime
    """When the song would be heard."""


def _rule_problems(licensing: Licensing, found: list[Problem]) -> list[Problem]:
    return [Problem(p.code, p.message, blocking=licensing.block) for p in found]


async def check_candidates(
    db: AsyncSession, licensing: Licensing, show: Show, tracks: Sequence[Track]
) -> dict[int, Check]:
    """Each track as if it were added at the end of the queue now: its licence, a clean
    show's explicit rule, and the programming rules at the moment it would be heard."""
    line = await timeline(db, licensing, show)
    slots = line.slots()
    now = licensing.clock.now()
    out: dict[int, Check] = {}
    for track in tracks:
        at = line.next_start
        problems = _until_heard(track_problems(licensing, show, track, now), track, at)
        candidate = [*slots, Slot(song_of(track), at)]
        problems += _rule_problems(licensing, breaches(licensing.rules, candidate, len(slots)))
        out[track.id] = Check(problems, at)
    return out


def _until_heard(problems: list[Problem], track: Track, at: datetime) -> list[Problem]:
    """`problems` (the song's now); with none, a warning if its licence lapses before `at`."""
    lapse = None if problems else window_problem(track.licence, at)
    if lapse is not None:
        problems.append(
            Problem(
                "licence_lapses",
                f"{lapse.message} by the time it would play (about {at:%Y-%m-%d %H:%M} UTC), "
                "so it would be skipped",
                blocking=False,
            )
        )
    return problems


async def check_queue(db: AsyncSession, licensing: Licensing, show: Show) -> dict[int, Check]:
    """Every queued song judged at the moment it would be heard."""
    line = await timeline(db, licensing, show)
    slots = line.slots()
    found = check_all(licensing.rules, slots)
    out: dict[int, Check] = {}
    offset = len(line.heard)
    now = licensing.clock.now()
    for n, (item, slot) in enumerate(line.queued):
        problems = _until_heard(
            track_problems(licensing, show, item.track, now), item.track, slot.at
        )
        problems += _rule_problems(licensing, found[offset + n])
        out[item.id] = Check(problems, slot.at)
    return out


async def check_insert(
    db: AsyncSession, licensing: Licensing, show: Show, track: Track, position: int | None
) -> list[Problem]:
    """The rules a song put at `position` (None: last) breaks, and any it makes a later song
    break; blocking only in block mode."""
    if licensing.rules is None:
        return []
    line = await timeline(db, licensing, show)
    before = check_all(licensing.rules, line.slots())
    queued = [slot for _, slot in line.queued]
    at = len(queued) if position is None else max(0, min(position, len(queued)))
    start = queued[at].at if at < len(queued) else line.next_start
    song = song_of(track)
    shift = timedelta(seconds=_segue(licensing, track.duration_s or 0.0))
    moved = [
        *queued[:at],
        Slot(song, start),
        *(Slot(s.song, s.at + shift) for s in queued[at:]),
    ]
    slots = [*line.heard, *moved]
    index = len(line.heard) + at
    problems = breaches(licensing.rules, slots, index)
    after = check_all(licensing.rules, slots)
    for n in range(index + 1, len(slots)):
        old = {p.code for p in before[n - 1]}
        for p in after[n]:
            if p.code not in old:
                title = line.queued[n - 1 - len(line.heard)][0].track.title
                problems.append(Problem(p.code, f"it would make {title!r} {p.message}"))
    return _rule_problems(licensing, problems)


async def refuse_new_breaches(
    db: AsyncSession, licensing: Licensing, show: Show, before: dict[int, Check]
) -> None:
    """In block mode, refuses a reordered queue in which a song breaks a rule it did not break
    in the old order (the caller rolls back)."""
    after = await check_queue(db, licensing, show)
    for item_id, check in after.items():
        old = {p.code for p in before[item_id].problems} if item_id in before else set()
        for problem in check.problems:
            if problem.blocking and problem.code.startswith("rule_") and problem.code not in old:
                item = await db.get(QueueItem, item_id)
                title = item.track.title if item else "a song"
                raise ApiError(
                    409,
                    problem.code,
                    f"that order cannot be kept: {title!r} would be {problem.message}",
                )
