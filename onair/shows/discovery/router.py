"""The discovery API: one search over everything, and who plays a song or an artist."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy import select

from onair.catalog import service as catalog
from onair.catalog.models import Artist, Track, TrackArtist
from onair.catalog.schemas import TrackOut
from onair.context import Ctx, Db
from onair.errors import not_found
from onair.shows.discovery import search
from onair.shows.discovery.schemas import (
    ArtistDetailOut,
    PlayOut,
    SearchOut,
    TrackPlaysOut,
)
from onair.types import PathId

router = APIRouter(tags=["discovery"])

ARTIST_TRACKS = 100


@router.get(
    "/api/v1/search",
    response_model=SearchOut,
    summary="Search shows, hosts, hashtags, artists and songs as you type",
    description="Every word may be a prefix; accents and case are folded and one typo per "
    "word is forgiven. `playing_now` lists the live shows whose song on air is one found (or "
    "by an artist found); `recently_played` those that played one lately and ended shows "
    "whose setlist holds one. Only songs already heard count: queued songs are never told.",
)
async def search_everything(
    ctx: Ctx,
    db: Db,
    q: Annotated[
        str, Query(max_length=search.MAX_QUERY_LENGTH, description="What was typed so far.")
    ],
) -> SearchOut:
    results = await search.discover(
        db, q, now=ctx.clock.now(), recent=recent_window(ctx.settings.recently_played_hours)
    )
    return SearchOut.of(results)


def recent_window(hours: float) -> timedelta:
    return timedelta(hours=hours)


@router.get(
    "/api/v1/catalog/tracks/{track_id}/plays",
    response_model=TrackPlaysOut,
    tags=["catalog"],
    summary="Who is playing this song now, and who played it",
)
async def track_plays(track_id: PathId, ctx: Ctx, db: Db) -> TrackPlaysOut:
    track = await db.get(Track, track_id)
    if track is None:
        raise not_found("track")
    now_plays, recent = await search.plays_of(
        db,
        track_ids=[track.id],
        artist_ids=[],
        now=ctx.clock.now(),
        within=recent_window(ctx.settings.recently_played_hours),
    )
    return TrackPlaysOut(
        track=TrackOut.of(track),
        playing_now=[PlayOut.of(p) for p in now_plays],
        recently_played=[PlayOut.of(p) for p in recent],
    )


@router.get(
    "/api/v1/catalog/artists/{artist_id}",
    response_model=ArtistDetailOut,
    tags=["catalog"],
    summary="An artist: their songs, who is playing them now, and who played them",
)
async def artist_detail(artist_id: PathId, ctx: Ctx, db: Db) -> ArtistDetailOut:
    artist = await db.get(Artist, artist_id)
    if artist is None:
        raise not_found("artist")
    now_plays, recent = await search.plays_of(
        db,
        track_ids=[],
        artist_ids=[artist.id],
        now=ctx.clock.now(),
        within=recent_window(ctx.settings.recently_played_hours),
    )
    ids = await db.scalars(
        select(TrackArtist.track_id)
        .join(Track, Track.id == TrackArtist.track_id)
        .where(TrackArtist.artist_id == artist.id)
        .order_by(Track.title, Track.id)
        .limit(ARTIST_TRACKS)
    )
    tracks = await catalog.tracks_by_ids(db, list(ids))
    return ArtistDetailOut(
        id=artist.id,
        name=artist.name,
        tracks=[TrackOut.of(t) for t in tracks],
        playing_now=[PlayOut.of(p) for p in now_plays],
        recently_played=[PlayOut.of(p) for p in recent],
    )
