from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from onair.catalog.service import CatalogWriter, LicenceTerms, TrackInput
from onair.clock import FakeClock
from onair.settings import Settings


def licensing_settings(tmp_path: Path, database_url: str = "") -> Settings:
    """A service heard in the US and Canada; the clock starts on 1 January 2026."""
    return Settings(
        data_dir=tmp_path / "var",
        database_url=database_url,
        signup_per_hour=1000,
        login_per_minute=1000,
        session_days=365,  # the tests move the clock by months
        territories="US,CA",
        territory_header="CF-IPCountry",
    )


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return licensing_settings(tmp_path)


@dataclass
class Catalog:
    ids: dict[str, int]

    def __getitem__(self, name: str) -> int:
        return self.ids[name]


def song(
    name: str,
    *,
    album: str | None = None,
    artist: str = "Somebody",
    explicit: bool = False,
    territories: tuple[str, ...] = ("*",),
    starts: date | None = None,
    ends: date | None = None,
    duration_s: float = 200.0,
) -> TrackInput:
    return TrackInput(
        source="test",
        source_key=f"test:{name}",
        title=name,
        artists=(artist,),
        album=album,
        album_artist=artist if album else None,
        duration_s=duration_s,
        explicit=explicit,
        audio_path=f"/nonexistent/{name}.mp3",
        licence=LicenceTerms(territories=territories, starts_on=starts, ends_on=ends),
    )


CATALOG = [
    song("Anywhere"),
    song("US Only", territories=("US",)),
    song("North America", territories=("US", "CA", "MX")),
    song("From March", starts=date(2026, 3, 1)),
    song("Gone Last Year", ends=date(2025, 12, 31)),
    song("Until Jan 10", ends=date(2026, 1, 10)),
    song("Rude Words", explicit=True),
    *(song(f"Blue {i}", album="Blue Album", artist="Blue Band") for i in range(1, 6)),
    *(song(f"Solo {i}", artist="Solo Star") for i in range(1, 6)),
]


@pytest.fixture
async def catalog(app: FastAPI, clock: FakeClock) -> Catalog:
    async with app.state.onair.sessions() as db:
        written = await CatalogWriter(db, clock).write(CATALOG)
        await db.commit()
        return Catalog({t.title: t.id for t in written})


async def new_show(client: httpx.AsyncClient, **fields: object) -> int:
    r = await client.post("/api/v1/shows", json={"title": "Test Show", **fields})
    assert r.status_code == 201, r.text
    show_id: int = r.json()["id"]
    return show_id
