"""The host's destinations (stored) and the live show's pushes to them (onair.media.restream)."""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from onair.accounts.models import User
from onair.clock import Clock
from onair.errors import ApiError, forbidden, not_found
from onair.media.feed import ProgramFeed
from onair.media.restream import (
    PushStatus,
    RestreamSettings,
    RtmpTarget,
    TitleCard,
    show_restream,
)
from onair.restream.models import RestreamDestination
from onair.settings import Settings
from onair.shows.models import Show, ShowStatus

log = logging.getLogger("onair.restream")

MASK = "••••"


def restream_settings(settings: Settings) -> RestreamSettings:
    return RestreamSettings(
        retry_first_s=settings.restream_retry_first_s,
        retry_max_s=settings.restream_retry_max_s,
        ffmpeg=settings.restream_ffmpeg,
        video_fps=settings.restream_video_fps,
    )


def masked_key(key: str) -> str:
    """What a list shows of a stream key: enough to tell two apart, never enough to use one."""
    if not key:
        return ""
    return MASK + key[-4:] if len(key) >= 12 else MASK


@dataclass(frozen=True)
class DestinationFields:
    name: str | None = None
    url: str | None = None
    stream_key: str | None = None
    enabled: bool | None = None


async def destinations_of(db: AsyncSession, host_id: int) -> list[RestreamDestination]:
    stmt = (
        select(RestreamDestination)
        .where(RestreamDestination.host_id == host_id)
        .order_by(RestreamDestination.id)
    )
    return list(await db.scalars(stmt))


async def own_destination(db: AsyncSession, user: User, destination_id: int) -> RestreamDestination:
    """The user's own destination; anyone else's is not found (it holds a secret)."""
    destination = await db.get(RestreamDestination, destination_id)
    if destination is None or destination.host_id != user.id:
        raise not_found("destination")
    return destination


async def add_destination(
    db: AsyncSession, clock: Clock, user: User, fields: DestinationFields, *, limit: int
) -> RestreamDestination:
    count = await db.scalar(select(func.count()).where(RestreamDestination.host_id == user.id))
    if (count or 0) >= limit:
        raise ApiError(409, "too_many_destinations", f"at most {limit} restream destinations")
    now = clock.now()
    destination = RestreamDestination(
        host_id=user.id,
        name=fields.name or "",
        url=fields.url or "",
        stream_key=fields.stream_key or "",
        enabled=True if fields.enabled is None else fields.enabled,
        created_at=now,
        updated_at=now,
    )
    db.add(destination)
    await db.flush()
    return destination


def edit_destination(
    clock: Clock, destination: RestreamDestination, fields: DestinationFields
) -> bool:
    """Applies the fields given; True when where it pushes to changed (URL or key)."""
    moved = (fields.url is not None and fields.url != destination.url) or (
        fields.stream_key is not None and fields.stream_key != destination.stream_key
    )
    if fields.name is not None:
        destination.name = fields.name
    if fields.url is not None:
        destination.url = fields.url
    if fields.stream_key is not None:
        destination.stream_key = fields.stream_key
    if fields.enabled is not None:
        destination.enabled = fields.enabled
    destination.updated_at = clock.now()
    return moved


def target_of(destination: RestreamDestination) -> RtmpTarget:
    return RtmpTarget(destination.id, destination.name, destination.url, destination.stream_key)


def card_of(show: Show, host: User | None) -> TitleCard:
    cover = Path(show.cover_path) if show.cover_path else None
    return TitleCard(
        title=show.title,
        subtitle=f"with {host.display_name}" if host is not None else "",
        cover_path=cover if cover is not None and cover.is_file() else None,
    )


def require_show_host(show: Show, user: User) -> None:
    """Only the host pushes their show, to their own destinations (their keys)."""
    if show.host_id != user.id:
        raise forbidden("only the show's host can restream it")


async def live_show_of(db: AsyncSession, host_id: int) -> Show | None:
    return await db.scalar(
        select(Show).where(Show.host_id == host_id, Show.status == ShowStatus.live)
    )


# --- the live show's pushes


def start_push(
    feed: ProgramFeed,
    destination: RestreamDestination,
    card: TitleCard,
    settings: RestreamSettings,
) -> PushStatus:
    """Starts (or restarts, with its current URL and key) the push to `destination`."""
    if shutil.which(settings.ffmpeg) is None:
        raise ApiError(
            503,
            "restream_unavailable",
            f"restreaming needs ffmpeg on the server ({settings.ffmpeg} was not found)",
        )
    try:
        return show_restream(feed, settings).start(target_of(destination), card)
    except RuntimeError:  # the show ended a moment ago
        raise ApiError(409, "not_live", f"show {feed.show_id} is not live") from None


def stop_push(feed: ProgramFeed, destination_id: int) -> PushStatus | None:
    existing = feed.existing("restream")
    if existing is None:
        return None
    return show_restream(feed).stop(destination_id)


def push_status(feed: ProgramFeed | None, destination_id: int) -> PushStatus | None:
    if feed is None or feed.existing("restream") is None:
        return None
    return show_restream(feed).status(destination_id)


async def start_enabled(
    sessions: async_sessionmaker[AsyncSession],
    feed: ProgramFeed,
    settings: RestreamSettings,
) -> int:
    """Pushes a show that has just gone live to each of its host's enabled destinations.

    Never raises: a restream problem must not keep a show off the air.
    """
    try:
        async with sessions() as db:
            show = await db.get(Show, feed.show_id)
            if show is None:
                return 0
            enabled = [d for d in await destinations_of(db, show.host_id) if d.enabled]
            if not enabled:
                return 0
            card = card_of(show, await db.get(User, show.host_id))
        if shutil.which(settings.ffmpeg) is None:
            log.warning(
                "restream: %s not found; show=%s goes live without its %d destinations",
                settings.ffmpeg,
                feed.show_id,
                len(enabled),
            )
            return 0
        for destination in enabled:
            start_push(feed, destination, card, settings)
        log.info("restream auto-started show=%s destinations=%d", feed.show_id, len(enabled))
        return len(enabled)
    except Exception:
        log.exception("could not start the restreams of show=%s", feed.show_id)
        return 0
