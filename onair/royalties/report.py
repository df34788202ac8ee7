"""The royalty report of use: per sound recording, its performances over a period of days.

How plays count:

- A period is whole days in UTC, `first_day` to `last_day` inclusive: [first_day 00:00,
  last_day + 1 00:00).
- A play belongs to the period in which it **started**, whole, even when it ends after the
  period does: a performance happens once, so a play straddling midnight at the end of a
  month is reported in that month, and not again in the next.
- Skipped plays count: any portion of a recording transmitted to a listener is a performance.
  A play nobody heard counts as a play (PLAY_FREQUENCY) with 0 performances.
- A play's performances are the listeners there when it started plus those who joined while it
  played (the station keeps them on the play log), so a listener counts once per play.
- Aggregate tuning hours are the listener-hours of every show, talk included, clipped exactly to
  the period: the listener samples are a step function, and only the part inside the period
  counts. They go on the statement of account, so the files carry them in the summary, not on
  each recording's line.

Rows are read in batches of `BATCH` recordings (the grouping is done by the database), so a year
of plays never sits in memory at once.
"""

from __future__ import annotations

import csv
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal, TextIO

from pydantic import Field
from sqlalchemy import ColumnElement, and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from onair.catalog import service as catalog
from onair.catalog.models import Album, Licence, Track
from onair.royalties.models import ListenerSample, PlayLog
from onair.shows.models import Show, ShowStatus

ReportFormat = Literal["csv", "soundexchange"]
FORMATS: tuple[ReportFormat, ...] = ("csv", "soundexchange")
BATCH = 500

CSV_COLUMNS = (
    "featured_artist",
    "sound_recording_title",
    "isrc",
    "album_title",
    "marketing_label",
    "actual_total_performances",
    "play_frequency",
)
SOUNDEXCHANGE_COLUMNS = (
    "NAME_OF_SERVICE",
    "TRANSMISSION_CATEGORY",
    "FEATURED_ARTIST",
    "SOUND_RECORDING_TITLE",
    "ISRC",
    "ALBUM_TITLE",
    "MARKETING_LABEL",
    "ACTUAL_TOTAL_PERFORMANCES",
    "AGGREGATE_TUNING_HOURS",
    "CHANNEL_OR_PROGRAM_NAME",
    "PLAY_FREQUENCY",
)
_UNSAFE = re.compile(r"[|\x00-\x1f\x7f]+")


class PeriodError(ValueError):
    """The dates do not make a period (unreadable, or `from` after `to`)."""


@dataclass(frozen=True)
class Period:
    first_day: date
    last_day: date

    @classmethod
    def of(cls, first: date | str, last: date | str) -> Period:
        first_day, last_day = _day(first, "from"), _day(last, "to")
        if first_day > last_day:
            raise PeriodError(f"from ({first_day}) is after to ({last_day})")
        return cls(first_day, last_day)

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first_day, time(), UTC)

    @property
    def end(self) -> datetime:
        """The first instant after the period."""
        return datetime.combine(self.last_day + timedelta(days=1), time(), UTC)


def _day(value: date | str, name: str) -> date:
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise PeriodError(f"{name}: {value!r} is not a date (YYYY-MM-DD)") from None


# A line of the report; the JSON API answers these as they are (no docstring: it would become
# the schema's description).
@dataclass(frozen=True)
class Recording:
    track_id: int
    featured_artist: str
    title: str
    isrc: str
    album: str
    label: str
    performances: Annotated[
        int, Field(description="Actual total performances: listeners, once per play.")
    ]
    plays: int


@dataclass
class Totals:
    recordings: int = 0
    plays: int = 0
    performances: int = 0
    aggregate_tuning_hours: float = 0.0


def _in_period(period: Period) -> ColumnElement[bool]:
    return and_(PlayLog.started_at >= period.start, PlayLog.started_at < period.end)


async def count_recordings(db: AsyncSession, period: Period) -> int:
    """How many lines the report will have (for a progress bar)."""
    stmt = select(func.count(func.distinct(PlayLog.track_id))).where(_in_period(period))
    return int(await db.scalar(stmt) or 0)


async def recordings(db: AsyncSession, period: Period) -> AsyncIterator[Recording]:
    """Each sound recording played in the period, in track id order, read in batches."""
    after = 0
    while True:
        grouped = list(
            await db.execute(
                select(
                    PlayLog.track_id,
                    func.sum(PlayLog.performances),
                    func.count(),
                )
                .where(_in_period(period), PlayLog.track_id > after)
                .group_by(PlayLog.track_id)
                .order_by(PlayLog.track_id)
                .limit(BATCH)
            )
        )
        if not grouped:
            return
        details = await _details(db, [row[0] for row in grouped])
        for track_id, performances, plays in grouped:
            title, isrc, album, label, artist = details[track_id]
            yield Recording(
                track_id=track_id,
                featured_artist=artist,
                title=title,
                isrc=isrc,
                album=album,
                label=label,
                performances=int(performances or 0),
                plays=int(plays),
            )
        after = grouped[-1][0]


