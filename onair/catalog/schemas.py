"""What the API says about tracks."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel

from onair.catalog.models import Track


class LicenceOut(BaseModel):
    territories: list[str]
    starts_on: date | None
    ends_on: date | None
    on_demand_allowed: bool
    label: str | None
    licence_url: str | None


class TrackOut(BaseModel):
    id: int
    title: str
    artists: list[str]
    album: str | None
    genres: list[str]
    year: int | None
    duration_s: float | None
    isrc: str | None
    explicit: bool
    loudness_lufs: float | None
    playable: bool
    artwork_url: str | None
    licence: LicenceOut | None

    @classmethod
    def of(cls, track: Track) -> TrackOut:
        lic = track.licence
        return cls(
            id=track.id,
            title=track.title,
            artists=track.artists,
            album=track.album.title if track.album else None,
            genres=track.genres,
            year=track.year,
            duration_s=track.duration_s,
            isrc=track.isrc,
            explicit=track.explicit,
            loudness_lufs=track.loudness_lufs,
            playable=track.playable,
            artwork_url=f"/api/v1/catalog/tracks/{track.id}/artwork"
            if track.artwork_path
            else None,
            licence=LicenceOut(
                territories=lic.territories.split(","),
                starts_on=lic.starts_on,
                ends_on=lic.ends_on,
                on_demand_allowed=lic.on_demand_allowed,
                label=lic.label,
                licence_url=lic.licence_url,
            )
            if lic
            else None,
        )
