"""A recorded show of known tones, from the host's and the listener's side.

The host goes live and talks all through (a 1 kHz "voice" over WebRTC). The catalog is filled
only after the show is live, so the auto-DJ (loaded at go-live) has nothing and the show opens
with talk; then the host queues two "songs", 440 Hz and 660 Hz, and talks on after them. Once the
show has ended the host publishes replays: the talk replay holds the voice and none of either
song; the full replay is refused while one song's licence forbids on-demand use, and built once
both allow it. The podcast feed is read with feedparser as an app would, and its enclosures and
chapters are downloaded (Range requests too).
"""

from __future__ import annotations

import asyncio
import io
import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import feedparser
import httpx
import numpy as np
import pytest
from PIL import Image
from sqlalchemy import select

from onair.app import create_app
from onair.catalog.models import Licence, Track
from onair.db.migrate import upgrade
from onair.replays.recorder import read_recording, recording_dir
from onair.royalties import service as play_log
from onair.settings import Settings
from tests.live import RATE, ToneTrack, band_db, levels, runs, seed_songs, write_song
from tests.media import connect, decode, new_client
from tests.server import RunningServer, serve

pytestmark = pytest.mark.media

VOICE, SONG_A, SONG_B = 1000.0, 440.0, 660.0
TALK_BEFORE_S = 5.0
TALK_AFTER_S = 5.0


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    root = tmp_path_factory.mktemp("replays")
    settings = Settings(
        data_dir=root / "var", recording_segment_s=3.0, crossfade_s=1.0, signup_per_hour=100
    )
    settings.data_dir.mkdir(parents=True)
    upgrade(settings.resolved_database_url)
    with serve(create_app(settings)) as running:
        yield running


async def _sign_up(http: httpx.AsyncClient, name: str) -> tuple[int, str]:
    r = await http.post(
        "/api/v1/accounts/signup",
        json={"username": name, "email": f"{name}@example.org", "password": "password-1"},
    )
    assert r.status_code == 201, r.text
    return int(r.json()["id"]), str(r.json()["display_name"])


async def _seed_catalog(server: RunningServer, root: Path) -> None:
    a, b = root / "a440.flac", root / "e660.flac"
    write_song(a, SONG_A, 5.0, 0.3)
    write_song(b, SONG_B, 4.0, 0.3)
    url = server.app.state.onair.settings.resolved_database_url
    await seed_songs(url, [(a, "Concert A"), (b, "High E")])


async def _on_server(server: RunningServer, coro: Any) -> Any:
    """Runs `coro` on the server's loop (its database sessions live there)."""
    return await asyncio.to_thread(server.call, coro)


async def _licence(server: RunningServer, title: str, on_demand: bool) -> None:
    await _on_server(server, _set_licence(server, title, on_demand))


async def _set_licence(server: RunningServer, title: str, on_demand: bool) -> None:
    async with server.app.state.onair.sessions() as db:
        track_id = await db.scalar(select(Track.id).where(Track.title == title))
        licence = await db.scalar(select(Licence).where(Licence.track_id == track_id))
        if licence is None:
            licence = Licence(track_id=track_id, territories="*")
            db.add(licence)
        licence.on_demand_allowed = on_demand
        await db.commit()


async def _wait_ready(http: httpx.AsyncClient, replay_id: int) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body: dict[str, Any] = (await http.get(f"/api/v1/replays/{replay_id}")).json()
        if body["state"] != "processing":
            return body
        await asyncio.sleep(0.2)
    raise TimeoutError("the replay stayed processing")