async def _details(
    db: AsyncSession, track_ids: Sequence[int]
) -> dict[int, tuple[str, str, str, str, str]]:
    rows = await db.execute(
        select(Track.id, Track.title, Track.isrc, Album.title, Licence.label, Album.label)
        .outerjoin(Album, Album.id == Track.album_id)
        .outerjoin(Licence, Licence.track_id == Track.id)
        .where(Track.id.in_(track_ids))
    )
    artists = await catalog.artist_names(db, track_ids)
    return {
        track_id: (
            title,
            (isrc or "").upper(),
            album or "",
            licence_label or album_label or "",
            ", ".join(artists.get(track_id, [])),
        )
        for track_id, title, isrc, album, licence_label, album_label in rows
    }


async def aggregate_tuning_hours(db: AsyncSession, period: Period, now: datetime) -> float:
    """Listener-hours of every show within the period, from the listener samples."""
    start, end = period.start, period.end
    # What each show that was on air when the period began was holding at that instant.
    latest = (
        select(ListenerSample.show_id, func.max(ListenerSample.at).label("at"))
        .join(Show, Show.id == ListenerSample.show_id)
        .where(
            ListenerSample.at < start,
            or_(Show.ended_at.is_(None), Show.ended_at > start),
        )
        .group_by(ListenerSample.show_id)
        .subquery()
    )
    on_latest = and_(ListenerSample.show_id == latest.c.show_id, ListenerSample.at == latest.c.at)
    held = {s.show_id: s for s in await db.scalars(select(ListenerSample).join(latest, on_latest))}
    # When each show in question ended, in one query; a show not ended holds until now.
    sampled = select(ListenerSample.show_id).where(
        ListenerSample.at >= start, ListenerSample.at < end
    )
    ended = {
        show: at
        for show, at in await db.execute(
            select(Show.id, Show.ended_at).where(
                Show.status == ShowStatus.ended,
                or_(Show.id.in_(sampled), Show.id.in_(list(held))),
            )
        )
        if at is not None
    }
    seconds = 0.0
    show_id: int | None = None
    value, since = 0, start

    def close(show: int, value: int, since: datetime) -> float:
        if value == 0:
            return 0.0
        # The show's last sample was not a closing one: it holds until the show ended (or now).
        until = ended.get(show, now)
        return value * max(0.0, (min(until, end) - since).total_seconds())

    in_period = (
        select(ListenerSample)
        .where(ListenerSample.at >= start, ListenerSample.at < end)
        .order_by(ListenerSample.show_id, ListenerSample.at, ListenerSample.id)
        .execution_options(yield_per=BATCH)
    )
    stream = await db.stream_scalars(in_period)
    async for sample in stream:
        if sample.show_id != show_id:
            if show_id is not None:
                seconds += close(show_id, value, since)
            show_id = sample.show_id
            before = held.pop(show_id, None)
            value, since = (before.total, start) if before is not None else (0, sample.at)
        seconds += value * (sample.at - since).total_seconds()
        value, since = sample.total, sample.at
    if show_id is not None:
        seconds += close(show_id, value, since)
    for before in held.values():  # on air all through the period without a new sample
        seconds += close(before.show_id, before.total, start)
    return seconds / 3600


def _clean(text: str) -> str:
    """A field of the pipe layout: no pipes, no line breaks or controls, single spaces."""
    return " ".join(_UNSAFE.sub(" ", text).split())


class _Writer:
    def __init__(self, fmt: ReportFormat, out: TextIO, service: str, category: str) -> None:
        self.fmt = fmt
        self.out = out
        self.service = _clean(service)
        self.category = category
        if fmt == "csv":
            self._csv = csv.writer(out, lineterminator="\r\n")
            self._csv.writerow(CSV_COLUMNS)
        else:
            out.write("|".join(SOUNDEXCHANGE_COLUMNS) + "\r\n")

    def row(self, r: Recording) -> None:
        if self.fmt == "csv":
            self._csv.writerow(
                [r.featured_artist, r.title, r.isrc, r.album, r.label, r.performances, r.plays]
            )
            return
        fields = [
            self.service,
            self.category,
            _clean(r.featured_artist),
            _clean(r.title),
            r.isrc,
            _clean(r.album),
            _clean(r.label),
            str(r.performances),
            "",
            "",
            str(r.plays),
        ]
        self.out.write("|".join(fields) + "\r\n")


async def write_report(
    db: AsyncSession,
    period: Period,
    fmt: ReportFormat,
    out: TextIO,
    *,
    service: str,
    category: str,
    now: datetime,
    on_row: Callable[[Recording], None] | None = None,
) -> Totals:
    """Writes the report to `out`, one line per recording; returns the period's totals."""
    writer = _Writer(fmt, out, service, category)
    totals = Totals()
    async for recording in recordings(db, period):
        writer.row(recording)
        totals.recordings += 1
        totals.plays += recording.plays
        totals.performances += recording.performances
        if on_row is not None:
            on_row(recording)
    totals.aggregate_tuning_hours = await aggregate_tuning_hours(db, period, now)
    return totals


def file_name(period: Period, fmt: ReportFormat, service: str, category: str) -> str:
    """SoundExchange's naming: service, start and end dates as YYYYMMDD, category."""
    first, last = period.first_day.strftime("%Y%m%d"), period.last_day.strftime("%Y%m%d")
    if fmt == "soundexchange":
        name = re.sub(r"[^A-Za-z0-9]", "", service) or "OnAir"
        return f"{name}{first}_{last}_{category}.txt"
    return f"royalties-{first}-{last}.csv"
