from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel

from onair.catalog import search, service
from onair.catalog.schemas import TrackOut
from onair.context import Db
from onair.errors import not_found
from onair.types import PathId

router = APIRouter(prefix="/api/v1/catalog", tags=["catalog"])


class SearchResults(BaseModel):
    query: str
    tracks: list[TrackOut]


class GenreOut(BaseModel):
    name: str
    slug: str


@router.get("/search", response_model=SearchResults, summary="Search tracks as you type")
async def search_catalog(
    db: Db,
    q: Annotated[str, Query(max_length=200, description="Words; the last may be a prefix.")] = "",
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    offset: Annotated[int, Query(ge=0, le=10_000)] = 0,
    playable: Annotated[bool, Query(description="Only tracks with audio.")] = False,
) -> SearchResults:
    ids = await search.search_track_ids(
        db, q, limit=limit if not playable else limit * 5, offset=offset
    )
    tracks = await service.tracks_by_ids(db, ids)
    if playable:
        tracks = [t for t in tracks if t.playable][:limit]
    return SearchResults(query=q, tracks=[TrackOut.of(t) for t in tracks])


@router.get("/tracks/{track_id}", response_model=TrackOut, summary="One track")
async def get_track(track_id: PathId, db: Db) -> TrackOut:
    track = await service.get_track(db, track_id)
    if track is None:
        raise not_found("track")
    return TrackOut.of(track)


@router.get(
    "/tracks/{track_id}/artwork", summary="A track's cover art", response_class=FileResponse
)
async def track_artwork(track_id: PathId, db: Db) -> FileResponse:
    track = await service.get_track(db, track_id)
    if track is None or not track.artwork_path or not Path(track.artwork_path).is_file():
        raise not_found("artwork")
    return FileResponse(track.artwork_path, headers={"Cache-Control": "public, max-age=86400"})


@router.get("/genres", response_model=list[GenreOut], summary="Every genre in the catalog")
async def genres(db: Db) -> list[GenreOut]:
    return [GenreOut(name=g.name, slug=g.slug) for g in await service.list_genres(db)]
