"""Three real nodes on one database and one Redis: placement by load, media through any node,
failover when the studio's node is killed, and draining a node."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from onair.db.base import make_engine
from onair.replays.recorder import read_recording
from tests.cluster import ROOT, World, chirp_position, host, new_show, tone_songs, world
from tests.media import decode, dominant_frequency

pytestmark = [pytest.mark.postgres, pytest.mark.media]

RATE = 48_000
SEGMENT_S = 2.0
"""The nodes' recording segments (ONAIR_RECORDING_SEGMENT_S): a closed one is acknowledged."""


@dataclass
class Heard:
    """An ICY listener's audio and titles, and when its bytes came."""

    audio: bytearray = field(default_factory=bytearray)
    titles: list[str] = field(default_factory=list)
    first_byte_at: float | None = None


def listen(url: str, seconds: float, *, until: float | None = None) -> Heard:
    """Reads `url` with ICY metadata for `seconds` (or until the monotonic time `until`), as a
    player does; returns early when the server ends the stream."""
    heard = Heard()
    deadline = until if until is not None else time.monotonic() + seconds
    with (
        httpx.Client(timeout=httpx.Timeout(15, read=12)) as http,
        http.stream("GET", url, headers={"Icy-MetaData": "1"}) as r,
    ):
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"] == "audio/mpeg"
        metaint = int(r.headers["icy-metaint"])
        buffer = bytearray()
        try:
            for chunk in r.iter_raw():
                if heard.first_byte_at is None:
                    heard.first_byte_at = time.monotonic()
                buffer += chunk
                while len(buffer) > metaint:
                    length = buffer[metaint] * 16
                    if len(buffer) < metaint + 1 + length:
                        break
                    heard.audio += buffer[:metaint]
                    block = bytes(buffer[metaint + 1 : metaint + 1 + length]).rstrip(b"\0")
                    if block:
                        heard.titles.append(block.decode().split("StreamTitle='", 1)[1][:-2])
                    del buffer[: metaint + 1 + length]
                if time.monotonic() > deadline:
                    break
        except httpx.HTTPError:
            pass  # the node behind the stream died: what came is what was heard
    return heard


def other(world: World, *not_: str) -> str:
    return next(n for n in sorted(world.nodes) if n not in not_)


def test_a_show_lands_on_the_least_loaded_node_and_plays_through_any(
    tmp_path: Path, postgres_url: str
) -> None:
    with contextlib.ExitStack() as stack:
        cluster = stack.enter_context(world(tmp_path, postgres_url, tone_songs(tmp_path)))
        cluster.start("a", "b", "c")
        owners: list[str] = []
        shows: list[int] = []
        for title in ("One", "Two", "Three"):  # each by a host of its own, all through B
            b = stack.enter_context(host(cluster.nodes["b"].url, f"host_{title.lower()}"))
            # The first has an empty queue: the auto-DJ plays it a song of its genre.
            show_id = new_show(b, title, *(["concert"] if title != "One" else []))
            shows.append(show_id)
            r = b.post(f"/api/v1/shows/{show_id}/live")
            assert r.status_code == 200, r.text
            owners.append(cluster.wait_owner(show_id))
        # Each show went to a node with no studio yet (studios weigh most in the load).
        assert sorted(owners) == ["a", "b", "c"], owners

        # The last show's stream, through a node that does not run it, is its studio's audio.
        relay = other(cluster, owners[-1])
        heard = listen(f"{cluster.nodes[relay].url}/listen/{show_id}.mp3", 4)
        sound = decode(bytes(heard.audio), "mp3")
        assert len(sound) > 2 * RATE
        assert abs(dominant_frequency(sound[-RATE:]) - 440.0) < 5
        assert "Test Tones - Concert A" in heard.titles  # ICY metadata came through intact

        # HLS too: the playlist and a segment, through the same node.
        playlist = httpx.get(f"{cluster.nodes[relay].url}/listen/{show_id}.m3u8", timeout=15)
        assert playlist.status_code == 200, playlist.text
        segment = playlist.text.strip().splitlines()[-1]
        got = httpx.get(f"{cluster.nodes[relay].url}/listen/{segment}", timeout=15)
        assert got.status_code == 200
        assert abs(dominant_frequency(decode(got.content, "mpegts")) - 440.0) < 5

        # The studio's controls, through another node, reach the studio.
        r = b.get(f"/api/v1/shows/{show_id}/studio")
        assert r.status_code == 200, r.text
        assert r.json()["now_playing"]["title"] == "Concert A"

        # What is on air, as every node tells it: the auto-DJ's pick is in no queue.
        def on_air(node: str, show: int) -> dict[str, object]:
            r = httpx.get(f"{cluster.nodes[node].url}/api/v1/shows/{show}", timeout=15)
            assert r.status_code == 200, r.text
            return dict(r.json()["now_playing"] or {})

        picked = on_air(owners[0], shows[0])
        assert picked["auto_dj"] is True, picked
        assert picked["track"]["title"] in {"Concert A", "High E", "Chirp"}  # type: ignore[index]
        for node in cluster.nodes:
            assert on_air(node, shows[0]) == picked, node
            assert on_air(node, show_id)["track"]["title"] == "Concert A"  # type: ignore[index]

        # Ending the show through another node stops its studio where it runs.
        assert b.post(f"/api/v1/shows/{show_id}/end").status_code == 200
        deadline = time.monotonic() + 5
        while cluster.owner(show_id) is not None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert cluster.owner(show_id) is None
        r = httpx.get(f"{cluster.nodes[relay].url}/listen/{show_id}.mp3", timeout=15)
        assert r.status_code == 404
        assert r.json()["error"]["code"] == "not_live"


