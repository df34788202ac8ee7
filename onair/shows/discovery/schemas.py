"""What the discovery API says: search results grouped, and who plays a song or an artist."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from onair.accounts.router import PublicUser
from onair.catalog.models import Artist
from onair.catalog.schemas import TrackOut
from onair.shows.discovery.search import HashtagHit, PlayHit, Results
from onair.shows.router import ShowOut


class HashtagOut(BaseModel):
    tag: str
    shows: int = Field(description="How many shows carry it.")

    @classmethod
    def of(cls, hit: HashtagHit) -> HashtagOut:
        return cls(tag=hit.tag, shows=hit.shows)


class ArtistOut(BaseModel):
    id: int
    name: str

    @classmethod
    def of(cls, artist: Artist) -> ArtistOut:
        return cls(id=artist.id, name=artist.name)


class PlayOut(BaseModel):
    """A show and the song of the search it plays now or played (heard, never queued)."""

    show: ShowOut
    track: TrackOut
    started_at: datetime = Field(description="When listeners began to hear the song.")
    ended_at: datetime | None = Field(description="None while it is on air.")

    @classmethod
    def of(cls, hit: PlayHit) -> PlayOut:
        return cls(
            show=ShowOut.of(hit.show),
            track=TrackOut.of(hit.track),
            started_at=hit.play.started_at,
            ended_at=hit.play.ended_at,
        )


class SearchOut(BaseModel):
    query: str
    shows: list[ShowOut] = Field(description="Live shows first, then upcoming, then past.")
    hosts: list[PublicUser]
    hashtags: list[HashtagOut]
    artists: list[ArtistOut]
    tracks: list[TrackOut]
    playing_now: list[PlayOut] = Field(
        description="Live shows whose song on air now is one found, or by an artist found."
    )
    recently_played: list[PlayOut] = Field(
        description="Shows that played one in the last hours, and ended shows whose setlist "
        "holds one; live shows first."
    )

    @classmethod
    def of(cls, results: Results) -> SearchOut:
        return cls(
            query=results.query,
            shows=[ShowOut.of(s) for s in results.shows],
            hosts=[PublicUser.model_validate(u) for u in results.hosts],
            hashtags=[HashtagOut.of(h) for h in results.hashtags],
            artists=[ArtistOut.of(a) for a in results.artists],
            tracks=[TrackOut.of(t) for t in results.tracks],
            playing_now=[PlayOut.of(p) for p in results.playing_now],
            recently_played=[PlayOut.of(p) for p in results.recently_played],
        )


class OnAirOut(BaseModel):
    """Who plays a song or an artist: live now, and lately (or in an ended show's setlist)."""

    playing_now: list[PlayOut]
    recently_played: list[PlayOut]


class TrackPlaysOut(OnAirOut):
    track: TrackOut


class ArtistDetailOut(OnAirOut):
    id: int
    name: str
    tracks: list[TrackOut] = Field(description="Their songs in the catalog (at most 100).")
