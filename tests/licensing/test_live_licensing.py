"""A live show, checked as audio: a queued song whose licence lapses while it waits is skipped
(marked with the reason, the crew told) and never heard; the auto-DJ plays only songs licensed
for the show's territories now.

Tones stand for songs: 440 Hz and 880 Hz are licensed; 660 Hz's licence ends on the show's
first day, and the test moves the clock past midnight while 440 Hz plays; 1000 Hz is licensed
in the US only (the service runs in the US and Canada); 1320 Hz's licence starts in June.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from onair.app import create_app
from onair.catalog.audiofile import probe_audio_file
from onair.catalog.service import CatalogWriter, LicenceTerms, TrackInput
from onair.clock import FakeClock
from onair.db.base import make_engine, make_sessionmaker
from onair.db.migrate import upgrade
from onair.royalties.models import PlayLog
from onair.settings import Settings
from onair.shows.models import QueueItem
from tests.live import band_db, write_song
from tests.media import decode
from tests.server import RunningServer, serve

pytestmark = pytest.mark.media

SONGS = {
    440.0: ("Licensed A", 9.0, LicenceTerms()),
    660.0: ("Lapses Tonight", 6.0, LicenceTerms(ends_on=date(2026, 1, 1))),
    880.0: ("Licensed C", 9.0, LicenceTerms()),
    1000.0: ("US Only", 6.0, LicenceTerms(territories=("US",))),
    1320.0: ("From June", 6.0, LicenceTerms(starts_on=date(2026, 6, 1))),
}
LISTEN_S = 24.0


async def _seed(url: str, root: Path) -> None:
    engine = make_engine(url)
    async with make_sessionmaker(engine)() as db:
        items = []
        for freq, (title, seconds, licence) in SONGS.items():
            path = root / f"{int(freq)}.flac"
            write_song(path, freq, seconds, 0.3)
            info = probe_audio_file(path)
            items.append(
                TrackInput(
                    source="test",
                    source_key=f"test:{title}",
                    title=title,
                    artists=(f"Band {int(freq)}",),
                    genres=("Test",),
                    duration_s=info.duration_s,
                    loudness_lufs=info.loudness_lufs,
                    audio_path=str(path),
                    licence=licence,
                )
            )
        await CatalogWriter(db, FakeClock()).write(items)
        await db.commit()
    await engine.dispose()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("licensing")
    settings = Settings(data_dir=root / "var", territories="US,CA", session_days=365)
    settings.data_dir.mkdir(parents=True)
    upgrade(settings.resolved_database_url)
    asyncio.run(_seed(settings.resolved_database_url, root))
    with serve(create_app(settings, FakeClock())) as running:
        yield running


async def _track_id(http: httpx.AsyncClient, title: str) -> int:
    found = (await http.get("/api/v1/catalog/search", params={"q": title})).json()["tracks"]
    return int(next(t["id"] for t in found if t["title"] == title))


async def _listen(server: RunningServer) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        r = await http.post(
            "/api/v1/accounts/signup",
            json={"username": "tone_dj", "email": "dj@example.org", "password": "password-1"},
        )
        assert r.status_code == 201, r.text
        show = (await http.post("/api/v1/shows", json={"title": "Tones", "genre": "Test"})).json()
        sid = show["id"]
        for title in ("Licensed A", "Lapses Tonight", "Licensed C"):
            r = await http.post(
                f"/api/v1/shows/{sid}/queue", json={"track_id": await _track_id(http, title)}
            )
            assert r.status_code == 201, r.text
        refused = await http.post(
            f"/api/v1/shows/{sid}/queue", json={"track_id": await _track_id(http, "US Only")}
        )
        assert refused.status_code == 409
        assert (await http.post(f"/api/v1/shows/{sid}/live")).status_code == 200
        audio = bytearray()
        async with (
            httpx.AsyncClient(base_url=server.url, timeout=30) as listener,
            listener.stream("GET", f"/listen/{sid}.mp3") as stream,
        ):
            assert stream.status_code == 200
            started = time.monotonic()
            moved = False
            async for chunk in stream.aiter_raw():
                audio += chunk
                elapsed = time.monotonic() - started
                if not moved and elapsed > 2.0:
                    # Past midnight UTC while the first song plays: the second's licence
                    # has lapsed before its turn.
                    server.call(_advance(server, 13 * 3600))
                    moved = True
                if elapsed > LISTEN_S:
                    break
        queue = (await http.get(f"/api/v1/shows/{sid}/queue")).json()
        await http.post(f"/api/v1/shows/{sid}/end")
    return {
        "show": sid,
        "audio": decode(bytes(audio), "mp3"),
        "queue": queue,
        "db": server.call(_stored(server, sid)),
    }


async def _advance(server: RunningServer, seconds: float) -> None:
    server.app.state.onair.clock.advance(seconds)


async def _stored(server: RunningServer, show_id: int) -> dict[str, Any]:
    onair = server.app.state.onair
    async with onair.sessions() as db:
        items = (await db.scalars(select(QueueItem).where(QueueItem.show_id == show_id))).unique()
        plays = await db.scalars(select(PlayLog).where(PlayLog.show_id == show_id))
        states = {i.track.title: (i.state.value, i.skip_reason) for i in items}
        played = [p.track_id for p in plays]
    events = [
        (e.type, e.data, e.crew_only)
        for e in onair.rooms.room(show_id).history
        if e.type == "queue.skipped"
    ]
    return {"items": states, "played": played, "events": events}


@pytest.fixture(scope="module")
def heard(server: RunningServer) -> dict[str, Any]:
    return asyncio.run(_listen(server))


def test_the_lapsed_song_is_skipped_with_its_reason_and_the_crew_is_told(
    heard: dict[str, Any],
) -> None:
    items = heard["db"]["items"]
    state, reason = items["Lapses Tonight"]
    assert state == "skipped"
    assert reason == "its licence ended on 2026-01-01"
    assert items["Licensed A"][0] == "played" and items["Licensed C"][0] in ("played", "playing")
    ((_, data, crew_only),) = heard["db"]["events"]
    assert crew_only and data["title"] == "Lapses Tonight"
    assert data["reason"] == "its licence ended on 2026-01-01"


def test_listeners_never_hear_a_song_without_a_licence(heard: dict[str, Any]) -> None:
    audio = heard["audio"]
    rate = 48_000
    assert len(audio) > 20 * rate, f"only {len(audio) / rate:.1f} s of audio"
    window = rate // 2
    loudest: dict[float, float] = dict.fromkeys(SONGS, -200.0)
    for start in range(0, len(audio) - window, window):
        piece = audio[start : start + window]
        for freq in SONGS:
            loudest[freq] = max(loudest[freq], band_db(piece, freq))
    assert loudest[440.0] > -20 and loudest[880.0] > -20, loudest
    for unlicensed in (660.0, 1000.0, 1320.0):
        assert loudest[unlicensed] < -50, (unlicensed, loudest)


def test_the_play_log_holds_only_licensed_songs(heard: dict[str, Any]) -> None:
    played = heard["db"]["played"]
    items = heard["db"]["items"]
    assert played, "nothing was logged"
    # The two licensed songs were queued; the auto-DJ took over after them (24 s > 9 + 9 - 3).
    assert len(played) >= 3, played
    assert len(set(played)) <= 2, f"the auto-DJ played something else: {played}"
    assert set(items) == {"Licensed A", "Lapses Tonight", "Licensed C"}