def test_another_node_resumes_the_song_where_it_was_when_the_studio_node_dies(
    tmp_path: Path, postgres_url: str
) -> None:
    with contextlib.ExitStack() as stack:
        cluster = stack.enter_context(world(tmp_path, postgres_url, tone_songs(tmp_path)))
        cluster.start("a", "b", "c")
        b = stack.enter_context(host(cluster.nodes["b"].url, "host_b"))
        show_id = new_show(b, "Chirp Show", "chirp")
        assert b.post(f"/api/v1/shows/{show_id}/live").status_code == 200
        owner = cluster.wait_owner(show_id)
        relay = other(cluster, owner)
        url = f"{cluster.nodes[relay].url}/listen/{show_id}.mp3"

        before = listen(url, 6)  # some seconds into the song
        sound = decode(bytes(before.audio), "mp3")
        last = chirp_position(dominant_frequency(sound[-RATE // 2 :]))
        assert last > 3, last
        cluster.nodes[owner].kill()
        killed = time.monotonic()

        after = listen(url, 4, until=killed + 16)  # the relay holds on until the new owner
        assert after.first_byte_at is not None
        assert after.first_byte_at - killed < 10, after.first_byte_at - killed
        resumed = decode(bytes(after.audio), "mp3")
        assert len(resumed) > RATE
        first = chirp_position(dominant_frequency(resumed[RATE // 4 : RATE * 3 // 4])) - 0.25
        assert abs(first - last) < 2, (last, first)
        took = after.first_byte_at - killed
        print(f"failover: {took:.1f} s to the first byte, heard {last:.1f} s then {first:.1f} s")
        assert cluster.owner(show_id) not in (None, owner)
        assert after.titles[0] == "Test Tones - Chirp"

        r = b.get(f"/api/v1/shows/{show_id}/studio")  # the new studio, through B
        assert r.status_code == 200, r.text
        assert r.json()["now_playing"]["title"] == "Chirp"
        assert r.json()["position_s"] > first

        # One performance in the play log, carried on by the new studio, still open.
        plays = asyncio.run(_plays(postgres_url, show_id))
        assert len(plays) == 1, plays
        assert plays[0]["ended_at"] is None
        # The recording so far: the dead node's closed segments are all there.
        runs = sorted((tmp_path / "recordings" / f"show-{show_id}").iterdir())
        assert len(runs) == 2, runs
        recorded = sum(
            s.duration_s for s in read_recording(runs[0].parent) if runs[0] in s.path.parents
        )
        assert recorded >= last - SEGMENT_S - 1, (recorded, last)


async def _plays(url: str, show_id: int) -> list[dict[str, object]]:
    engine = make_engine(url)
    try:
        async with engine.connect() as db:
            rows = await db.execute(
                text("SELECT track_id, ended_at, end_reason FROM play_log WHERE show_id = :s"),
                {"s": show_id},
            )
            return [dict(row._mapping) for row in rows]
    finally:
        await engine.dispose()


def test_a_drained_node_moves_its_show_at_the_next_song(tmp_path: Path, postgres_url: str) -> None:
    with contextlib.ExitStack() as stack:
        cluster = stack.enter_context(world(tmp_path, postgres_url, tone_songs(tmp_path)))
        cluster.start("a", "b", "c")
        b = stack.enter_context(host(cluster.nodes["b"].url, "host_b"))
        show_id = new_show(b, "Drain Show", "concert")
        assert b.post(f"/api/v1/shows/{show_id}/live").status_code == 200
        owner = cluster.wait_owner(show_id)
        # The host, through a node that does not run the studio, queues the next song.
        elsewhere = cluster.nodes[other(cluster, owner)].url
        crew = stack.enter_context(httpx.Client(base_url=elsewhere, cookies=b.cookies, timeout=20))
        found = crew.get("/api/v1/catalog/search", params={"q": "high e"}).json()["tracks"]
        r = crew.post(f"/api/v1/shows/{show_id}/queue", json={"track_id": found[0]["id"]})
        assert r.status_code == 201, r.text
        env = cluster.env(owner, cluster.nodes[owner].port)
        drained = subprocess.run(
            [sys.executable, "-m", "onair", "node", "drain", owner],
            env=env,
            cwd=ROOT,
            capture_output=True,
            timeout=30,
            check=True,
        )
        assert owner in drained.stdout.decode()
        time.sleep(2)
        assert cluster.owner(show_id) == owner  # Concert A plays on where it is
        assert crew.post(f"/api/v1/shows/{show_id}/studio/skip").status_code == 200
        moved = cluster.wait_owner(show_id, not_=owner, timeout=10)
        assert moved != owner

        relay = other(cluster, moved)
        heard = listen(f"{cluster.nodes[relay].url}/listen/{show_id}.mp3", 3)
        sound = decode(bytes(heard.audio), "mp3")
        assert abs(dominant_frequency(sound[-RATE:]) - 660.0) < 5  # the next song, moved

        nodes = subprocess.run(
            [sys.executable, "-m", "onair", "node", "list"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            timeout=30,
            check=True,
        ).stdout.decode()
        row = next(line for line in nodes.splitlines() if line.startswith(f"{owner}\t"))
        assert "draining" in row and "studios=0" in row


def test_a_node_that_shuts_down_hands_its_show_over(tmp_path: Path, postgres_url: str) -> None:
    with contextlib.ExitStack() as stack:
        cluster = stack.enter_context(world(tmp_path, postgres_url, tone_songs(tmp_path)))
        cluster.start("a", "b")
        b = stack.enter_context(host(cluster.nodes["b"].url, "host_b"))
        show_id = new_show(b, "Leaving Show", "concert")
        assert b.post(f"/api/v1/shows/{show_id}/live").status_code == 200
        owner = cluster.wait_owner(show_id)
        stays = other(cluster, owner)
        cluster.nodes[owner].process.send_signal(signal.SIGTERM)  # as a deploy stops a node
        assert cluster.wait_owner(show_id, not_=owner, timeout=15) == stays
        assert cluster.nodes[owner].process.wait(15) is not None
        heard = listen(f"{cluster.nodes[stays].url}/listen/{show_id}.mp3", 3)
        assert abs(dominant_frequency(decode(bytes(heard.audio), "mp3")[-RATE:]) - 440.0) < 5
