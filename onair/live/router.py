"""The crew's studio controls: play, pause, skip, crossfade, music level, mic mute."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from onair.accounts.deps import CurrentUser
from onair.context import Ctx, Db
from onair.errors import ApiError
from onair.live.station import LiveShow
from onair.shows import service as shows
from onair.stage import crew
from onair.stage.service import voice_id_of
from onair.types import PathId

router = APIRouter(prefix="/api/v1/shows", tags=["studio"])


async def authorize_crew(show_id: PathId, user: CurrentUser, db: Db) -> str:
    """The host and co-hosts run the studio; returns the caller's voice id."""
    show = await shows.get_show(db, show_id)
    await crew.require_crew(db, show, user)
    return voice_id_of(user.id)


async def _station(
    show_id: PathId, ctx: Ctx, _voice: Annotated[str, Depends(authorize_crew)]
) -> LiveShow:
    station = ctx.stations.get(show_id)
    if station is None:
        raise ApiError(409, "not_live", f"show {show_id} is not live")
    return station


Station = Annotated[LiveShow, Depends(_station)]


class StudioSettings(BaseModel):
    crossfade_s: float | None = Field(default=None, ge=0, le=12, description="Crossfade length.")
    music_level_db: float | None = Field(
        default=None, ge=-60, le=6, description="The music fader, in dB (0 is unity)."
    )
    mic_muted: bool | None = Field(default=None, description="Mute the host's microphone.")


@router.get("/{show_id}/studio", summary="The studio's state (host and co-hosts)")
async def studio_state(station: Station) -> dict[str, Any]:
    return station.state()


@router.post("/{show_id}/studio/play", summary="Play (or resume) the music")
async def play(station: Station) -> dict[str, Any]:
    station.studio.deck.play()
    return station.state()


@router.post("/{show_id}/studio/pause", summary="Pause the music")
async def pause(station: Station) -> dict[str, Any]:
    station.studio.deck.pause()
    return station.state()


@router.post("/{show_id}/studio/skip", summary="Skip to the next song")
async def skip(station: Station) -> dict[str, Any]:
    station.studio.deck.skip()
    return station.state()


@router.patch("/{show_id}/studio", summary="Crossfade, music fader, mic mute")
async def settings(
    body: StudioSettings, station: Station, voice_id: Annotated[str, Depends(authorize_crew)]
) -> dict[str, Any]:
    deck = station.studio.deck
    if body.crossfade_s is not None:
        deck.set_crossfade(body.crossfade_s)
    if body.music_level_db is not None:
        deck.set_level_db(body.music_level_db)
    if body.mic_muted is not None:
        voice = station.studio.voices.get(voice_id)
        if voice is None:
            raise ApiError(409, "no_mic", "connect your microphone first")
        voice.muted = body.mic_muted
    return station.state()