async def _show(server: RunningServer, root: Path) -> dict[str, Any]:
    async with (
        httpx.AsyncClient(base_url=server.url, timeout=30) as http,
        httpx.AsyncClient(base_url=server.url, timeout=30) as stranger,
        httpx.AsyncClient(base_url=server.url, timeout=30) as anonymous,
    ):
        host_id, host_name = await _sign_up(http, "tonehost")
        await _sign_up(stranger, "stranger")
        show = (await http.post("/api/v1/shows", json={"title": "Tones & Talk"})).json()
        show_id = show["id"]
        assert (await http.post(f"/api/v1/shows/{show_id}/live")).status_code == 200
        voice = ToneTrack(VOICE, lambda t: 0.3)
        host = await connect(http, new_client(send=voice), f"/api/v1/shows/{show_id}/studio/webrtc")
        early = await http.post(f"/api/v1/shows/{show_id}/replays", json={"kind": "talk"})
        await asyncio.sleep(TALK_BEFORE_S)
        await _seed_catalog(server, root)
        for q in ("concert", "high e"):
            found = (await http.get("/api/v1/catalog/search", params={"q": q})).json()["tracks"]
            r = await http.post(f"/api/v1/shows/{show_id}/queue", json={"track_id": found[0]["id"]})
            assert r.status_code == 201, r.text
        await asyncio.sleep(5.0 + 4.0 - 1.0 + TALK_AFTER_S)
        await host.pc.close()
        assert (await http.post(f"/api/v1/shows/{show_id}/end")).status_code == 200

        out: dict[str, Any] = {
            "show_id": show_id,
            "host_id": host_id,
            "host_name": host_name,
            "early": early,
        }
        out["plays"] = await _on_server(server, _plays(server, show_id))
        folder = recording_dir(server.app.state.onair.settings.recordings_path, show_id)
        out["segments"] = await asyncio.to_thread(read_recording, folder)
        out["options"] = (await http.get(f"/api/v1/shows/{show_id}/replays/options")).json()

        # Only the host publishes.
        path = f"/api/v1/shows/{show_id}/replays"
        out["anonymous_publish"] = await anonymous.post(path, json={"kind": "talk"})
        out["stranger_publish"] = await stranger.post(path, json={"kind": "talk"})
        await _licence(server, "Concert A", True)
        await _licence(server, "High E", False)
        out["full_refused"] = await http.post(path, json={"kind": "full"})
        talk = await http.post(path, json={"kind": "talk"})
        assert talk.status_code == 202, talk.text
        out["talk_accepted"] = talk.json()
        out["talk_again"] = await http.post(path, json={"kind": "talk"})
        out["talk"] = await _wait_ready(http, talk.json()["id"])
        await _licence(server, "High E", True)
        full = await http.post(path, json={"kind": "full"})
        assert full.status_code == 202, full.text
        out["full"] = await _wait_ready(http, full.json()["id"])
        out["listed"] = (await anonymous.get(path)).json()

        for kind in ("talk", "full"):
            replay = out[kind]
            out[f"{kind}_audio"] = await anonymous.get(replay["audio_url"])
            out[f"{kind}_chapters"] = await anonymous.get(replay["chapters_url"])
        feed_url = f"/hosts/{host_id}/podcast.xml"
        out["feed"] = await anonymous.get(feed_url)
        art = feedparser.parse(out["feed"].text).feed.image.href
        out["artwork"] = await anonymous.get(art)
        out["enclosures"] = {}
        for entry in feedparser.parse(out["feed"].text).entries:
            for enclosure in entry.enclosures:
                got = await anonymous.get(enclosure.href)
                out["enclosures"][enclosure.href] = (enclosure, got)
        audio_url = out["full"]["audio_url"]
        out["range"] = await anonymous.get(audio_url, headers={"Range": "bytes=1000-1999"})
        out["range_tail"] = await anonymous.get(audio_url, headers={"Range": "bytes=-500"})
        out["head"] = await anonymous.head(audio_url)
        out["show_page"] = await anonymous.get(f"/shows/{show_id}")
        out["host_page"] = await anonymous.get("/users/tonehost")

        # Unpublishing: only the host (a stranger is refused), then it is gone everywhere.
        full_id = out["full"]["id"]
        out["stranger_unpublish"] = await stranger.delete(f"/api/v1/replays/{full_id}")
        out["unpublish"] = await http.delete(f"/api/v1/replays/{full_id}")
        out["feed_after"] = await anonymous.get(feed_url)
        out["audio_after"] = await anonymous.get(audio_url)
        out["replay_after"] = await anonymous.get(f"/api/v1/replays/{full_id}")
    return out


async def _plays(server: RunningServer, show_id: int) -> list[tuple[float, float]]:
    async with server.app.state.onair.sessions() as db:
        return [
            (p.started_at.timestamp(), p.seconds_played)
            for p in await play_log.plays_of_show(db, show_id)
        ]


