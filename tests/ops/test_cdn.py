"""The sample CDN edge, docs/nginx-hls-cache.conf, run for real in front of a live show.

Debian's nginx runs the sample (its ports and paths replaced by the test's) as a foreground
process; a player fetches the show's HLS through it and decodes the show's 440 Hz tone; a
segment fetched twice is a cache HIT the second time (and OnAir is not asked again), while the
playlist, cached a second at a time, keeps moving.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import m3u8
import pytest

from tests.live import RATE, band_db, serving_concert_a
from tests.media import decode, dominant_frequency, wait_for
from tests.server import RunningServer

pytestmark = pytest.mark.media

NGINX = "/usr/sbin/nginx"
SAMPLE = Path(__file__).resolve().parents[2] / "docs" / "nginx-hls-cache.conf"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def edge_config(*, port: int, origin_port: int, root: Path) -> str:
    """The sample with the test's ports and folders (each replaced exactly once)."""
    text = SAMPLE.read_text()
    for sample, ours in (
        ("server 127.0.0.1:8000;", f"server 127.0.0.1:{origin_port};"),
        ("listen 8080;", f"listen 127.0.0.1:{port};"),
        ("/var/cache/nginx/onair", f"{root}/cache"),
        ("/var/log/nginx/onair-cache.log", f"{root}/access.log"),
    ):
        assert text.count(sample) == 1, f"the sample no longer says {sample!r} once"
        text = text.replace(sample, ours)
    # Debian's nginx keeps its temporary files under /var/lib/nginx: these go in the test's.
    temp = "".join(
        f"    {kind}_temp_path {root}/{kind};\n"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    assert text.count("http {\n") == 1
    return text.replace("http {\n", "http {\n" + temp)


async def _go_live(base: str) -> int:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        r = await http.post(
            "/api/v1/accounts/signup",
            json={"username": "cdnhost", "email": "cdn@example.org", "password": "password-1"},
        )
        assert r.status_code == 201, r.text
        show = (await http.post("/api/v1/shows", json={"title": "Edge FM"})).json()
        found = (await http.get("/api/v1/catalog/search", params={"q": "concert"})).json()
        queued = await http.post(
            f"/api/v1/shows/{show['id']}/queue", json={"track_id": found["tracks"][0]["id"]}
        )
        assert queued.status_code == 201, queued.text
        assert (await http.post(f"/api/v1/shows/{show['id']}/live")).status_code == 200
        return int(show["id"])


@dataclass
class Edge:
    url: str
    origin: RunningServer
    show_id: int

    @property
    def playlist_url(self) -> str:
        return f"{self.url}/listen/{self.show_id}.m3u8"

    def origin_answers(self) -> int:
        """Responses OnAir's app has sent so far (its /metrics counts, read directly)."""
        return sum(self.origin.app.state.ops.http.by_class)


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    if not Path(NGINX).exists():
        pytest.skip(f"{NGINX} is not installed (Debian package nginx-light)")
    with serving_concert_a(tmp_path_factory.mktemp("cdn")) as server:
        show_id = asyncio.run(_go_live(server.url))
        root = Path(tempfile.mkdtemp(prefix="onair-nginx-"))
        os.chmod(root, 0o755)
        port = _free_port()
        config = root / "nginx.conf"
        config.write_text(edge_config(port=port, origin_port=server.port, root=root))
        # In the foreground, one process, its own pid and error log.
        directives = f"daemon off; master_process off; pid {root}/nginx.pid;"
        process = subprocess.Popen(
            [
                NGINX,
                "-p",
                str(root),
                "-c",
                str(config),
                "-e",
                f"{root}/error.log",
                "-g",
                directives,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:

            def listening() -> bool:
                with socket.socket() as s:
                    return s.connect_ex(("127.0.0.1", port)) == 0

            if not wait_for(listening, 10):
                log = root / "error.log"
                said = log.read_text()[-2000:] if log.exists() else "(no error.log)"
                pytest.fail(f"nginx did not start with the sample:\n{said}")
            yield Edge(f"http://127.0.0.1:{port}", server, show_id)
        finally:
            process.kill()
            process.wait(10)
            shutil.rmtree(root, ignore_errors=True)


def _playlist(http: httpx.Client, edge: Edge) -> tuple[m3u8.M3U8, str]:
    r = http.get(edge.playlist_url)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(("application/vnd.apple.mpegurl", "audio/mpegurl"))
    return m3u8.loads(r.text, uri=edge.playlist_url), r.headers["x-cache-status"]


def test_a_player_through_the_edge_hears_the_show(edge: Edge) -> None:
    with httpx.Client(timeout=15) as http:
        playlist, _ = _playlist(http, edge)
        assert playlist.segments, "the edge's playlist lists no segments"
        audio = b""
        for segment in playlist.segments:
            assert segment.absolute_uri.startswith(edge.url)  # relative URIs stay on the edge
            r = http.get(segment.absolute_uri)
            assert r.status_code == 200, r.text
            assert r.headers["content-type"] == "video/mp2t"
            audio += r.content
    heard = decode(audio, "mpegts")
    assert len(heard) >= 2 * RATE, f"only {len(heard) / RATE:.1f} s through the edge"
    tail = heard[-2 * RATE :]
    assert abs(dominant_frequency(tail) - 440.0) < 3.0
    assert band_db(tail, 440.0) > -25


def test_a_segment_asked_for_again_comes_from_the_cache(edge: Edge) -> None:
    with httpx.Client(timeout=15) as http:
        playlist, _ = _playlist(http, edge)
        seen = playlist.segments[-1].absolute_uri
        uri = seen
        deadline = time.monotonic() + 20
        # A segment newer than any listed so far: no player has asked the edge for it yet.
        while uri == seen and time.monotonic() < deadline:
            time.sleep(0.2)
            uri = _playlist(http, edge)[0].segments[-1].absolute_uri
        assert uri != seen, "no new segment in 20 s"
        first = http.get(uri)
        assert first.status_code == 200
        assert first.headers["x-cache-status"] == "MISS"
        asked = edge.origin_answers()
        second = http.get(uri)
        assert second.status_code == 200
        assert second.headers["x-cache-status"] == "HIT"
        assert second.content == first.content
        assert edge.origin_answers() == asked, "the cached segment was fetched from OnAir again"
        assert "immutable" in second.headers["cache-control"]


def test_the_cached_playlist_keeps_moving(edge: Edge) -> None:
    with httpx.Client(timeout=15) as http:
        playlist, _ = _playlist(http, edge)
        start = playlist.media_sequence
        statuses: set[str] = set()
        sequences = [start]
        deadline = time.monotonic() + 20
        # Two segments on (4 s of program), the playlist asked for five times a second.
        while sequences[-1] < start + 2 and time.monotonic() < deadline:
            time.sleep(0.2)
            playlist, status = _playlist(http, edge)
            statuses.add(status)
            sequences.append(playlist.media_sequence)
    assert sequences[-1] >= start + 2, f"the edge's playlist stood still at {sequences[-1]}"
    assert sequences == sorted(sequences), "the edge went back to an older playlist"
    assert "HIT" in statuses, statuses  # asked again within its second: not from OnAir
    assert statuses & {"MISS", "EXPIRED", "UPDATING", "STALE"}, statuses  # and refreshed