@pytest.fixture(scope="module")
def run(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("songs")
    return asyncio.run(_show(server, root))


def tone_heard(signal: Any, freq: float) -> list[float]:
    """Where (seconds, 50 ms windows) `freq` sounds as a tone: its band well above silence and
    12 dB above the bands either side (a click, as a voice line opens, is loud everywhere)."""
    here, below, above = (levels(signal, f) for f in (freq, freq * 0.8, freq * 1.25))
    tone = (here > -60) & (here > below + 12) & (here > above + 12)
    return [round(i * 0.05, 2) for i in np.flatnonzero(tone)]


def _audio(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "audio/mpeg"
    return decode(response.content, "mp3")


def test_the_show_was_recorded_in_segments(run: dict[str, Any]) -> None:
    segments = run["segments"]
    assert len(segments) >= 5, "three-second segments over a show of about 20 s"
    total = sum(s.duration_s for s in segments)
    assert 17 <= total <= 30, total
    for before, after in itertools.pairwise(segments):
        # One studio run: each file starts where the last ended, in pts and in time.
        assert after.first_pts == before.first_pts + before.samples
        assert abs(after.wallclock - before.end_wallclock) < 1e-3
    assert run["options"]["recorded_s"] == pytest.approx(total, abs=0.01)


def test_a_replay_waits_for_the_end_of_the_show(run: dict[str, Any]) -> None:
    assert run["early"].status_code == 409
    assert run["early"].json()["error"]["code"] == "show_not_ended"


def test_the_talk_replay_has_the_voice_and_none_of_the_music(run: dict[str, Any]) -> None:
    talk = run["talk"]
    assert talk["state"] == "ready" and talk["kind"] == "talk"
    signal = _audio(run["talk_audio"])
    assert band_db(signal, VOICE) > -20, "no voice in the talk replay"
    for song in (SONG_A, SONG_B):
        assert band_db(signal, song) < band_db(signal, VOICE) - 50, f"{song} Hz left in"
        # Not even a moment of it: no 50 ms window holds the song.
        assert tone_heard(signal, song) == [], f"{song} Hz heard in the talk replay"
    # The talk time: the recording less the music as the play log has it (the songs overlap
    # in their crossfade, so the music is the union of the plays).
    recorded = sum(s.duration_s for s in run["segments"])
    music, reach = 0.0, -np.inf
    for start, seconds in sorted(run["plays"]):
        end = start + seconds
        music += max(0.0, end - max(start, reach))
        reach = max(reach, end)
    talk_time = recorded - music
    assert abs(len(signal) / RATE - talk_time) < 1.0, (len(signal) / RATE, talk_time)
    assert abs(talk["duration_s"] - len(signal) / RATE) < 0.1


def test_the_talk_replay_has_a_chapter_per_stretch_of_talk(run: dict[str, Any]) -> None:
    chapters = run["talk"]["chapters"]
    assert [c["title"] for c in chapters] == [
        "Opening",
        "After Test Tones - Concert A; Test Tones - High E",
    ]
    # The second starts where the opening talk ended: about TALK_BEFORE_S in.
    assert chapters[0]["startTime"] == 0
    assert TALK_BEFORE_S - 1 < chapters[1]["startTime"] < TALK_BEFORE_S + 3


def test_the_full_replay_is_refused_naming_the_song_that_forbids_it(run: dict[str, Any]) -> None:
    refused = run["full_refused"]
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "not_licensed_on_demand"
    assert "High E" in error["message"] and "Concert A" not in error["message"]
    assert [t["title"] for t in error["tracks"]] == ["High E"]
    options = run["options"]
    assert options["talk_allowed"] and not options["full_allowed"]
    assert {t["title"] for t in options["full_blocked_by"]} == {"Concert A", "High E"}


def test_the_full_replay_has_the_music_and_a_chapter_at_each_song(run: dict[str, Any]) -> None:
    full = run["full"]
    assert full["state"] == "ready"
    signal = _audio(run["full_audio"])
    recorded = sum(s.duration_s for s in run["segments"])
    assert abs(len(signal) / RATE - recorded) < 0.2
    assert band_db(signal, VOICE) > -20
    titles = [c["title"] for c in full["chapters"]]
    assert titles == ["Opening", "Test Tones - Concert A", "Test Tones - High E", "Talk"]
    starts = {c["title"]: c["startTime"] for c in full["chapters"]}
    for song, title in ((SONG_A, "Test Tones - Concert A"), (SONG_B, "Test Tones - High E")):
        heard = runs(levels(signal, song) > -40)
        assert heard, f"{song} Hz missing from the full replay"
        assert len(tone_heard(signal, song)) > 40, "the detector the talk replay passes"
        assert abs(heard[0][0] - starts[title]) < 0.6, (song, heard, starts)


def test_chapters_download_as_podcasting_json(run: dict[str, Any]) -> None:
    for kind in ("talk", "full"):
        r = run[f"{kind}_chapters"]
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/json+chapters")
        body = r.json()
        assert body["version"] == "1.2.0"
        assert body["chapters"] == run[kind]["chapters"]


def test_only_the_host_publishes(run: dict[str, Any]) -> None:
    assert run["anonymous_publish"].status_code == 401
    assert run["stranger_publish"].status_code == 403
    assert run["talk_accepted"]["state"] == "processing"
    assert run["talk_again"].status_code == 409
    assert {r["kind"] for r in run["listed"]} == {"talk", "full"}


def test_the_feed_is_a_podcast_with_enclosures_and_chapters(run: dict[str, Any]) -> None:
    r = run["feed"]
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/rss+xml")
    parsed = feedparser.parse(r.text)
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.version == "rss20"
    assert parsed.feed.title == f"{run['host_name']} on OnAir"
    assert parsed.feed.author_detail.name == run["host_name"] or parsed.feed.get("itunes_author")
    assert "<itunes:explicit>" in r.text and "<itunes:category " in r.text
    # Square artwork of at least 1400 px, as podcast directories require.
    art = run["artwork"]
    assert parsed.feed.image.href == art.url
    assert art.status_code == 200 and art.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(art.content)).size == (1400, 1400)
    assert len(parsed.entries) == 2
    by_title = {e.title: e for e in parsed.entries}
    assert set(by_title) == {"Tones & Talk", "Tones & Talk (talk)"}
    for entry in parsed.entries:
        (enclosure,) = entry.enclosures
        assert enclosure.type == "audio/mpeg"
        _, got = run["enclosures"][enclosure.href]
        assert got.status_code == 200
        assert int(enclosure.length) == len(got.content) == int(got.headers["content-length"])
        assert entry.itunes_duration
        assert 'type="application/json+chapters"' in r.text
    assert r.text.count("<podcast:chapters ") == 2
    assert 'xmlns:podcast="https://podcastindex.org/namespace/1.0"' in r.text


def test_range_requests_serve_parts_of_the_audio(run: dict[str, Any]) -> None:
    whole = run["full_audio"].content
    part = run["range"]
    assert part.status_code == 206
    assert part.headers["content-range"] == f"bytes 1000-1999/{len(whole)}"
    assert part.content == whole[1000:2000]
    tail = run["range_tail"]
    assert tail.status_code == 206 and tail.content == whole[-500:]
    assert run["full_audio"].headers["accept-ranges"] == "bytes"
    # A podcast app's HEAD: the length and type, no body.
    head = run["head"]
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) == len(whole)
    assert head.headers["content-type"] == "audio/mpeg"


def test_pages_list_the_replays_and_link_the_feed(run: dict[str, Any]) -> None:
    show_page = run["show_page"].text
    assert f'src="{run["talk"]["audio_url"]}"' in show_page
    assert "Talk replay" in show_page and "Full show" in show_page
    assert "Tones &amp; Talk (talk)" in show_page  # the chapters' and player's labels
    host_page = run["host_page"].text
    assert (
        f'<link rel="alternate" type="application/rss+xml" title="{run["host_name"]} on OnAir" '
        f'href="/hosts/{run["host_id"]}/podcast.xml">'
    ) in host_page
    assert run["talk"]["audio_url"] in host_page


def test_an_unpublished_replay_vanishes(run: dict[str, Any]) -> None:
    assert run["stranger_unpublish"].status_code == 403
    assert run["unpublish"].status_code == 204
    parsed = feedparser.parse(run["feed_after"].text)
    assert [e.title for e in parsed.entries] == ["Tones & Talk (talk)"]
    assert run["audio_after"].status_code == 404
    assert run["replay_after"].status_code == 404
